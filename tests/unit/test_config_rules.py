"""The config checker's rules beyond one key, the same on MicroPython and CPython: strict
JSON, dangerous wiring, wss without a CA file, rules between keys, data_dir. Each case runs
through firmware/config.py on both interpreters (tests/unit/config_rules_check.py)."""
import json
import os
import subprocess

import pytest

from tests.mp import INTERPRETERS
from tools.driver import ROOT


def _cfg(**changes):
    with open(os.path.join(ROOT, "config.json")) as f:
        cfg = json.load(f)
    for path, value in changes.items():
        node = cfg
        parts = path.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return json.dumps(cfg, indent=2)


# name -> (config text, board (a real board: no CA store), expected problem, expected warning)
CASES = {
    "missing_comma": ('{\n  "csms": {"url": "ws://x/ocpp"\n  "id": "CP_1"}\n}', False,
                      "line 3: expected ',' or '}' after a value", None),
    "two_values": ('{"a": 1 2}', False, "line 1: expected ',' or '}' after a value", None),
    "value_missing": ('{"a": 26,\n "b": }', False, "line 2: expected a value", None),
    "empty_element": ("[1,,2]", False, "line 1: expected a value", None),
    "leading_zero": ('{"a": 01}', False, "line 1: bad number: no leading zeros", None),
    "bad_escape": ('{"a": "C:\\data"}', False, "line 1: bad escape in a string", None),
    "relay_on_input_only": (_cfg(hardware__relay__pin=36, hardware__pilot__adc_pin=39), False,
                            "hardware.relay.pin = 36 - GPIO 36 is input-only and cannot drive"
                            " an output; pick an output-capable GPIO (not 34-39)", None),
    "rfid_cs_on_flash": (_cfg(hardware__rfid__type="mfrc522", hardware__rfid__cs_pin=6), False,
                         "hardware.rfid.cs_pin = 6 - GPIO 6-11 belong to the SPI flash", None),
    "led_on_relay_pin": (_cfg(hardware__led__pin=26), False,
                         "hardware.led.pin = 26 - GPIO 26 is already used by hardware.relay.pin;"
                         " give each part its own GPIO", None),
    "pilot_adc2_wifi": (_cfg(hardware__pilot__adc_pin=25, wifi__ssid="Site"), False,
                        "hardware.pilot.adc_pin = 25 - GPIO 25 is on ADC2, which cannot be read"
                        " while WiFi is on; use an ADC1 GPIO (32-39)", None),
    "unused_rfid_pins_may_overlap": (_cfg(hardware__rfid__cs_pin=26), False, None, None),
    "wss_without_ca_on_a_board": (_cfg(csms__url="wss://csms.example.com/ocpp"), True,
                                  "csms.ca_file is empty - a board needs the Central System's"
                                  " CA certificate (PEM) for wss://", None),
    "security_profile_2_without_ca_on_a_board": (_cfg(ocpp__SecurityProfile=2), True,
                                                  "csms.ca_file is empty - a board needs", None),
    "wss_without_ca_on_a_host": (_cfg(csms__url="wss://csms.example.com/ocpp"), False,
                                 None, None),
    "ca_outside_the_folder": (_cfg(csms__url="wss://h/ocpp", csms__ca_file="../ca.pem"), True,
                              'csms.ca_file = "../ca.pem" - must be a path inside the config'
                              " folder", None),
    "ca_missing": (_cfg(csms__url="wss://h/ocpp", csms__ca_file="ca.pem"), True,
                   'csms.ca_file = "ca.pem" - ', None),
    "id_colon_with_password": (_cfg(csms__id="site:1", csms__password="pw"), False,
                               'csms.id = "site:1" - must not contain \':\' when csms.password'
                               " is set", None),
    "reconnect_min_above_max": (_cfg(csms__reconnect_min=90, csms__reconnect_max=60), False,
                                "csms.reconnect_min = 90 - must not be above"
                                " csms.reconnect_max (60)", None),
    "number_of_connectors": (_cfg(ocpp__NumberOfConnectors=2), False,
                             "ocpp.NumberOfConnectors = 2 - station.connectors (1) sets it",
                             None),
    "url_ends_in_id": (_cfg(csms__url="ws://h:9000/ocpp/CP_1"), False, None,
                       'csms.url = "ws://h:9000/ocpp/CP_1" - already ends in the charger id'
                       ' CP_1; it is used as it is, but must then change with csms.id; set'
                       ' csms.url to "ws://h:9000/ocpp" and the charger adds the id'),
    "data_dir_is_a_file": (_cfg(data_dir="afile"), False, 'data_dir = "afile" - ', None),
}

CLAIMS = {
    "claim_new": "ok", "claim_same": "ok",
    "claim_other": "belongs to charger CP_A",
    "claim_board": "ok", "claim_file": "is not a folder that can be created",
}


def check_everywhere(tmp_path_factory, prefix, cases):
    """Run tests/unit/config_rules_check.py over `cases` ((name, config text, board)) on each
    interpreter -> {interpreter: {name: result}}. Each interpreter claims
    folders of its own: their paths (the only difference) read WORK."""
    base = tmp_path_factory.mktemp(prefix)
    (base / "afile").write_text("x")
    cases = [[name, str(base), text, board] for name, text, board in cases]
    path = base / "cases.json"
    path.write_text(json.dumps(cases))
    got = {}
    for name, exe in INTERPRETERS.items():
        if not os.access(exe, os.X_OK):
            pytest.skip("%s not installed" % exe)
        work = tmp_path_factory.mktemp(name)
        (work / "afile").write_text("x")
        r = subprocess.run([exe, "tests/unit/config_rules_check.py", str(path), ROOT,
                            str(work)], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        got[name] = json.loads(r.stdout.strip().splitlines()[-1].replace(str(work), "WORK"))
    return got


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return check_everywhere(tmp_path_factory, "rules",
                            [(name, text, board) for name, (text, board, _, _) in CASES.items()])


def _one(found, expected):
    if expected is None:
        assert found == [], found
    else:
        assert len(found) == 1 and found[0].startswith(expected), found


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_config_rule(results, interpreter, name):
    _, _, problem, warning = CASES[name]
    got = results[interpreter][name]
    _one(got["problems"], problem)
    _one(got["warnings"], warning)


@pytest.mark.parametrize("name", sorted(CLAIMS))
@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_data_dir_belongs_to_one_charger(results, interpreter, name):
    assert CLAIMS[name] in results[interpreter][name]["problems"][0]


def test_both_interpreters_give_the_same_messages(results):
    assert results["micropython"] == results["python3"]


def _run(interpreter, *args, input=None, cwd=ROOT):
    exe = INTERPRETERS[interpreter]
    if not os.access(exe, os.X_OK):
        pytest.skip("%s not installed" % exe)
    return subprocess.run([exe, os.path.join(ROOT, "main.py")] + [str(a) for a in args],
                          cwd=str(cwd), input=input, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_a_mistyped_config_path_is_a_usage_error(interpreter, tmp_path):
    r = _run(interpreter, "nosuch.json", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["main.py: error: config file nosuch.json: no such file",
                                     "usage: micropython main.py [CONFIG]  (--help for more)"]
    assert not (tmp_path / "data").exists()  # it never ran as another charger


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_help_prints_usage(interpreter, tmp_path):
    r = _run(interpreter, "--help", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("usage: micropython main.py [CONFIG]")
    assert not (tmp_path / "data").exists()


def _config(tmp_path, **changes):
    path = tmp_path / "config.json"
    path.write_text(_cfg(**changes))
    return path


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_an_unusable_data_dir_is_named_without_a_traceback(interpreter, tmp_path):
    (tmp_path / "afile").write_text("x")
    _config(tmp_path, data_dir="afile/data")
    r = _run(interpreter, "config.json", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert ("E config: config.json: data_dir afile/data is not a folder that can be created"
            in r.stdout)


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_two_chargers_cannot_share_a_data_dir(interpreter, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "charger.id").write_text("CP_OTHER")
    r = _run(interpreter, _config(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "belongs to charger CP_OTHER" in r.stdout


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_broken_json_falls_back_to_the_last_good_config_on_both(interpreter, tmp_path):
    path = _config(tmp_path, csms__url="ws://127.0.0.1:9/ocpp")
    r = _run(interpreter, path, input="quit\n")
    assert r.returncode == 0, r.stdout + r.stderr
    path.write_text(path.read_text().replace('"id": "CP_1",', '"id": "CP_1"', 1))
    r = _run(interpreter, path, input="quit\n")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "E config: %s: line 5: expected ',' or '}' after a value" % path in r.stdout
    assert "W config: running with the last good config from" in r.stdout


def test_tools_config_check_says_did_you_mean(tmp_path, capsys):
    from tools import config as tool
    path = _config(tmp_path, csms__reconect_max=10)
    assert tool.main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert ("csms.reconect_max - unknown key; remove it or check the spelling (did you mean"
            " csms.reconnect_max") in out


def test_tools_config_set_takes_the_file_last_and_gives_no_quoting_advice_for_numbers(
        tmp_path, capsys):
    from tools import config as tool
    path = _config(tmp_path)
    assert tool.main(["set", "csms.reconnect_max", "0.5", str(path)]) == 1
    out = capsys.readouterr().out
    assert "csms.reconnect_max = 0.5 - expected 1 to 3600" in out
    assert "quote" not in out
    assert tool.main(["set", "csms.reconnect_max", "30", "--config", str(path)]) == 0
    assert tool.main(["show", "--config", str(path)]) == 0
    assert '"reconnect_max": 30' in capsys.readouterr().out


def test_a_board_without_a_usable_config_says_why_and_tries_again(monkeypatch, tmp_path,
                                                                   capsys):
    """No reset loop: the board prints the problem and looks again after a minute."""
    from firmware import app, compat
    (tmp_path / "config.json").write_text('{"csms": ')
    slept = []

    class Enough(Exception):
        pass

    def sleep_ms(ms):
        slept.append(ms)
        if len(slept) == 2:
            raise Enough
    monkeypatch.setattr(app, "ON_DEVICE", True)
    monkeypatch.setattr(compat, "sleep_ms", sleep_ms)
    with pytest.raises(Enough):
        app.load_config(str(tmp_path / "config.json"), None)
    out = capsys.readouterr().out
    assert slept == [60000, 60000]
    assert out.count("config: trying again in 60 s") == 2
    assert "line 1: unexpected end of file, a value is missing" in out
