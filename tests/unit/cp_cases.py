"""In-process cases of the OCPP layer (rpc, outbox, connector, sessions, feature handlers):
a real ChargePoint with the simulated board, over a loopback link to a Peer (tests/loopback.py).

Each case runs in well under a second or two. CPython runs them under pytest
(tests/unit/test_cp_inprocess.py); the MicroPython unix port runs this file directly:

    micropython tests/unit/cp_cases.py FOLDER     # prints "N passed, M failed"
"""
import sys

if __name__ == "__main__":
    sys.path.insert(0, ".")  # run by the unix port from the repository root

import json

from firmware import store
from firmware.compat import asyncio
from firmware.chargepoint import ChargePoint
from tests.fakes import Log
from tests.loopback import Peer

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_CONFIG = _HERE + "/../../config.json"


class Rig:
    """One charger in this process: config written to `folder`, sim board, loopback peer."""

    def __init__(self, folder, ocpp=None, station=None):
        with open(_CONFIG) as f:
            cfg = json.load(f)
        cfg["csms"].update({"reconnect_min": 0.1, "reconnect_max": 1, "call_timeout": 2})
        cfg["ocpp"] = {"HeartbeatInterval": 300, "MeterValueSampleInterval": 0,
                       "WebSocketPingInterval": 0}
        cfg["ocpp"].update(ocpp or {})
        cfg["station"].update(station or {})
        store.makedirs(folder)
        self.path = folder + "/config.json"
        with open(self.path, "w") as f:
            json.dump(cfg, f)
        self.peer = Peer()
        self.log = Log()
        self.cp = None
        self._task = None

    async def start(self):
        from firmware import app, config
        cfg = config.load(self.path, self.log)
        self.board = app.make_board(cfg)
        self.cp = ChargePoint(cfg, self.board, self.log, connect=self.peer.connect)
        self._task = asyncio.create_task(self.cp.run())
        await self.peer.wait_for("BootNotification")
        return self

    def hw(self, line):
        """A console line for the simulated board ("plug 1", "swipe TAG", ...)."""
        reply = self.board.command(line.split())
        assert reply, line

    async def stop(self):
        self.cp.shutdown("quit")
        await self._task

    def logged(self, text):
        return [m for _l, _t, m in self.log.lines if text in m]


# -- cases ------------------------------------------------------------------------------------
async def case_boot_reports_every_connector_and_takes_the_heartbeat_interval(rig):
    await rig.peer.wait_status(0, "Available")
    await rig.peer.wait_status(1, "Available")
    assert rig.cp.keys["HeartbeatInterval"] == 300
    boot = rig.peer.calls("BootNotification")[0]
    assert boot["chargePointVendor"] == "uCharge" and boot["firmwareVersion"]


async def case_tc_003_regular_charging_session_plugin_first(rig):
    await rig.peer.wait_status(1, "Available")
    rig.hw("plug 1")
    await rig.peer.wait_status(1, "Preparing")
    rig.hw("swipe TAG1")
    await rig.peer.wait_for("Authorize", {"idTag": "TAG1"})
    start = await rig.peer.wait_for("StartTransaction")
    assert start["connectorId"] == 1 and start["idTag"] == "TAG1"
    await rig.peer.wait_status(1, "Charging")
    assert rig.cp.connector(1).hw.relay.is_on()
    rig.hw("swipe TAG1")
    stop = await rig.peer.wait_for("StopTransaction")
    assert stop["transactionId"] == 101 and stop["reason"] == "Local"
    await rig.peer.wait_status(1, "Finishing")
    assert not rig.cp.connector(1).hw.relay.is_on()


async def case_tc_011_1_remote_start_first_and_tc_012_remote_stop(rig):
    await rig.peer.wait_status(1, "Available")
    reply = await rig.peer.call("RemoteStartTransaction", {"connectorId": 1, "idTag": "R1"})
    assert reply == {"status": "Accepted"}
    await rig.peer.wait_status(1, "Preparing")
    rig.hw("plug 1")
    start = await rig.peer.wait_for("StartTransaction")
    assert start["idTag"] == "R1"
    await rig.peer.wait_status(1, "Charging")
    reply = await rig.peer.call("RemoteStopTransaction", {"transactionId": 101})
    assert reply == {"status": "Accepted"}
    stop = await rig.peer.wait_for("StopTransaction")
    assert stop["reason"] == "Remote"


async def case_tc_027_remote_start_on_connector_0_and_tc_028_unknown_stop(rig):
    reply = await rig.peer.call("RemoteStartTransaction", {"connectorId": 0, "idTag": "R1"})
    assert reply == {"status": "Rejected"}
    reply = await rig.peer.call("RemoteStopTransaction", {"transactionId": 999})
    assert reply == {"status": "Rejected"}


async def case_tc_019_configuration_from_the_key_and_profile_tables(rig):
    reply = await rig.peer.call("GetConfiguration", {"key": ["SupportedFeatureProfiles", "Nope"]})
    assert reply["configurationKey"] == [{
        "key": "SupportedFeatureProfiles", "readonly": True,
        "value": "Core,FirmwareManagement,LocalAuthListManagement,Reservation,RemoteTrigger,"
                 "SmartCharging"}]
    assert reply["unknownKey"] == ["Nope"]
    reply = await rig.peer.call("ChangeConfiguration", {"key": "MeterValueSampleInterval",
                                                        "value": "15"})
    assert reply == {"status": "Accepted"} and rig.cp.keys["MeterValueSampleInterval"] == 15
    reply = await rig.peer.call("ChangeConfiguration", {"key": "Testing", "value": "1"})
    assert reply == {"status": "NotSupported"}


async def case_unknown_and_malformed_requests_get_callerrors(rig):
    assert await rig.peer.call("NoSuchAction", {}) == ("error", "NotImplemented")
    assert await rig.peer.call("Reset", {"type": "Sideways"}) == ("error",
                                                                  "PropertyConstraintViolation")
    assert await rig.peer.call("Reset", {}) == ("error", "OccurenceConstraintViolation")


async def case_tc_046_reservation_loads_on_request_and_unloads_when_cancelled(rig):
    assert rig.cp.loaded("reservation") is None and "firmware.reservation" not in sys.modules
    reply = await rig.peer.call("ReserveNow", {
        "connectorId": 1, "expiryDate": "2099-01-01T00:00:00Z", "idTag": "RES1",
        "reservationId": 7})
    assert reply == {"status": "Accepted"}
    await rig.peer.wait_status(1, "Reserved")
    assert await rig.peer.call("CancelReservation", {"reservationId": 8}) == {"status": "Rejected"}
    assert await rig.peer.call("CancelReservation", {"reservationId": 7}) == {"status": "Accepted"}
    await rig.peer.wait_for("StatusNotification", {"connectorId": 1, "status": "Available"},
                            count=2)
    await rig.peer.until(lambda: "firmware.reservation" not in sys.modules, 3, "the unload")
    assert rig.cp.loaded("reservation") is None


async def case_tc_056_default_profile_limits_the_pilot(rig):
    profile = {"chargingProfileId": 1, "stackLevel": 0,
               "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
               "chargingSchedule": {
                   "chargingRateUnit": "A", "startSchedule": "2020-01-01T00:00:00Z",
                   "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}]}}
    reply = await rig.peer.call("SetChargingProfile", {"connectorId": 1,
                                                       "csChargingProfiles": profile})
    assert reply == {"status": "Accepted"}
    assert rig.cp.connector(1).limit == 10.0
    reply = await rig.peer.call("GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    assert reply["status"] == "Accepted"
    assert reply["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 10.0
    assert await rig.peer.call("ClearChargingProfile", {}) == {"status": "Accepted"}
    assert rig.cp.connector(1).limit is None


async def case_tc_054_trigger_message_and_tc_055_rejected(rig):
    await rig.peer.wait_status(1, "Available")
    reply = await rig.peer.call("TriggerMessage", {"requestedMessage": "StatusNotification",
                                                   "connectorId": 1})
    assert reply == {"status": "Accepted"}
    await rig.peer.wait_for("StatusNotification", {"connectorId": 1}, count=2)
    reply = await rig.peer.call("TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert reply == {"status": "Accepted"}
    await rig.peer.wait_for("Heartbeat")
    reply = await rig.peer.call("TriggerMessage", {"requestedMessage": "MeterValues",
                                                   "connectorId": 2})
    assert reply == {"status": "Rejected"}


async def case_tc_042_local_list_version_and_tc_043_send_local_list(rig):
    assert await rig.peer.call("GetLocalListVersion", {}) == {"listVersion": 0}
    reply = await rig.peer.call("SendLocalList", {
        "listVersion": 3, "updateType": "Full",
        "localAuthorizationList": [{"idTag": "L1", "idTagInfo": {"status": "Accepted"}}]})
    assert reply == {"status": "Accepted"}
    assert await rig.peer.call("GetLocalListVersion", {}) == {"listVersion": 3}


async def case_tc_013_change_availability_and_tc_017_unlock(rig):
    await rig.peer.wait_status(1, "Available")
    reply = await rig.peer.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    assert reply == {"status": "Accepted"}
    await rig.peer.wait_status(0, "Unavailable")
    await rig.peer.wait_status(1, "Unavailable")
    assert await rig.peer.call("UnlockConnector", {"connectorId": 1}) == {"status": "Unlocked"}
    assert await rig.peer.call("UnlockConnector", {"connectorId": 5}) == {
        "status": "NotSupported"}
    assert await rig.peer.call("DataTransfer", {"vendorId": "other"}) == {
        "status": "UnknownVendorId"}


async def case_tc_039_offline_transaction_is_delivered_after_reconnect(rig):
    await rig.peer.wait_status(1, "Available")
    rig.peer.up = False
    rig.peer.drop()
    await rig.peer.until(lambda: not rig.cp.rpc.connected, 3, "the link to go down")
    rig.hw("plug 1")
    rig.hw("swipe OFF1")     # LocalAuthorizeOffline + AllowOfflineTxForUnknownId
    await rig.peer.until(lambda: rig.cp.connector(1).tx is not None, 3, "an offline start")
    rig.hw("swipe OFF1")
    await rig.peer.until(lambda: rig.cp.connector(1).tx is None, 3, "an offline stop")
    assert rig.peer.calls("StartTransaction") == []
    rig.peer.up = True
    start = await rig.peer.wait_for("StartTransaction", timeout=8)
    stop = await rig.peer.wait_for("StopTransaction", timeout=8)
    assert start["idTag"] == "OFF1" and stop["transactionId"] == 101
    assert rig.peer.links == 2


async def case_tc_001_rejected_boot_answers_nothing(rig):
    # The first boot was accepted by the default reply; a triggered boot is rejected now.
    await rig.peer.wait_status(1, "Available")
    rig.peer.replies["BootNotification"] = lambda p: {
        "status": "Rejected", "currentTime": "2026-01-01T00:00:00Z", "interval": 60}
    reply = await rig.peer.call("TriggerMessage", {"requestedMessage": "BootNotification"})
    assert reply == {"status": "Accepted"}
    await rig.peer.wait_for("BootNotification", count=2)
    try:
        await rig.peer.call("GetConfiguration", {}, timeout=0.5)
        answered = True
    except AssertionError:
        answered = False
    assert not answered


# -- billing data is never dropped (firmware/outbox.py): finding 4 of issue 10 -------------------
async def _retry_keys(rig, attempts=2, sample_s=0):
    """TransactionMessageAttempts `attempts`, RetryInterval 1 s, samples every `sample_s` s."""
    for key, value in (("TransactionMessageAttempts", attempts),
                       ("TransactionMessageRetryInterval", 1),
                       ("MeterValueSampleInterval", sample_s)):
        reply = await rig.peer.call("ChangeConfiguration", {"key": key, "value": str(value)})
        assert reply == {"status": "Accepted"}, key


def _nothing_dropped(rig):
    bad = [m for _lvl, _t, m in rig.log.lines if "dropped" in m or "removed" in m]
    assert not bad, bad


async def _unconfirmed_start_keeps_its_transaction(rig, bad_reply):
    """StartTransaction answered `bad_reply` every time: held, its MeterValues and
    StopTransaction wait behind it; delivered in order, once, on the next link."""
    await _retry_keys(rig, sample_s=1)
    await rig.peer.wait_status(1, "Available")
    peer, conn = rig.peer, rig.cp.connector(1)
    good = peer.replies["StartTransaction"]
    peer.replies["StartTransaction"] = bad_reply
    rig.hw("plug 1")
    rig.hw("swipe BILL1")
    await peer.until(lambda: len(peer.calls("StartTransaction")) == 2, 6, "two attempts")
    assert conn.tx is not None and conn.hw.relay.is_on()      # energy as before
    await peer.until(lambda: len(rig.cp.outbox.journal) >= 4, 5, "MeterValues kept")
    rig.hw("swipe BILL1")
    await peer.until(lambda: conn.tx is None, 3, "the local stop")
    assert len(peer.calls("StartTransaction")) == 2
    assert peer.calls("MeterValues") == [] and peer.calls("StopTransaction") == []
    assert rig.cp.outbox.report().startswith("1 held: StartTransaction #")
    assert rig.logged("held after 2 attempts")
    pending = len(rig.cp.outbox.journal)
    peer.replies["StartTransaction"] = good                   # the Central System is fixed
    peer.drop()
    stop = await peer.wait_for("StopTransaction", timeout=8)
    tx_id = 100 + len(peer.calls("StartTransaction"))
    assert stop["transactionId"] == tx_id and stop["reason"] == "Local"
    values = peer.calls("MeterValues")
    assert len(values) == pending - 2 and all(v["transactionId"] == tx_id for v in values)
    await peer.until(lambda: len(rig.cp.outbox) == 0, 3, "an empty outbox")
    assert rig.cp.outbox.report() == "" and len(peer.calls("StopTransaction")) == 1
    _nothing_dropped(rig)


async def case_finding_4_start_conf_without_transaction_id_keeps_the_transaction(rig):
    await _unconfirmed_start_keeps_its_transaction(rig, {"idTagInfo": {"status": "Accepted"}})


async def case_finding_4_start_conf_with_abc_as_transaction_id_keeps_the_transaction(rig):
    await _unconfirmed_start_keeps_its_transaction(rig, {"transactionId": "abc",
                                                         "idTagInfo": {"status": "Accepted"}})


async def case_finding_4_callerrors_for_start_transaction_keep_the_transaction(rig):
    await _unconfirmed_start_keeps_its_transaction(rig, ("error", "InternalError"))


async def case_finding_4_callerror_for_every_stop_holds_it_and_others_go_on(rig):
    await _retry_keys(rig)
    await rig.peer.wait_status(1, "Available")
    peer, conn = rig.peer, rig.cp.connector(1)
    peer.replies["StopTransaction"] = ("error", "InternalError")
    for tag in ("BILL1", "BILL2"):                 # the second one goes on meanwhile
        rig.hw("plug 1")
        rig.hw("swipe " + tag)
        await peer.wait_for("StartTransaction", {"idTag": tag})
        rig.hw("swipe " + tag)
        await peer.until(lambda: conn.tx is None, 3, "the local stop")
        rig.hw("unplug 1")
        await peer.until(lambda: conn.status()[0] == "Available", 3, "the unplug")
    await peer.until(lambda: len(peer.calls("StopTransaction")) == 4, 6, "two attempts each")
    await asyncio.sleep(0.2)
    assert len(rig.cp.outbox.journal) == 2        # both Stops kept
    assert rig.cp.outbox.report().startswith("2 held: StopTransaction #")
    del peer.replies["StopTransaction"]           # the Central System is fixed
    peer.drop()
    await peer.until(lambda: len(peer.calls("StopTransaction")) == 6, 8, "the Stops again")
    await peer.until(lambda: len(rig.cp.outbox) == 0, 3, "an empty outbox")
    assert [p["transactionId"] for p in peer.calls("StopTransaction")[4:]] == [101, 102]
    assert rig.cp.outbox.held() == []
    _nothing_dropped(rig)


async def case_timeouts_are_no_delivery_attempts(rig):
    await _retry_keys(rig, attempts=1)
    rig.cp.rpc.timeout_ms = 300
    await rig.peer.wait_status(1, "Available")
    peer, conn = rig.peer, rig.cp.connector(1)
    rig.hw("plug 1")
    rig.hw("swipe BILL1")
    await peer.wait_for("StartTransaction")
    peer.replies["StopTransaction"] = None        # the Central System stays silent
    rig.hw("swipe BILL1")
    await peer.until(lambda: len(peer.calls("StopTransaction")) >= 3, 8, "three timeouts")
    assert len(rig.cp.outbox.journal) == 1 and rig.cp.outbox.held() == []
    del peer.replies["StopTransaction"]
    await peer.until(lambda: len(rig.cp.outbox) == 0, 8, "the Stop delivered")
    assert peer.calls("StopTransaction")[-1]["transactionId"] == 101
    assert conn.tx is None
    _nothing_dropped(rig)


# -- link liveness (README "Link liveness"): findings 2 and 3 of issue 10 ---------------------
async def _set_key(rig, key, value):
    reply = await rig.peer.call("ChangeConfiguration", {"key": key, "value": str(value)})
    assert reply == {"status": "Accepted"}, key


async def case_liveness_a_call_unanswered_on_a_silent_link_replaces_the_link(rig):
    await rig.peer.wait_status(1, "Available")
    peer = rig.peer
    rig.cp.rpc.timeout_ms = 300
    rig.hw("plug 1")
    rig.hw("swipe LIVE1")
    await peer.wait_for("StartTransaction")
    await peer.until(lambda: len(rig.cp.outbox) == 0, 3, "an empty outbox")
    peer.silent = True                               # TCP open, nothing answered
    rig.hw("swipe LIVE1")
    await peer.until(lambda: rig.logged("link down: no reply to "), 3,
                     "the silent link to be dropped")
    peer.silent = False
    stop = await peer.wait_for("StopTransaction", timeout=5)
    assert stop["transactionId"] == 101 and stop["reason"] == "Local"
    await peer.until(lambda: len(rig.cp.outbox) == 0, 3, "an empty outbox")
    assert len(peer.calls("StopTransaction")) == 1 and peer.links >= 2


async def case_liveness_a_timeout_while_the_csms_talks_keeps_the_link(rig):
    await rig.peer.wait_status(1, "Available")
    peer = rig.peer
    rig.cp.rpc.timeout_ms = 400
    peer.replies["Heartbeat"] = None                 # alive, but ignores this one message
    beat = asyncio.create_task(rig.cp.heartbeat())
    await asyncio.sleep(0.1)
    await peer.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    await beat
    assert rig.logged("Heartbeat failed: Timeout")
    await asyncio.sleep(1.2)                         # the keeper had its look
    assert peer.links == 1 and rig.cp.rpc.connected


async def case_liveness_a_silent_boot_retry_takes_a_new_link(rig):
    await rig.peer.wait_status(1, "Available")
    peer = rig.peer
    rig.cp.rpc.timeout_ms = 300
    accept = peer.replies["BootNotification"]
    peer.replies["BootNotification"] = None
    reply = await peer.call("TriggerMessage", {"requestedMessage": "BootNotification"})
    assert reply == {"status": "Accepted"}
    await peer.until(lambda: peer.links == 2, 4, "a new link for the boot")
    peer.replies["BootNotification"] = accept
    await peer.until(lambda: rig.cp.accepted, 4, "the boot accepted")
    assert rig.logged("no reply to BootNotification")


async def case_liveness_the_ping_deadline_finds_a_half_open_link(rig):
    await rig.peer.wait_status(1, "Available")
    peer = rig.peer
    await _set_key(rig, "WebSocketPingInterval", 1)
    first = rig.cp.link.conn
    # Answered pings keep a quiet link up: two of them, and still the first link.
    await peer.until(lambda: first.pings >= 2, 6, "two pings on the quiet link")
    assert peer.links == 1 and rig.cp.link.conn is first and not first.closed
    peer.silent = True
    await peer.until(lambda: rig.logged("link down: no frame from the Central System"), 4,
                     "the ping deadline")
    peer.silent = False
    await peer.until(lambda: peer.links == 2 and rig.cp.rpc.connected, 4, "a new link")


async def case_liveness_with_pings_off_the_heartbeat_finds_a_half_open_link(rig):
    await rig.peer.wait_status(1, "Available")
    peer = rig.peer
    rig.cp.rpc.timeout_ms = 300
    await _set_key(rig, "HeartbeatInterval", 1)
    await peer.wait_for("Heartbeat", timeout=3)
    peer.silent = True
    await peer.until(lambda: rig.logged("link down: no reply to Heartbeat"), 4,
                     "the heartbeat to find the silent link")
    peer.silent = False
    await peer.until(lambda: peer.links == 2 and rig.cp.rpc.connected, 4, "a new link")


async def case_liveness_with_pings_off_a_heartbeat_at_least_every_300_s(rig):
    from firmware.compat import ticks_add, ticks_ms
    await rig.peer.wait_status(1, "Available")
    peer, cp = rig.peer, rig.cp
    await _set_key(rig, "HeartbeatInterval", 86400)
    for pings, beats in ((60, 0), (0, 1)):           # pings on: the CSMS's interval holds
        await _set_key(rig, "WebSocketPingInterval", pings)
        await asyncio.sleep(0.6)                     # the sender saw our last reply go out
        cp._last_send_ms = ticks_add(ticks_ms(), -301000)   # quiet for 301 s
        await asyncio.sleep(0.7)
        assert len(peer.calls("Heartbeat")) == beats, pings


async def case_strings_from_the_csms_are_cut_and_unmatched_replies_summed_up(rig):
    await rig.peer.wait_status(1, "Available")
    peer = rig.peer
    assert await peer.call("X" * 6000, {}) == ("error", "NotImplemented")
    assert peer.errors[-1] == ("NotImplemented", "unknown action " + "X" * 40 + "...")
    for i in range(600):
        peer.send_raw(json.dumps([3, "nobody-%d" % i, {}]))
    await peer.until(lambda: rig.logged("unmatched reply nobody-511 "), 3, "the flood read")
    assert len(rig.logged("unmatched reply")) == 10  # the 1st, 2nd, 4th ... 512th
    assert max(len(m) for _l, _t, m in rig.log.lines) < 200


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]
# Cases that need a setting before start.
SETTINGS = {
    "case_tc_039_offline_transaction_is_delivered_after_reconnect": {
        "AllowOfflineTxForUnknownId": True, "LocalAuthorizeOffline": True},
}


async def run(case, folder):
    """Run one case on a fresh charger in `folder`."""
    name = case.__name__
    rig = Rig(folder + "/" + name, SETTINGS.get(name))
    await rig.start()
    try:
        await case(rig)
    finally:
        await rig.stop()


def main(folder, skip=()):
    """Run every case but those named in `skip`; -> the number that failed."""
    passed = failed = 0
    for case in CASES:
        if case.__name__ in skip:
            continue
        try:
            asyncio.run(run(case, folder))
            passed += 1
            print("ok", case.__name__)
        except Exception as e:
            failed += 1
            print("FAIL", case.__name__, repr(e))
            sys.print_exception(e)
    print("%d passed, %d failed" % (passed, failed))
    return failed


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1], sys.argv[2:]) else 0)
