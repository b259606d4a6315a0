"""The board's OTA partitions: esp32.Partition on the ESP32, a file-backed stand-in elsewhere.

    Part = ota.partition_class(cfg)       # None: this board has no OTA partitions
    nxt = Part(Part.RUNNING).get_next_update()
    nxt.ioctl(6, block); nxt.writeblocks(block, buf, offset); nxt.set_boot()
    Part.mark_app_valid_cancel_rollback()

The stand-in keeps the partitions of a simulated flash in `<config folder>/ota/`:
`ota_0.bin`, `ota_1.bin` (the images) and `otadata.json` (the bootloader's view):

    {"size": 4194304, "boot": "ota_1", "running": "ota_0",
     "states": {"ota_0": "valid", "ota_1": "new"}}

It has the methods of esp32.Partition that the updater uses, with their block size (4 KB)
and erase rules (writeblocks without offset erases first; with an offset it does not).
bootloader() plays ESP-IDF's bootloader with app rollback on: it boots a "new" image
once ("pending"), and a "pending" image that was not marked valid before the next boot is
"aborted" and the previous valid one boots. A test runs the file bootloader() names.
The folder is only used when it exists: a host charger without it has no partitions.
"""
import json
import os

BLOCK = 4096
LABELS = ("ota_0", "ota_1")


def partition_class(cfg):
    """esp32.Partition, the stand-in bound to `<config folder>/ota`, or None."""
    try:
        import esp32
        return esp32.Partition
    except ImportError:
        pass
    root = cfg["_dir"] + "/ota"
    try:
        os.stat(root + "/otadata.json")
    except OSError:
        return None

    class Bound(FilePartition):
        ROOT = root
    return Bound


def _read(root):
    from firmware import store  # strict on every interpreter (firmware/jsonlint.py)
    with open(root + "/otadata.json", "rb") as f:
        return store.loads(f.read())


def _write(root, data):
    with open(root + "/otadata.json.tmp", "w") as f:
        f.write(json.dumps(data))
    os.rename(root + "/otadata.json.tmp", root + "/otadata.json")


class FilePartition:
    """One OTA app partition of the simulated flash (esp32.Partition's interface)."""
    ROOT = ""  # the simulated flash folder: set by partition_class()
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0

    def __init__(self, which):
        data = _read(self.ROOT)
        if which == self.RUNNING:
            which = data["running"]
        elif which == self.BOOT:
            which = data["boot"]
        if which not in LABELS:
            raise ValueError("no partition %r" % (which,))
        self.label = which
        self.size = data["size"]
        self.path = self.ROOT + "/" + which + ".bin"

    def info(self):
        i = LABELS.index(self.label)
        return (0, 0x10 + i, 0x10000 + i * self.size, self.size, self.label, False)

    def get_next_update(self):
        return type(self)(LABELS[1 - LABELS.index(self.label)])

    def _file(self):
        try:
            return open(self.path, "r+b")
        except OSError:
            return open(self.path, "w+b")

    def ioctl(self, cmd, arg):
        if cmd == 4:
            return self.size // BLOCK
        if cmd == 5:
            return BLOCK
        if cmd == 6:
            self._erase(arg * BLOCK, BLOCK)
            return 0
        return 0 if cmd in (1, 2, 3) else None

    def _erase(self, at, n):
        if at < 0 or at + n > self.size:
            raise OSError(22)
        blank = b"\xff" * 512  # in pieces: no 4 KB allocation on a small heap
        with self._file() as f:
            f.seek(at)
            while n > 0:
                f.write(blank if n >= 512 else blank[:n])
                n -= 512

    def writeblocks(self, block, buf, offset=None):
        at = block * BLOCK + (offset or 0)
        if offset is None:
            self._erase(at, len(buf))
        if at < 0 or at + len(buf) > self.size:
            raise OSError(22)
        with self._file() as f:
            f.seek(at)
            f.write(buf)

    def readblocks(self, block, buf, offset=0):
        at = block * BLOCK + offset
        with self._file() as f:
            f.seek(at)
            n = f.readinto(buf)
        for i in range(n or 0, len(buf)):
            buf[i] = 0xFF  # never written: erased flash

    def set_boot(self):
        data = _read(self.ROOT)
        data["boot"] = self.label
        data["states"][self.label] = "new"
        _write(self.ROOT, data)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        data = _read(cls.ROOT)
        data["states"][data["running"]] = "valid"
        _write(cls.ROOT, data)


def make(root, image, size=4194304):
    """A simulated flash in `root` whose ota_0 holds the file `image`, valid and booting
    (host tests only: CPython's os.makedirs)."""
    os.makedirs(root, exist_ok=True)
    with open(image, "rb") as src, open(root + "/ota_0.bin", "wb") as dst:
        dst.write(src.read())
    _write(root, {"size": size, "boot": "ota_0", "running": "ota_0",
                  "states": {"ota_0": "valid", "ota_1": "empty"}})


def bootloader(root):
    """A reset: pick the partition to start as ESP-IDF's bootloader does with rollback
    enabled, record it as running -> the path of the image to run."""
    data = _read(root)
    label = data["boot"]
    state = data["states"].get(label)
    if state == "new":
        data["states"][label] = "pending"
    elif state != "valid":
        # A new image that did not confirm itself (or never came up): back to the other one.
        data["states"][label] = "aborted"
        label = LABELS[1 - LABELS.index(label)]
        data["boot"] = label
    data["running"] = label
    _write(root, data)
    path = root + "/" + label + ".bin"
    if hasattr(os, "chmod"):  # host only: the test runs the image as a program
        os.chmod(path, 0o755)
    return path
