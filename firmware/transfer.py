"""HTTP(S) and FTP file transfer: firmware download and diagnostics upload.

    n, sha256_hex = await download(url, dest_path, max_bytes=..., timeout_ms=...)
    n, sha256_hex = await upload(url, path_or_bytes, method="PUT")

Data moves in chunks of at most 1 KB and is hashed on the way, so RAM use does not
depend on the file size. Every read is capped in size and bounded in time, and a
download over max_bytes stops there and leaves no partial file behind.
http:// and https:// are handled here, ftp:// in firmware/ftp.py (imported only when
needed, which keeps it out of RAM on chargers that never see an FTP URL).
"""
import binascii
import errno
import hashlib
import os

from firmware import compat
from firmware.compat import asyncio, const

_CHUNK = const(1024)
_MAX_LINE = const(1024)  # status, header, chunk-size and FTP reply lines
_MAX_HEADERS = const(40)
_MAX_REDIRECTS = const(3)
_CLOSE_WAIT_MS = const(1000)

_HEX = "0123456789abcdefABCDEF"
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_USER_AGENT = "ocpp-chargepoint"
# Socket errors whose symbolic name says more than the interpreter's text for them.
_NAMED_ERRORS = ("ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH",
                 "ENETUNREACH", "EPIPE", "ENOTCONN")


class TransferError(Exception):
    """A transfer failed; str(e) says why, e.g. "HTTP 404 Not Found" or "ftp: 550 No such file"."""


# ---- URLs -----------------------------------------------------------------------------

def unquote(text):
    """Percent-decode text as UTF-8. '+' stays '+': URLs are not form data."""
    if "%" not in text:
        return text
    parts = text.split("%")
    out = parts[0].encode()
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise TransferError("bad percent escape in URL")
        out += bytes((int(part[:2], 16),)) + part[2:].encode()
    try:
        return out.decode()
    except UnicodeError:
        raise TransferError("percent escapes in URL are not UTF-8")


def quote(text):
    """Percent-encode everything but unreserved characters (one path segment)."""
    return "".join(chr(b) if chr(b) in _UNRESERVED else "%{:02X}".format(b)
                   for b in text.encode())


def _escape_target(text):
    # Spaces and non-ASCII cannot go on the request line raw; everything else is sent as given.
    return "".join(chr(b) if 0x20 < b < 0x7F else "%{:02X}".format(b) for b in text.encode())


def _no_controls(text, what):
    # A decoded CR/LF would let a URL inject extra FTP commands or HTTP headers.
    for c in text:
        if ord(c) < 0x20 or c == "\x7f":
            raise TransferError("control character in URL" + what)
    return text


class Url:
    """A parsed http, https or ftp URL.

    user/password/path are percent-decoded; path has no leading "/" (for FTP a name
    relative to the login directory, "%2F" at its start makes it absolute, RFC 1738).
    target is the raw path and query for the HTTP request line.
    """

    def __init__(self, url):
        scheme, sep, rest = url.partition("://")
        self.scheme = scheme.lower()
        if not sep or self.scheme not in ("http", "https", "ftp"):
            raise TransferError("unsupported URL scheme (http, https or ftp): " + scheme[:20])
        _no_controls(url, "")
        rest = rest.split("#")[0]
        cut = min(i for i in (rest.find("/"), rest.find("?"), len(rest)) if i >= 0)
        netloc, target = rest[:cut], rest[cut:]
        userinfo, at, hostport = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        self.user = _no_controls(unquote(user), " user") if at else None
        self.password = _no_controls(unquote(password), " password") if colon else None
        if hostport.startswith("["):  # [IPv6]:port
            host, sep, tail = hostport[1:].partition("]")
            ok = sep and tail[:1] in ("", ":")
        else:
            host, sep, tail = hostport.partition(":")
            tail, ok = sep + tail, True
        port = {"http": 80, "https": 443, "ftp": 21}[self.scheme]
        self.default_port = port
        if tail:
            port = int(tail[1:]) if tail[1:].isdigit() else 0
        if not (ok and host and 0 < port < 65536) or " " in host:
            raise TransferError("bad host or port in URL: " + hostport[:80])  # no password
        self.host, self.port = host, port
        if not target.startswith("/"):
            target = "/" + target
        self.target = _escape_target(target)
        self.path = _no_controls(unquote(target.split("?")[0][1:]), " path")

    def host_header(self):
        name = "[" + self.host + "]" if ":" in self.host else self.host
        return name if self.port == self.default_port else "{}:{}".format(name, self.port)

    def same_server(self, other):
        return (self.scheme, self.host.lower(), self.port) == (
            other.scheme, other.host.lower(), other.port)


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
        raise TransferError("redirect to ftp refused")
    if url.user is None and url.same_server(base):  # credentials stay with their server
        url.user, url.password = base.user, base.password
    return url


# ---- connections -------------------------------------------------------------------------

def describe(e):
    """Short, interpreter-independent text for a network exception."""
    name = errno.errorcode.get(getattr(e, "errno", None) or 0)
    if name in _NAMED_ERRORS:
        return name
    return " ".join(str(e).split()) or type(e).__name__


async def connect(host, port, timeout_ms, ssl_ctx=None):
    """A Channel to host:port (TLS when ssl_ctx is given), or TransferError."""
    try:
        reader, writer = await asyncio.wait_for(
            compat.open_connection(host, port, ssl_ctx, host if ssl_ctx else None),
            timeout_ms / 1000)
    except asyncio.TimeoutError:  # before OSError: CPython's TimeoutError is an OSError
        raise TransferError("connect timeout after {} ms ({}:{})".format(timeout_ms, host, port))
    except (OSError, ValueError) as e:
        raise TransferError("cannot connect to {}:{}: {}".format(host, port, describe(e)))
    return Channel(reader, writer, "{}:{}".format(host, port), timeout_ms)


class Channel:
    """One connection with a timeout on every read/write and a bounded read buffer."""

    def __init__(self, reader, writer, name, timeout_ms):
        self._r = reader
        self._w = writer
        self._buf = b""  # at most one chunk plus an unfinished line
        self.name = name
        self.timeout_ms = timeout_ms

    async def _io(self, coro, what):
        try:
            return await asyncio.wait_for(coro, self.timeout_ms / 1000)
        except asyncio.TimeoutError:
            raise TransferError("{} timeout after {} ms ({})".format(
                what, self.timeout_ms, self.name))
        except (OSError, ValueError) as e:
            # MicroPython connects in the background: a refused connect or a rejected
            # certificate only shows up at the first read or write.
            why = describe(e)
            if why == "ECONNREFUSED":
                raise TransferError("cannot connect to {}: {}".format(self.name, why))
            raise TransferError("connection to {} failed: {}".format(self.name, why))

    async def read(self, n=_CHUNK):
        """Up to min(n, 1 KB) bytes; b"" once the peer has closed."""
        n = min(n, _CHUNK)
        if self._buf:
            data, self._buf = self._buf[:n], self._buf[n:]
            return data
        return await self._io(self._r.read(n), "read")

    async def readline(self):
        """The next line as text without its line ending; TransferError at EOF or when
        it is over 1 KB."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1:]
                break
            if len(self._buf) > _MAX_LINE:
                raise TransferError("line over {} bytes from {}".format(_MAX_LINE, self.name))
            data = await self._io(self._r.read(_CHUNK), "read")
            if not data:
                raise TransferError("connection closed by " + self.name)
            self._buf += data
        if line.endswith(b"\r"):
            line = line[:-1]
        try:
            return line.decode()
        except UnicodeError:  # only ASCII matters in protocol lines
            return bytes(b if b < 0x80 else 0x3F for b in line).decode()

    async def write(self, data):
        await self._io(self._send(data), "write")

    async def _send(self, data):
        self._w.write(data)  # MicroPython sends at once here and may raise already
        await self._w.drain()

    async def close(self):
        try:
            self._w.close()
            # MicroPython closes the socket here; CPython may wait for TLS shutdown, so bound it.
            await asyncio.wait_for(self._w.wait_closed(), _CLOSE_WAIT_MS / 1000)
        except Exception:
            pass


# ---- files -----------------------------------------------------------------------------

class Sink:
    """Destination file of a download: counts, hashes, enforces max_bytes.

    The file is created on the first byte (or at finish() for an empty body), so a
    transfer that fails before any data arrives leaves an existing file untouched."""

    def __init__(self, path, max_bytes):
        self.path = path
        self.max_bytes = max_bytes
        self.n = 0
        self._f = None
        self._opened = False
        self._hash = hashlib.sha256()

    def expect(self, total):
        """Fail before reading when the sender announces more than max_bytes."""
        if total > self.max_bytes:
            raise TransferError("file larger than max_bytes ({} > {})".format(
                total, self.max_bytes))

    def _open(self):
        try:
            self._f = open(self.path, "wb")
        except OSError as e:
            raise TransferError("cannot write {}: {}".format(self.path, e))
        self._opened = True

    def write(self, data):
        self.expect(self.n + len(data))
        if not self._opened:
            self._open()
        self.n += len(data)
        self._hash.update(data)
        try:
            self._f.write(data)
        except OSError as e:  # e.g. the filesystem is full
            raise TransferError("cannot write {}: {}".format(self.path, e))

    def finish(self):
        """Close the file -> (bytes, sha256 hex)."""
        if not self._opened:
            self._open()
        self._f.close()
        self._f = None
        return self.n, binascii.hexlify(self._hash.digest()).decode()

    def discard(self):
        """Close and remove whatever was written."""
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._opened:
            try:
                os.remove(self.path)
            except OSError:
                pass


class Source:
    """What upload() sends: bytes or a file, read in 1 KB chunks and hashed.

    The size is fixed when the upload starts; a log file that grows meanwhile is sent
    as it was then (HTTP needs the length up front)."""

    def __init__(self, src):
        self._data = None
        self._f = None
        self.name = None
        if isinstance(src, (bytes, bytearray)):
            self._data = src
            self.size = len(src)
        else:
            try:
                self.size = os.stat(src)[6]
                self._f = open(src, "rb")
            except OSError as e:
                raise TransferError("cannot read {}: {}".format(src, e))
            self.name = src.rpartition("/")[2]
        self.n = 0
        self._hash = hashlib.sha256()

    def read(self):
        """The next chunk of at most 1 KB; b"" once size bytes were read."""
        want = min(_CHUNK, self.size - self.n)
        if want <= 0:
            return b""
        if self._f is None:
            chunk = bytes(self._data[self.n:self.n + want])
        else:
            chunk = self._f.read(want)
            if not chunk:
                raise TransferError("source shrank to {} bytes while sending".format(self.n))
        self.n += len(chunk)
        self._hash.update(chunk)
        return chunk

    def result(self):
        return self.n, binascii.hexlify(self._hash.digest()).decode()

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


async def send_all(channel, source):
    while True:
        chunk = source.read()
        if not chunk:
            return
        await channel.write(chunk)


# ---- HTTP ------------------------------------------------------------------------------

async def _http_connect(url, ca_file, verify, timeout_ms):
    ctx = None
    if url.scheme == "https":
        try:
            ctx = compat.make_ssl_context(ca_file, verify)
        except (OSError, ValueError) as e:
            raise TransferError("cannot load CA file {}: {}".format(ca_file, e))
    return await connect(url.host, url.port, timeout_ms, ctx)


def _request(method, url, extra=()):
    lines = [method + " " + url.target + " HTTP/1.1", "Host: " + url.host_header(),
             "User-Agent: " + _USER_AGENT, "Accept-Encoding: identity", "Connection: close"]
    if url.user is not None:
        cred = "{}:{}".format(url.user, url.password or "").encode()
        lines.append("Authorization: Basic " + binascii.b2a_base64(cred).strip().decode())
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_head(channel):
    """Status line and headers -> (status, reason, {lower-case name: value}); skips 1xx."""
    for _ in range(_MAX_HEADERS):
        parts = (await channel.readline()).split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise TransferError("not an HTTP response: " + " ".join(parts)[:60])
        headers = {}
        for _ in range(_MAX_HEADERS):
            line = await channel.readline()
            if not line:
                break
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        else:
            raise TransferError("more than {} HTTP header lines".format(_MAX_HEADERS))
        status = int(parts[1])
        if status >= 200 or status == 101:
            return status, parts[2] if len(parts) > 2 else "", headers
    raise TransferError("too many interim HTTP responses")


def _http_error(status, reason):
    return TransferError("HTTP {} {}".format(status, reason).rstrip())


async def _copy(channel, sink, n):
    """Exactly n bytes from channel into sink."""
    left = n
    while left:
        data = await channel.read(left)
        if not data:
            raise TransferError("connection closed after {} of {} bytes".format(n - left, n))
        sink.write(data)
        left -= len(data)


async def _read_chunked(channel, sink):
    # RFC 9112 7.1: hex size[;ext] CRLF data CRLF ... 0 CRLF [trailers] CRLF
    while True:
        size = (await channel.readline()).split(";")[0].strip()
        if not size or len(size) > 8 or any(c not in _HEX for c in size):
            raise TransferError("bad chunk size line")
        size = int(size, 16)
        if not size:
            break
        sink.expect(sink.n + size)
        await _copy(channel, sink, size)
        if await channel.readline():
            raise TransferError("chunk not followed by CRLF")
    for _ in range(_MAX_HEADERS):
        if not await channel.readline():
            return
    raise TransferError("more than {} trailer lines".format(_MAX_HEADERS))


async def _read_body(channel, headers, sink):
    coding = headers.get("transfer-encoding", "").lower()
    length = headers.get("content-length")
    if coding:
        if coding != "chunked":
            raise TransferError("unsupported Transfer-Encoding: " + coding[:40])
        await _read_chunked(channel, sink)
    elif length is not None:
        if not length.isdigit():
            raise TransferError("bad Content-Length: " + length[:40])
        sink.expect(int(length))
        await _copy(channel, sink, int(length))
    else:  # delimited by the server closing the connection
        while True:
            data = await channel.read()
            if not data:
                return
            sink.write(data)


async def _http_get(url, sink, ca_file, verify, timeout_ms):
    for _ in range(_MAX_REDIRECTS + 1):
        channel = await _http_connect(url, ca_file, verify, timeout_ms)
        try:
            await channel.write(_request("GET", url))
            status, reason, headers = await read_head(channel)
            if status in (301, 302, 303, 307, 308) and "location" in headers:
                url = _redirect(url, headers["location"])
                continue
            if not 200 <= status < 300:
                raise _http_error(status, reason)
            await _read_body(channel, headers, sink)
            return
        finally:
            await channel.close()
    raise TransferError("more than {} redirects".format(_MAX_REDIRECTS))


async def _http_send(url, source, method, ca_file, verify, timeout_ms):
    # The body is raw bytes (application/octet-stream) for PUT and POST alike; no
    # multipart form. Redirects are not followed: the body would have to be re-sent.
    channel = await _http_connect(url, ca_file, verify, timeout_ms)
    try:
        await channel.write(_request(method, url, ("Content-Type: application/octet-stream",
                                                   "Content-Length: {}".format(source.size))))
        failed = None
        try:
            await send_all(channel, source)
        except TransferError as e:
            failed = e  # the server may have answered early (413, 401) and closed
        try:
            status, reason, _ = await read_head(channel)
        except TransferError:
            raise failed or TransferError("no HTTP response from " + channel.name)
        if not 200 <= status < 300:
            raise _http_error(status, reason)
        if failed:
            raise failed
    finally:
        await channel.close()


# ---- entry points --------------------------------------------------------------------

async def download(url, dest_path, ca_file=None, verify=True, max_bytes=1000000,
                   timeout_ms=15000):
    """GET url into dest_path -> (bytes, sha256 hex). http(s) follows up to 3 redirects;
    ftp logs in as the URL's user (default anonymous) and uses passive binary mode.
    timeout_ms bounds the connect and every single read and write."""
    target = Url(url)
    sink = Sink(dest_path, max_bytes)
    try:
        if target.scheme == "ftp":
            from firmware import ftp
            await ftp.retrieve(target, sink, timeout_ms)
        else:
            await _http_get(target, sink, ca_file, verify, timeout_ms)
        return sink.finish()
    except BaseException:  # also on cancellation: no partial file stays behind
        sink.discard()
        raise


async def upload(url, source, method="PUT", timeout_ms=15000, ca_file=None, verify=True,
                 filename=None):
    """Send a file path or bytes to url -> (bytes, sha256 hex).

    http(s): PUT or POST of the raw bytes. ftp: passive binary STOR. A url ending in "/"
    names a folder: filename (default: the source file's name) is appended."""
    method = method.upper()
    if method not in ("PUT", "POST"):
        raise ValueError("method must be PUT or POST")
    src = Source(source)
    try:
        if url.endswith("/"):
            name = filename or src.name
            if not name:
                raise TransferError("URL names a folder and no filename was given")
            url += quote(name)
        target = Url(url)
        if target.scheme == "ftp":
            from firmware import ftp
            await ftp.store(target, src, timeout_ms)
        else:
            await _http_send(target, src, method, ca_file, verify, timeout_ms)
        return src.result()
    finally:
        src.close()


def retry_policy(req):
    """(attempts, seconds between) from an UpdateFirmware / GetDiagnostics request:
    `retries` total attempts (at least 1), `retryInterval` (default 30 s)."""
    attempts = req.get("retries")
    interval = req.get("retryInterval")
    return (attempts if isinstance(attempts, int) and attempts > 1 else 1,
            interval if isinstance(interval, int) and interval >= 0 else 30)
