"""Minimal RFC 6455 websocket client for OCPP-J: text messages over one subprotocol.

Every read has a known size, so a server can never make us buffer more than max_message,
and a deadline: a frame that has begun to arrive must be complete within `wait_ms`, and a
frame we send must be on its way within `wait_ms` (a peer that stopped reading fills the TCP
window); past it the link has failed. An idle link may wait for its next frame for ever:
finding a silent link is the link supervisor's job (firmware/link.py).
Framing and the open connection live here; the opening handshake (the HTTP upgrade) is in
firmware/wsopen.py, over the network layer of firmware/net.py (URL, TCP, TLS): both are
loaded only while connecting.
"""
import struct
import sys

from firmware import compat
from firmware.compat import asyncio, const

_OP_CONT = const(0x0)
_OP_TEXT = const(0x1)
_OP_BINARY = const(0x2)
_OP_CLOSE = const(0x8)
_OP_PING = const(0x9)
_OP_PONG = const(0xA)

_CLOSE_NORMAL = const(1000)
_CLOSE_PROTOCOL = const(1002)
_CLOSE_UNSUPPORTED = const(1003)
_CLOSE_NO_STATUS = const(1005)
_CLOSE_ABNORMAL = const(1006)
_CLOSE_BAD_DATA = const(1007)
_CLOSE_TOO_BIG = const(1009)

_MAX_CONTROL = const(125)
# Largest frame we send: a longer message goes as a TEXT frame and CONTINUATION frames (RFC
# 6455 5.4) from one buffer this size, so a big message is never held whole in the heap.
_CHUNK = const(256)
_CLOSE_WAIT_MS = const(1000)


class WsError(Exception):
    """Any websocket failure; str(e) says what went wrong."""


class WsClosed(WsError):
    """The connection is over: the peer closed it (its code) or we failed it (our code)."""

    def __init__(self, code, reason=""):
        super().__init__("connection closed: {} {}".format(code, reason).rstrip())
        self.code = code
        self.reason = reason


def join_url(base, cp_id):
    """base + "/" + the charge point id percent-encoded as one path segment (the URL for
    connect(), which unloads the network layer again). A base that ends with that segment
    already (a URL copied whole from the Central System, e.g. SteVe's
    ".../steve/websocket/CentralSystemService/<id>") is taken as it is."""
    from firmware.net import quote
    base = base[:-1] if base.endswith("/") else base
    segment = "/" + quote(cp_id)
    return base if base.endswith(segment) else base + segment


async def connect(url, protocol="ocpp1.6", max_message=8192, wait_ms=10000, **options):
    """Open a websocket to `url` agreeing on `protocol`; returns a Connection or raises WsError.
    wait_ms: the frame deadline (see above). Options: auth=(id, password), ca_file, verify,
    connect_timeout_ms, handshake_timeout_ms (see firmware.wsopen.upgrade). The handshake's
    code and the network layer under it are loaded for the attempt and dropped after: a
    charger connects rarely and charges for hours."""
    from firmware import wsopen
    try:
        reader, writer = await wsopen.upgrade(url, protocol, **options)
    except wsopen.NetError as e:
        raise WsError(str(e))
    finally:
        compat.unload("firmware.wsopen")
        if "firmware.transfer" not in sys.modules:  # a file transfer shares the network layer
            compat.unload("firmware.net")
    return Connection(reader, writer, max_message, wait_ms)


def frame_header(opcode, n, fin=True, masked=True):
    """The first 2-10 bytes of a frame with an `n`-byte payload (the mask key follows)."""
    b0, bit = (0x80 if fin else 0) | opcode, 0x80 if masked else 0
    if n < 126:
        return struct.pack(">BB", b0, bit | n)
    if n < 65536:
        return struct.pack(">BBH", b0, bit | 126, n)
    return struct.pack(">BBQ", b0, bit | 127, n)


def encode_frame(opcode, payload, fin=True, mask=None):
    """One frame. mask=None draws a fresh random key (RFC 6455 5.3); b"" sends unmasked."""
    if mask is None:
        mask = compat.urandom(4)
    n = len(payload)
    head = frame_header(opcode, n, fin, bool(mask))
    if not mask:
        return head + bytes(payload)
    # One buffer, XORed with the key in place: a big message is held once more, not three times.
    h = len(head) + 4
    frame = bytearray(h + n)
    frame[:h] = head + mask
    frame[h:] = payload
    for i in range(n):
        frame[h + i] ^= mask[i & 3]
    return frame


def parse_header(two):
    """First two frame bytes -> (fin, opcode, masked, 7-bit length); WsClosed on violations."""
    b0, b1 = two[0], two[1]
    if b0 & 0x70:  # no extension was negotiated, so RSV1-3 must be zero
        raise WsClosed(_CLOSE_PROTOCOL, "reserved bits set")
    opcode = b0 & 0x0F
    if opcode not in (_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG):
        raise WsClosed(_CLOSE_PROTOCOL, "unknown opcode {}".format(opcode))
    return bool(b0 & 0x80), opcode, bool(b1 & 0x80), b1 & 0x7F


async def read_frame(reader, limit, wait_ms=0):
    """Read one server frame -> (fin, opcode, payload), or raise WsClosed with the code to
    send: protocol violations, or a data payload over `limit` (known before it is read).
    Once its first byte is in, the rest must follow within wait_ms (0: no bound), else
    asyncio.TimeoutError: half a frame must not hold the reader for ever."""
    first = await reader.readexactly(1)
    rest = _frame_rest(reader, first, limit)
    return await (asyncio.wait_for(rest, wait_ms / 1000) if wait_ms else rest)


async def _frame_rest(reader, first, limit):
    fin, opcode, masked, n = parse_header(first + await reader.readexactly(1))
    if masked:  # servers must not mask (RFC 6455 5.1)
        raise WsClosed(_CLOSE_PROTOCOL, "masked frame from server")
    if opcode >= _OP_CLOSE:
        if not fin or n > _MAX_CONTROL:  # also catches the 126/127 extended forms
            raise WsClosed(_CLOSE_PROTOCOL, "bad control frame")
    elif n == 126:
        n = struct.unpack(">H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", await reader.readexactly(8))[0]
    if opcode < _OP_CLOSE and n > limit:
        raise WsClosed(_CLOSE_TOO_BIG, "message too big")
    return fin, opcode, (await reader.readexactly(n) if n else b"")


def _close_payload(code, reason):
    return struct.pack(">H", code) + reason.encode("utf-8")[:_MAX_CONTROL - 2]


class Connection:
    """An open websocket: recv() from one task, send()/ping()/close() from any."""

    def __init__(self, reader, writer, max_message=8192, wait_ms=10000):
        self._r = reader
        self._w = writer
        self._max = max_message
        self._wait_ms = wait_ms
        self._lock = asyncio.Lock()  # frames from several tasks must not interleave
        self._last_rx = compat.ticks_ms()
        self._close_sent = False
        self._reading = False
        self._half_frame = False  # in the writes of one frame
        self._close_seen = asyncio.Event()
        self.closed = False
        self.dead = None  # why the link failed (here or in rpc.py), for firmware/link.py
        # Taken once, while the heap is young: a long message needs no new block to be sent.
        self._buf = bytearray(_CHUNK)

    def idle_ms(self):
        """Milliseconds since the last frame of any kind arrived."""
        return compat.ticks_diff(compat.ticks_ms(), self._last_rx)

    async def send(self, text):
        """Send one text message: a str, or an iterable of str pieces (ocppj.pieces). Up to
        _CHUNK bytes it is one masked frame; a longer one is cut into frames of _CHUNK bytes,
        filled from the pieces through one buffer (a fragmented message; the peer reassembles
        it), so no copy of the whole message is made. Nothing else is sent between them."""
        if isinstance(text, str):
            data = text.encode("utf-8")
            if len(data) <= _CHUNK:
                return await self._send(_OP_TEXT, data)
            text = (data,)
        async with self._lock:
            self._check_open()
            buf = self._buf  # the lock is held: nobody else fills it meanwhile
            op, n, sent = _OP_TEXT, 0, False
            try:
                for piece in text:
                    data = piece if isinstance(piece, bytes) else piece.encode("utf-8")
                    mv, i = memoryview(data), 0
                    while i < len(data):
                        if n == _CHUNK:  # full, and more follows: out as a fragment
                            sent = True
                            await self._write_chunk(op, buf, n, False)
                            op, n = _OP_CONT, 0
                        k = min(_CHUNK - n, len(data) - i)
                        buf[n:n + k] = mv[i:i + k]
                        n, i = n + k, i + k
            except Exception as e:
                if not sent or isinstance(e, WsError):
                    raise
                # Half a message is on the wire: nothing else may follow on this link.
                await self._lost("message not completed: {!r}".format(e))
            await self._write_chunk(op, buf, n, True)

    async def _write_chunk(self, op, buf, n, fin):
        # Masked in place: the buffer is refilled after this frame anyway.
        mask = compat.urandom(4)
        for i in range(n):
            buf[i] ^= mask[i & 3]
        await self._write(frame_header(op, n, fin) + mask, compat.first_bytes(buf, n))

    async def ping(self, payload=b""):
        if len(payload) > _MAX_CONTROL:
            raise WsError("ping payload over {} bytes".format(_MAX_CONTROL))
        await self._send(_OP_PING, payload)

    async def _send(self, opcode, payload, wait_ms=None):
        if wait_ms:  # closing must not hang on a peer that stopped reading
            return await asyncio.wait_for(self._send(opcode, payload), wait_ms / 1000)
        async with self._lock:
            self._check_open()
            self._close_sent = opcode == _OP_CLOSE
            await self._write(encode_frame(opcode, payload))

    def _check_open(self):
        if self.closed or self._close_sent:  # nothing may follow our close frame
            raise WsClosed(_CLOSE_ABNORMAL, "connection is closed")

    async def _write(self, data, more=None):
        """Write `data` (and `more`) and wait until it is on its way; the lock is held."""
        try:
            self._half_frame = True
            self._w.write(data)
            if more is not None:
                self._w.write(more)
            self._half_frame = False  # whole in the stream's buffer: drain sends the rest
            # The lock is held here: a peer that stopped reading must not keep every
            # other sender (pongs, pings, the close) waiting for ever.
            await asyncio.wait_for(self._w.drain(), self._wait_ms / 1000)
        except asyncio.TimeoutError:  # before OSError: CPython's is one
            await self._lost("send not done in {} ms".format(self._wait_ms))
        except OSError as e:
            await self._lost("send failed: {}".format(e))

    async def recv(self):
        """Next complete text message as str, answering pings and reassembling fragments."""
        if self.closed:
            raise WsClosed(_CLOSE_ABNORMAL, "connection is closed")
        self._reading = True
        try:
            return await self._recv()
        finally:
            self._reading = False

    async def _recv(self):
        parts, size, started = [], 0, False
        while True:
            try:
                fin, op, payload = await read_frame(self._r, self._max - size, self._wait_ms)
            except WsClosed as e:
                await self._fail(e.code, e.reason)
            except asyncio.TimeoutError:  # the stream is mid-frame: nothing can follow
                await self._lost("frame not complete in {} ms".format(self._wait_ms))
            except (EOFError, OSError):
                await self._lost("connection lost")
            self._last_rx = compat.ticks_ms()
            if op == _OP_PING and not self._close_sent:
                await self._send(_OP_PONG, payload)
            elif op == _OP_CLOSE:
                await self._on_close(payload)
            elif op == _OP_CONT and not started:
                await self._fail(_CLOSE_PROTOCOL, "continuation without a message")
            elif op in (_OP_TEXT, _OP_BINARY) and started:
                await self._fail(_CLOSE_PROTOCOL, "new message inside a fragmented one")
            elif op == _OP_BINARY:
                await self._fail(_CLOSE_UNSUPPORTED, "binary messages not supported")
            if op >= _OP_CLOSE:
                continue
            started = True
            if payload:  # endless empty fragments must not grow the list
                parts.append(payload)
                size += len(payload)
            if fin:
                try:
                    return b"".join(parts).decode("utf-8")
                except UnicodeError:
                    await self._fail(_CLOSE_BAD_DATA, "text is not UTF-8")

    async def _on_close(self, payload):
        # The peer closes: echo its code (unless we started), drop the socket, report.
        code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else _CLOSE_NO_STATUS
        if len(payload) == 1 or (payload and not (1000 <= code <= 1003 or 1007 <= code <= 1014
                                                  or 3000 <= code <= 4999)):
            await self._fail(_CLOSE_PROTOCOL, "bad close frame")  # RFC 6455 7.4 + IANA registry
        try:
            reason = bytes(payload[2:]).decode("utf-8")
        except UnicodeError:
            await self._fail(_CLOSE_BAD_DATA, "close reason is not UTF-8")
        self._close_seen.set()
        await self._end(code, reason, payload[:2])

    async def _fail(self, code, reason):
        """We end the connection and tell the peer why."""
        await self._end(code, reason, _close_payload(code, reason))

    async def _end(self, code, reason, close_payload):
        # Best effort close frame (unless one went out already), drop the socket, report.
        if not self._close_sent and not self.closed:
            try:
                await self._send(_OP_CLOSE, close_payload, _CLOSE_WAIT_MS)
            except (WsError, asyncio.TimeoutError):
                pass
        await self._shut()
        raise WsClosed(code, reason)

    def orphaned(self):
        """The tasks using this connection are gone for good (MicroPython's loop stops where
        Ctrl-C found it): free the lock a sender may hold in a drain and the reader's mark, so
        close() can run from a fresh loop. -> False when Ctrl-C came during a frame's write:
        the frame may be cut, and a close frame after it would be read as its rest, so
        close() only drops the socket."""
        self._lock = asyncio.Lock()
        self._reading = False
        if self._half_frame:
            self._close_sent = True  # as after our close frame: nothing more may be sent
            self.dead = self.dead or "a frame may have been cut off"
        return not self._half_frame

    async def close(self, code=_CLOSE_NORMAL, reason=""):
        """Send a close frame, wait up to a second for the echo, then drop the socket."""
        if self.closed:
            return
        try:
            await self._send(_OP_CLOSE, _close_payload(code, reason), _CLOSE_WAIT_MS)
            # A recv() running in another task sees the echo; else read it here.
            echo = self._close_seen.wait() if self._reading else self._await_echo()
            await asyncio.wait_for(echo, _CLOSE_WAIT_MS / 1000)
        except (WsError, asyncio.TimeoutError):
            pass
        await self._shut()

    async def _await_echo(self):
        while True:
            await self._recv()  # ends with WsClosed once the echo (or an error) arrives

    async def _lost(self, why):
        # The link failed under us: no close handshake, and `dead` tells the link's keeper why.
        self.dead = self.dead or why
        await self._shut()
        raise WsClosed(_CLOSE_ABNORMAL, why)

    async def _shut(self):
        if not self.closed:
            self.closed = True
            await compat.close_connection(self._w)
