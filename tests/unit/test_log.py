"""firmware.log: the flash budget (forced flushes per second, a bounded batch, dropped lines
noted) and message truncation, on both interpreters."""
import json

import pytest

from tests.mp import run_mp

# Prints one JSON object of figures; argv[1] is the log folder. Same code on both ports.
SCRIPT = """
import json, sys, time
from firmware.log import Log

folder = sys.argv[1]
log = Log("info", lambda: 43200, folder)
out = {}
# 1000 warnings at once (an unmatched-reply flood): bounded writes, RAM and lines.
for i in range(1000):
    log.warn("rpc", "unmatched reply %d ignored" % i)
out["flood_writes"] = log.writes
out["flood_pending"] = len(log._pending)
# An error right behind the flood is still written at once.
log.error("hw", "connector 1: GroundFailure")
out["error_writes"] = log.writes
out["error_pending"] = len(log._pending)
# Within the same second: 16 more warnings wait, and a second error, over the budget
# now, pushes out the oldest of them rather than being dropped.
for i in range(16):
    log.warn("rpc", "more %d" % i)
log.error("hw", "connector 2: HighTemperature")
out["second_error_writes"] = log.writes
log.flush()  # the charger's periodic flush
out["after_flush"] = log.writes
# Past the second, warnings are written again at once.
time.sleep(1.1)
log.warn("rpc", "late")
out["late_writes"] = log.writes
# A 6 KB message is cut.
log.info("rpc", "x" * 6000)
log.flush()
out["lines"] = [text for t, text in log.lines()]
print(json.dumps(out))
"""


def run_script(interpreter, tmp_path):
    folder = tmp_path / interpreter
    folder.mkdir()
    if interpreter == "micropython":
        proc = run_mp(SCRIPT, str(folder), timeout=30)
    else:
        import subprocess
        import sys
        from tests.mp import ROOT
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], cwd=ROOT,
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("interpreter", ["micropython", "python3"])
def test_a_flood_of_warnings_costs_a_bounded_number_of_flash_writes(interpreter, tmp_path):
    out = run_script(interpreter, tmp_path)
    # The first warning is written at once; the rest of the second's flood waits in a
    # batch of 16 lines, and what does not fit is dropped (counted).
    assert out["flood_writes"] == 1
    assert out["flood_pending"] == 16
    # An error right behind it is written at once (an error may force a second flush).
    assert out["error_writes"] == 2 and out["error_pending"] == 0
    assert out["second_error_writes"] == 2
    assert out["after_flush"] == 3
    assert out["late_writes"] == 4
    lines = out["lines"]
    assert lines[0].endswith("W rpc: unmatched reply 0 ignored")
    assert lines[16].endswith("W rpc: unmatched reply 16 ignored")
    assert lines[17].endswith("E hw: connector 1: GroundFailure")
    assert lines[18].endswith("W log: lines dropped (flash budget): 983")
    assert lines[19].endswith("W rpc: more 1")  # "more 0" made room for the error
    assert lines[34].endswith("E hw: connector 2: HighTemperature")
    assert lines[35].endswith("W log: lines dropped (flash budget): 1")
    assert lines[36].endswith("W rpc: late")
    # 43200 s after 1970 is no plausible time: marked as a clock never set.
    assert lines[37] == "unset:1970-01-01T12:00:00Z I rpc: " + "x" * 200 + "..."
    assert len(lines) == 38
