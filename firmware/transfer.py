"""File transfer: firmware download and diagnostics upload over HTTP(S) or FTP.

    n, sha256_hex = await download(url, dest_path, max_bytes=..., timeout_ms=...)
    n, sha256_hex = await upload(url, path_or_bytes, method="PUT")

Data moves in chunks of at most 1 KB and is hashed on the way, so RAM use does not
depend on the file size. Every read is capped in size and bounded in time, and a
download over max_bytes stops there and leaves no partial file behind. Failures are
net.NetError. The protocols are in firmware/httpc.py and firmware/ftp.py, each imported
on its first URL (a charger that never sees an FTP URL never loads the FTP client).
"""
import binascii
import hashlib
import os
import sys

from firmware.compat import collect, const, first_bytes, unload
from firmware.net import NetError, Url, quote

_CHUNK = const(512)   # small blocks find room in a fragmented heap


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
            raise NetError("file larger than max_bytes ({} > {})".format(
                total, self.max_bytes))

    def _open(self):
        try:
            self._f = open(self.path, "wb")
        except OSError as e:
            raise NetError("cannot write {}: {}".format(self.path, e))
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
            raise NetError("cannot write {}: {}".format(self.path, e))

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
                raise NetError("cannot read {}: {}".format(src, e))
            self.name = src.rpartition("/")[2]
        self.n = 0
        self._hash = hashlib.sha256()
        # A file is read into this one buffer: no new block per chunk (an upload of the log
        # ring is a few dozen of them, late in a long-running, fragmented heap).
        self._buf = bytearray(_CHUNK) if self._f is not None else None

    def read(self):
        """The next chunk of at most 512 bytes; b"" once size bytes were read. A file's
        chunk is valid until the next call (written out before it)."""
        want = min(_CHUNK, self.size - self.n)
        if want <= 0:
            return b""
        if self._f is None:
            chunk = bytes(self._data[self.n:self.n + want])
        else:
            buf = self._buf
            k = self._f.readinto(buf if want == _CHUNK else memoryview(buf)[:want])
            if not k:
                raise NetError("source shrank to {} bytes while sending".format(self.n))
            chunk = first_bytes(buf, k)
        self.n += len(chunk)
        self._hash.update(chunk)
        return chunk

    def result(self):
        return self.n, binascii.hexlify(self._hash.digest()).decode()

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None


def release():
    """Unload the transfer code (this module, the HTTP and FTP clients, and the network layer
    unless a websocket handshake is using it) once a transfer is over: a charger transfers
    files rarely, and the 3-4 KB they take are what a firmware installation or the next
    upload needs. A transfer still running keeps the modules it holds."""
    for name in ("firmware.httpc", "firmware.ftp", "firmware.transfer"):
        unload(name)
    if "firmware.wsopen" not in sys.modules:
        unload("firmware.net")


def in_folder(location, name):
    """The URL of file `name` in the directory `location` (OCPP 1.6: GetDiagnostics' location,
    and GetLog's remoteLocation, name a directory). With or without a "/" at its end, also
    a bare server ("ftp://host:21"); a query string (a signed HTTP URL) stays at the end."""
    base, q, query = location.partition("?")
    if not base.endswith("/"):
        base += "/"
    return base + quote(name) + q + query


def settings(cp):
    """The transfer options the charger's configuration gives (ca_file, verify, tls_only):
    the Central System's trust settings also cover its file servers, and at SecurityProfile
    2 and 3 only https:// moves files (whitepaper: no plain transport once the link is TLS),
    with the server always verified."""
    from firmware.store import join
    cfg = cp.cfg
    csms = cfg["csms"]
    secure = cp.keys["SecurityProfile"] >= 2
    return {"ca_file": join(cfg["_dir"], csms["ca_file"]) if csms["ca_file"] else None,
            "verify": csms["verify_tls"] or secure, "tls_only": secure}


def _allowed(target, tls_only):
    if tls_only and target.scheme != "https":
        raise NetError("{}:// refused at SecurityProfile 2 and 3: https:// only".format(
            target.scheme))


def _room():
    # A collection once the transfer's code is loaded, before its first blocks: on a 64 KB
    # heap the 513-byte reads of the reply head were not found in the garbage the import and
    # the request handling left (32-bit frozen build), and a transfer is rare enough.
    collect()


async def download(url, dest_path, ca_file=None, verify=True, max_bytes=1000000,
                   timeout_ms=15000, tls_only=False):
    """GET url into dest_path -> (bytes, sha256 hex). http(s) follows up to 3 redirects;
    ftp logs in as the URL's user (default anonymous) and uses passive binary mode.
    timeout_ms bounds the connect and every single read and write. tls_only: NetError
    for anything but https:// (see settings())."""
    target = Url(url)
    _allowed(target, tls_only)
    sink = Sink(dest_path, max_bytes)
    try:
        if target.scheme == "ftp":
            from firmware import ftp
            _room()
            await ftp.retrieve(target, sink, timeout_ms)
        else:
            from firmware import httpc
            _room()
            await httpc.get(target, sink, ca_file, verify, timeout_ms)
        return sink.finish()
    except BaseException:  # also on cancellation: no partial file stays behind
        sink.discard()
        raise


async def upload(url, source, method="PUT", timeout_ms=15000, ca_file=None, verify=True,
                 filename=None, tls_only=False):
    """Send a file path or bytes to url -> (bytes, sha256 hex).

    http(s): PUT or POST of the raw bytes. ftp: passive binary STOR. A url ending in "/"
    names a folder: filename (default: the source file's name) is appended. tls_only: as
    for download()."""
    method = method.upper()
    if method not in ("PUT", "POST"):
        raise ValueError("method must be PUT or POST")
    src = Source(source)
    try:
        if url.endswith("/"):
            name = filename or src.name
            if not name:
                raise NetError("URL names a folder and no filename was given")
            url = in_folder(url, name)
        target = Url(url)
        _allowed(target, tls_only)
        if target.scheme == "ftp":
            from firmware import ftp
            _room()
            await ftp.store(target, src, timeout_ms)
        else:
            from firmware import httpc
            _room()
            await httpc.send(target, src, method, ca_file, verify, timeout_ms)
        return src.result()
    finally:
        src.close()
