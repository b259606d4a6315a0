"""OCPP-J request/response over one websocket: at most one CALL of ours in flight,
reply timeouts, and dispatch of the Central System's CALLs to handlers.

`resolve(action)` gives the handler of a Central System request (or None): a plain function
`handler(payload) -> reply` or `-> (reply, after)`; `after` is a coroutine function started
once the reply is on the wire, so a StatusNotification caused by a request always follows its
CALLRESULT. Handlers never await the network themselves: the reader must keep reading while
they run. A handler whose answer must wait (for a reply to one of our own CALLs) returns a
coroutine instead, which gives the reply (or the pair) later, in a task of its own; it must
bound its wait. A lost link makes call() raise NotConnected, any other failure CallFailed.

A call unanswered in time while nothing else came from the Central System either (no frame
of any kind while it waited) means the link is dead, half-open or stalled: call() raises
NotConnected and marks the connection (`conn.dead`), which the link supervisor then replaces
(firmware/link.py). With other frames meanwhile the CSMS is alive: CallFailed("Timeout").

Strings from the Central System (action names, error texts) are cut to _MAX_ECHO characters
before they are logged or echoed back; unmatched replies are logged at the 1st, 2nd, 4th,
8th... only, so a flood of them costs a few log lines.

Replays: OCPP-J requires every CALL of a sender to have a uniqueId of its own. The ids of the
Central System's last _RECENT CALLs are kept (as CRC-32s: _RECENT small ints, across
reconnects, in RAM); a CALL reusing one is not executed but answered with a CALLERROR
SecurityError and recorded as the security event AttemptedReplayAttacks. This also covers a
Central System that resends a CALL whose answer the link lost: it gets the error instead of
the request being executed twice (a RemoteStart, a Reset).
"""
import binascii

from firmware import ocppj
from firmware.compat import asyncio, const, ticks_ms, urandom
from firmware.ws import WsError

_MAX_LOGGED = const(300)
_MAX_ECHO = const(40)     # characters of a CSMS string (action, error code) echoed or logged
_MAX_TEXT = const(120)    # characters of a CALLERROR description we send or log
_RECENT = const(8)        # the Central System's CALL ids remembered against replays


class CallFailed(Exception):
    """The Central System answered with a CALLERROR, an invalid reply, or not in time."""

    def __init__(self, code, description=""):
        super().__init__("%s %s" % (code, description))
        self.code = code
        self.description = description


class NotConnected(Exception):
    """No link, or the link went down (or was found dead) while a call waited for its reply."""


def _cut(text, n=_MAX_ECHO):
    """`text` (any value from the Central System) as a string of at most n + 3 characters."""
    text = text if isinstance(text, str) else repr(text)
    return text if len(text) <= n else text[:n] + "..."


class Rpc:
    def __init__(self, log, timeout_ms, resolve):
        self._log = log
        self._resolve = resolve
        self._ws = None
        self._lock = asyncio.Lock()
        self._event = asyncio.Event()
        self._pending = None  # (msg_id, action, on_result) of our CALL awaiting its reply
        self._reply = None
        # A random boot prefix keeps ids unique across restarts without persisting a counter.
        self._prefix = "%08x" % int.from_bytes(urandom(4), "big")
        self._seq = 0
        self.timeout_ms = timeout_ms
        self.silent = False  # BootNotification Rejected: send nothing, answer nothing
        self.tx_count = 0  # messages sent, so the heartbeat can stay quiet while others flow
        self.sent_ms = ticks_ms()  # ... and when the last one went
        self._unmatched = 0  # replies to no call of ours (logged at powers of two)
        self.on_event = None  # on_event(type, info): a security event (InvalidMessages)
        self._recent = [-1] * _RECENT  # CRC-32 (30 bits: small ints) of recent CALL ids
        self._recent_at = 0

    @property
    def connected(self):
        return self._ws is not None

    def attach(self, ws):
        self._ws = ws

    def detach(self):
        self._ws = None
        if self._pending:
            self._reply = NotConnected("link lost")
            self._event.set()

    async def _send(self, text):
        """Send a frame: a str, or pieces of one (ocppj.pieces: a big message is never
        held whole; at debug level it is joined once to be logged)."""
        if self._ws is None:
            raise NotConnected()
        if self._log.level == 0:  # no slicing and concatenating per frame unless debugging
            if not isinstance(text, str):
                text = "".join(text)
            self._log.debug("rpc", "> " + text[:_MAX_LOGGED])
        self.tx_count += 1
        self.sent_ms = ticks_ms()
        try:
            await self._ws.send(text)
        except (WsError, OSError) as e:  # the link failed under us (ws.py's deadlines)
            raise NotConnected(str(e))

    async def call(self, action, payload, timeout_ms=None, on_result=None):
        """Send a CALL and return the reply payload; raises CallFailed or NotConnected.

        on_result(reply) runs as soon as a valid CALLRESULT is read, before the next frame:
        a request the Central System sends right behind its reply (a RemoteStopTransaction
        behind a StartTransaction.conf) then already finds what the reply changed."""
        async with self._lock:
            if self._ws is None:
                raise NotConnected()
            self._seq += 1
            msg_id = "%s-%d" % (self._prefix, self._seq)
            self._pending = (msg_id, action, on_result)
            self._reply = None
            self._event.clear()
            try:
                await self._send(ocppj.call_pieces(msg_id, action, payload))
                limit = timeout_ms or self.timeout_ms
                try:
                    await asyncio.wait_for(self._event.wait(), limit / 1000)
                except asyncio.TimeoutError:
                    if not self._event.is_set():  # else the reply came in as the wait ran out
                        self._timed_out(action, limit)
            finally:
                self._pending = None
            reply = self._reply
            if isinstance(reply, Exception):
                raise reply
            return reply

    def _timed_out(self, action, limit):
        # Any frame while we waited (a ping, a request, a late reply) shows the CSMS alive.
        why = "no reply to %s within %d ms" % (action, limit)
        conn = self._ws
        if conn is not None and conn.idle_ms() >= limit:
            conn.dead = why + " and no other frame: the link is dead"
            raise NotConnected(conn.dead)
        raise CallFailed("Timeout", why)

    async def serve(self, ws):
        """Read and dispatch messages until the link fails (the websocket's error propagates)."""
        while True:
            text = await ws.recv()
            if self._log.level == 0:
                # A frame that sets the write-only AuthorizationKey is never shown.
                self._log.debug("rpc", "< " + ("(a frame with AuthorizationKey)"
                                               if "AuthorizationKey" in text
                                               else text[:_MAX_LOGGED]))
            await self.handle(text)

    async def handle(self, text):
        try:
            msg = ocppj.decode(text)
        except ocppj.OcppError as e:
            # A broken reply to one of ours is dropped: answering a reply would never end.
            self._invalid(e)
            if e.msg_type == ocppj.CALLRESULT or e.msg_type == ocppj.CALLERROR:
                why = _cut(e.description, _MAX_TEXT)
                self._log.warn("rpc", "malformed reply ignored: %s" % why)
                return
            await self._error(e.msg_id, e.code, e.description)
            return
        kind = msg[0]
        if kind == ocppj.CALL:
            await self._on_call(msg[1], msg[2], msg[3])
            return
        pending = self._pending
        if pending is None or msg[1] != pending[0]:
            # A late reply to a call that timed out, or a buggy CSMS flooding us: log the
            # 1st, 2nd, 4th... only (each WARN line may cost a flash write).
            self._unmatched += 1
            n = self._unmatched
            if n & (n - 1) == 0:
                self._log.warn("rpc", "unmatched reply %s ignored (%d so far)"
                               % (_cut(msg[1]), n))
            return
        if kind == ocppj.CALLRESULT:
            try:
                ocppj.check_response(pending[1], msg[2])
                self._reply = msg[2]
            except ocppj.OcppError as e:
                why = _cut(e.description, _MAX_TEXT)  # may name a field the CSMS made up
                self._log.warn("rpc", "%s reply invalid: %s %s" % (pending[1], e.code, why))
                self._reply = CallFailed(e.code, why)
            if pending[2] is not None and not isinstance(self._reply, CallFailed):
                try:
                    pending[2](self._reply)
                except Exception as e:  # raised by call(), as if the caller's own code had failed
                    self._reply = e
        else:
            self._reply = CallFailed(_cut(msg[2]), _cut(msg[3], _MAX_TEXT))
        self._event.set()

    def _invalid(self, e):
        if self.on_event is not None and not self.silent:
            self.on_event("InvalidMessages", "%s %s" % (e.code, _cut(e.description, _MAX_TEXT)))

    async def _error(self, msg_id, code, description):
        if self.silent:
            return
        description = _cut(description, _MAX_TEXT)
        self._log.warn("rpc", "CALLERROR %s: %s" % (code, description))
        try:
            # encode_error sends an unreadable id (None) as "-1".
            await self._send(ocppj.encode_error(msg_id, code, description))
        except NotConnected:
            pass

    def _replayed(self, msg_id):
        """Whether msg_id is the id of one of the last _RECENT CALLs (else it is noted)."""
        crc = binascii.crc32(msg_id.encode()) & 0x3FFFFFFF
        if crc in self._recent:
            return True
        self._recent[self._recent_at] = crc
        self._recent_at = (self._recent_at + 1) % _RECENT
        return False

    async def _on_call(self, msg_id, action, payload):
        if self.silent:
            self._log.info("rpc", "%s ignored: boot was rejected" % _cut(action))
            return
        if self._replayed(msg_id):
            if self.on_event is not None:
                self.on_event("AttemptedReplayAttacks", "%s reuses the uniqueId %s"
                              % (_cut(action), _cut(msg_id)))
            await self._error(msg_id, "SecurityError", "uniqueId %s was used by an earlier "
                              "CALL: not executed again" % _cut(msg_id))
            return
        handler = self._resolve(action)
        if handler is None:
            if ocppj.is_known(action):
                await self._error(msg_id, "NotSupported", "%s is not supported" % action)
            else:
                await self._error(msg_id, "NotImplemented", "unknown action " + _cut(action))
            return
        try:
            ocppj.check_request(action, payload)
        except ocppj.OcppError as e:
            self._invalid(e)
            await self._error(msg_id, e.code, e.description)
            return
        try:
            reply = handler(payload)
        except Exception as e:  # a bug in one handler must not take the charger down
            self._log.exc("rpc", "%s handler failed" % action, e)
            await self._error(msg_id, "InternalError", "%s: %s" % (action, e))
            return
        if hasattr(reply, "send"):  # a coroutine: the answer waits, the reader goes on
            asyncio.create_task(self._held(msg_id, action, reply))
            return
        await self._answer(msg_id, reply)

    async def _held(self, msg_id, action, pending):
        try:
            reply = await pending
        except Exception as e:
            self._log.exc("rpc", "%s handler failed" % action, e)
            await self._error(msg_id, "InternalError", "%s: %s" % (action, e))
            return
        await self._answer(msg_id, reply)

    async def _answer(self, msg_id, reply):
        after = None
        if isinstance(reply, tuple):
            reply, after = reply
        try:
            await self._send(ocppj.result_pieces(msg_id, reply))
        except NotConnected:
            return
        if after is not None:
            asyncio.create_task(after())
