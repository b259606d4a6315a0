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
    assert _copy(esp32, typings, lambda p: p[-1].endswith(".pyi") and ".dist-info" not in p[0]) > 20
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


HAL_MODULES = sorted(p.stem for p in (ROOT / "hal").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", HAL_MODULES)
def test_hal_modules_import_without_machine(name):
    # Device modules import `machine` only inside functions.
    assert importlib.util.find_spec("machine") is None
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    importlib.import_module("hal." + name)


def _micropython():
    exe = Path(sys.executable).with_name("micropython")
    if exe.is_file():
        return str(exe)
    return shutil.which("micropython")


DEVICE_FILES = ["boot.py"] + ["hal/%s.py" % n for n in HAL_MODULES]


@pytest.mark.parametrize("path", DEVICE_FILES)
def test_device_files_compile_for_micropython(path):
    mp = _micropython()
    if mp is None:
        pytest.skip("micropython unix port not installed")
    r = subprocess.run([mp, "-X", "compile-only", path], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
