"""Whole-image OTA on the 32-bit frozen build (the host's stand-in for the ESP32 image):
UpdateFirmware brings a signed image bundle, the charger writes it into the next partition
of its simulated flash (hal/ota.py), verifies it, sets it to boot and resets; the test then
plays the bootloader and runs the binary the partition table names. A new image confirms
itself at its first Accepted boot; one that never gets there is rolled back."""
import json
import os
import time

import pytest
from ocpp.v16 import call

from hal import ota
from tests import signing
from tests.harness import Charger, write_config
from tests.mp32 import binary, needs_mp32, run_folder
from tests.scenarios.steps import booted
from tests.scenarios.test_firmware import Web, active, iso, serve_http, statuses
from tools import bundle

pytestmark = needs_mp32

OLD, NEW = "0.1.0", "9.9.9"
# The smallest heap at which the whole update passed in every run measured (11 of 11 at 80K).
# At 64K, the session budget: 3 of 6 runs passed before; 12 of 14 once the P-256 verify peak
# went from 10 to 5 KB, a transfer collects before its first reads and head lines are read
# 128 bytes at a time. The two failures: a 513-byte read of the download (before the line
# reads were made small) and a 512-byte tar block read in the installation (open_bundle).
# Not yet guarded at 64K. IMAGE_OTA_HEAP=64K measures again.
HEAP = os.environ.get("IMAGE_OTA_HEAP", "80K")


def image_bundle(tmp_path, image_bytes, version, key=None):
    src = tmp_path / ("image-%s.bin" % version)
    src.write_bytes(image_bytes)
    dest = str(tmp_path / ("bundle-%s" % version))
    bundle.build_image(dest, str(src), version, key=key or signing.key())
    with open(dest + ".tar", "rb") as f:
        return f.read()


class Board:
    """A simulated ESP32 running the frozen image: flash in <cp>/ota, a reset starts
    whatever the bootloader picks."""

    def __init__(self, tmp_path, csms, mp32, heap=None):
        self.heap = heap  # -X heapsize for every image started (None: the port's default)
        self.home = tmp_path / "CP_1"
        self.cwd = run_folder(tmp_path / "run")
        self.config = write_config(self.home, csms.url, "CP_1")
        signing.trust(self.home, signing.key())
        self.flash = str(self.home / "ota")
        ota.make(self.flash, mp32, size=4 * 1024 * 1024)
        self.runs = []

    def reset(self):
        image = ota.bootloader(self.flash)
        program = image
        if self.heap:  # the image with a heap the size of a board's
            program = str(self.home / ("heap-%d.sh" % len(self.runs)))
            with open(program, "w") as f:
                f.write('#!/bin/sh\nexec "%s" -X heapsize=%s "$@"\n' % (image, self.heap))
            os.chmod(program, 0o755)
        cp = Charger(program, self.config, repo_root=self.cwd,
                     log_path=str(self.home / ("run%d.log" % len(self.runs))))
        self.runs.append((os.path.basename(image), cp))
        cp.start()
        return cp

    def otadata(self):
        with open(self.flash + "/otadata.json") as f:
            return json.load(f)

    def stop(self):
        for _, cp in self.runs:
            try:
                cp.stop()
            except Exception:
                cp.kill()


@pytest.fixture(scope="module")
def web():
    server = Web()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def board(tmp_path, csms, request):
    b = Board(tmp_path, csms, binary(), getattr(request, "param", None))
    yield b
    b.stop()


# With a heap near a board's (HEAP): the download, write and verify must fit next to the
# running charger, no MemoryError anywhere in the runs.
@pytest.mark.parametrize("board", [None, HEAP], ids=["default-heap", "heap-" + HEAP],
                         indirect=True)
def test_image_update_switches_reboots_and_confirms(csms, board, web, tmp_path):
    with open(binary(), "rb") as f:
        old = f.read()
    # Another image: the same program with a trailer (an ELF file runs with bytes after it).
    new = old + b"\0image " + NEW.encode() + b"\0" * 100
    url = serve_http(web, "image-%s.tar" % tmp_path.name,
                     image_bundle(tmp_path, new, NEW))
    cp = board.reset()
    booted(csms)
    assert csms.messages("BootNotification")[-1]["firmwareVersion"] == OLD
    csms.call(call.UpdateFirmware(location=url, retrieve_date=iso(time.time())))
    statuses(csms, "Downloading", "Downloaded", "Installing", timeout=60)
    line = cp.wait_log("written to ota_1 and verified in", timeout=120)
    cp.wait_log("loader: resetting to boot the new firmware image", timeout=30)
    assert cp.wait(15) == 0 or cp.returncode == 0
    assert board.otadata()["states"]["ota_1"] == "new"
    n = len(csms.messages("BootNotification"))
    cp2 = board.reset()
    assert board.runs[-1][0] == "ota_1.bin"
    assert open(board.flash + "/ota_1.bin", "rb").read()[:len(new)] == new
    deadline = time.monotonic() + 30
    while len(csms.messages("BootNotification")) <= n and time.monotonic() < deadline:
        time.sleep(0.1)
    boot = csms.messages("BootNotification")[-1]
    assert boot["firmwareVersion"] == NEW
    statuses(csms, "Installed", timeout=30)
    cp2.wait_log("image 9.9.9 on ota_1 confirmed")
    for _, run in board.runs:
        assert not [x for x in run.output() if "MemoryError" in x], run.tail()
    data = board.otadata()
    assert data["states"]["ota_1"] == "valid" and data["running"] == "ota_1"
    assert active(cp2)["confirmed"] is True
    print("image write and verify:", line)
    # Confirmed: the next reset boots it again.
    cp2.stop()
    board.reset()
    assert board.runs[-1][0] == "ota_1.bin"


def test_a_frozen_charger_refuses_an_mpy_bundle(csms, board, web, tmp_path):
    dest = str(tmp_path / "mpy")
    bundle.build(dest, include_config=False, key=signing.key())
    with open(dest + ".tar", "rb") as f:
        url = serve_http(web, "mpy-%s.tar" % tmp_path.name, f.read())
    cp = board.reset()
    booted(csms)
    csms.call(call.UpdateFirmware(location=url, retrieve_date=iso(time.time())))
    statuses(csms, "Downloading", "Downloaded", "Installing", "InstallationFailed", timeout=60)
    cp.wait_log("installation failed: a bundle of kind mpy; this charger takes image")
    assert board.otadata()["boot"] == "ota_0" and board.otadata()["states"]["ota_1"] == "empty"
    assert os.path.isdir(str(board.home / "data"))
    assert not os.path.exists(str(board.home / "data" / "app" / "a"))


def test_broken_image_is_rolled_back_by_the_bootloader(csms, board, web, tmp_path):
    broken = b"#!/bin/sh\necho 'broken image: no application'\nexit 1\n"
    url = serve_http(web, "broken-%s.tar" % tmp_path.name, image_bundle(tmp_path, broken, NEW))
    cp = board.reset()
    booted(csms)
    csms.call(call.UpdateFirmware(location=url, retrieve_date=iso(time.time())))
    statuses(csms, "Downloading", "Downloaded", "Installing", timeout=60)
    cp.wait_log("loader: resetting to boot the new firmware image", timeout=120)
    cp.wait(15)
    n = len(csms.messages("BootNotification"))
    bad = board.reset()            # the new image: it dies before any BootNotification
    assert board.runs[-1][0] == "ota_1.bin"
    assert bad.wait(15) == 1 or bad.returncode == 1
    assert len(csms.messages("BootNotification")) == n
    cp3 = board.reset()            # the watchdog's reset: the bootloader goes back
    assert board.runs[-1][0] == "ota_0.bin"
    assert board.otadata()["states"]["ota_1"] == "aborted"
    deadline = time.monotonic() + 30
    while len(csms.messages("BootNotification")) <= n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert csms.messages("BootNotification")[-1]["firmwareVersion"] == OLD
    statuses(csms, "InstallationFailed", timeout=30)
    cp3.wait_log("image 9.9.9 on ota_1 did not come up; back on ota_0")
    assert [m["status"] for m in csms.messages("FirmwareStatusNotification")] == [
        "Downloading", "Downloaded", "Installing", "InstallationFailed"]
