"""Install a bundle: a small ustar reader, the vendor signature check, and either the
extraction into an application slot (kind "mpy") or the write of a firmware image into
the next OTA partition (kind "image"), every file checked against the signed manifest.

Imported only while an update is installed (or a slot is removed), so it costs no RAM
the rest of the time. The tar is streamed from flash in 512-byte blocks and every file
is hashed as it is written; only firmware/, hal/, the manifest and its signature go into
a slot. Nothing of a bundle is written where it could run before its manifest's vendor
signature verified (firmware/vendorsig.py).
"""
import binascii
import hashlib
import os

from firmware import store
from firmware.compat import asyncio, const, MICROPYTHON

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
IMAGE = "firmware.bin"          # the image in a bundle of kind "image"
KINDS = ("mpy", "image")
APP_DIRS = ("firmware", "hal")  # what a slot holds: the rest of a bundle stays in the tar

_BLOCK = const(512)
_MAX_FILE = const(200000)      # one file in the bundle
_MAX_ENTRIES = const(300)
_MAX_MANIFEST = const(32768)   # its parsed form lives in RAM while installing
_MAX_PATH = const(200)
_MAX_VERSION = const(50)       # BootNotification.firmwareVersion
_YIELD_BLOCKS = const(16)      # extraction lets the charger run every 8 KB
_MAX_SIG = const(4096)
_MAX_IMAGE = const(4194304)    # an OTA partition on a 4/8 MB module
_ERASE_BLOCK = const(4096)     # esp32.Partition's block: the erase unit
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_ERASE = const(6)


class InstallError(Exception):
    """The bundle cannot be installed; str(e) says why."""


class TarError(InstallError):
    """The tar is malformed, truncated, or holds something a slot must not."""


class SignatureError(InstallError):
    """The bundle is not signed by a trusted vendor key: nothing of it may run."""


def remove_tree(path):
    """Delete a file or a folder with everything in it; a missing path is fine."""
    try:
        mode = os.stat(path)[0]
    except OSError:
        return
    if mode & 0x4000:
        for name in os.listdir(path):
            remove_tree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


# ---- ustar --------------------------------------------------------------------------------

def _octal(field, what):
    text = bytes(field).split(b"\0")[0].strip()
    if not text or any(c < 0x30 or c > 0x37 for c in text):
        raise TarError("bad %s field in tar header" % what)
    return int(text.decode(), 8)


def _check_path(name):
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if not name or len(name) > _MAX_PATH or name.startswith("/") or "\\" in name:
        raise TarError("unsafe path in tar: %r" % name[:80])
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise TarError("unsafe path in tar: %r" % name[:80])
    for c in name:
        if ord(c) < 0x20 or c == "\x7f":
            raise TarError("control character in tar path")
    return name


class TarReader:
    """A ustar archive read from an open binary file, one 512-byte block at a time.

    next() -> (path, is_dir, size) or None at the end; read() -> the entry's next data
    block (b"" once it is all read) as a view of the reader's one buffer, valid until the
    next call: blocks are read into it, so a 300 KB archive costs no 300 KB of garbage.
    Only regular files and folders are accepted; paths must be relative and stay inside
    the archive; sizes and counts are capped."""

    def __init__(self, f, max_file=_MAX_FILE, max_entries=_MAX_ENTRIES):
        self._f = f
        self._left = 0
        self._count = 0
        self._buf = bytearray(_BLOCK)
        self._view = memoryview(self._buf)
        self.max_file = max_file
        self.max_entries = max_entries

    def _block(self):
        n = self._f.readinto(self._buf)
        if n != _BLOCK:
            raise TarError("truncated tar")
        return self._buf

    def read(self):
        if self._left <= 0:
            return b""
        self._block()
        n = self._left if self._left < _BLOCK else _BLOCK
        self._left -= n
        return self._view if n == _BLOCK else self._view[:n]

    def next(self):
        if self._left > 0:  # data the caller did not want: jump over it
            self._f.seek((self._left + _BLOCK - 1) // _BLOCK * _BLOCK, 1)
            self._left = 0
        hdr = self._block()
        if not any(hdr):
            return None  # end-of-archive marker
        if _octal(hdr[148:156], "checksum") != sum(hdr[:148]) + 256 + sum(hdr[156:]):
            raise TarError("tar header checksum mismatch")
        name = bytes(hdr[:100])
        if hdr[257:262] == b"ustar" and hdr[345] != 0:
            name = bytes(hdr[345:500]).split(b"\0")[0] + b"/" + name
        try:
            name = name.split(b"\0")[0].decode()
        except UnicodeError:
            raise TarError("tar path is not UTF-8")
        path = _check_path(name)
        kind = hdr[156]
        if kind not in (0x30, 0, 0x37, 0x35):  # '0', NUL, '7' (contiguous): file; '5': folder
            raise TarError("%s: tar entry type %r is not a file or folder" % (path, chr(kind)))
        if hdr[124] & 0x80:
            raise TarError("%s: size over the limit" % path)
        size = _octal(hdr[124:136], "size")
        self._count += 1
        if self._count > self.max_entries:
            raise TarError("more than %d entries in tar" % self.max_entries)
        if size > self.max_file:
            raise TarError("%s: %d bytes, over the %d limit" % (path, size, self.max_file))
        self._left = size
        return path, kind == 0x35, size


# ---- install ------------------------------------------------------------------------------

def check_manifest(manifest, load_mpy=MICROPYTHON, kind="mpy"):
    """The bundle's version when the manifest is well formed, of the `kind` this charger
    takes, and names an application this interpreter can start; else InstallError."""
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise InstallError("manifest.json lists no files")
    version = manifest.get("version")
    if not isinstance(version, str) or not 0 < len(version) <= _MAX_VERSION:
        raise InstallError("manifest version must be a string of 1 to %d characters"
                           % _MAX_VERSION)
    got = manifest.get("kind")
    if got not in KINDS:
        raise InstallError("manifest kind must be one of %s" % ", ".join(KINDS))
    if got != kind:
        raise InstallError("a bundle of kind %s; this charger takes %s" % (got, kind))
    if kind == "image":
        if IMAGE not in files or len(files) != 1:
            raise InstallError("an image bundle holds %s only" % IMAGE)
        return version
    # CPython cannot run .mpy bytecode: such a bundle would never start here.
    if "firmware/app.py" not in files and not (load_mpy and "firmware/app.mpy" in files):
        raise InstallError("the bundle has no firmware/app this interpreter can load")
    return version


async def _copy(tar, out, h, blocks):
    """The current entry's data into the file `out` (or nowhere) and the hash h."""
    while True:
        block = tar.read()
        if not block:
            return blocks
        h.update(block)
        if out is not None:
            out.write(block)
        blocks += 1
        if blocks % _YIELD_BLOCKS == 0:
            await asyncio.sleep(0)


async def open_bundle(tar_path, mpath, spath, roots, kind, load_mpy=MICROPYTHON,
                      max_file=_MAX_FILE):
    """First pass over the tar: manifest.json into mpath and manifest.sig into spath,
    the vendor signature checked against `roots` (SignatureError), then the manifest
    (InstallError) -> (version, its "files" dict). Nothing else of the bundle is read."""
    from firmware import vendorsig
    digest = sig = None
    with open(tar_path, "rb") as f:
        tar = TarReader(f, max_file)
        while digest is None or sig is None:
            entry = tar.next()
            if entry is None:
                break
            path, is_dir, size = entry
            if is_dir or path not in (MANIFEST, SIGNATURE):
                continue
            if path == MANIFEST and digest is None:
                if size > _MAX_MANIFEST:
                    raise InstallError("manifest.json is over %d bytes" % _MAX_MANIFEST)
                h = hashlib.sha256()
                with open(mpath, "wb") as out:
                    await _copy(tar, out, h, 0)
                digest = h.digest()
            elif path == SIGNATURE and sig is None:
                if size > _MAX_SIG:
                    raise SignatureError("manifest.sig is over %d bytes" % _MAX_SIG)
                with open(spath, "wb") as out:
                    await _copy(tar, out, hashlib.sha256(), 0)
                sig = True
    if digest is None:
        raise InstallError("the bundle has no manifest.json")
    if sig is None:
        raise SignatureError("the bundle is not signed (no manifest.sig)")
    try:
        with open(spath) as f:  # at most _MAX_SIG bytes: checked before it was copied
            sig = vendorsig.parse_signature(f.read())
    except ValueError as e:
        raise SignatureError(str(e))
    why = vendorsig.check(digest, sig, roots)
    if why:
        raise SignatureError(why)
    try:
        # The text is read whole (at most _MAX_MANIFEST bytes, a few KB in practice) for the
        # strict check: MicroPython's lenient json would take `{"a": 1 2}` as {"a": 1}.
        with open(mpath, "rb") as f:
            manifest = store.loads(f.read())
    except ValueError as e:
        raise InstallError("manifest.json is not valid JSON: %s" % e)
    version = check_manifest(manifest, load_mpy, kind)
    return version, manifest["files"]


async def install(tar_path, dest, roots, load_mpy=MICROPYTHON, max_file=_MAX_FILE):
    """Extract the application in the bundle at tar_path into the folder dest (emptied
    first), after its signature and with each file checked against the manifest ->
    version. InstallError (dest may then hold a partial copy: the caller removes it).

    Two passes over the tar: the first only fetches manifest.json and manifest.sig
    (wherever they are in the archive) and checks the signature, the second checks every
    file against the manifest as it is written. RAM holds the manifest, shrinking as files
    are ticked off, and one 512-byte block."""
    remove_tree(dest)
    store.makedirs(dest)
    version, files = await open_bundle(tar_path, dest + "/" + MANIFEST,
                                       dest + "/" + SIGNATURE, roots, "mpy", load_mpy,
                                       max_file)
    blocks = 0
    made = set()
    with open(tar_path, "rb") as f:
        tar = TarReader(f, max_file)
        while True:
            entry = tar.next()
            if entry is None:
                break
            path, is_dir, size = entry
            if path in (MANIFEST, SIGNATURE):
                continue
            keep = path.split("/")[0] in APP_DIRS
            folder = path if is_dir else store.dirname(path)
            if keep and folder and folder not in made:
                store.makedirs(dest + "/" + folder)
                made.add(folder)
            if is_dir:
                continue
            meta = files.pop(path, None)  # popped: a second copy of a file is refused too
            if not isinstance(meta, dict):
                raise InstallError("%s is in the bundle but not in the manifest" % path)
            h = hashlib.sha256()
            out = open(dest + "/" + path, "wb") if keep else None
            try:
                blocks = await _copy(tar, out, h, blocks)
            finally:
                if out is not None:
                    out.close()
            _check_file(path, size, h, meta)
    for path in files:
        raise InstallError("%s is in the manifest but not in the bundle" % path)
    return version


def _check_file(path, size, h, meta):
    sha = meta.get("sha256") if isinstance(meta, dict) else None
    if (size != meta.get("size") or not isinstance(sha, str)
            or binascii.hexlify(h.digest()).decode() != sha.lower()):
        raise InstallError("%s does not match its size and sha256 in the manifest" % path)


async def install_image(tar_path, part, work, roots):
    """Write the firmware image of a signed image bundle into the OTA partition `part`
    (an esp32.Partition, or hal/otafake.py's) and read it back -> version. The caller
    calls part.set_boot() only after this returned: a bundle whose signature, size or
    digest does not hold is never booted. `work` is a folder for the manifest.

    The image goes 512 bytes at a time: each 4 KB erase block is erased when the write
    reaches it, then written with the offset form of writeblocks, which does not erase;
    no 4 KB buffer is needed."""
    version, files = await open_bundle(tar_path, work + "/" + MANIFEST,
                                       work + "/" + SIGNATURE, roots, "image",
                                       max_file=_MAX_IMAGE)
    meta = files[IMAGE]
    size = meta.get("size") if isinstance(meta, dict) else None
    capacity = part.ioctl(_IOCTL_BLOCK_COUNT, 0) * _ERASE_BLOCK
    if not isinstance(size, int) or not 0 < size <= capacity:
        raise InstallError("the image (%r bytes) does not fit the %d-byte partition"
                           % (size, capacity))
    found = False
    with open(tar_path, "rb") as f:
        tar = TarReader(f, _MAX_IMAGE)
        while not found:
            entry = tar.next()
            if entry is None:
                raise InstallError("%s is in the manifest but not in the bundle" % IMAGE)
            found = entry[0] == IMAGE and not entry[1]
        if entry[2] != size:
            raise InstallError("%s does not match its size in the manifest" % IMAGE)
        h = hashlib.sha256()
        pos = 0
        while True:
            block = tar.read()
            if not block:
                break
            n = pos // _ERASE_BLOCK
            off = pos % _ERASE_BLOCK
            if off == 0:
                part.ioctl(_IOCTL_BLOCK_ERASE, n)
            h.update(block)
            part.writeblocks(n, block, off)
            pos += len(block)
            if pos % (_YIELD_BLOCKS * _BLOCK) == 0:
                await asyncio.sleep(0)
    _check_file(IMAGE, pos, h, meta)
    # Read back: what the partition holds is what boots, not what was sent to it.
    h = hashlib.sha256()
    buf = bytearray(_BLOCK)
    pos = 0
    while pos < size:
        part.readblocks(pos // _ERASE_BLOCK, buf, pos % _ERASE_BLOCK)
        n = size - pos if size - pos < _BLOCK else _BLOCK
        h.update(buf if n == _BLOCK else memoryview(buf)[:n])
        pos += n
        if pos % (_YIELD_BLOCKS * _BLOCK) == 0:
            await asyncio.sleep(0)
    _check_file(IMAGE, size, h, meta)
    return version
