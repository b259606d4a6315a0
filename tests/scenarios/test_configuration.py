"""Configuration keys: GetConfiguration, ChangeConfiguration, persistence."""
from ocpp.v16 import call

from tests.scenarios.steps import booted, change_configuration

# OCPP 1.6 §9.1 keys a Core charge point must have, with their accessibility.
REQUIRED_CORE = {
    "AuthorizeRemoteTxRequests": None, "ClockAlignedDataInterval": False,
    "ConnectionTimeOut": False, "ConnectorPhaseRotation": False, "GetConfigurationMaxKeys": True,
    "HeartbeatInterval": False, "LocalAuthorizeOffline": False, "LocalPreAuthorize": False,
    "MeterValuesAlignedData": False, "MeterValuesSampledData": False,
    "MeterValueSampleInterval": False, "NumberOfConnectors": True, "ResetRetries": False,
    "StopTransactionOnEVSideDisconnect": False, "StopTransactionOnInvalidId": False,
    "StopTxnAlignedData": False, "StopTxnSampledData": False, "SupportedFeatureProfiles": True,
    "TransactionMessageAttempts": False, "TransactionMessageRetryInterval": False,
    "UnlockConnectorOnEVSideDisconnect": False,
}


def test_tc_019_1_retrieve_all_configuration_keys(csms, charger):
    charger()
    booted(csms)
    conf = csms.call(call.GetConfiguration())
    keys = {k["key"]: k for k in conf.configuration_key}
    for name, readonly in REQUIRED_CORE.items():
        assert name in keys, name
        if readonly is not None:
            assert keys[name]["readonly"] is readonly, name
    assert "Core" in keys["SupportedFeatureProfiles"]["value"].split(",")
    assert keys["NumberOfConnectors"]["value"] == "1"
    assert not conf.unknown_key


def test_tc_019_2_retrieve_specific_keys(csms, charger):
    charger()
    booted(csms)
    conf = csms.call(call.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]))
    assert [k["key"] for k in conf.configuration_key] == ["HeartbeatInterval"]
    assert conf.unknown_key == ["NoSuchKey"]


def test_tc_021_change_configuration_persists_across_reboot(csms, charger):
    cp = charger()
    booted(csms)
    assert change_configuration(csms, "MeterValueSampleInterval", "17") == "Accepted"
    conf = csms.call(call.GetConfiguration(key=["MeterValueSampleInterval"]))
    assert conf.configuration_key[0]["value"] == "17"
    cp.stop()
    cp.start()
    booted(csms)
    conf = csms.call(call.GetConfiguration(key=["MeterValueSampleInterval"]))
    assert conf.configuration_key[0]["value"] == "17"


def test_tc_040_1_unknown_key_not_supported(csms, charger):
    charger()
    booted(csms)
    assert change_configuration(csms, "Testing", "1") == "NotSupported"


def test_tc_040_2_invalid_value_rejected(csms, charger):
    charger()
    booted(csms)
    for key, value in (("MeterValueSampleInterval", "-1"), ("HeartbeatInterval", "often"),
                       ("StopTransactionOnInvalidId", "maybe"),
                       ("MeterValuesSampledData", "Bogus.Measurand"), ("NumberOfConnectors", "2")):
        assert change_configuration(csms, key, value) == "Rejected", key
    conf = csms.call(call.GetConfiguration(key=["MeterValueSampleInterval"]))
    assert conf.configuration_key[0]["value"] != "-1"


def test_change_configuration_reboot_required(csms, charger):
    charger()
    booted(csms)
    assert change_configuration(csms, "ConnectorPhaseRotation", "1.RST") == "RebootRequired"


def test_heartbeat_interval_change_takes_effect(csms, charger):
    charger()
    booted(csms)
    assert change_configuration(csms, "HeartbeatInterval", "1") == "Accepted"
    csms.wait_for("Heartbeat", timeout=4)
    csms.wait_for("Heartbeat", timeout=4)


def test_clear_cache_accepted(csms, charger):
    charger()
    booted(csms)
    assert csms.call(call.ClearCache()).status == "Accepted"
