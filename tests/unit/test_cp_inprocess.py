"""The OCPP layer in-process (tests/unit/cp_cases.py): every case on CPython, one by one, and
the whole set on the MicroPython unix port."""
import asyncio
import os
import subprocess
import sys

import pytest

from tests.unit import cp_cases

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


@pytest.mark.parametrize("case", cp_cases.CASES, ids=lambda c: c.__name__[5:])
def test_case_on_cpython(case, tmp_path):
    asyncio.run(cp_cases.run(case, str(tmp_path)))


def test_every_case_on_micropython(tmp_path):
    if not os.access(MICROPYTHON, os.X_OK):
        pytest.skip("micropython not found at " + MICROPYTHON)
    proc = subprocess.run([MICROPYTHON, "tests/unit/cp_cases.py", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert "%d passed, 0 failed" % len(cp_cases.CASES) in out, out
