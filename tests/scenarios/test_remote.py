"""Remote control from the Central System: start, stop, unlock, reset, availability."""
from ocpp.v16 import call

from tests.scenarios.steps import (FAST, booted, change_availability, remote_start,
                                   start_session)


def test_tc_010_remote_start_cable_plugged_in_first(csms, charger):
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=True))
    booted(csms)
    conf = csms.call(call.GetConfiguration(key=["AuthorizeRemoteTxRequests"]))
    assert conf.configuration_key[0]["value"] == "true"
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    assert remote_start(csms, "REMOTE1", 1) == "Accepted"
    csms.wait_for("Authorize", {"idTag": "REMOTE1"})
    start = csms.wait_for("StartTransaction", {"idTag": "REMOTE1", "connectorId": 1})
    csms.wait_for_status(1, "Charging")
    assert start["meterStart"] >= 0


def test_tc_011_1_remote_start_first(csms, charger):
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(csms)
    assert remote_start(csms, "REMOTE1", 1) == "Accepted"
    csms.wait_for_status(1, "Preparing")
    cp.console("plug 1")
    csms.wait_for("StartTransaction", {"idTag": "REMOTE1"})
    csms.wait_for_status(1, "Charging")
    assert csms.messages("Authorize") == []


def test_tc_011_2_remote_start_time_out(csms, charger):
    charger(ocpp=dict(FAST, ConnectionTimeOut=2))
    booted(csms)
    assert remote_start(csms, "REMOTE1", 1) == "Accepted"
    csms.wait_for_status(1, "Preparing")
    csms.wait_for_status(1, "Available", timeout=6)


def test_tc_012_remote_stop_charging_session(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert csms.call(call.RemoteStopTransaction(transaction_id=tx_id)).status == "Accepted"
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "Remote"
    csms.wait_for_status(1, "Finishing")


def test_tc_026_remote_start_rejected_on_busy_connector(csms, charger):
    cp = charger(ocpp=dict(FAST, LocalPreAuthorize=False))
    booted(csms)
    start_session(csms, cp)
    assert remote_start(csms, "OTHER", 1) == "Rejected"
    csms.expect_none("StartTransaction", 1)


def test_tc_027_remote_start_connector_zero_rejected(csms, charger):
    charger(ocpp=FAST)
    booted(csms)
    assert remote_start(csms, "REMOTE1", 0) == "Rejected"
    assert remote_start(csms, "REMOTE1", 2) == "Rejected"


def test_tc_028_remote_stop_unknown_transaction_rejected(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert csms.call(call.RemoteStopTransaction(transaction_id=tx_id + 1000)).status == "Rejected"
    csms.expect_none("StopTransaction", 1)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=6)  # still charging


def test_tc_017_1_unlock_connector_no_session(csms, charger):
    charger()
    booted(csms)
    assert csms.call(call.UnlockConnector(connector_id=1)).status == "Unlocked"


def test_tc_017_2_unlock_connector_fixed_cable(csms, charger):
    charger(station={"fixed_cable": True})
    booted(csms)
    assert csms.call(call.UnlockConnector(connector_id=1)).status == "NotSupported"


def test_tc_031_unlock_unknown_connector(csms, charger):
    charger()
    booted(csms)
    assert csms.call(call.UnlockConnector(connector_id=5)).status == "NotSupported"


def test_tc_018_1_unlock_connector_with_session(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert csms.call(call.UnlockConnector(connector_id=1)).status == "Unlocked"
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "UnlockCommand"
    csms.wait_for_status(1, "Finishing")
    cp.console("unplug 1")
    csms.wait_for_status(1, "Available")


def test_tc_018_2_unlock_fixed_cable_with_session(csms, charger):
    cp = charger(ocpp=FAST, station={"fixed_cable": True})
    booted(csms)
    tx_id = start_session(csms, cp)
    assert csms.call(call.UnlockConnector(connector_id=1)).status == "NotSupported"
    csms.expect_none("StopTransaction", 1)
    assert csms.call(call.RemoteStopTransaction(transaction_id=tx_id)).status == "Accepted"
    csms.wait_for("StopTransaction", {"transactionId": tx_id})


def _reset_without_transaction(csms, charger, kind):
    cp = charger()
    booted(csms)
    assert change_availability(csms, 0, "Inoperative") == "Accepted"
    csms.wait_for_status(0, "Unavailable")
    csms.wait_for_status(1, "Unavailable")
    assert csms.call(call.Reset(type=kind)).status == "Accepted"
    csms.wait_for("BootNotification", timeout=15)
    # Availability survives the reboot.
    csms.wait_for_status(0, "Unavailable")
    csms.wait_for_status(1, "Unavailable")
    assert change_availability(csms, 0, "Operative") == "Accepted"
    csms.wait_for_status(1, "Available")
    assert cp.running


def test_tc_013_hard_reset_without_transaction(csms, charger):
    _reset_without_transaction(csms, charger, "Hard")


def test_tc_014_soft_reset_without_transaction(csms, charger):
    _reset_without_transaction(csms, charger, "Soft")


def test_tc_015_hard_reset_with_transaction(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert csms.call(call.Reset(type="Hard")).status == "Accepted"
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "HardReset"
    csms.wait_for("BootNotification", timeout=15)
    csms.wait_for_status(1, "Finishing")


def test_tc_016_soft_reset_with_transaction(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert csms.call(call.Reset(type="Soft")).status == "Accepted"
    assert csms.wait_for("StopTransaction", {"transactionId": tx_id})["reason"] == "SoftReset"
    csms.wait_for("BootNotification", timeout=15)


def test_change_availability_without_transaction(csms, charger):
    cp = charger()
    booted(csms)
    assert change_availability(csms, 1, "Inoperative") == "Accepted"
    csms.wait_for_status(1, "Unavailable")
    cp.console("plug 1")
    cp.console("swipe TAG1")
    csms.expect_none("StartTransaction", 1.5)
    assert change_availability(csms, 1, "Operative") == "Accepted"
    csms.wait_for_status(1, "Preparing")
    assert change_availability(csms, 3, "Operative") == "Rejected"


def test_change_availability_during_transaction_is_scheduled(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert change_availability(csms, 1, "Inoperative") == "Scheduled"
    csms.expect_none("StopTransaction", 1)
    cp.console("swipe TAG1")
    csms.wait_for("StopTransaction", {"transactionId": tx_id})
    csms.wait_for_status(1, "Unavailable")
