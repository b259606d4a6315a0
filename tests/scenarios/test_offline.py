"""Never lose a transaction: power loss, connection loss and offline operation."""
import time

from ocpp.v16 import call

from tests.scenarios.steps import booted, change_availability, start_session, tx_id_of

OFFLINE = {"MeterValueSampleInterval": 1, "LocalAuthorizeOffline": True,
           "AllowOfflineTxForUnknownId": True, "TransactionMessageRetryInterval": 1}


def test_tc_032_1_power_failure_stops_transactions(csms, charger):
    cp = charger(ocpp=OFFLINE)
    booted(csms)
    tx_id = start_session(csms, cp)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    cp.kill()                                   # the power goes
    cp.start()                                  # ... and comes back
    csms.wait_for("BootNotification")
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "PowerLoss"
    last = csms.transactions[tx_id]["meter_values"][-1]["meterValue"][-1]["sampledValue"][0]
    assert stop["meterStop"] >= int(float(last["value"]))
    csms.wait_for_status(1, "Finishing")        # the cable is still in: reported afresh
    assert len(csms.messages("StartTransaction")) == 1


def test_tc_034_power_failure_with_unavailable_status(csms, charger):
    cp = charger()
    booted(csms)
    assert change_availability(csms, 0, "Inoperative") == "Accepted"
    csms.wait_for_status(0, "Unavailable")
    csms.wait_for_status(1, "Unavailable")
    cp.kill()
    cp.start()
    csms.wait_for("BootNotification")
    csms.wait_for_status(0, "Unavailable")
    csms.wait_for_status(1, "Unavailable")


def test_tc_036_connection_loss_during_transaction(csms, charger, link):
    cp = charger(ocpp=OFFLINE, csms_config=link.config)
    booted(csms)
    tx_id = start_session(csms, cp)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    link.cut()
    cp.wait_log("link down")
    time.sleep(3.6)                             # more than three sample intervals offline
    link.restore()
    cp.wait_log("connected", timeout=10)
    time.sleep(1.5)
    values = csms.transactions[tx_id]["meter_values"]
    # The message in flight when the link dropped may arrive twice, unchanged (delivery is at
    # least once; its reply was lost): count it once, as a Central System does.
    values = [mv for i, mv in enumerate(values) if i == 0 or mv != values[i - 1]]
    stamps = [mv["meterValue"][0]["timestamp"] for mv in values]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps
    assert len(values) >= 5
    sampled = [mv["meterValue"][0]["sampledValue"][0] for mv in values]
    assert all(s["context"] == "Sample.Periodic" for s in sampled)
    energies = [float(s["value"]) for s in sampled]
    assert energies == sorted(energies)
    assert csms.messages("BootNotification") and len(csms.messages("BootNotification")) == 1


def test_tc_037_1_offline_start_valid_id(csms, charger, link):
    cp = charger(ocpp=OFFLINE, csms_config=link.config)
    booted(csms)
    link.cut()
    cp.wait_log("link down")
    cp.console("plug 1")
    cp.console("swipe OFFLINE1")
    cp.wait_log("tx: start on connector 1")
    link.restore()
    start = csms.wait_for("StartTransaction", {"idTag": "OFFLINE1"}, timeout=15)
    csms.wait_for_status(1, "Charging")
    tx_id = tx_id_of(csms, start)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)


def _offline_start_then_invalid(csms, charger, link, stop_on_invalid):
    csms.id_tags = {"BADOFF": "Invalid"}
    cp = charger(ocpp=dict(OFFLINE, StopTransactionOnInvalidId=stop_on_invalid),
                 csms_config=link.config)
    booted(csms)
    link.cut()
    cp.wait_log("link down")
    cp.console("plug 1")
    cp.console("swipe BADOFF")
    cp.wait_log("tx: start on connector 1")
    link.restore()
    start = csms.wait_for("StartTransaction", {"idTag": "BADOFF"}, timeout=15)
    return cp, tx_id_of(csms, start)


def test_tc_037_2_offline_start_invalid_id_kept_but_suspended(csms, charger, link):
    cp, tx_id = _offline_start_then_invalid(csms, charger, link, False)
    csms.wait_for_status(1, "SuspendedEVSE")
    csms.expect_none("StopTransaction", 1.5)


def test_tc_037_3_offline_start_invalid_id_stopped(csms, charger, link):
    cp, tx_id = _offline_start_then_invalid(csms, charger, link, True)
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "DeAuthorized"
    csms.wait_for_status(1, "Finishing")


def test_tc_038_offline_stop_transaction(csms, charger, link):
    cp = charger(ocpp=OFFLINE, csms_config=link.config)
    booted(csms)
    tx_id = start_session(csms, cp)
    link.cut()
    cp.wait_log("link down")
    cp.console("swipe TAG1")
    cp.wait_log("tx: stop on connector 1")
    link.restore()
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id}, timeout=15)
    assert stop["reason"] == "Local"
    csms.wait_for_status(1, "Finishing")


def test_tc_039_offline_transaction(csms, charger, link):
    cp = charger(ocpp=OFFLINE, csms_config=link.config)
    booted(csms)
    link.cut()
    cp.wait_log("link down")
    cp.console("plug 1")
    cp.console("swipe OFFLINE9")
    cp.wait_log("tx: start on connector 1")
    time.sleep(1.2)
    cp.console("swipe OFFLINE9")
    cp.wait_log("tx: stop on connector 1")
    cp.console("unplug 1")
    link.restore()
    start = csms.wait_for("StartTransaction", {"idTag": "OFFLINE9"}, timeout=15)
    tx_id = tx_id_of(csms, start)
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["meterStop"] >= start["meterStart"]
    assert stop["reason"] == "Local"


def test_many_transactions_while_the_csms_is_unreachable(csms, charger, link):
    """22 sessions while the Central System is away: all delivered afterwards, in order."""
    cp = charger(ocpp=dict(OFFLINE, MeterValueSampleInterval=0), csms_config=link.config)
    booted(csms)
    link.cut()
    cp.wait_log("link down")
    tags = ["OFF%02d" % i for i in range(22)]
    for tag in tags:
        cp.console("plug 1")
        cp.console("swipe " + tag)
        cp.wait_log("tx: start on connector 1 for " + tag)
        cp.console("swipe " + tag)
        cp.wait_log("tx: stop on connector 1")
        cp.console("unplug 1")
        cp.wait_log("connector 1 Available")
    link.restore()
    for tag in tags:
        start = csms.wait_for("StartTransaction", {"idTag": tag}, timeout=20)
        stop = csms.wait_for("StopTransaction", {"transactionId": tx_id_of(csms, start)},
                             timeout=20)
        assert stop["meterStop"] >= start["meterStart"]
    starts = [m["idTag"] for m in csms.messages("StartTransaction")]
    assert starts == tags                        # in order, once each
    assert len(csms.messages("StopTransaction")) == len(tags)


def test_messages_before_the_first_boot_reply_carry_the_last_known_time(csms, charger, link,
                                                                         monkeypatch):
    cp = charger(ocpp=OFFLINE, csms_config=link.config)
    booted(csms)                                 # learns the time from the CSMS and keeps it
    cp.stop()
    link.cut()
    monkeypatch.setenv("UCHARGE_SIM_RTC_LOST", "1")  # the board wakes up in 2000
    cp.start()
    cp.wait_log("clock was behind the last known time")
    cp.console("plug 1")
    cp.console("swipe EARLY1")
    cp.wait_log("tx: start on connector 1")
    link.restore()
    start = csms.wait_for("StartTransaction", {"idTag": "EARLY1"}, timeout=15)
    year = int(start["timestamp"][:4])
    assert year >= 2026, start


def test_half_open_link_is_detected_by_the_ping_deadline(csms, charger, link):
    cp = charger(ocpp=dict(OFFLINE, WebSocketPingInterval=1), csms_config=link.config)
    booted(csms)
    link.stall()                                 # packets vanish, nobody closes anything
    line = cp.wait_log("link down", timeout=8)
    assert "no frame from the Central System" in line
    link.unstall()
    cp.wait_log("connected", timeout=10)
    assert csms.call(call.ClearCache()).status == "Accepted"
