"""Static checks of the ESP32 device code.

mypy runs over hal/ and boot.py as MicroPython sees them: the standard library
comes from micropython-stdlib-stubs (given to mypy as its typeshed) and
`machine`, `network`, `time` ... from micropython-esp32-stubs, so a wrong
keyword to machine.Pin or a CPython-only call such as time.monotonic() fails.
Both stub packages install their .pyi files at the top of site-packages, which
mypy refuses as a search path, so they are copied into a temporary tree.
firmware/ is followed silently (compat.py holds the CPython branches).
"""
import importlib
import importlib.metadata as md
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ESP32_STUBS = "micropython-esp32-stubs"
STDLIB_STUBS = "micropython-stdlib-stubs"


def _dist_files(name):
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        pytest.skip(name + " is not installed (see requirements-dev.txt)")
    files = dist.files or []
    return [(f, Path(dist.locate_file(f))) for f in files]


def _copy(files, dest, keep):
    n = 0
    for rel, src in files:
        parts = Path(str(rel)).parts
        if not keep(parts) or not src.is_file():
            continue
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        n += 1
    return n


@pytest.fixture(scope="module")
def stub_tree(tmp_path_factory):
    pytest.importorskip("mypy", reason="mypy is not installed (see requirements-dev.txt)")
    base = tmp_path_factory.mktemp("mpy-stubs")
    typings = base / "typings"
    typeshed = base / "typeshed"
    esp32 = _dist_files(ESP32_STUBS)
    stdlib = _dist_files(STDLIB_STUBS)
    assert _copy(esp32, typings,
                 lambda p: p[-1].endswith(".pyi") and ".dist-info" not in p[0]) > 20
    assert _copy(stdlib, typings, lambda p: p[0] == "_mpy_shed") > 0
    assert _copy(stdlib, typeshed, lambda p: p[0] in ("stdlib", "stubs")) > 0
    assert (typings / "machine.pyi").is_file() and (typings / "network.pyi").is_file()
    assert (typeshed / "stdlib" / "VERSIONS").is_file()
    ini = base / "mypy.ini"
    ini.write_text(
        "[mypy]\n"
        "python_version = 3.11\n"
        "check_untyped_defs = True\n"
        # firmware/compat.py and the stubs are read for types, not judged
        "follow_imports = silent\n"
        "follow_imports_for_stubs = True\n"
        "custom_typeshed_dir = %s\n"
        "mypy_path = %s\n"
        "cache_dir = %s\n" % (typeshed, typings, base / "cache"))
    return ini


def _mypy(ini, *targets):
    env = dict(os.environ)
    env.pop("MYPYPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ini), *targets],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_mypy_hal_and_boot_against_micropython_stubs(stub_tree):
    r = _mypy(stub_tree, "hal", "boot.py")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_setup_catches_misuse(stub_tree, tmp_path):
    # Guards the check itself: a tree that let anything through would pass the
    # test above trivially.
    bad = tmp_path / "probe_misuse.py"
    bad.write_text(
        "import time\n"
        "def f():\n"
        "    from machine import Pin\n"
        "    Pin(2, Pin.OUT, valu=1)\n"
        "    return time.monotonic()\n")
    r = _mypy(stub_tree, str(bad))
    assert r.returncode == 1
    assert '"valu"' in r.stdout and "monotonic" in r.stdout


HAL_MODULES = sorted(".".join(p.relative_to(ROOT / "hal").with_suffix("").parts)
                     for p in (ROOT / "hal").rglob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", HAL_MODULES)
def test_hal_modules_import_without_machine(name):
    # Device modules import `machine` only inside functions.
    assert importlib.util.find_spec("machine") is None
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    importlib.import_module("hal." + name)


def _micropython():
    from tests.mp import MICROPYTHON
    return MICROPYTHON if os.access(MICROPYTHON, os.X_OK) else shutil.which("micropython")


DEVICE_FILES = ["boot.py"] + ["hal/%s.py" % n.replace(".", "/") for n in HAL_MODULES]


@pytest.mark.parametrize("path", DEVICE_FILES)
def test_device_files_compile_for_micropython(path):
    mp = _micropython()
    if mp is None:
        pytest.skip("micropython unix port not installed")
    r = subprocess.run([mp, "-X", "compile-only", path], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# Pure driver logic run by the MicroPython unix port itself: catches CPython-only
# behaviour (struct, bytes, int and float details) that mypy cannot see.
MP_SMOKE = r"""
from hal.modbus import read_request, parse_response, with_crc, float32, ModbusMaster, ModbusError
from hal.pilot import duty_for_current, classify_pilot
from hal.parts import unix_to_datetime, datetime_to_unix
from hal.rfid_mfrc522 import crc_a
from hal.rfid_token import id_tag, TokenReader
from hal.led import level_at
from hal.s0 import S0Meter
from hal.sdm import SdmMeter
import struct
assert read_request(1, 0, 2) == b"\x01\x04\x00\x00\x00\x02\x71\xcb"
frame = with_crc(bytes((1, 4, 4)) + struct.pack(">f", 230.5))
assert float32(parse_response(frame, 1, 2)) == 230.5
try:
    parse_response(with_crc(bytes((1, 0x84, 2))), 1, 2)
    raise AssertionError("no exception")
except ModbusError as e:
    assert e.kind == "exception" and e.code == 2
assert abs(duty_for_current(16) - 26.6667) < 0.001 and abs(duty_for_current(63) - 89.2) < 0.001
assert classify_pilot(9.0) == "B" and classify_pilot(-12.0) == "F"
for t in (0, 946684800, 1700000000, 4102444799):
    assert datetime_to_unix(unix_to_datetime(t)) == t
assert unix_to_datetime(1700000000) == (2023, 11, 14, 1, 22, 13, 20, 0)
assert crc_a(b"\x50\x00") == b"\x57\xcd"
assert id_tag(b"\x04\xa2\x1b\x7f") == "04A21B7F"
assert level_at((100, 100), 150) is False and level_at((1, 0), 7) is True

class Clock:
    t = 0
    def __call__(self):
        return self.t

clk = Clock()
m = S0Meter(1000, clock=clk)
for _ in range(5):
    m.irq()
    clk.t += 1800
clk.t -= 1800
assert m.energy_wh() == 5 and abs(m.power_w() - 2000.0) < 1

class Uart:
    def __init__(self):
        self.rx = b""
    def write(self, b):
        self.rx = with_crc(bytes((1, 4, 4)) + struct.pack(">f", 1234.5))
        return len(b)
    def any(self):
        return len(self.rx)
    def read(self, n):
        out, self.rx = self.rx[:n], self.rx[n:]
        return out

sdm = SdmMeter(ModbusMaster(Uart(), clock=clk), 1, "sdm120")
sdm.poll()
sdm.poll()
assert sdm.energy_wh() == 1234500, sdm.energy_wh()
print("mp-smoke-ok")
"""


def test_driver_logic_runs_on_micropython():
    mp = _micropython()
    if mp is None:
        pytest.skip("micropython unix port not installed")
    r = subprocess.run([mp, "-c", MP_SMOKE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "mp-smoke-ok" in r.stdout, r.stdout + r.stderr
