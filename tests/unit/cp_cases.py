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


def main(folder):
    passed = failed = 0
    for case in CASES:
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
    sys.exit(1 if main(sys.argv[1]) else 0)
