"""The 32-bit unix port with firmware/ and hal/ frozen in (`make unix32`): the host's
stand-in for the ESP32 image (4-byte pointers, 16-byte GC blocks, bytecode in ROM).

    from tests.mp32 import needs_mp32, binary, run_folder

    @needs_mp32
    def test_x(tmp_path):
        mp32 = binary()                       # built once per test run (file lock, xdist-safe)
        cwd = run_folder(tmp_path / "run")    # main.py only: nothing shadows the frozen package
        ...  Charger(mp32, config, repo_root=cwd) / driver.launch(..., cwd=cwd)

MICROPYTHON32 is the binary's path when it exists (else None); build() runs `make unix32`
when firmware/, hal/, the manifests or the Makefile changed since the last build (a stamp
next to the binary) and returns (path, None) or (None, reason). needs_mp32 skips, saying
what is missing, when the build cannot be made here: no MicroPython source (MPY_DIR, or the
pinned tarball in ../shared/micropython) or no 32-bit C toolchain (Debian gcc-multilib).
A build that fails although both are there fails the test (binary()).

Run the binary from a folder without firmware/ or hal/: MicroPython's sys.path is
['', '.frozen', ...], so a package folder in the working directory shadows the frozen one.

`python -m tests.mp32` builds and prints the path (or the reason).
"""
import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD_DIR = os.path.join(ROOT, "build", "unix32")
BINARY = os.path.join(BUILD_DIR, "micropython32")
STAMP = BINARY + ".stamp"
LOCK = os.path.join(ROOT, "build", "unix32.lock")
LOG = os.path.join(ROOT, "build", "unix32.log")
TARBALLS = sorted(glob.glob(os.path.join(ROOT, "..", "shared", "micropython", "*.tar.gz")))
# A cold build takes about a minute on 2 cores (measured 53 s); a loaded CI machine is slower.
BUILD_TIMEOUT = 900

MICROPYTHON32 = BINARY if os.access(BINARY, os.X_OK) else None

_INPUTS = ("firmware", "hal")
_FILES = ("tools/manifest.py", "tools/manifest_unix32.py", "Makefile")


def _mpy_dir():
    """The MicroPython tree `make unix32` uses: MPY_DIR, or the one unpacked into build/."""
    return os.environ.get("MPY_DIR") or os.path.join(ROOT, "build", "micropython")


def missing():
    """Why the 32-bit build cannot be made on this machine, or None when it can."""
    mpy_dir = _mpy_dir()
    if os.environ.get("MPY_DIR"):
        if not os.path.isdir(os.path.join(mpy_dir, "ports", "unix")):
            return "MPY_DIR=%s has no ports/unix (a MicroPython source tree)" % mpy_dir
    elif not os.path.isdir(os.path.join(mpy_dir, "py")) and not TARBALLS:
        return ("no MicroPython source for the 32-bit build: ../shared/micropython/*.tar.gz "
                "not found next to this checkout and MPY_DIR not set")
    cc = os.environ.get("CC", "cc")
    try:
        r = subprocess.run([cc, "-m32", "-static", "-x", "c", "-", "-o", os.devnull],
                           input="int main(void) { return 0; }\n", capture_output=True,
                           text=True, timeout=60)
        ok = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return ("%s cannot link 32-bit static programs: install Debian's gcc-multilib "
                "(apt-get install gcc-multilib)" % cc)
    return None


def _sources_key():
    """A digest of what the frozen binary is built from."""
    h = hashlib.sha256(os.path.abspath(_mpy_dir()).encode())
    paths = [os.path.join(ROOT, f) for f in _FILES]
    for top in _INPUTS:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            paths += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    for path in paths:
        h.update(os.path.relpath(path, ROOT).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


@contextlib.contextmanager
def _locked():
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    with open(LOCK, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # another xdist worker may be building: wait for it
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build():
    """Build the binary unless it is current -> (path, None), or (None, reason) when it is
    missing something (missing()) or `make unix32` failed (the log's tail)."""
    why = missing()
    if why:
        return None, why
    with _locked():
        key = _sources_key()
        if os.access(BINARY, os.X_OK) and _read(STAMP) == key:
            return BINARY, None
        with open(LOG, "w", encoding="utf-8") as log:
            try:
                r = subprocess.run(["make", "-s", "unix32"], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
                failed = r.returncode != 0 and "exit code %d" % r.returncode
            except subprocess.TimeoutExpired:
                failed = "no result within %d s" % BUILD_TIMEOUT
        if failed or not os.access(BINARY, os.X_OK):
            with open(LOG, encoding="utf-8", errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
            return None, "make unix32 failed (%s; %s):\n%s" % (failed or "no binary", LOG, tail)
        with open(STAMP, "w", encoding="utf-8") as f:
            f.write(key + "\n")
        return BINARY, None


def binary():
    """The current binary for a test: skips when missing() says why, fails when the build
    itself failed."""
    path, why = build()
    if path is None:
        if missing():
            pytest.skip(why)
        pytest.fail(why, pytrace=False)
    return path


def run_folder(dest):
    """A working folder for the frozen binary: main.py (the loader, a file on the board too)
    and nothing that shadows the frozen packages. Write config.json there or anywhere
    (driver.write_config / harness.write_config). -> its path as str."""
    dest = os.fspath(dest)
    os.makedirs(dest, exist_ok=True)
    for name in _INPUTS:
        if os.path.exists(os.path.join(dest, name)):
            raise ValueError("%s/%s would shadow the frozen package" % (dest, name))
    shutil.copyfile(os.path.join(ROOT, "main.py"), os.path.join(dest, "main.py"))
    return dest


_MISSING = missing()
needs_mp32 = pytest.mark.skipif(_MISSING is not None,
                                reason="32-bit frozen build unavailable: %s" % _MISSING)


if __name__ == "__main__":
    path, why = build()
    print(path or why)
    sys.exit(0 if path else 1)
