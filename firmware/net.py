"""The network layer under the websocket, HTTP and FTP: URLs, connections, lines, HTTP heads.

    url = Url("https://user:pw@host:8443/fw/a%20b.tar")
    channel = await connect(url.host, url.port, 15000, url.secure, ca_file)
    await channel.write(request)
    status, reason, headers = await read_head(channel)
    await channel.close()

Every read is capped (1 KB, a line included) and bounded in time; every failure is a NetError
whose text says what failed and where, never with a password. Loaded only while a connection
is opened or a file moves: firmware.ws.connect() unloads it again.
"""
import errno

from firmware import compat
from firmware.compat import asyncio, const

_CHUNK = const(512)   # a read: small blocks find room in a fragmented heap
_MAX_LINE = const(1024)  # status, header, chunk-size and FTP reply lines
# A line's read: a read(n) takes n + 1 bytes in one block; 513-byte ones were not found on a
# 64 KB heap when a download started (32-bit frozen build), head lines are short.
_LINE_READ = const(128)
_MAX_HEADERS = const(40)

_HEX = "0123456789abcdefABCDEF"
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
# Socket errors whose symbolic name says more than the interpreter's text for them.
_NAMED_ERRORS = ("ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH",
                 "ENETUNREACH", "EPIPE", "ENOTCONN")


class NetError(Exception):
    """A connection, transfer or protocol step failed; str(e) says why, e.g.
    "HTTP 404 Not Found", "ftp: 550 No such file" or "cannot connect to h:80: ECONNREFUSED"."""


# ---- URLs -----------------------------------------------------------------------------

def unquote(text):
    """Percent-decode text as UTF-8. '+' stays '+': URLs are not form data."""
    if "%" not in text:
        return text
    parts = text.split("%")
    out = parts[0].encode()
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise NetError("bad percent escape in URL")
        out += bytes((int(part[:2], 16),)) + part[2:].encode()
    try:
        return out.decode()
    except UnicodeError:
        raise NetError("percent escapes in URL are not UTF-8")


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
            raise NetError("control character in URL" + what)
    return text


def _default_port(scheme):
    return 443 if scheme in ("https", "wss") else 21 if scheme == "ftp" else 80


class Url:
    """A parsed URL of one of `schemes` (any of http, https, ftp, ws, wss).

    user/password/path are percent-decoded (None when absent); path has no leading "/" (for
    FTP a name relative to the login directory, "%2F" at its start makes it absolute, RFC
    1738). target is the raw path and query for the HTTP request line; a fragment is dropped.
    """

    def __init__(self, url, schemes=("http", "https", "ftp")):
        scheme, sep, rest = url.partition("://")
        self.scheme = scheme.lower()
        if not sep or self.scheme not in schemes:
            raise NetError("unsupported URL scheme ({} or {}): {}".format(
                ", ".join(schemes[:-1]), schemes[-1], scheme[:20]))
        self.secure = self.scheme in ("https", "wss")
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
        port = _default_port(self.scheme)
        if tail:
            port = int(tail[1:]) if tail[1:].isdigit() else 0
        if not (ok and host and 0 < port < 65536) or " " in host:
            raise NetError("bad host or port in URL: " + hostport[:80])  # no password
        self.host, self.port = host, port
        if not target.startswith("/"):
            target = "/" + target
        self.target = _escape_target(target)
        self.path = _no_controls(unquote(target.split("?")[0][1:]), " path")

    def host_header(self):
        """The Host header: IPv6 in brackets, the port unless it is the scheme's default."""
        name = "[" + self.host + "]" if ":" in self.host else self.host
        if self.port == _default_port(self.scheme):
            return name
        return "{}:{}".format(name, self.port)


# ---- connections -------------------------------------------------------------------------

def _describe(e):
    """Short, interpreter-independent text for a network exception."""
    name = errno.errorcode.get(getattr(e, "errno", None) or 0)
    if name in _NAMED_ERRORS:
        return name
    return " ".join(str(e).split()) or type(e).__name__


def resolve(host, port, dns, log=None):
    """The address to connect to for `host`: a fresh lookup, stored in the dict `dns`
    (host -> address); when the lookup fails, the last good address from `dns` (logged).
    NetError when there is neither. The lookup blocks (socket.getaddrinfo): see README
    "WiFi" for how long at most."""
    try:
        addr = compat.resolve(host, port)
    except OSError as e:
        addr = dns.get(host)
        if not isinstance(addr, str):
            raise NetError("cannot resolve {}: {}".format(host, _describe(e)))
        if log is not None:
            log.warn("net", "DNS lookup of {} failed ({}); using the last good address {}"
                     .format(host, _describe(e), addr))
        return addr
    if addr != host and dns.get(host) != addr:
        dns[host] = addr
    return addr


async def connect(host, port, timeout_ms, secure=False, ca_file=None, verify=True,
                  cert_file=None, key_file=None, dns=None, dns_log=None):
    """A Channel to host:port, over TLS when `secure` (the server certificate checked against
    ca_file, a file or a list of files, unless verify is False; cert_file/key_file our client
    certificate, see compat.make_ssl_context); timeout_ms bounds the connect and then every
    read and write. dns: a dict of last good addresses, used when a lookup fails (resolve()).
    NetError when it cannot be opened."""
    addr = host if dns is None else resolve(host, port, dns, dns_log)
    ctx = None
    if secure:
        try:
            ctx = compat.make_ssl_context(ca_file, verify, cert_file, key_file)
        except (OSError, ValueError) as e:
            # Names only: a key file's content never goes into a message.
            raise NetError("cannot load TLS files (CA {}, client {}): {}".format(
                ca_file, cert_file, _describe(e)))
    try:
        reader, writer = await asyncio.wait_for(
            compat.open_connection(addr, port, ctx, host if ctx else None), timeout_ms / 1000)
    except asyncio.TimeoutError:  # before OSError: CPython's TimeoutError is an OSError
        raise NetError("connect timeout after {} ms ({}:{})".format(timeout_ms, host, port))
    except (OSError, ValueError) as e:
        raise NetError("cannot connect to {}:{}: {}".format(host, port, _describe(e)))
    return Channel(reader, writer, "{}:{}".format(host, port), timeout_ms)


class Channel:
    """One connection: reads capped at 1 KB into a buffer of at most a line, and each read
    and write bounded by timeout_ms (0: unbounded, the caller bounds the whole exchange)."""

    def __init__(self, reader, writer, name, timeout_ms):
        self._r = reader
        self._w = writer
        self._buf = b""  # at most one chunk plus an unfinished line
        self.name = name
        self.timeout_ms = timeout_ms
        # True: lines are read a byte at a time, never past their end, so that another
        # protocol can take the stream over after them (the websocket after its HTTP head).
        self.exact = False

    async def _io(self, coro, what):
        try:
            if not self.timeout_ms:
                return await coro
            return await asyncio.wait_for(coro, self.timeout_ms / 1000)
        except asyncio.TimeoutError:
            raise NetError("{} timeout after {} ms ({})".format(what, self.timeout_ms, self.name))
        except (OSError, ValueError) as e:
            # MicroPython connects in the background: a refused connect or a rejected
            # certificate only shows up at the first read or write.
            why = _describe(e)
            if why == "ECONNREFUSED":
                raise NetError("cannot connect to {}: {}".format(self.name, why))
            raise NetError("connection to {} failed: {}".format(self.name, why))

    async def read(self, n=_CHUNK):
        """Up to min(n, 1 KB) bytes; b"" once the peer has closed."""
        n = min(n, _CHUNK)
        if self._buf:
            data, self._buf = self._buf[:n], self._buf[n:]
            return data
        return await self._io(self._r.read(n), "read")

    async def readinto(self, buf):
        """Up to len(buf) bytes (at most 1 KB) into `buf`, a bytearray or a view of one ->
        how many; 0 once the peer has closed. A download reads into one buffer this way."""
        if self._buf:
            n = min(len(buf), len(self._buf))
            buf[:n] = self._buf[:n]
            self._buf = self._buf[n:]
            return n
        return await self._io(compat.read_into(self._r, buf), "read")

    async def readline(self):
        """The next line as text without its line ending; NetError at EOF or when it is
        over 1 KB."""
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1:]
                break
            if len(self._buf) > _MAX_LINE:
                raise NetError("line over {} bytes from {}".format(_MAX_LINE, self.name))
            data = await self._io(self._r.read(1 if self.exact else _LINE_READ), "read")
            if not data:
                raise NetError("connection closed by " + self.name)
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

    async def write_from(self, source):
        """Send source.read() chunks until it returns b""."""
        while True:
            chunk = source.read()
            if not chunk:
                return
            await self.write(chunk)

    def detach(self):
        """(reader, writer) for the protocol that takes the stream over; nothing is buffered
        when lines were read exactly."""
        return self._r, self._w

    async def close(self):
        await compat.close_connection(self._w)


async def read_head(channel):
    """Status line and headers -> (status, reason, {lower-case name: value}); skips 1xx
    answers but 101 (Switching Protocols)."""
    for _ in range(_MAX_HEADERS):
        parts = (await channel.readline()).split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise NetError("not an HTTP response: " + " ".join(parts)[:60])
        headers = {}
        for _ in range(_MAX_HEADERS):
            line = await channel.readline()
            if not line:
                break
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        else:
            raise NetError("more than {} HTTP header lines".format(_MAX_HEADERS))
        status = int(parts[1])
        if status >= 200 or status == 101:
            return status, parts[2] if len(parts) > 2 else "", headers
    raise NetError("too many interim HTTP responses")
