"""Remote Trigger and DataTransfer from the Central System."""
from ocpp.v16 import call

from tests.scenarios.steps import FAST, booted, start_session


def test_tc_054_trigger_message(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert csms.call(call.TriggerMessage(requested_message="MeterValues", connector_id=1)).status == "Accepted"
    mv = csms.wait_for("MeterValues", lambda p: p["meterValue"][0]["sampledValue"][0]["context"] == "Trigger")
    assert mv["connectorId"] == 1 and mv["transactionId"] == tx_id
    assert csms.call(call.TriggerMessage(requested_message="Heartbeat")).status == "Accepted"
    csms.wait_for("Heartbeat")
    assert csms.call(call.TriggerMessage(requested_message="StatusNotification", connector_id=1)).status == "Accepted"
    csms.wait_for_status(1, "Charging")
    assert csms.call(call.TriggerMessage(requested_message="DiagnosticsStatusNotification")).status == "Accepted"
    csms.wait_for("DiagnosticsStatusNotification")
    assert csms.call(call.TriggerMessage(requested_message="FirmwareStatusNotification")).status == "Accepted"
    csms.wait_for("FirmwareStatusNotification")
    assert csms.call(call.TriggerMessage(requested_message="BootNotification")).status == "Accepted"
    csms.wait_for("BootNotification")


def test_tc_055_trigger_message_rejected(csms, charger):
    charger()
    booted(csms)
    assert csms.call(call.TriggerMessage(requested_message="MeterValues", connector_id=2)).status == "Rejected"
    csms.expect_none("MeterValues", 1)


def test_tc_062_data_transfer_to_charge_point(csms, charger):
    charger()
    booted(csms)
    reply = csms.call(call.DataTransfer(vendor_id="com.unknown.vendor", message_id="x", data="1"))
    assert reply.status == "UnknownVendorId"
    reply = csms.call(call.DataTransfer(vendor_id="uCharge", message_id="NoSuchMessage"))
    assert reply.status == "UnknownMessageId"
