"""Regular charging sessions started and ended at the charger."""
import time

from ocpp.v16 import call

from tests.scenarios.steps import FAST, booted, start_session


def test_tc_003_regular_charging_session_plugin_first(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    mv = csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=6)
    sampled = mv["meterValue"][0]["sampledValue"]
    assert {s["measurand"] for s in sampled} >= {"Energy.Active.Import.Register"}
    assert all(s["context"] == "Sample.Periodic" for s in sampled)
    cp.console("swipe TAG1")
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "Local" and stop["idTag"] == "TAG1"
    assert stop["meterStop"] >= csms.transactions[tx_id]["start"]["meterStart"]
    csms.wait_for_status(1, "Finishing")
    cp.console("unplug 1")
    csms.wait_for_status(1, "Available")


def test_tc_004_1_regular_charging_session_identification_first(csms, charger):
    sampled = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"
    cp = charger(ocpp=dict(FAST, MeterValuesSampledData=sampled))
    booted(csms)
    cp.console("swipe TAG2")
    csms.wait_for("Authorize", {"idTag": "TAG2"})
    csms.wait_for_status(1, "Preparing")
    cp.console("plug 1")
    start = csms.wait_for("StartTransaction", {"idTag": "TAG2"})
    csms.wait_for_status(1, "Charging")
    mv = csms.wait_for("MeterValues", timeout=6)
    units = {s["measurand"]: s.get("unit") for s in mv["meterValue"][0]["sampledValue"]}
    assert units == {"Energy.Active.Import.Register": "Wh", "Power.Active.Import": "W",
                     "Current.Import": "A", "Voltage": "V"}
    assert start["connectorId"] == 1


def test_tc_004_2_identification_first_connection_timeout(csms, charger):
    cp = charger(ocpp=dict(FAST, ConnectionTimeOut=2))
    booted(csms)
    cp.console("swipe TAG2")
    csms.wait_for_status(1, "Preparing")
    csms.wait_for_status(1, "Available", timeout=6)
    csms.expect_none("StartTransaction", 0.5)


def test_tc_005_1_ev_side_disconnected(csms, charger):
    cp = charger(ocpp=dict(FAST, StopTransactionOnEVSideDisconnect=True,
                           UnlockConnectorOnEVSideDisconnect=True))
    booted(csms)
    tx_id = start_session(csms, cp)
    cp.console("unplug 1")
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "EVDisconnected"
    csms.wait_for_status(1, "Available")


def test_tc_005_3_ev_side_disconnected_transaction_kept(csms, charger):
    cp = charger(ocpp=dict(FAST, StopTransactionOnEVSideDisconnect=False,
                           UnlockConnectorOnEVSideDisconnect=False))
    booted(csms)
    tx_id = start_session(csms, cp)
    cp.console("unplug 1")
    csms.wait_for_status(1, "SuspendedEV")
    csms.expect_none("StopTransaction", 1)
    assert csms.call(call.RemoteStopTransaction(transaction_id=tx_id)).status == "Accepted"
    assert csms.wait_for("StopTransaction")["reason"] == "Remote"


def test_stop_transaction_carries_stop_txn_sampled_data(csms, charger):
    cp = charger(ocpp=dict(FAST, StopTxnSampledData="Energy.Active.Import.Register"))
    booted(csms)
    tx_id = start_session(csms, cp)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=6)
    cp.console("swipe TAG1")
    stop = csms.wait_for("StopTransaction")
    contexts = [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    energies = [float(mv["sampledValue"][0]["value"]) for mv in stop["transactionData"]]
    assert energies == sorted(energies)


def test_tc_023_authorize_invalid(csms, charger):
    csms.id_tags = {"BADTAG": "Invalid", "OLDTAG": "Expired", "BLOCKED": "Blocked"}
    cp = charger(ocpp=FAST)
    booted(csms)
    for tag in ("BADTAG", "OLDTAG", "BLOCKED"):
        cp.console("swipe " + tag)
        csms.wait_for("Authorize", {"idTag": tag})
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    csms.expect_none("StartTransaction", 1.5)


def test_tc_024_lock_failure_starts_nothing(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    cp.console("lockfail 1")
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe TAG1")
    status = csms.wait_for_status(1, "Faulted")
    assert status["errorCode"] == "ConnectorLockFailure"
    csms.expect_none("StartTransaction", 1)


def test_fault_reported_and_cleared(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    cp.console("fault 1 GroundFailure")
    assert csms.wait_for_status(1, "Faulted")["errorCode"] == "GroundFailure"
    cp.console("clear 1")
    csms.wait_for_status(1, "Available")


def test_tc_064_data_transfer_to_central_system(csms, charger):
    csms.data_transfer_status = "UnknownVendorId"
    cp = charger()
    booted(csms)
    cp.console("data com.example hello 42")
    dt = csms.wait_for("DataTransfer")
    assert dt == {"vendorId": "com.example", "messageId": "hello", "data": "42"}
    cp.wait_log("DataTransfer: UnknownVendorId")
    assert cp.running


def test_tc_070_sampled_meter_values(csms, charger):
    cp = charger(ocpp={"MeterValueSampleInterval": 2, "ClockAlignedDataInterval": 0,
                       "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Offered"})
    booted(csms)
    tx_id = start_session(csms, cp)
    first = csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    second = csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    from firmware.clock import parse_iso
    gap = (parse_iso(second["meterValue"][0]["timestamp"])
           - parse_iso(first["meterValue"][0]["timestamp"]))
    assert 1 <= gap <= 3
    names = [s["measurand"] for s in first["meterValue"][0]["sampledValue"]]
    assert names == ["Energy.Active.Import.Register", "Current.Offered"]
    values = first["meterValue"][0]["sampledValue"]
    assert [s["context"] for s in values] == ["Sample.Periodic"] * 2
    assert values[0]["unit"] == "Wh" and values[0]["location"] == "Outlet"
    assert values[1]["unit"] == "A"


def test_tc_071_clock_aligned_meter_values(csms, charger):
    cp = charger(ocpp={"MeterValueSampleInterval": 0, "ClockAlignedDataInterval": 3,
                       "MeterValuesAlignedData":
                           "Energy.Active.Import.Register,Power.Active.Import",
                       "StopTxnAlignedData": "Energy.Active.Import.Register",
                       "StopTxnSampledData": ""})
    booted(csms)
    from firmware.clock import parse_iso
    station = csms.wait_for("MeterValues", {"connectorId": 0}, timeout=8)
    assert parse_iso(station["meterValue"][0]["timestamp"]) % 3 == 0
    assert station["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    idle = csms.wait_for("MeterValues", {"connectorId": 1}, timeout=8)
    assert "transactionId" not in idle
    tx_id = start_session(csms, cp)
    during = csms.wait_for("MeterValues", {"connectorId": 1, "transactionId": tx_id}, timeout=8)
    assert parse_iso(during["meterValue"][0]["timestamp"]) % 3 == 0
    assert {s["context"] for s in during["meterValue"][0]["sampledValue"]} == {"Sample.Clock"}
    time.sleep(3.5)
    cp.console("swipe TAG1")
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    contexts = [mv["sampledValue"][0]["context"] for mv in stop["transactionData"]]
    assert "Sample.Clock" in contexts


def test_phase_resolved_values_follow_connector_phase_rotation(csms, charger):
    cp = charger(ocpp={"MeterValueSampleInterval": 1, "ConnectorPhaseRotation": "1.TRS",
                       "MeterValuesSampledData":
                           "Energy.Active.Import.Register,Current.Import,Voltage,"
                           "Power.Active.Import"},
                 station={"phases": 3})
    booted(csms)
    tx_id = start_session(csms, cp)
    mv = csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    values = mv["meterValue"][0]["sampledValue"]
    currents = [(s["phase"], float(s["value"])) for s in values
                if s["measurand"] == "Current.Import"]
    assert [p for p, _ in currents] == ["L3", "L1", "L2"]      # meter phases 1-3 wired T, R, S
    assert all(abs(a * 230 * 3 - 7400) < 30 for _, a in currents)
    assert [s["phase"] for s in values if s["measurand"] == "Voltage"] == ["L3", "L1", "L2"]
    powers = [(s["phase"], float(s["value"])) for s in values
              if s["measurand"] == "Power.Active.Import"]
    assert [p for p, _ in powers] == ["L3", "L1", "L2"]
    assert abs(sum(w for _, w in powers) - 7400) < 30, powers


def test_minimum_status_duration_hides_short_lived_statuses(csms, charger):
    cp = charger(ocpp={"MinimumStatusDuration": 2})
    booted(csms)
    cp.console("plug 1")
    time.sleep(0.5)
    cp.console("unplug 1")                       # Preparing for half a second: never reported
    csms.expect_none("StatusNotification", 3, match={"connectorId": 1})
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing", timeout=5)
    cp.console("fault 1 GroundFailure")          # faults are not held back
    csms.wait_for_status(1, "Faulted", timeout=1.5)
