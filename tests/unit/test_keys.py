"""The OCPP key table (firmware/keys.py): rows, lookups, defaults, GetConfiguration order."""
import pytest

from firmware import keys
from tests.fakes import Log


def make(tmp_path, initial=None, connectors=1):
    return keys.Keys(initial or {}, str(tmp_path / "keys.json"), connectors, Log())


def test_rows_are_well_formed():
    rows = keys._T[1:-1].split(";")
    names = keys.names()
    assert keys._T[0] == keys._T[-1] == ";" and len(rows) == len(names) == len(set(names)) == 46
    for row in rows:
        f = row.split(" ")
        assert len(f) in (4, 5), row
        name, kind, access, default = f[:4]
        assert name and kind in "ibcs" and len(kind) == 1 and access in ("r", "w", "W", "x"), row
        rule = f[4] if len(f) == 5 else None
        if kind == "i":
            assert (rule is not None) == (access != "r"), row
        if kind == "c":
            assert int(rule) == len(keys.MEASURANDS), row
        if kind == "b":
            assert default in ("true", "false"), row
        keys.parse(name, default)   # every default passes its own rule


def test_names_that_span_fields_or_rows_are_unknown():
    for name in ("", "HeartbeatInterval i", "HeartbeatInterval ", "Heartbeat", "heartbeatinterval",
                 "AllowOfflineTxForUnknownId b w false;AuthorizationCacheEnabled"):
        assert keys._row(name) is None
        with pytest.raises(KeyError):
            keys.parse(name, "1")
    assert keys._row("HeartbeatInterval") == ["HeartbeatInterval", "i", "w", "300", "1-86400"]
    assert keys._row("StopTxnAlignedData") == ["StopTxnAlignedData", "c", "w", "", "6"]


def test_defaults_are_typed(tmp_path):
    k = make(tmp_path, {"HeartbeatInterval": 30}, connectors=2)
    assert k["HeartbeatInterval"] == 30 and k["NumberOfConnectors"] == 2
    assert k["MeterValueSampleInterval"] == 60 and k["LocalPreAuthorize"] is False
    assert k["ReserveConnectorZeroSupported"] is True and k["StopTxnAlignedData"] == ""
    assert k.measurands("StopTxnSampledData") == ["Energy.Active.Import.Register"]
    assert k.measurands("StopTxnAlignedData") == []
    assert k.get("NoSuchKey", 7) == 7 and k.get("ResetRetries") == 1
    with pytest.raises(KeyError):
        k["NoSuchKey"]


def test_listing_keeps_table_order_and_values(tmp_path):
    k = make(tmp_path)
    known, unknown = k.listing()
    # A write-only key (AuthorizationKey) is never listed, not even when asked for by name.
    assert [e["key"] for e in known] == [n for n in keys.names() if n != "AuthorizationKey"]
    assert not unknown
    assert k.listing(["AuthorizationKey"]) == ([], ["AuthorizationKey"])
    assert k.change("AuthorizationKey", "00" * 16) == "Rejected"  # only its owner module
    by = dict((e["key"], e) for e in known)
    assert by["SupportedFeatureProfiles"] == {
        "key": "SupportedFeatureProfiles", "readonly": True,
        "value": "Core,FirmwareManagement,LocalAuthListManagement,Reservation,RemoteTrigger,"
                 "SmartCharging"}
    assert by["AuthorizationCacheEnabled"]["value"] == "true"
    assert not by["HeartbeatInterval"]["readonly"]
    known, unknown = k.listing(["NoSuchKey", "ResetRetries"])
    assert known == [{"key": "ResetRetries", "readonly": False, "value": "1"}]
    assert unknown == ["NoSuchKey"]


def test_change_statuses_and_overlay(tmp_path):
    k = make(tmp_path)
    assert k.change("ConnectorPhaseRotation", "1.RST") == "RebootRequired"
    assert k.change("HeartbeatInterval", "45") == "Accepted" and k["HeartbeatInterval"] == 45
    assert k.change("HeartbeatInterval", "0") == "Rejected"
    assert k.change("NumberOfConnectors", "2") == "Rejected"
    assert k.change("NoSuchKey", "1") == "NotSupported"
    again = make(tmp_path)
    assert again["HeartbeatInterval"] == 45 and again["ConnectorPhaseRotation"] == "1.RST"
