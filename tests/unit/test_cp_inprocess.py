"""The OCPP layer in-process (tests/unit/cp_cases.py): every case on CPython, one by one, and
the whole set on the MicroPython unix port."""
import asyncio

import pytest

from tests.mp import run_mp
from tests.unit import cp_cases


@pytest.mark.parametrize("case", cp_cases.CASES, ids=lambda c: c.__name__[5:])
def test_case_on_cpython(case, tmp_path):
    asyncio.run(cp_cases.run(case, str(tmp_path)))


def test_every_case_on_micropython(tmp_path):
    proc = run_mp("tests/unit/cp_cases.py", tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert "%d passed, 0 failed" % len(cp_cases.CASES) in out, out
