"""Run code under the MicroPython unix port from a test.

    from tests.mp import run_mp
    proc = run_mp(SNIPPET, "arg", heap="128K", input="...")   # source text: run with -c
    proc = run_mp("tests/unit/auth_mp_check.py", folder)      # a path ending in .py
    assert proc.returncode == 0, proc.stdout + proc.stderr

cwd is the repository root (so `firmware` imports); the test is skipped, saying why, when
the binary is not installed. `needs_mp` marks a test that starts MICROPYTHON another way.
"""
import os
import subprocess
import sys

import pytest

from tools.driver import MICROPYTHON, ROOT

# The interpreters the firmware runs on, by name.
INTERPRETERS = {"micropython": MICROPYTHON, "python3": sys.executable}

_MISSING = "micropython not found at %s (`make setup` installs it)" % MICROPYTHON

needs_mp = pytest.mark.skipif(not os.access(MICROPYTHON, os.X_OK), reason=_MISSING)


def run_mp(script, *args, heap=None, input=None, timeout=60, cwd=ROOT):
    """Run `script` (MicroPython source, or the path of a .py file) with `args` and the
    text `input` on stdin; `heap` is the -X heapsize value ("128K"). -> CompletedProcess
    with text stdout and stderr (UTF-8)."""
    if not os.access(MICROPYTHON, os.X_OK):
        pytest.skip(_MISSING)
    script = os.fspath(script)
    argv = [MICROPYTHON]
    if heap is not None:
        argv += ["-X", "heapsize=%s" % heap]
    if script.endswith(".py") and "\n" not in script:
        argv.append(script)
    else:
        argv += ["-c", script]
    argv += [str(a) for a in args]
    return subprocess.run(argv, cwd=str(cwd), input=input, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout)
