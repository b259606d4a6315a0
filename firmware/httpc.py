"""HTTP/1.1 client for firmware.transfer: GET into a sink, PUT or POST from a source.

One request per connection (Connection: close). GET follows up to 3 redirects and reads a
body of any framing (Content-Length, chunked, or up to the close); the sink enforces the
size limit. PUT and POST send raw bytes with Content-Length and follow no redirect.
"""
import binascii

from firmware import net
from firmware.compat import const
from firmware.net import NetError, Url

_MAX_TRAILERS = const(40)
_MAX_REDIRECTS = const(3)
_CHUNK = const(512)  # a body read, as net.Channel's: small blocks find room in a full heap

_HEX = "0123456789abcdefABCDEF"
_USER_AGENT = "ocpp-chargepoint"


def _redirect(base, location):
    """Resolve a Location header against the URL that answered with it."""
    if "://" in location:
        url = Url(location)
    elif location.startswith("//"):
        url = Url(base.scheme + ":" + location)
    else:
        prefix = "{}://{}".format(base.scheme, base.host_header())
        if not location.startswith("/"):  # relative to the current path's folder
            location = base.target.split("?")[0].rpartition("/")[0] + "/" + location
        url = Url(prefix + location)
    if url.scheme == "ftp":
        raise NetError("redirect to ftp refused")
    same = (url.scheme, url.host.lower(), url.port) == (base.scheme, base.host.lower(), base.port)
    if url.user is None and same:  # credentials stay with their server
        url.user, url.password = base.user, base.password
    return url


def _request(method, url, extra=()):
    lines = [method + " " + url.target + " HTTP/1.1", "Host: " + url.host_header(),
             "User-Agent: " + _USER_AGENT, "Accept-Encoding: identity", "Connection: close"]
    if url.user is not None:
        cred = "{}:{}".format(url.user, url.password or "").encode()
        lines.append("Authorization: Basic " + binascii.b2a_base64(cred).strip().decode())
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _connect(url, ca_file, verify, timeout_ms):
    return net.connect(url.host, url.port, timeout_ms, url.secure, ca_file, verify)


def _http_error(status, reason):
    return NetError("HTTP {} {}".format(status, reason).rstrip())


async def _copy(channel, sink, n, buf):
    """Exactly n bytes from channel into sink, read into `buf` (a memoryview of a bytearray):
    no new block per read, which a full heap may not have (a 2 MB image is 4000 reads)."""
    left = n
    size = len(buf)
    while left:
        k = await channel.readinto(buf if left >= size else buf[:left])
        if not k:
            raise NetError("connection closed after {} of {} bytes".format(n - left, n))
        sink.write(buf if k == size else buf[:k])
        left -= k


async def _read_chunked(channel, sink, buf):
    # RFC 9112 7.1: hex size[;ext] CRLF data CRLF ... 0 CRLF [trailers] CRLF
    while True:
        size = (await channel.readline()).split(";")[0].strip()
        if not size or len(size) > 8 or any(c not in _HEX for c in size):
            raise NetError("bad chunk size line")
        size = int(size, 16)
        if not size:
            break
        sink.expect(sink.n + size)
        await _copy(channel, sink, size, buf)
        if await channel.readline():
            raise NetError("chunk not followed by CRLF")
    for _ in range(_MAX_TRAILERS):
        if not await channel.readline():
            return
    raise NetError("more than {} trailer lines".format(_MAX_TRAILERS))


async def _read_body(channel, headers, sink):
    coding = headers.get("transfer-encoding", "").lower()
    length = headers.get("content-length")
    buf = memoryview(bytearray(_CHUNK))  # every read of the body goes into this one buffer
    if coding:
        if coding != "chunked":
            raise NetError("unsupported Transfer-Encoding: " + coding[:40])
        await _read_chunked(channel, sink, buf)
    elif length is not None:
        if not length.isdigit():
            raise NetError("bad Content-Length: " + length[:40])
        sink.expect(int(length))
        await _copy(channel, sink, int(length), buf)
    else:  # delimited by the server closing the connection
        while True:
            k = await channel.readinto(buf)
            if not k:
                return
            sink.write(buf if k == _CHUNK else buf[:k])


async def get(url, sink, ca_file, verify, timeout_ms):
    """GET the net.Url `url` into sink (a transfer.Sink), following redirects."""
    for _ in range(_MAX_REDIRECTS + 1):
        channel = await _connect(url, ca_file, verify, timeout_ms)
        try:
            await channel.write(_request("GET", url))
            status, reason, headers = await net.read_head(channel)
            if status in (301, 302, 303, 307, 308) and "location" in headers:
                url = _redirect(url, headers["location"])
                continue
            if not 200 <= status < 300:
                raise _http_error(status, reason)
            await _read_body(channel, headers, sink)
            return
        finally:
            await channel.close()
    raise NetError("more than {} redirects".format(_MAX_REDIRECTS))


async def send(url, source, method, ca_file, verify, timeout_ms):
    """PUT or POST a transfer.Source to the net.Url `url`."""
    # The body is raw bytes (application/octet-stream) for PUT and POST alike; no
    # multipart form. Redirects are not followed: the body would have to be re-sent.
    channel = await _connect(url, ca_file, verify, timeout_ms)
    try:
        await channel.write(_request(method, url, ("Content-Type: application/octet-stream",
                                                   "Content-Length: {}".format(source.size))))
        failed = None
        try:
            await channel.write_from(source)
        except NetError as e:
            failed = e  # the server may have answered early (413, 401) and closed
        try:
            status, reason, _ = await net.read_head(channel)
        except NetError:
            raise failed or NetError("no HTTP response from " + channel.name)
        if not 200 <= status < 300:
            raise _http_error(status, reason)
        if failed:
            raise failed
    finally:
        await channel.close()
