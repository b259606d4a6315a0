"""firmware.ws against a real `websockets` server, on CPython and under MicroPython."""
import asyncio
import base64
import contextlib
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from http import HTTPStatus

import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from firmware import ws

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MP_SCRIPT = os.path.join("tests", "unit", "ws_mp_check.py")
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


# ---- certificates ------------------------------------------------------------------

def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


LEAVES = {"server": ("127.0.0.1", "localhost"), "wrongname": (None, "other.example")}


def _make_certs_openssl(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other_ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{d}/{ca}.key", "-out", f"{d}/{ca}.pem",
                 "-days", "2", "-subj", f"/CN=Test {ca}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for leaf, (ip, dns) in LEAVES.items():
        _openssl("req", "-new", *ec, "-keyout", f"{d}/{leaf}.key", "-out", f"{d}/{leaf}.csr",
                 "-subj", f"/CN={dns}")
        san = ("IP:%s," % ip if ip else "") + "DNS:" + dns
        with open(f"{d}/{leaf}.cnf", "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        _openssl("x509", "-req", "-in", f"{d}/{leaf}.csr", "-CA", f"{d}/ca.pem",
                 "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/{leaf}.pem",
                 "-days", "2", "-extfile", f"{d}/{leaf}.cnf")


def _make_certs_cryptography(d):
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(path, cert=None, key=None):
        with open(path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM) if cert else key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))

    def build(subject, key, issuer, issuer_key, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=san is None, path_length=None),
                            critical=True))
        if san is not None:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key = None
    for ca in ("ca", "other_ca"):
        key = ec.generate_private_key(ec.SECP256R1())
        ca_key = ca_key or key
        write(f"{d}/{ca}.pem", cert=build(name("Test " + ca), key, name("Test " + ca), key))
    for leaf, (ip, dns) in LEAVES.items():
        key = ec.generate_private_key(ec.SECP256R1())
        san = [x509.DNSName(dns)] + ([x509.IPAddress(ipaddress.ip_address(ip))] if ip else [])
        write(f"{d}/{leaf}.pem", cert=build(name(dns), key, name("Test ca"), ca_key, san))
        write(f"{d}/{leaf}.key", key=key)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """CA, unrelated CA, a server cert for 127.0.0.1 and one for another name (both from CA)."""
    d = str(tmp_path_factory.mktemp("certs"))
    if shutil.which("openssl"):
        _make_certs_openssl(d)
    else:
        pytest.importorskip("cryptography")
        _make_certs_cryptography(d)
    return {"dir": d, "ca": os.path.join(d, "ca.pem"), "other_ca": os.path.join(d, "other_ca.pem")}


def server_ssl(certs, leaf="server"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    path = os.path.join(certs["dir"], leaf)
    ctx.load_cert_chain(path + ".pem", path + ".key")
    return ctx


# ---- server ---------------------------------------------------------------------------

class Seen:
    """What the server observed on one connection."""

    def __init__(self, conn):
        self.headers, self.path = conn.request.headers, conn.request.path
        self.close = None


def echo_handler(seen):
    """Echo server; appends a Seen per connection to the list `seen`."""
    async def handler(conn):
        rec = Seen(conn)
        seen.append(rec)
        try:
            async for msg in conn:
                if msg == "ping-me":  # answer only once the client's pong arrived
                    await asyncio.wait_for(await conn.ping(b"heartbeat"), 2)
                    await conn.send("pong-ok")
                elif msg == "close-me":
                    await conn.close(4001, "bye now")
                elif msg.startswith("send-"):
                    await conn.send("z" * int(msg[5:]))
                else:
                    await conn.send(msg)
        except ConnectionClosed:
            pass
        finally:
            rec.close = (conn.close_code, conn.close_reason)
    return handler


@contextlib.asynccontextmanager
async def running(handler, tls=None, subprotocols=("ocpp1.6",), **kw):
    protocols = list(subprotocols) if subprotocols else None
    async with serve(handler, "127.0.0.1", 0, subprotocols=protocols, ssl=tls, compression=None,
                     ping_interval=None, **kw) as server:
        port = server.sockets[0].getsockname()[1]
        yield "%s://127.0.0.1:%d/ocpp" % ("wss" if tls else "ws", port)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 8))


# ---- CPython client ------------------------------------------------------------------------

def test_handshake_echo_and_close():
    seen = []

    async def main():
        async with running(echo_handler(seen)) as base:
            conn = await ws.connect(ws.join_url(base, "CP 1"), max_message=100000)
            await conn.send("héllo")
            assert await conn.recv() == "héllo"
            for n in (300, 70000):  # 16-bit and 64-bit length forms both ways
                await conn.send("x" * n)
                assert await conn.recv() == "x" * n
            assert conn.idle_ms() < 1000
            await conn.close(1000, "bye")
            assert conn.closed
            await asyncio.sleep(0.05)
        return base

    base = run(main())
    assert seen[0].path == "/ocpp/CP%201"
    assert seen[0].headers["Host"] == base.split("/")[2]
    assert seen[0].headers["Sec-WebSocket-Protocol"] == "ocpp1.6"
    assert "Authorization" not in seen[0].headers
    assert seen[0].close == (1000, "bye")


def test_basic_auth_header_reaches_server():
    seen = []

    async def main():
        async with running(echo_handler(seen)) as base:
            conn = await ws.connect(base + "/CP_1", auth=("CP_1", "s3cr:t"))
            await conn.close()

    run(main())
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"CP_1:s3cr:t").decode()


def test_the_opening_handshake_code_is_dropped_after_connecting(monkeypatch):
    def loaded():
        return "firmware.wsopen" in sys.modules, "firmware.net" in sys.modules

    async def main():
        async with running(echo_handler([])) as base:
            conn = await ws.connect(ws.join_url(base, "CP_1"))
            after_connect = loaded()
            await conn.send("still here")
            echoed = await conn.recv()
            await conn.close()
            with pytest.raises(ws.WsError):
                await ws.connect(base.replace("ws://", "wss://") + "/CP_1", connect_timeout_ms=500,
                                 handshake_timeout_ms=500)
            after_failure = loaded()
            # A file transfer shares the network layer: it stays while one is loaded.
            monkeypatch.setitem(sys.modules, "firmware.transfer", object())
            conn = await ws.connect(base + "/CP_1")
            await conn.close()
            return after_connect, echoed, after_failure, loaded()

    monkeypatch.delitem(sys.modules, "firmware.transfer", raising=False)
    assert run(main()) == ((False, False), "still here", (False, False), (False, True))


def test_subprotocol_not_echoed_is_an_error():
    async def main():
        async with running(echo_handler([]), subprotocols=None) as base:
            await ws.connect(base + "/CP_1")

    with pytest.raises(ws.WsError, match=r"did not agree to subprotocol ocpp1.6 \(got none\)"):
        run(main())


def test_http_error_status_is_reported():
    def reject(conn, request):
        return conn.respond(HTTPStatus.UNAUTHORIZED, "who are you?\n")

    async def main():
        async with running(echo_handler([]), process_request=reject) as base:
            await ws.connect(base + "/CP_1")

    with pytest.raises(ws.WsError, match="HTTP 401 Unauthorized"):
        run(main())


def test_server_ping_is_answered_and_server_close_reported():
    seen = []

    async def main():
        async with running(echo_handler(seen)) as base:
            conn = await ws.connect(base + "/CP_1")
            await conn.send("ping-me")
            assert await conn.recv() == "pong-ok"  # sent only after our pong arrived
            await conn.send("close-me")
            with pytest.raises(ws.WsClosed) as info:
                await conn.recv()
            assert (info.value.code, info.value.reason) == (4001, "bye now")
            assert conn.closed

    run(main())


def test_oversize_message_closes_1009():
    seen = []

    async def main():
        async with running(echo_handler(seen)) as base:
            conn = await ws.connect(base + "/CP_1", max_message=1000)
            await conn.send("send-1000")
            assert len(await conn.recv()) == 1000
            await conn.send("send-1001")
            with pytest.raises(ws.WsClosed) as info:
                await conn.recv()
            assert info.value.code == 1009
            await asyncio.sleep(0.05)

    run(main())
    assert seen[0].close[0] == 1009


def test_connect_refused_and_timeouts(monkeypatch):
    async def silent(reader, writer):
        await asyncio.sleep(5)

    async def main():
        srv = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        with pytest.raises(ws.WsError, match="handshake timeout after 200 ms"):
            await ws.connect("ws://127.0.0.1:%d/x" % port, handshake_timeout_ms=200)
        srv.close()
        await srv.wait_closed()
        with pytest.raises(ws.WsError, match="cannot connect"):
            await ws.connect("ws://127.0.0.1:%d/x" % port)

        async def hang(*args):
            await asyncio.sleep(5)
        monkeypatch.setattr(ws.compat, "open_connection", hang)
        with pytest.raises(ws.WsError, match="connect timeout after 100 ms"):
            await ws.connect("ws://127.0.0.1:1/x", connect_timeout_ms=100)

    run(main())


def test_wss_verifies_against_given_ca(certs):
    async def main():
        async with running(echo_handler([]), tls=server_ssl(certs)) as base:
            conn = await ws.connect(base + "/CP_1", ca_file=certs["ca"])
            await conn.send("secure")
            assert await conn.recv() == "secure"
            await conn.close()
            with pytest.raises(ws.WsError, match="(?i)certificate"):
                await ws.connect(base + "/CP_1", ca_file=certs["other_ca"])
            conn = await ws.connect(base + "/CP_1", ca_file=certs["other_ca"], verify=False)
            await conn.send("unverified")
            assert await conn.recv() == "unverified"
            await conn.close()
        async with running(echo_handler([]), tls=server_ssl(certs, "wrongname")) as base:
            with pytest.raises(ws.WsError, match="(?i)certificate|hostname"):
                await ws.connect(base + "/CP_1", ca_file=certs["ca"])

    run(main())


# ---- MicroPython client ------------------------------------------------------------------------

needs_mp = pytest.mark.skipif(not os.path.exists(MICROPYTHON),
                              reason="micropython not next to python")


async def run_micropython(*args):
    proc = await asyncio.create_subprocess_exec(
        MICROPYTHON, MP_SCRIPT, *args, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 6)
    return out.decode("utf-8", "replace")


EXPECTED_MP = ["CONNECTED", "ECHO héllo", "ECHO_LEN 300", "ECHO_PIECES 1500",
               "AFTER_PING pong-ok", "IDLE_OK True",
               "RECEIVER_CLOSED 1000", "CLOSED True", "SERVER_CLOSED 4001 bye now True"]


@needs_mp
def test_micropython_ws_echo():
    seen = []

    async def main():
        async with running(echo_handler(seen)) as base:
            out = await run_micropython(base + "/CP_1")
            await asyncio.sleep(0.05)
            return out

    out = run(main())
    assert out.splitlines() == EXPECTED_MP, out
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(b"CP_1:secret").decode()
    # the server's close is echoed with its code only
    assert [rec.close for rec in seen] == [(1000, "bye"), (4001, "")]


@needs_mp
def test_micropython_wss_verify(certs):
    async def main():
        async with running(echo_handler([]), tls=server_ssl(certs)) as base:
            good = await run_micropython(base + "/CP_1", certs["ca"])
            bad_ca = await run_micropython(base + "/CP_1", certs["other_ca"])
        async with running(echo_handler([]), tls=server_ssl(certs, "wrongname")) as base:
            bad_name = await run_micropython(base + "/CP_1", certs["ca"])
        return good, bad_ca, bad_name

    good, bad_ca, bad_name = run(main())
    assert good.splitlines() == EXPECTED_MP, good
    # MicroPython finds out at the first write, in the handshake.
    failed = r"CONNECT_ERROR connection to 127\.0\.0\.1:\d+ failed: "
    assert re.fullmatch(failed + "The certificate is not correctly signed by the trusted CA\n",
                        bad_ca), bad_ca
    assert re.fullmatch(failed + r"The certificate Common Name \(CN\) does not match with the "
                        "expected CN\n", bad_name), bad_name


@needs_mp
def test_micropython_frame_handling():
    out = asyncio.run(run_micropython("frames"))
    assert out.splitlines() == [
        "RFC 818537fa213d7f9f4d5158",                   # RFC 6455 5.7 masked "Hello"
        "LEN64 81ff0000000000010000",                   # 64-bit length form
        # a frame is read as its first byte, the second, then the rest (under a deadline)
        r"FRAG (b'ab\xc3\xa9', (10, b'hi'), [1, 1, 2, 1, 1, 2, 1, 1, 2])",  # pong in between
        r"BIG (1009, (8, b'\x03\xf1message too big'), [1, 1, 8])",   # payload never requested
        "UTF8 1007",
        "BINARY 1003",
        "MASKED 1002",
        r"CLOSE (4001, (8, b'\x0f\xa1'), [1, 1, 5])",               # close code echoed
    ], out


# ---- deadlines: half a frame, a peer that stops reading (README "Link liveness") -----------

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def _late_then_half(reader, writer):
    await asyncio.sleep(1.2)  # idle for longer than the deadline: that is no failure
    writer.write(ws.encode_frame(0x1, b"late", mask=b""))
    writer.write(ws.encode_frame(0x1, b"never finished", mask=b"")[:5])
    await writer.drain()
    await asyncio.sleep(5)


async def _deaf(reader, writer):
    # Read nothing more and ping as fast as the client reads: its pongs fill the TCP buffers
    # until its send blocks, and then it stops reading too (this drain blocks).
    ping = bytes([0x89, 125]) + b"p" * 125
    while True:  # ends when the client's deadline closes the connection
        writer.write(ping)
        await writer.drain()


@contextlib.asynccontextmanager
async def raw_server(behaviour):
    """A websocket server by hand (the library would not misbehave): it accepts the opening
    handshake, then runs `behaviour(reader, writer)`."""
    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = re.search(rb"Sec-WebSocket-Key: *(\S+)", head).group(1)
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                     b"\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n")
        try:
            await behaviour(reader, writer)
        except (OSError, asyncio.CancelledError):
            pass
        writer.transport.abort()
    # Small buffers on our side: a peer that stops reading is found after kilobytes, not
    # after the megabytes a loopback connection would buffer.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(handle, sock=sock, limit=4096)
    try:
        yield "ws://127.0.0.1:%d/ocpp" % server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _deadline_client(url):
    """The same steps as `ws_mp_check.py deadline`, on CPython."""
    conn = await ws.connect(url, wait_ms=500)
    lines, start = [], time.monotonic()
    try:
        while True:
            lines.append("GOT " + await conn.recv())
    except ws.WsClosed as e:
        lines.append("CLOSED %d %s %s" % (e.code, e.reason, conn.closed))
    return lines, (time.monotonic() - start) * 1000


async def _deadline_run(behaviour, interpreter):
    async with raw_server(behaviour) as url:
        if interpreter == "cpy":
            return await _deadline_client(url)
        out = (await run_micropython("deadline", url)).splitlines()
        assert out[-1].startswith("AFTER_MS "), out
        return out[:-1], int(out[-1].split()[1])


@pytest.mark.parametrize("interpreter", ["cpy", pytest.param("mp", marks=needs_mp)])
def test_idle_is_no_failure_but_half_a_frame_is(interpreter):
    lines, ms = run(_deadline_run(_late_then_half, interpreter))
    assert lines == ["GOT late", "CLOSED 1006 frame not complete in 500 ms True"]
    assert 1700 <= ms < 3000, ms


@pytest.mark.parametrize("interpreter", ["cpy", pytest.param("mp", marks=needs_mp)])
def test_a_peer_that_stops_reading_fails_the_send(interpreter):
    lines, ms = run(_deadline_run(_deaf, interpreter))
    assert lines == ["CLOSED 1006 send not done in 500 ms True"], lines
    # Filling both TCP buffers with pongs first takes a time that depends on the machine's
    # load; the bound only proves the deadline ended the send instead of a hang.
    assert ms < 12000, ms
