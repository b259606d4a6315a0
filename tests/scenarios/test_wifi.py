"""The network under the link (README "WiFi"): an access point missing at boot or lost during
a session is joined again by the link supervisor, without a power cycle; a failed DNS lookup
uses the last good address. The simulated board's access point is switched from the console
(`ap off` / `ap on`); UCHARGE_SIM_AP_OFF keeps it off from the start. Default reconnect
backoff (1 s doubling to 60 s): the recovery must not wait for it."""
import json
import time

from tests.conftest import report_figure
from tests.scenarios.steps import booted, start_session

OFFLINE = {"MeterValueSampleInterval": 1, "LocalAuthorizeOffline": True,
           "AllowOfflineTxForUnknownId": True, "TransactionMessageRetryInterval": 1}
# What a join adds on the simulated board: association + DHCP (hal/sim.py _ASSOC_MS).
ASSOC_S = 0.5


def test_access_point_down_at_boot_then_up_the_charger_joins_and_boots(
        monkeypatch, csms, charger, interpreter):
    monkeypatch.setenv("UCHARGE_SIM_AP_OFF", "1")
    cp = charger()
    cp.wait_log("wifi: joining the network")
    csms.expect_none("BootNotification", 4)     # nothing reaches the CSMS while the AP is off
    cp.console("status")
    cp.wait_log("wifi down")
    cp.console("ap on")
    t0 = time.monotonic()
    csms.wait_for("BootNotification", timeout=20)
    recovery = time.monotonic() - t0
    booted_line = cp.wait_log("wifi: up: ip 192.0.2.10, rssi -55 dBm")
    assert booted_line
    cp.console("status")
    cp.wait_log("wifi up 192.0.2.10 -55 dBm")
    # Association (0.5 s modelled) plus a look every 0.25 s and the connect: far below the
    # backoff it would otherwise wait (up to 60 s).
    assert recovery < ASSOC_S + 5, recovery
    report_figure("wifi: AP back at boot -> BootNotification received: %.2f s (%s, %.1f s"
                  " modelled association)" % (recovery, interpreter.rsplit("/", 1)[-1], ASSOC_S))


def test_access_point_lost_mid_session_queued_transaction_messages_are_delivered(
        csms, charger, interpreter):
    cp = charger(ocpp=OFFLINE)
    booted(csms)
    tx_id = start_session(csms, cp)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    cp.console("ap off")
    cp.wait_log("link down: network lost", timeout=5)   # the keeper looks every second
    lost_at = time.time()
    time.sleep(3.5)                                      # MeterValues pile up meanwhile
    cp.console("swipe TAG1")                            # and the session ends offline
    cp.wait_log("tx: stop on connector 1")
    cp.console("status")
    cp.wait_log("wifi down")
    cp.console("ap on")
    t0 = time.monotonic()
    cp.wait_log("ws: connected", timeout=20)
    connected = time.monotonic() - t0
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id}, timeout=20)
    delivered = time.monotonic() - t0
    assert stop["reason"] == "Local"
    values = csms.transactions[tx_id]["meter_values"]
    offline = [mv for mv in values
               if _unix(mv["meterValue"][0]["timestamp"]) >= lost_at]
    assert len(offline) >= 3, values                    # sampled while the network was away
    stamps = [mv["meterValue"][0]["timestamp"] for mv in values]
    assert stamps == sorted(stamps)
    assert connected < ASSOC_S + 5, connected
    name = interpreter.rsplit("/", 1)[-1]
    report_figure("wifi: AP back mid-session -> link connected %.2f s, queued StopTransaction"
                  " delivered %.2f s (%s)" % (connected, delivered, name))


def _unix(stamp):
    import calendar
    return calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))


def test_failed_dns_lookup_uses_the_last_good_address(csms, charger, tmp_path):
    # First run: a name that resolves; its address is kept on flash.
    cp = charger(csms_config={"url": "ws://localhost:%d/ocpp" % csms.port})
    booted(csms)
    cp.stop()
    dns = tmp_path / "CP_1" / "data" / "dns.json"
    assert json.loads(dns.read_text()) == {"localhost": "127.0.0.1"}
    # A name the resolver cannot answer (.invalid never resolves), with a last good address
    # on flash, as after a lookup that worked before the DNS server went away.
    cp2 = charger(csms_config={"url": "ws://csms.invalid:%d/ocpp" % csms.port}, start=False)
    (tmp_path / "CP_2" / "data").mkdir(parents=True)
    (tmp_path / "CP_2" / "data" / "dns.json").write_text('{"csms.invalid": "127.0.0.1"}')
    cp2.start()
    cp2.wait_log("DNS lookup of csms.invalid failed")
    csms.wait_for("BootNotification", cp_id="CP_2")
    # Without one, the lookup failure is a link failure like any other.
    cp3 = charger(csms_config={"url": "ws://csms.invalid:%d/ocpp" % csms.port})
    cp3.wait_log("cannot resolve csms.invalid")
    csms.expect_none("BootNotification", 2, cp_id="CP_3")
