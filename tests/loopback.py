"""A loopback link for in-process tests of the OCPP layer, on both interpreters.

`Peer` is the Central System's end: it answers the charger's CALLs (by action, from `replies`),
records them, and sends CALLs of its own. `peer.connect` is the ChargePoint's `connect` seam:
each call opens a new link, or raises OSError while `peer.up` is False. Unit tests only: the
scenario tests talk to the real Central System (tools/csms.py) over a real websocket.
"""
import json

from firmware.compat import asyncio, ticks_diff, ticks_ms

_CLOSED = None


class _Pipe:
    """Texts from one end to the other, in order."""

    def __init__(self):
        self._items = []
        self._ready = asyncio.Event()

    def put(self, text):
        self._items.append(text)
        self._ready.set()

    async def get(self):
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.pop(0)


class Conn:
    """The charger's end of one link: the interface of firmware/ws.py's client."""

    def __init__(self, inbox, outbox, peer=None):
        self._in = inbox
        self._out = outbox
        self._peer = peer
        self.closed = False
        self.dead = None
        self._last = ticks_ms()
        self.pings = 0

    async def send(self, text):
        if self.closed:
            raise OSError("link closed")
        # ws.Connection.send takes a str or its pieces (ocppj.pieces); the peer gets the text.
        self._out.put(text if isinstance(text, str) else "".join(text))

    async def recv(self):
        text = await self._in.get()
        if text is _CLOSED:
            self.closed = True
            raise OSError("link closed by the peer")
        self._last = ticks_ms()
        return text

    async def ping(self, data):
        self.pings += 1
        if self._peer is None or not self._peer.silent:  # its pong arrives at once
            self._last = ticks_ms()

    async def close(self, code=1000, reason=""):
        if not self.closed:
            self.closed = True
            self._out.put(_CLOSED)
            self._in.put(_CLOSED)

    def idle_ms(self):
        return ticks_diff(ticks_ms(), self._last)


def _now_iso():
    from firmware.clock import iso
    from firmware.compat import unix_time
    return iso(unix_time())


class Peer:
    """The Central System end. `replies[action]` is a reply payload or a function
    `(payload) -> payload`; the defaults accept everything. A reply ("error", code) is
    answered with that CALLERROR, None with silence."""

    def __init__(self):
        self.up = True
        self.silent = False       # True: a half-open link, nothing is answered (not even pings)
        self.links = 0
        self.received = []        # (action, payload) of every CALL from the charger
        self.errors = []          # CALLERRORs the charger sent: (code, description)
        self.replies = {
            "BootNotification": lambda p: {"status": "Accepted", "currentTime": _now_iso(),
                                           "interval": 300},
            "Heartbeat": lambda p: {"currentTime": _now_iso()},
            "Authorize": {"idTagInfo": {"status": "Accepted"}},
            "StartTransaction": lambda p: {
                "transactionId": 100 + len(self.calls("StartTransaction")),
                "idTagInfo": {"status": "Accepted"}},
            "DataTransfer": {"status": "Accepted"},
        }
        self._to_cp = None
        self._waiting = {}       # message id -> [reply or None]
        self._seq = 0
        self._event = asyncio.Event()

    async def connect(self):
        if not self.up:
            raise OSError("connection refused")
        self.links += 1
        to_cp, to_cs = _Pipe(), _Pipe()
        self._to_cp = to_cp
        asyncio.create_task(self._serve(to_cs, to_cp))
        return Conn(to_cp, to_cs, self)

    def drop(self):
        """Cut the current link, as a Central System restart would."""
        if self._to_cp is not None:
            self._to_cp.put(_CLOSED)
            self._to_cp = None

    async def _serve(self, inbox, outbox):
        while True:
            text = await inbox.get()
            if text is _CLOSED:
                if self._to_cp is outbox:
                    self._to_cp = None
                return
            if self.silent:
                continue
            msg = json.loads(text)
            if msg[0] == 2:
                self.received.append((msg[2], msg[3]))
                reply = self.replies.get(msg[2], {})
                if callable(reply):
                    reply = reply(msg[3])
                if isinstance(reply, tuple):
                    outbox.put(json.dumps([4, msg[1], reply[1], "test policy", {}]))
                elif reply is not None:  # None: the Central System stays silent
                    outbox.put(json.dumps([3, msg[1], reply]))
            elif msg[0] in (3, 4):
                if msg[0] == 4:
                    self.errors.append((msg[2], msg[3]))
                slot = self._waiting.get(msg[1])
                if slot is not None:
                    slot.append(msg)
            self._event.set()

    def calls(self, action):
        return [p for a, p in self.received if a == action]

    async def call(self, action, payload, timeout=5):
        """Send a CALL; returns the CALLRESULT payload, or ("error", code) for a CALLERROR."""
        self._seq += 1
        msg_id = "cs-%d" % self._seq
        slot = self._waiting[msg_id] = []
        self._to_cp.put(json.dumps([2, msg_id, action, payload]))
        try:
            await self.until(lambda: slot, timeout, "a reply to " + action)
        finally:
            del self._waiting[msg_id]
        msg = slot[0]
        return msg[2] if msg[0] == 3 else ("error", msg[2])

    def send_raw(self, text):
        self._to_cp.put(text)

    async def until(self, cond, timeout=5, what="a condition"):
        """Wait until cond() is true (checked on every frame and every 20 ms)."""
        start = ticks_ms()
        while True:
            found = cond()
            if found:
                return found
            if ticks_diff(ticks_ms(), start) > timeout * 1000:
                raise AssertionError("timed out waiting for " + what)
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), 0.02)
            except asyncio.TimeoutError:
                pass

    async def wait_for(self, action, match=None, count=1, timeout=5):
        """The payload of the count-th CALL `action` (whose fields include `match`)."""
        def found():
            hits = [p for p in self.calls(action)
                    if not match or all(p.get(k) == v for k, v in match.items())]
            return hits[count - 1:count]  # a list: an empty payload is found too
        return (await self.until(found, timeout, "%s %r" % (action, match or "")))[0]

    async def wait_status(self, cid, status, timeout=5):
        return await self.wait_for("StatusNotification", {"connectorId": cid, "status": status},
                                   timeout=timeout)
