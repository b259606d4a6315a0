"""Secret config values (configspec.SECRETS, write-only OCPP keys) never shown by the config
checker, `tools.config show` / `set`, nor the values' log screening set up at load."""
import json

from firmware import config, configspec, keys
from tools import config as tool

PASSWORD = "p" * 41  # one too long: an error that would echo it
WIFI = "wifi-secret-key"


def write(tmp_path, **csms):
    cfg = {"csms": dict({"url": "ws://127.0.0.1:9/ocpp", "id": "CP_1"}, **csms),
           "station": {"vendor": "v", "model": "m"},
           "wifi": {"ssid": "depot", "password": WIFI}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_the_secret_keys_are_marked():
    assert "csms.password" in configspec.SECRETS and "wifi.password" in configspec.SECRETS
    assert keys.secret("AuthorizationKey") and not keys.secret("HeartbeatInterval")
    assert not keys.secret("NoSuchKey")


def test_config_errors_name_a_secret_key_without_its_value(tmp_path, capsys):
    path = write(tmp_path, password=PASSWORD)
    lines = []
    assert tool.check(path, out=lines.append) == 1
    assert any("csms.password = (hidden) - expected 0 to 40 characters" in x for x in lines)
    assert not any(PASSWORD in x for x in lines)


def test_show_masks_secrets_and_url_passwords(tmp_path, capsys):
    path = write(tmp_path, password="hunter22", tls_url="wss://cp:urlpw@host/ocpp")
    assert tool.main(["show", path]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["csms"]["password"] == "***" and shown["wifi"]["password"] == "***"
    assert shown["csms"]["tls_url"] == "wss://cp:***@host/ocpp"
    for secret in ("hunter22", WIFI, "urlpw"):
        assert secret not in out


def test_set_confirms_a_secret_without_echoing_it(tmp_path):
    path = write(tmp_path)
    lines = []
    assert tool.set_value(path, "csms.password", "new-pass-1", out=lines.append) == 0
    assert lines == ["%s: csms.password = ***" % path]
    assert json.load(open(path))["csms"]["password"] == "new-pass-1"
    lines = []
    assert tool.set_value(path, "csms.password", PASSWORD, out=lines.append) == 1
    assert not any(PASSWORD in x for x in lines)


def test_load_hands_the_secret_values_to_the_log_screen(tmp_path):
    cfg = config.load(write(tmp_path, password="hunter22"))
    assert sorted(cfg["_secrets"]) == sorted(["hunter22", WIFI])
