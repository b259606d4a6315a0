"""Run by tests/unit/test_config_rules.py on MicroPython and CPython: each case of the JSON
file argv[1] through the firmware's config checker; prints one JSON object of the results,
so the test can require the same messages from both interpreters."""
import json
import sys

sys.path.insert(0, sys.argv[2])  # the repository root
from firmware import config, store  # noqa: E402

with open(sys.argv[1]) as f:
    cases = json.loads(f.read())
out = {}
for name, base, text, board in cases:
    warnings = []
    cfg, problems = config.parse(text, warnings)
    if cfg is not None and not problems:
        problems = config.check_paths(cfg, base, board)
    out[name] = {"problems": problems, "warnings": warnings}
for name, data, cid, device in (("claim_new", "claim", "CP_A", False),
                                ("claim_same", "claim", "CP_A", False),
                                ("claim_other", "claim", "CP_B", False),
                                ("claim_board", "claim", "CP_B", True),
                                ("claim_file", "afile", "CP_A", False)):
    folder = store.join(sys.argv[3], data)
    out[name] = {"problems": [config.claim(folder, cid, device, None) or "ok"], "warnings": []}
print(json.dumps(out))
