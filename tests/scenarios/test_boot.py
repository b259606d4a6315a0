"""Provisioning: BootNotification Accepted / Pending / Rejected, heartbeat, time."""
import time

from ocpp.v16 import call

from tests.scenarios.steps import booted, change_configuration


def test_tc_001_cold_boot(csms, charger):
    csms.boot_responses = [("Rejected", 2)]
    csms.heartbeat_interval = 1
    cp = charger()
    csms.wait_for("BootNotification")
    t0 = time.monotonic()
    csms.expect_none("StatusNotification", 1.5)
    boot = csms.wait_for("BootNotification", timeout=10)
    assert time.monotonic() - t0 >= 1.8, "retried before the Rejected interval"
    assert boot["chargePointVendor"] == "uCharge" and boot["chargePointModel"] == "uCharge-1"
    csms.wait_for_status(0, "Available")
    csms.wait_for_status(1, "Available")
    csms.wait_for("Heartbeat", timeout=5)
    csms.wait_for("Heartbeat", timeout=5)
    assert cp.running


def test_boot_rejected_sends_and_answers_nothing_until_interval(csms, charger):
    csms.boot_responses = [("Rejected", 3)]
    charger()
    csms.wait_for("BootNotification")
    # While Rejected the charger stays silent: a request from us gets no answer.
    try:
        csms.call(call.GetConfiguration(), timeout=1)
        answered = True
    except Exception:
        answered = False
    assert not answered
    booted(csms)


def test_tc_002_cold_boot_pending(csms, charger):
    csms.boot_responses = [("Pending", 3)]
    charger()
    csms.wait_for("BootNotification")
    conf = csms.call(call.GetConfiguration(key=["HeartbeatInterval"]))
    assert conf.configuration_key[0]["key"] == "HeartbeatInterval"
    assert change_configuration(csms, "MeterValueSampleInterval", "7") == "Accepted"
    booted(csms)
    conf = csms.call(call.GetConfiguration(key=["MeterValueSampleInterval"]))
    assert conf.configuration_key[0]["value"] == "7"


def test_boot_sets_the_clock_from_the_central_system(csms, charger):
    cp = charger()
    booted(csms)
    status = csms.messages("StatusNotification")[-1]
    # The charger's timestamps are within a few seconds of the CSMS clock.
    from firmware.clock import parse_iso
    assert abs(parse_iso(status["timestamp"]) - time.time()) < 5
    assert cp.running


def test_boot_notification_carries_the_deprecated_charge_box_serial_number(csms, charger):
    """Older Central Systems read chargeBoxSerialNumber (deprecated in 1.6): sent alongside
    chargePointSerialNumber unless station.charge_box_serial is false."""
    cp = charger(station={"serial": "UC-424242"})
    boot = csms.wait_for("BootNotification")
    assert boot["chargePointSerialNumber"] == "UC-424242"
    assert boot["chargeBoxSerialNumber"] == "UC-424242"
    cp.stop()
    cp2 = charger(station={"serial": "UC-434343", "charge_box_serial": False}, cp_id="CP_2")
    boot = csms.wait_for("BootNotification", {"chargePointSerialNumber": "UC-434343"})
    assert "chargeBoxSerialNumber" not in boot
    assert cp2.running
