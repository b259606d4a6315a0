"""config.json validation: every problem names the key, what was found and the fix;
a broken file falls back to the last good config."""
import json
import os
import shutil

import pytest

from firmware import config
from firmware.log import Log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def good():
    with open(os.path.join(ROOT, "config.json")) as f:
        return json.load(f)


def problems_of(mutate):
    cfg = good()
    mutate(cfg)
    return config.validate(cfg)


def test_shipped_config_is_valid():
    assert config.validate(good()) == []


def _set(path, value):
    def mutate(cfg):
        node = cfg
        parts = path.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return mutate


def _delete(path):
    def mutate(cfg):
        node = cfg
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[p]
        del node[parts[-1]]
    return mutate


BAD = [
    ("csms.url", _set("csms.url", "htp://host/ocpp"), "ws:// or wss://"),
    ("csms.url", _set("csms.url", 42), "string"),
    ("csms.url", _delete("csms.url"), "missing"),
    ("csms.id", _set("csms.id", ""), "1 to 48"),
    ("csms.id", _set("csms.id", "x" * 49), "1 to 48"),
    ("csms.verify_tls", _set("csms.verify_tls", "yes"), "true or false"),
    ("csms.max_message", _set("csms.max_message", 10), "1024 to 65536"),
    ("csms.password", _set("csms.password", "p" * 41), "0 to 40"),
    ("station.vendor", _delete("station.vendor"), "missing"),
    ("station.vendor", _set("station.vendor", "v" * 21), "1 to 20"),
    ("station.connectors", _set("station.connectors", 0), "1 to 8"),
    ("station.connectors", _set("station.connectors", 1.5), "whole number"),
    ("station.connectors", _set("station.connectors", True), "whole number"),
    ("station.phases", _set("station.phases", 4), "1 to 3"),
    ("log.level", _set("log.level", "verbose"), "one of debug"),
    ("csms.urll", _set("csms.urll", "ws://x"), "unknown key"),
    ("sttion", _set("sttion", {}), "unknown section"),
    ("ocpp.HeartbeatInterval", _set("ocpp.HeartbeatInterval", -5), "1..86400"),
    ("ocpp.HeartbeatInterval", _set("ocpp.HeartbeatInterval", "often"), "whole number"),
    ("ocpp.MeterValuesSampledData", _set("ocpp.MeterValuesSampledData", "Energy.Bogus"),
     "unsupported measurand"),
    ("ocpp.NoSuchKey", _set("ocpp.NoSuchKey", 1), "unknown OCPP key"),
    ("csms.client_cert", _set("csms.client_cert", "cp.pem"), "set both or none"),
    ("csms.client_key", _set("csms.client_key", "cp.key"), "set both or none"),
    ("ocpp.AuthorizationKey", _set("ocpp.AuthorizationKey", "ab" * 16), "write-only key"),
    ("ocpp.SecurityProfile", _set("ocpp.SecurityProfile", 4), "0..3"),
    ("csms.allow_plain_basic_auth", _set("csms.allow_plain_basic_auth", 1), "true or false"),
    ("ocpp.SupportedFeatureProfiles", _set("ocpp.SupportedFeatureProfiles", "Core"), "read-only"),
    ("ocpp.StopTransactionOnInvalidId", _set("ocpp.StopTransactionOnInvalidId", "maybe"),
     "true or false"),
]


@pytest.mark.parametrize("path,mutate,expected", BAD,
                         ids=["%s-%d" % (b[0], i) for i, b in enumerate(BAD)])
def test_bad_value_is_named_with_its_fix(path, mutate, expected):
    problems = problems_of(mutate)
    assert len(problems) == 1, problems
    assert problems[0].startswith(path), problems
    assert expected in problems[0], problems


def test_defaults_are_filled():
    cfg = good()
    del cfg["log"]
    assert config.validate(cfg) == []
    assert cfg["log"]["level"] == "info"
    assert cfg["csms"]["max_message"] == 8192


@pytest.mark.parametrize("text,line,words", [
    ('{\n  "csms": {\n    "url": "ws://x"\n    "id": "CP"\n  }\n}', 4, "expected ',' or '}'"),
    ('{\n  "a": 1,\n}', 3, "trailing ','"),
    ("{\n  'a': 1\n}", 2, "double quotes"),
    ('{\n  "a": tru\n}', 2, "expected a value"),
    ('{\n  "a": "open\n}', 2, "not closed"),
    ('{"a": 1} x', 1, "after the end"),
    ('', 1, "end of file"),
])
def test_syntax_error_names_the_line(text, line, words):
    cfg, problems = config.parse(text)
    assert cfg is None
    assert problems[0].startswith("line %d:" % line), problems
    assert words in problems[0]


def test_broken_file_falls_back_to_last_good(tmp_path):
    path = str(tmp_path / "config.json")
    shutil.copy(os.path.join(ROOT, "config.json"), path)
    cfg = config.load(path, Log("error"))
    assert cfg["csms"]["id"] == "CP_1" and "_invalid" not in cfg
    with open(path, "w") as f:
        f.write('{"csms": {"url": "htp://broken"}}')
    cfg = config.load(path, Log("error"))
    assert cfg["_invalid"] is True
    assert cfg["csms"]["url"] == "ws://127.0.0.1:9000/ocpp"  # the last good one


def test_broken_file_without_last_good_is_an_error(tmp_path):
    path = str(tmp_path / "config.json")
    with open(path, "w") as f:
        f.write('{"csms": ')
    with pytest.raises(config.ConfigError):
        config.load(path, Log("error"))


def test_unknown_hardware_and_wifi_keys_are_named():
    problems = problems_of(_set("hardware.relay.pn", 4))
    assert problems == ["hardware.relay.pn - unknown key; remove it or check the spelling"]
    problems = problems_of(_set("wifi.static.gatway", "1.2.3.4"))
    assert problems and problems[0].startswith("wifi.static.gatway - unknown key")


@pytest.mark.parametrize("name", ["micropython", "python3"])
def test_broken_config_without_a_last_good_copy_ends_with_the_problems_and_exit_2(tmp_path, name):
    import subprocess
    from tests.mp import INTERPRETERS
    exe = INTERPRETERS[name]
    cfg = good()
    cfg["csms"]["url"] = "http://example"
    cfg["data_dir"] = str(tmp_path / "data")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    out = subprocess.run([exe, "main.py", str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "csms.url" in out.stdout
    assert "config: %s is invalid and no last good config exists" % path in out.stdout
