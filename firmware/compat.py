"""Every difference between MicroPython and CPython lives here.

Nothing else in firmware/ or hal/ asks which interpreter it runs on.
"""
import sys
import time

try:
    import asyncio
except ImportError:  # pragma: no cover - very old MicroPython ports
    import uasyncio as asyncio

MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const
except ImportError:
    def const(n):
        return n

if MICROPYTHON:
    from time import ticks_ms, ticks_diff, ticks_add, sleep_ms

    def print_exception(exc, file=None):
        sys.print_exception(exc, file or sys.stdout)

    def task_error(task):
        """The exception a finished asyncio task ended with, or None."""
        data = task.data  # a return ends as StopIteration(value)
        ok = not isinstance(data, BaseException) or isinstance(data, StopIteration)
        return None if ok else data
else:
    import traceback

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b

    def sleep_ms(ms):
        time.sleep(ms / 1000)

    def print_exception(exc, file=None):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=file or sys.stdout)

    def task_error(task):
        """The exception a finished asyncio task ended with, or None."""
        return None if task.cancelled() else task.exception()

# Seconds between 1970-01-01 and the port's epoch: the ESP32 counts from 2000,
# unix builds and CPython from 1970. Firmware code works in unix seconds only.
EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0


def unix_time():
    """Seconds since 1970 from the port's own clock (not the RTC set by the CSMS)."""
    return int(time.time()) + EPOCH_OFFSET


try:
    from os import urandom
except ImportError:  # pragma: no cover
    def urandom(n):
        import random
        return bytes(random.getrandbits(8) for _ in range(n))


def resolve(host, port):
    """The IPv4 address of `host` as text (the host itself when it is one); OSError when the
    lookup fails. Blocks for the lookup. The unix port answers a raw sockaddr (family, port,
    four address bytes), the ESP32 and CPython an (address, port) tuple."""
    import socket
    info = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    if not info:
        raise OSError("no address for " + host)
    addr = info[0][-1]
    if isinstance(addr, tuple):
        return addr[0]
    return "%d.%d.%d.%d" % (addr[4], addr[5], addr[6], addr[7])


def _no_delay(sock):
    # IPPROTO_TCP (6), TCP_NODELAY (1) on Linux and lwIP alike; the ports lack the names.
    # Without it a frame written in two parts (header, payload) waits for the peer's
    # delayed ACK of the first: about 40 ms per message. CPython's asyncio sets it itself.
    try:
        sock.setsockopt(6, 1, 1)
    except (AttributeError, OSError):
        pass


class _NoDelayContext:
    """An SSLContext for MicroPython's open_connection that sets TCP_NODELAY on the plain
    socket before wrapping it (the wrapped socket has no setsockopt)."""

    def __init__(self, ctx):
        self._ctx = ctx

    def wrap_socket(self, sock, **kw):
        _no_delay(sock)
        return self._ctx.wrap_socket(sock, **kw)


async def open_connection(host, port, ssl_ctx=None, server_hostname=None):
    """asyncio.open_connection, over TLS when ssl_ctx is given (close with close_connection);
    TCP_NODELAY on both interpreters."""
    if ssl_ctx is None:
        reader, writer = await asyncio.open_connection(host, port)
        if MICROPYTHON:
            _no_delay(writer.s)
        return reader, writer
    if MICROPYTHON:
        ssl_ctx = _NoDelayContext(ssl_ctx)
    return await asyncio.open_connection(host, port, ssl=ssl_ctx, server_hostname=server_hostname)


async def read_into(reader, buf):
    """Up to len(buf) bytes from an open_connection stream into `buf` (a bytearray or a view
    of one) -> how many; 0 once the peer has closed. MicroPython reads straight into the
    buffer (no new bytes object per read); its TLS stream may have nothing yet after a wake
    (None), then it waits again. CPython's StreamReader has no readinto: a copy."""
    if MICROPYTHON:
        while True:
            n = await reader.readinto(buf)
            if n is not None:
                return n
    data = await reader.read(len(buf))
    buf[:len(data)] = data
    return len(data)


async def close_connection(writer):
    """Close a stream of open_connection; never raises, never waits more than a second."""
    try:
        writer.close()
        # MicroPython closes the socket here; CPython may wait for TLS shutdown, so bound it.
        await asyncio.wait_for(writer.wait_closed(), 1)
    except Exception:
        # CPython keeps the socket of a peer that stopped reading until our data is out.
        abort = getattr(getattr(writer, "transport", None), "abort", None)
        if abort is not None:
            abort()


def stdin_reader():
    """A stream with `await readline()` over the console (stdin), or None when absent."""
    if MICROPYTHON:
        return asyncio.StreamReader(sys.stdin)
    return _CPythonStdin()


class _CPythonStdin:
    # A thread-free reader: the loop watches fd 0 and lines are queued as they come.
    def __init__(self):
        self._q = None
        self._buf = b""
        self._eof = False

    def _on_readable(self):
        import os
        data = os.read(0, 512)
        if not data:
            self._eof = True
            asyncio.get_event_loop().remove_reader(0)
        self._buf += data
        self._ev.set()

    async def readline(self):
        if self._q is None:
            self._q = True
            self._ev = asyncio.Event()
            asyncio.get_event_loop().add_reader(0, self._on_readable)
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i + 1], self._buf[i + 1:]
                return line
            if self._eof:
                line, self._buf = self._buf, b""
                return line
            self._ev.clear()
            await self._ev.wait()


def mem_free():
    """Free heap bytes on MicroPython, -1 on CPython."""
    try:
        import gc
        return gc.mem_free()
    except AttributeError:
        return -1


def mem_alloc():
    """Allocated heap bytes on MicroPython, -1 on CPython."""
    try:
        import gc
        return gc.mem_alloc()
    except AttributeError:
        return -1


def collect():
    import gc
    gc.collect()


def unload(name):
    """Forget the module `name` so its RAM can be collected; the next import loads it again."""
    mods = sys.modules
    if name in mods:
        del mods[name]
        package, _, leaf = name.rpartition(".")
        if package in mods and hasattr(mods[package], leaf):
            delattr(mods[package], leaf)  # the package keeps its submodules as attributes


def make_ssl_context(ca_file=None, verify=True, cert_file=None, key_file=None):
    """A TLS client context that checks the server certificate unless verify is False.

    ca_file: a PEM/DER file or a list of them. cert_file: our client certificate chain (PEM),
    with its key in key_file, or in cert_file itself when key_file is None.
    MicroPython's PROTOCOL_TLS_CLIENT starts with CERT_NONE, so the mode is always
    set explicitly. CPython must drop check_hostname before CERT_NONE is allowed and
    can fall back to the system store; a device has no store, so it needs ca_file.
    """
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cert_file:
        load_cert_chain(ctx, cert_file, key_file)
    if not verify:
        if not MICROPYTHON:
            ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx.verify_mode = ssl.CERT_REQUIRED
    files = [ca_file] if isinstance(ca_file, str) else (ca_file or [])
    if not files and not MICROPYTHON:
        ctx.load_default_certs()
    for path in files:
        if MICROPYTHON:
            # Some mbedtls builds cannot parse PEM, DER always works: one certificate per call.
            with open(path, "rb") as f:
                data = f.read()
            for der in pem_certificates(data) or [data]:
                ctx.load_verify_locations(cadata=der)
        else:
            ctx.load_verify_locations(cafile=path)
    return ctx


def load_cert_chain(ctx, cert_file, key_file=None):
    """Give a TLS client context the charger's certificate (PEM, leaf first) and private key
    (PEM: EC PRIVATE KEY, PRIVATE KEY or RSA PRIVATE KEY), from key_file or, when it is None,
    from cert_file itself.

    MicroPython's mbedtls may be built without PEM parsing: then the leaf certificate and
    the key go in as DER (a DER load takes one certificate: intermediates are not sent)."""
    if not MICROPYTHON:
        ctx.load_cert_chain(cert_file, key_file)
        return
    with open(cert_file, "rb") as f:
        cert = f.read()
    key = cert
    if key_file:
        with open(key_file, "rb") as f:
            key = f.read()
    try:
        ctx.load_cert_chain(cert, key)
        return
    except (OSError, ValueError):
        pass
    ders = pem_certificates(cert)
    keys = [k for label in (b"EC PRIVATE KEY", b"PRIVATE KEY", b"RSA PRIVATE KEY")
            for k in pem_blocks(key, label)]
    if not ders or not keys:
        raise ValueError("expected PEM certificate and key files")
    ctx.load_cert_chain(ders[0], keys[0])


def pem_certificates(data):
    """DER bytes of every PEM certificate block in data (empty list if there is none)."""
    return pem_blocks(data, b"CERTIFICATE")


def pem_blocks(data, label):
    """DER bytes of every PEM block "-----BEGIN <label>-----" in data."""
    import binascii
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    out = []
    i = data.find(begin)
    while i >= 0:
        j = data.find(end, i)
        if j < 0:
            raise ValueError("unterminated PEM block")
        out.append(binascii.a2b_base64(b"".join(data[i + len(begin):j].split())))
        i = data.find(begin, j)
    return out


# True on a microcontroller port (the ESP32): the board HAL and machine.reset() apply.
ON_DEVICE = sys.platform not in ("linux", "darwin", "win32", "cygwin", "freebsd")


def getenv(name):
    """An environment variable, or None (ports without an environment give None)."""
    try:
        import os
        return os.getenv(name)
    except (ImportError, AttributeError):
        return None


def first_bytes(buf, n):
    """The first `n` bytes of `buf` to hand to a stream's write() while `buf` is reused
    afterwards: MicroPython's asyncio Stream writes at once and copies what it could not, so a
    view will do; CPython's transports may keep what they are given, so a copy."""
    return memoryview(buf)[:n] if MICROPYTHON else bytes(buf[:n])
