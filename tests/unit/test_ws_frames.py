"""Frame-level tests of firmware.ws, and of the opening handshake (firmware.wsopen over
firmware.net), against in-memory streams (no network)."""
import asyncio
import struct

import pytest

from firmware import net, ws, wsopen


def unmask(data, mask):
    """A client frame's payload: XOR with its 4-byte key (RFC 6455 5.3)."""
    return bytes(b ^ mask[i & 3] for i, b in enumerate(data))

RFC_MASK = bytes([0x37, 0xFA, 0x21, 0x3D])


class FakeReader:
    """readexactly() over fixed bytes; records every request and can refuse large ones."""

    def __init__(self, data, max_request=None):
        self.data = bytes(data)
        self.pos = 0
        self.requests = []
        self.max_request = max_request

    async def read(self, n):  # what a net.Channel asks for
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    async def readexactly(self, n):
        self.requests.append(n)
        if self.max_request is not None and n > self.max_request:
            raise AssertionError("payload of %d bytes was requested" % n)
        if self.pos + n > len(self.data):
            self.pos = len(self.data)
            raise asyncio.IncompleteReadError(b"", n)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


class FakeWriter:
    def __init__(self):
        self.out = bytearray()
        self.closed = False

    def write(self, data):
        assert not self.closed
        self.out += data

    async def drain(self):
        pass

    def close(self):
        self.closed = True

    async def wait_closed(self):
        pass

    def frames(self):
        """Decode what the client wrote, checking every frame is masked."""
        frames, pos, data = [], 0, bytes(self.out)
        while pos < len(data):
            b0, b1 = data[pos], data[pos + 1]
            assert b1 & 0x80, "client frame not masked"
            n, pos = b1 & 0x7F, pos + 2
            if n == 126:
                n, pos = struct.unpack(">H", data[pos:pos + 2])[0], pos + 2
            elif n == 127:
                n, pos = struct.unpack(">Q", data[pos:pos + 8])[0], pos + 8
            mask, pos = data[pos:pos + 4], pos + 4
            frames.append((bool(b0 & 0x80), b0 & 0x0F, unmask(data[pos:pos + n], mask)))
            pos += n
        return frames


def srv(opcode, payload=b"", fin=True):
    """A frame as a server sends it: unmasked."""
    return ws.encode_frame(opcode, payload, fin=fin, mask=b"")


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def make_conn(data, max_message=8192, max_request=None):
    writer = FakeWriter()
    reader = FakeReader(data, max_request)
    return ws.Connection(reader, writer, max_message), reader, writer


def run(coro):
    return asyncio.run(coro)


def recv_error(conn):
    with pytest.raises(ws.WsClosed) as info:
        run(conn.recv())
    return info.value


# ---- encoding ----------------------------------------------------------------

def test_rfc_masked_hello_vector():
    # RFC 6455 5.7: a masked single-frame "Hello"
    frame = ws.encode_frame(0x1, b"Hello", mask=RFC_MASK)
    assert frame == bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])


def test_rfc_unmasked_fragments_vector():
    # RFC 6455 5.7: "Hel" + "lo" as two unmasked fragments
    assert srv(0x1, b"Hel", fin=False) == bytes([0x01, 0x03, 0x48, 0x65, 0x6C])
    assert srv(0x0, b"lo") == bytes([0x80, 0x02, 0x6C, 0x6F])


def test_random_mask_is_applied_and_differs():
    a = ws.encode_frame(0x1, b"same payload")
    b = ws.encode_frame(0x1, b"same payload")
    assert a[1] & 0x80 and b[1] & 0x80
    assert unmask(a[6:], a[2:6]) == b"same payload"
    assert a[2:6] != b[2:6]  # 2**-32 chance of a false failure


@pytest.mark.parametrize("n, header_len, len_field", [
    (0, 2, 0), (125, 2, 125), (126, 4, 126), (65535, 4, 126), (65536, 10, 127)])
def test_length_forms(n, header_len, len_field):
    payload = bytes(i & 0xFF for i in range(n))
    frame = ws.encode_frame(0x1, payload, mask=RFC_MASK)
    assert frame[1] == 0x80 | len_field
    if len_field == 126:
        assert struct.unpack(">H", frame[2:4])[0] == n
    elif len_field == 127:
        assert struct.unpack(">Q", frame[2:10])[0] == n
    assert frame[header_len:header_len + 4] == RFC_MASK
    assert len(frame) == header_len + 4 + n
    assert unmask(frame[header_len + 4:], RFC_MASK) == payload
    # and the reader understands the unmasked server form of each length
    fin, op, got = run(ws.read_frame(FakeReader(srv(0x1, payload)), 1 << 20))
    assert (fin, op, got) == (True, 0x1, payload)


def test_parse_header_fields():
    assert ws.parse_header(bytes([0x81, 0x05])) == (True, 0x1, False, 5)
    assert ws.parse_header(bytes([0x00, 0xFE])) == (False, 0x0, True, 126)
    with pytest.raises(ws.WsClosed) as info:
        ws.parse_header(bytes([0xC1, 0x00]))  # RSV1
    assert info.value.code == 1002
    with pytest.raises(ws.WsClosed) as info:
        ws.parse_header(bytes([0x83, 0x00]))  # reserved opcode 3
    assert info.value.code == 1002


# ---- receiving -----------------------------------------------------------------

def test_single_text_message_and_idle():
    conn, _, writer = make_conn(srv(0x1, "grüß".encode()))
    run(asyncio.sleep(0.02))
    assert conn.idle_ms() >= 15
    assert run(conn.recv()) == "grüß"
    assert conn.idle_ms() < 15
    assert writer.out == b""


def test_fragment_reassembly_with_interleaved_ping():
    data = (srv(0x1, b"[2,", fin=False) + srv(0x9, b"are you there") +
            srv(0x0, b'"1",', fin=False) + srv(0xA, b"unsolicited") + srv(0x0, b'"x"]'))
    conn, _, writer = make_conn(data)
    assert run(conn.recv()) == '[2,"1","x"]'
    assert writer.frames() == [(True, 0xA, b"are you there")]


def test_empty_fragments_are_a_message():
    conn, _, _ = make_conn(srv(0x1, b"", fin=False) + srv(0x0, b""))
    assert run(conn.recv()) == ""


def test_peer_close_is_echoed_with_code_and_reason():
    conn, _, writer = make_conn(srv(0x8, close_payload(4001, b"going away")))
    err = recv_error(conn)
    assert (err.code, err.reason) == (4001, "going away")
    assert writer.frames() == [(True, 0x8, close_payload(4001))]
    assert conn.closed and writer.closed


def test_peer_close_without_code_is_1005():
    conn, _, writer = make_conn(srv(0x8))
    assert recv_error(conn).code == 1005
    assert writer.frames() == [(True, 0x8, b"")]


def sent_close_code(writer):
    frames = writer.frames()
    assert len(frames) == 1 and frames[0][1] == 0x8
    return struct.unpack(">H", frames[0][2][:2])[0]


def test_oversize_frame_rejected_before_payload_read():
    conn, reader, writer = make_conn(srv(0x1, b"x" * 200), max_message=100, max_request=8)
    assert recv_error(conn).code == 1009
    assert reader.requests == [1, 1, 2]  # header and 16-bit length, never the 200 bytes
    assert sent_close_code(writer) == 1009
    assert conn.closed


def test_oversize_64bit_length_rejected_without_reading():
    # A declared 2**40-byte frame must not be allocated or read.
    frame = bytes([0x81, 127]) + struct.pack(">Q", 1 << 40)
    conn, reader, writer = make_conn(frame, max_request=8)
    assert recv_error(conn).code == 1009
    assert reader.requests == [1, 1, 8]


def test_oversize_fragmented_total_rejected():
    data = srv(0x1, b"a" * 60, fin=False) + srv(0x0, b"b" * 60)
    conn, reader, writer = make_conn(data, max_message=100, max_request=60)
    assert recv_error(conn).code == 1009
    assert reader.requests == [1, 1, 60, 1, 1]  # second payload never requested
    assert sent_close_code(writer) == 1009


def test_exact_max_message_accepted():
    conn, _, _ = make_conn(srv(0x1, b"a" * 50, fin=False) + srv(0x0, b"b" * 50), max_message=100)
    assert run(conn.recv()) == "a" * 50 + "b" * 50


def test_masked_server_frame_rejected():
    conn, reader, writer = make_conn(ws.encode_frame(0x1, b"hi", mask=RFC_MASK))
    assert recv_error(conn).code == 1002
    assert sent_close_code(writer) == 1002


def test_binary_rejected_1003():
    conn, _, writer = make_conn(srv(0x2, b"\x00\x01"))
    assert recv_error(conn).code == 1003
    assert sent_close_code(writer) == 1003


def test_bad_utf8_rejected_1007():
    conn, _, writer = make_conn(srv(0x1, b"ok \xff\xfe"))
    assert recv_error(conn).code == 1007
    assert sent_close_code(writer) == 1007


def test_utf8_split_across_fragments_is_fine():
    text = "é€".encode()
    conn, _, _ = make_conn(srv(0x1, text[:1], fin=False) + srv(0x0, text[1:]))
    assert run(conn.recv()) == "é€"


@pytest.mark.parametrize("data", [
    srv(0x0, b"orphan"),                                          # continuation without start
    srv(0x1, b"a", fin=False) + srv(0x1, b"b"),                  # new start inside fragments
    srv(0x1, b"", fin=False) + srv(0x1, b"b"),                   # ... after an empty first one
    bytes([0x91, 0x00]),                                          # RSV1 set
    bytes([0x8B, 0x00]),                                          # unknown control opcode
    srv(0x9, b"p", fin=False),                                    # fragmented control frame
    bytes([0x89, 126, 0, 126]) + b"p" * 126,                      # control frame > 125 bytes
    srv(0x8, b"\x03"),                                            # 1-byte close payload
    srv(0x8, close_payload(999)),                                 # invalid close code
])
def test_protocol_errors_close_1002(data):
    conn, _, writer = make_conn(data)
    assert recv_error(conn).code == 1002
    assert sent_close_code(writer) == 1002


def test_eof_is_abnormal_closure_without_close_frame():
    conn, _, writer = make_conn(srv(0x1, b"abc")[:3])
    assert recv_error(conn).code == 1006
    assert writer.out == b"" and conn.closed


# ---- sending -------------------------------------------------------------------

def test_send_ping_close_frames():
    conn, _, writer = make_conn(srv(0x8, close_payload(1000)))
    run(conn.send("héllo"))
    run(conn.ping(b"p1"))
    run(conn.close(1000, "bye"))
    assert writer.frames() == [(True, 0x1, "héllo".encode()), (True, 0x9, b"p1"),
                               (True, 0x8, close_payload(1000, b"bye"))]
    assert conn.closed and writer.closed
    with pytest.raises(ws.WsClosed):
        run(conn.send("after close"))


def test_close_gives_up_waiting_when_no_echo():
    conn, _, writer = make_conn(b"")  # EOF instead of the echo
    run(conn.close(1001, "leaving"))
    assert conn.closed
    assert writer.frames() == [(True, 0x8, close_payload(1001, b"leaving"))]


def test_close_while_another_task_is_receiving():
    class EchoingReader:
        """Blocks like a socket until the client's close frame is out, then echoes it."""

        def __init__(self, writer):
            self.writer, self.data = writer, b""

        async def readexactly(self, n):
            while not self.data:
                if self.writer.out:
                    self.data = srv(0x8, close_payload(1000))
                await asyncio.sleep(0.001)
            chunk, self.data = self.data[:n], self.data[n:]
            return chunk

    async def main():
        writer = FakeWriter()
        conn = ws.Connection(EchoingReader(writer), writer)
        receiver = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0.01)
        start = asyncio.get_running_loop().time()
        await conn.close(1000, "bye")
        elapsed = asyncio.get_running_loop().time() - start
        with pytest.raises(ws.WsClosed) as info:
            await receiver
        return conn, writer, elapsed, info.value

    conn, writer, elapsed, err = run(main())
    assert elapsed < 0.5  # woken by the receiving task, not by the 1 s timeout
    assert err.code == 1000 and conn.closed
    assert writer.frames() == [(True, 0x8, close_payload(1000, b"bye"))]  # no second close


def test_handshake_request_and_response(monkeypatch):
    # a fixed key makes the expected Sec-WebSocket-Accept known
    monkeypatch.setattr(ws.compat, "urandom", lambda n: b"the sample nonce"[:n])
    key, accept = "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    ok = ("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n"
          "Sec-WebSocket-Accept: " + accept + "\nSec-WebSocket-Protocol: ocpp1.6\n\n")
    writer = FakeWriter()
    url = net.Url("ws://[::1]:9000/ocpp/CP%201?x=1", WS)
    run(wsopen.handshake(head(ok, writer=writer), url, "ocpp1.6", ("CP 1", "pw")))
    lines = bytes(writer.out).decode().split("\r\n")
    assert lines[0] == "GET /ocpp/CP%201?x=1 HTTP/1.1"
    assert lines[-2:] == ["", ""]
    assert set(lines[1:-2]) == {
        "Host: [::1]:9000", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: ocpp1.6", "Authorization: Basic Q1AgMTpwdw=="}
    writer = FakeWriter()
    url = net.Url("wss://example.com", WS)
    run(wsopen.handshake(head(ok, writer=writer), url, "ocpp1.6", None))
    lines = bytes(writer.out).decode().split("\r\n")
    assert "Host: example.com" in lines and not any(x.startswith("Authorization") for x in lines)


def test_ping_payload_limit():
    conn, _, _ = make_conn(b"")
    with pytest.raises(ws.WsError):
        run(conn.ping(b"x" * 126))


def test_concurrent_sends_do_not_interleave():
    class SlowWriter(FakeWriter):
        async def drain(self):
            await asyncio.sleep(0)

    conn = ws.Connection(FakeReader(b""), SlowWriter())

    async def main():
        await asyncio.gather(*(conn.send("m%d" % i * 300) for i in range(5)))
        return conn._w.frames()

    frames = run(main())
    assert sorted(messages(frames)) == sorted(("m%d" % i * 300).encode() for i in range(5))


def messages(frames):
    """Reassemble (fin, opcode, payload) frames into messages, checking the RFC 6455 5.4
    order: a TEXT frame, CONTINUATION frames, the last one with FIN."""
    out, parts = [], None
    for fin, op, payload in frames:
        if parts is None:
            assert op == 0x1, "a message must begin with a TEXT frame"
            parts = [payload]
        else:
            assert op == 0x0, "a new message began inside a fragmented one"
            parts.append(payload)
        if fin:
            out.append(b"".join(parts))
            parts = None
    assert parts is None, "the last message was not finished"
    return out


def test_a_long_message_goes_in_bounded_fragments_filled_from_its_pieces():
    conn = ws.Connection(FakeReader(b""), FakeWriter())
    pieces = ["[2,", '"id",', '"Big",', '{"k":"' + "é" * 700 + '"}', "]"]
    run(conn.send(iter(pieces)))
    frames = conn._w.frames()
    assert len(frames) > 1 and all(len(f[2]) <= ws._CHUNK for f in frames)
    assert messages(frames) == ["".join(pieces).encode("utf-8")]
    # A short message is one frame, whether given whole or in pieces.
    conn = ws.Connection(FakeReader(b""), FakeWriter())
    run(conn.send("[3,\"a\",{}]"))
    run(conn.send(iter(["[3,", "\"b\",", "{}]"])))
    assert conn._w.frames() == [(True, 0x1, b'[3,"a",{}]'), (True, 0x1, b'[3,"b",{}]')]


def test_concurrent_long_sends_do_not_interleave_their_fragments():
    class SlowWriter(FakeWriter):
        async def drain(self):
            await asyncio.sleep(0)

    conn = ws.Connection(FakeReader(b""), SlowWriter())
    texts = [("m%d" % i) * 700 for i in range(4)]

    async def main():
        await asyncio.gather(conn.send(texts[0]), conn.send(iter([texts[1]])),
                             conn.send(texts[2]), conn.ping(b"p"), conn.send(iter([texts[3]])))
        return conn._w.frames()

    frames = run(main())
    data = [f for f in frames if f[1] != 0x9]
    assert sorted(messages(data)) == sorted(t.encode() for t in texts)


def test_a_piece_that_fails_after_fragments_went_out_ends_the_link():
    conn = ws.Connection(FakeReader(b""), FakeWriter())

    def pieces():
        yield "x" * (ws._CHUNK + 10)
        raise TypeError("not JSON serializable")

    with pytest.raises(ws.WsClosed):
        run(conn.send(pieces()))
    assert conn.closed and "message not completed" in conn.dead


# ---- URLs and handshake checks -----------------------------------------------------

def test_join_url():
    assert ws.join_url("ws://host:9000/ocpp", "CP 1/é") == "ws://host:9000/ocpp/CP%201%2F%C3%A9"
    assert ws.join_url("ws://host/ocpp/", "A-b_c.~9") == "ws://host/ocpp/A-b_c.~9"
    # SteVe's form, copied whole: the id is not appended twice.
    steve = "ws://h:8180/steve/websocket/CentralSystemService"
    assert ws.join_url(steve, "CP_1") == steve + "/CP_1"
    assert ws.join_url(steve + "/CP_1", "CP_1") == steve + "/CP_1"
    assert ws.join_url(steve + "/CP_1/", "CP_1") == steve + "/CP_1"
    assert ws.join_url("ws://h/CP 1", "CP 1") == "ws://h/CP 1/CP%201"  # raw is not encoded


WS = ("ws", "wss")


@pytest.mark.parametrize("url, expected", [
    ("ws://example.com", (False, "example.com", 80, "/")),
    ("wss://example.com/ocpp/CP1", (True, "example.com", 443, "/ocpp/CP1")),
    ("ws://10.0.0.1:9000/a?b=c", (False, "10.0.0.1", 9000, "/a?b=c")),
    ("wss://[2001:db8::1]:8443/x", (True, "2001:db8::1", 8443, "/x")),
    ("ws://[::1]/", (False, "::1", 80, "/")),
    ("ws://h?q=1#frag", (False, "h", 80, "/?q=1")),
])
def test_parse_url(url, expected):
    u = net.Url(url, WS)
    assert (u.secure, u.host, u.port, u.target) == expected


@pytest.mark.parametrize("url", ["http://h/", "ws://", "ws://h:0/", "ws://h:x/", "ws://[::1/",
                                 "ws://u:p@h/"])
def test_parse_url_rejects(url):
    with pytest.raises(net.NetError):  # before any connection is tried
        run(wsopen.upgrade(url))


def test_accept_key_rfc_vector():
    assert wsopen.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def head(text, tail=b"", writer=None):
    """A net.Channel reading `text` (newlines as CRLF) then `tail`, lines read exactly."""
    reader = FakeReader(text.replace("\n", "\r\n").encode() + tail)
    channel = net.Channel(reader, writer or FakeWriter(), "test", 0)
    channel.exact = True
    return channel


def test_read_http_head_and_check():
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    channel = head("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n"
                   "Sec-WebSocket-Protocol: ocpp1.6\n\n", tail=b"\x81\x00")
    status, reason, headers = run(net.read_head(channel))
    assert (status, reason) == (101, "Switching Protocols")
    assert headers["sec-websocket-protocol"] == "ocpp1.6"
    reader = channel.detach()[0]
    assert reader.data[reader.pos:] == b"\x81\x00"  # stops exactly at the end of the head
    wsopen.check_response(status, reason, headers, key, "ocpp1.6")
    with pytest.raises(net.NetError, match="bad Sec-WebSocket-Accept"):
        wsopen.check_response(status, reason, headers, "AAAAAAAAAAAAAAAAAAAAAA==", "ocpp1.6")
    with pytest.raises(net.NetError, match=r"subprotocol ocpp2.0.1 \(got ocpp1.6\)"):
        wsopen.check_response(status, reason, headers, key, "ocpp2.0.1")
    del headers["sec-websocket-protocol"]
    with pytest.raises(net.NetError, match=r"subprotocol ocpp1.6 \(got none\)"):
        wsopen.check_response(status, reason, headers, key, "ocpp1.6")
    with pytest.raises(net.NetError, match="HTTP 401 Unauthorized"):
        wsopen.check_response(401, "Unauthorized", {}, key, "ocpp1.6")


def test_read_http_head_caps():
    with pytest.raises(net.NetError, match="over 1024"):
        run(net.read_head(head("HTTP/1.1 101 " + "x" * 2000 + "\n\n")))
    with pytest.raises(net.NetError, match="header lines"):
        run(net.read_head(head("HTTP/1.1 101 OK\n" + "X-A: b\n" * 41 + "\n")))
    with pytest.raises(net.NetError, match="not an HTTP response"):
        run(net.read_head(head("SSH-2.0-OpenSSH\n\n")))


# ---- deadlines (README "Link liveness") -------------------------------------------------

class StallingReader:
    """Gives `data`, then blocks like a socket on which nothing more arrives."""

    def __init__(self, data):
        self.data = data

    async def readexactly(self, n):
        while len(self.data) < n:
            await asyncio.sleep(3600)
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


def test_a_frame_begun_must_be_complete_within_the_deadline():
    async def main():
        conn = ws.Connection(StallingReader(srv(0x1, b"hello")[:3]), FakeWriter(), wait_ms=50)
        start = asyncio.get_running_loop().time()
        with pytest.raises(ws.WsClosed) as info:
            await conn.recv()
        return conn, info.value, asyncio.get_running_loop().time() - start

    conn, err, elapsed = run(main())
    assert (err.code, err.reason) == (1006, "frame not complete in 50 ms") and conn.closed
    assert elapsed < 0.5


def test_an_idle_link_has_no_deadline():
    async def main():
        conn = ws.Connection(StallingReader(b""), FakeWriter(), wait_ms=20)
        receiver = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0.2)
        waiting = not receiver.done() and not conn.closed
        receiver.cancel()
        return waiting

    assert run(main())


def test_a_send_the_peer_does_not_take_fails_the_link_and_frees_the_lock():
    class FullWriter(FakeWriter):
        async def drain(self):  # the peer stopped reading: the TCP window stays full
            await asyncio.sleep(3600)

    async def main():
        conn = ws.Connection(StallingReader(b""), FullWriter(), wait_ms=50)
        sends = [asyncio.ensure_future(conn.send("StopTransaction")),
                 asyncio.ensure_future(conn.ping(b""))]   # waits on the same lock
        start = asyncio.get_running_loop().time()
        done = await asyncio.gather(*sends, return_exceptions=True)
        return conn, done, asyncio.get_running_loop().time() - start

    conn, (send, ping), elapsed = run(main())
    assert (send.code, send.reason) == (1006, "send not done in 50 ms") and conn.closed
    assert isinstance(ping, ws.WsClosed) and elapsed < 0.5


# ---- Ctrl-C on MicroPython: the loop stops where it is ---------------------------------

def test_after_ctrl_c_a_sender_stopped_in_its_drain_does_not_hold_back_the_close():
    class SlowWriter(FakeWriter):
        async def drain(self):  # the loop stops while a sender waits here, holding the lock
            await asyncio.sleep(3600)

    writer = SlowWriter()
    conn = ws.Connection(FakeReader(b""), writer)
    interrupted = asyncio.new_event_loop()  # like MicroPython's: left, its tasks never resumed
    interrupted.create_task(conn.send("StatusNotification"))
    interrupted.run_until_complete(asyncio.sleep(0.01))
    assert conn._lock.locked()

    assert conn.orphaned()
    fresh = asyncio.new_event_loop()
    writer.drain = FakeWriter.drain.__get__(writer)  # the socket takes bytes again
    fresh.run_until_complete(asyncio.wait_for(conn.close(1001, "going away"), 2))
    fresh.close()
    for task in asyncio.all_tasks(interrupted):  # only now: the test is over
        task.cancel()
    interrupted.run_until_complete(asyncio.sleep(0))
    interrupted.close()
    assert writer.frames() == [(True, 0x1, b"StatusNotification"),
                               (True, 0x8, close_payload(1001, b"going away"))]
    assert conn.closed and writer.closed


def test_after_ctrl_c_between_the_two_writes_of_a_frame_the_socket_is_only_dropped():
    class CutWriter(FakeWriter):
        def write(self, data):
            if self.out:  # the header went out; Ctrl-C lands before the payload
                raise KeyboardInterrupt
            super().write(data)

    writer = CutWriter()
    conn = ws.Connection(FakeReader(b""), writer)
    interrupted = asyncio.new_event_loop()
    with pytest.raises(KeyboardInterrupt):
        interrupted.run_until_complete(conn.send("x" * 300))
    interrupted.close()
    header = bytes(writer.out)

    assert not conn.orphaned()
    run(conn.close(1001, "going away"))
    assert bytes(writer.out) == header  # no close frame glued to half a frame
    assert conn.closed and writer.closed and conn.dead == "a frame may have been cut off"
