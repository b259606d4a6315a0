"""Remote Trigger and DataTransfer from the Central System."""
from ocpp.v16 import call

from tests.scenarios.steps import FAST, booted, start_session


def trigger(csms, message, connector=None):
    """TriggerMessage.req -> the status the charger answered."""
    return csms.call(call.TriggerMessage(requested_message=message, connector_id=connector)).status


def triggered(payload):
    return payload["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"


def test_tc_054_trigger_message(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert trigger(csms, "MeterValues", 1) == "Accepted"
    mv = csms.wait_for("MeterValues", triggered)
    assert mv["connectorId"] == 1 and mv["transactionId"] == tx_id
    assert trigger(csms, "Heartbeat") == "Accepted"
    csms.wait_for("Heartbeat")
    assert trigger(csms, "StatusNotification", 1) == "Accepted"
    csms.wait_for_status(1, "Charging")
    assert trigger(csms, "DiagnosticsStatusNotification") == "Accepted"
    csms.wait_for("DiagnosticsStatusNotification")
    assert trigger(csms, "FirmwareStatusNotification") == "Accepted"
    csms.wait_for("FirmwareStatusNotification")
    assert trigger(csms, "BootNotification") == "Accepted"
    csms.wait_for("BootNotification")


def test_tc_055_trigger_message_rejected(csms, charger):
    charger()
    booted(csms)
    assert trigger(csms, "MeterValues", 2) == "Rejected"
    csms.expect_none("MeterValues", 1)


def test_tc_062_data_transfer_to_charge_point(csms, charger):
    charger()
    booted(csms)
    reply = csms.call(call.DataTransfer(vendor_id="com.unknown.vendor", message_id="x", data="1"))
    assert reply.status == "UnknownVendorId"
    reply = csms.call(call.DataTransfer(vendor_id="uCharge", message_id="NoSuchMessage"))
    assert reply.status == "UnknownMessageId"
