"""The websocket opening handshake (RFC 6455 4): URL, TCP/TLS connection, HTTP upgrade.

Loaded by firmware.ws.connect() for one attempt and dropped after, so its code costs no
RAM while the charger is connected.
"""
import binascii
import hashlib

from firmware import compat
from firmware.compat import asyncio, const
from firmware.ws import Connection, WsError, close_stream

_MAX_LINE = const(1024)
_MAX_HEADERS = const(40)
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def parse_url(url):
    """ws[s]://host[:port][/path][?query] -> (secure, host, port, resource)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("ws", "wss"):
        raise WsError("not a ws:// or wss:// URL: " + url)
    rest = rest.split("#")[0]  # fragments mean nothing to websockets (RFC 6455 3)
    cut = min(i for i in (rest.find("/"), rest.find("?"), len(rest)) if i >= 0)
    netloc, resource = rest[:cut], rest[cut:]
    if netloc.startswith("["):  # [IPv6]:port
        host, sep, tail = netloc[1:].partition("]")
        ok = sep and tail[:1] in ("", ":")
    else:
        host, sep, tail = netloc.partition(":")
        tail, ok = sep + tail, "@" not in host  # credentials belong in auth=, not the URL
    port = 443 if scheme == "wss" else 80
    if tail:
        port = int(tail[1:]) if tail[1:].isdigit() else 0
    if not (ok and host and 0 < port < 65536):
        raise WsError("bad host or port in URL: " + url)
    return scheme == "wss", host, port, resource if resource.startswith("/") else "/" + resource


def _b64(data):
    return binascii.b2a_base64(data).strip().decode()


def accept_key(key):
    """The Sec-WebSocket-Accept value the server must send for our key (RFC 6455 4.2.2)."""
    return _b64(hashlib.sha1((key + _GUID).encode()).digest())


async def _read_line(reader):
    # Byte by byte: slow but exact, never reads past the head into frame data.
    line = bytearray()
    while line[-1:] != b"\n":
        if len(line) > _MAX_LINE:
            raise WsError("HTTP response line over {} bytes".format(_MAX_LINE))
        line += await reader.readexactly(1)
    try:
        return bytes(line).rstrip(b"\r\n").decode()
    except UnicodeError:
        raise WsError("HTTP response is not text")


async def read_http_head(reader):
    """Status line and headers -> (status, reason, {lower-case name: value})."""
    parts = (await _read_line(reader)).split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise WsError("not an HTTP response: " + " ".join(parts)[:60])
    headers = {}
    for _ in range(_MAX_HEADERS):
        line = await _read_line(reader)
        if not line:
            return int(parts[1]), parts[2] if len(parts) > 2 else "", headers
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    raise WsError("more than {} HTTP header lines".format(_MAX_HEADERS))


def check_response(status, reason, headers, key, protocol):
    """Raise WsError unless this is a valid 101 answer agreeing to `protocol`."""
    if status != 101:
        raise WsError("HTTP {} {}".format(status, reason).rstrip())
    if headers.get("upgrade", "").lower() != "websocket":
        raise WsError("server did not upgrade to websocket")
    if "upgrade" not in [t.strip() for t in headers.get("connection", "").lower().split(",")]:
        raise WsError("server did not send Connection: Upgrade")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise WsError("bad Sec-WebSocket-Accept")
    got = headers.get("sec-websocket-protocol")
    if got != protocol:
        raise WsError("server did not agree to subprotocol {} (got {})".format(
            protocol, got or "none"))
    if "sec-websocket-extensions" in headers:  # we offer none, so any is a violation
        raise WsError("server chose an extension that was not offered")


async def _handshake(reader, writer, secure, host, port, resource, protocol, auth):
    key = _b64(compat.urandom(16))
    name = "[" + host + "]" if ":" in host else host
    if port != (443 if secure else 80):
        name += ":{}".format(port)
    lines = ["GET " + resource + " HTTP/1.1", "Host: " + name, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: " + protocol]
    if auth:
        lines.append("Authorization: Basic " + _b64("{}:{}".format(auth[0], auth[1]).encode()))
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    status, reason, headers = await read_http_head(reader)
    check_response(status, reason, headers, key, protocol)


async def connect(url, protocol="ocpp1.6", auth=None, ca_file=None, verify=True,
                  max_message=8192, connect_timeout_ms=10000, handshake_timeout_ms=10000):
    """Open a websocket to `url` agreeing on `protocol`; returns a Connection or raises WsError."""
    secure, host, port, resource = parse_url(url)
    if auth and ":" in str(auth[0]):  # Basic auth cannot carry ':' in the user id (RFC 7617)
        raise WsError("auth id must not contain ':'")
    ctx = None
    if secure:
        try:
            ctx = compat.make_ssl_context(ca_file, verify)
        except (OSError, ValueError) as e:
            raise WsError("cannot load CA file {}: {}".format(ca_file, e))
    try:
        reader, writer = await asyncio.wait_for(
            compat.open_connection(host, port, ctx, host if secure else None),
            connect_timeout_ms / 1000)
    except asyncio.TimeoutError:  # before OSError: CPython's TimeoutError is an OSError
        raise WsError("connect timeout after {} ms".format(connect_timeout_ms))
    except OSError as e:
        raise WsError("cannot connect to {}:{}: {}".format(host, port, e))
    try:
        await asyncio.wait_for(
            _handshake(reader, writer, secure, host, port, resource, protocol, auth),
            handshake_timeout_ms / 1000)
        return Connection(reader, writer, max_message)
    except asyncio.TimeoutError:
        err = WsError("handshake timeout after {} ms".format(handshake_timeout_ms))
    except WsError as e:
        err = e
    except EOFError:
        err = WsError("server closed the connection during the handshake")
    except (OSError, ValueError) as e:  # MicroPython reports TLS failures at the first write
        err = WsError("handshake failed: " + " ".join(str(e).split()))
    await close_stream(writer)
    raise err
