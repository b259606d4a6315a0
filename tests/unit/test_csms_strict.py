"""The local Central System (tools/csms.py) and the scenario harness, tested
without firmware: the charger side is the `ocpp` package's own ChargePoint
or a bare websockets client for hand-made frames."""

import asyncio
import json
import time

import pytest
from ocpp.exceptions import FormationViolationError, NotImplementedError as OcppNotImplemented
from ocpp.messages import get_validator
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as sync_connect

from tests.harness import Charger, CsmsThread, LoopThread, write_config
from tools.csms import ViolationError, cp_id_from_path, is_rfc3339_date_time

BOOT = call.BootNotification(charge_point_vendor="uCharge", charge_point_model="uCharge-1")
GOOD_TS = "2026-11-21T12:00:00Z"


# ------------------------------------------------------------------ helpers

class FakeCharger(ChargePoint):
    """Library charge point answering the few CS -> CP calls the tests use."""

    schedule_start = GOOD_TS
    reset_delay = 0.0

    @on(Action.reset)
    async def on_reset(self, **_):
        await asyncio.sleep(self.reset_delay)
        return call_result.Reset(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger_message(self, **_):
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id, **_):
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id,
            schedule_start=self.schedule_start)


class ClientThread:
    """Event loop in a thread hosting library charge points, so the
    blocking harness calls in the test thread have a live peer."""

    def __init__(self):
        self.thread = LoopThread("client")
        self.loop = self.thread.loop
        self.sockets = []

    def run(self, coro, timeout=10):
        return self.thread.run(coro, timeout)

    def connect(self, url, cp_id="CP_1", boot=True):
        async def go():
            ws = await async_connect(f"{url}/{cp_id}", subprotocols=["ocpp1.6"])
            self.sockets.append(ws)
            cp = FakeCharger(cp_id, ws)

            async def serve():
                try:
                    await cp.start()
                except ConnectionClosed:
                    pass
            asyncio.ensure_future(serve())
            return cp
        cp = self.run(go())
        if boot:
            self.call(cp, BOOT)
        return cp

    def call(self, cp, request, **kwargs):
        """Library call with CALLERRORs raised; our own requests skip the
        client-side schema check so bad payloads reach the CSMS."""
        kwargs.setdefault("suppress", False)
        kwargs.setdefault("skip_schema_validation", True)
        return self.run(cp.call(request, **kwargs))

    def close(self):
        async def shut():
            for ws in self.sockets:
                await ws.close()
        try:
            self.run(shut())
        finally:
            self.thread.stop(5)


@pytest.fixture
def client():
    c = ClientThread()
    yield c
    c.close()


@pytest.fixture
def server():
    """CsmsThread whose violations the test inspects itself (the shared
    `csms` fixture fails on any violation)."""
    s = CsmsThread().start()
    yield s
    s.stop()


def status(ts, connector=1, state="Available"):
    return call.StatusNotification(connector_id=connector, error_code="NoError",
                                   status=state, timestamp=ts)


def raw_client(server, cp_id="CP_1", **kwargs):
    return sync_connect(f"{server.url}/{cp_id}", subprotocols=["ocpp1.6"], **kwargs)


def raw_boot(ws):
    ws.send(json.dumps([2, "b1", "BootNotification",
                        {"chargePointVendor": "v", "chargePointModel": "m"}]))
    return json.loads(ws.recv(timeout=5))


# ------------------------------------------------------------ date-time checks

@pytest.mark.parametrize("text", [
    "2026-11-21T12:00:00Z", "2026-11-21T12:00:00.123Z", "2026-11-21T12:00:00.123456789Z",
    "2026-11-21T12:00:00+01:00", "2026-11-21T12:00:00-23:59", "2026-11-21t12:00:00z",
    "2024-02-29T00:00:00Z", "2026-12-31T23:59:60Z",
])
def test_rfc3339_accepts(text):
    assert is_rfc3339_date_time(text)


@pytest.mark.parametrize("text", [
    "2026-11-21 12:00:00", "2026-11-21 12:00:00Z", "garbage", "", "2026-11-21",
    "2026-11-21T12:00:00", "2026-11-21T12:00Z", "2026-13-01T00:00:00Z",
    "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-21T24:00:00Z",
    "2026-11-21T12:60:00Z", "2026-11-21T12:00:61Z", "2026-11-21T12:00:00+24:00",
    "2026-11-21T12:00:00+0100", "2026-11-21T12:00:00.Z", "2026-11-21T12:00:00Z\n",
    "\u0662026-11-21T12:00:00Z", "26-11-21T12:00:00Z", "2026-11-21T12:00:00UTC",
])
def test_rfc3339_rejects(text):
    assert not is_rfc3339_date_time(text)


def test_ocpp_library_alone_does_not_check_date_time():
    # Why the CSMS carries its own checker: ocpp 2.1.0 builds its validators
    # without a FormatChecker, so this passes the library's validation.
    get_validator(2, "StatusNotification", "1.6").validate(
        {"connectorId": 1, "errorCode": "NoError", "status": "Available",
         "timestamp": "garbage"})


# ---------------------------------------------------------- strict CSMS

@pytest.mark.parametrize("ts", ["2026-11-21 12:00:00", "garbage"])
def test_bad_timestamp_is_a_violation_and_gets_callerror(server, client, ts):
    cp = client.connect(server.url)
    with pytest.raises(FormationViolationError):
        client.call(cp, status(ts))
    assert len(server.violations) == 1
    assert "StatusNotification" in server.violations[0]
    assert "timestamp" in server.violations[0] and ts in server.violations[0]
    # The bad message is still in the ledger for audits.
    assert server.messages("StatusNotification") == [
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": ts}]


def test_valid_status_notification_is_clean(server, client):
    cp = client.connect(server.url)
    assert client.call(cp, status(GOOD_TS)) == call_result.StatusNotification()
    assert server.violations == []
    assert [r.payload["status"] for r in server.status_notifications] == ["Available"]


def test_other_schema_errors_use_16_error_codes(server, client):
    cp = client.connect(server.url)
    with pytest.raises(Exception) as missing:
        client.call(cp, call.StatusNotification(connector_id=1, error_code="NoError",
                                                status="Bogus"))
    assert type(missing.value).__name__ == "PropertyConstraintViolationError"
    with pytest.raises(Exception) as typed:
        client.call(cp, call.Authorize(id_tag=12))
    assert type(typed.value).__name__ == "TypeConstraintViolationError"
    assert len(server.violations) == 2


@pytest.mark.parametrize("protocols", [None, ["ocpp2.0.1"]])
def test_client_without_ocpp16_subprotocol_is_refused(server, protocols):
    with pytest.raises(InvalidStatus) as refused:
        sync_connect(f"{server.url}/CP_1", subprotocols=protocols)
    assert refused.value.response.status_code == 400
    assert server.refused and server.refused[0][0] == "CP_1"
    assert "ocpp1.6" in server.refused[0][1]
    assert server.sessions == {}


def test_charge_point_id_is_last_path_segment_percent_decoded(server):
    assert cp_id_from_path("/ocpp/CP%201?x=1") == "CP 1"
    with raw_client(server, "CP%2F7") as ws:
        assert ws.subprotocol == "ocpp1.6"
        assert server.wait_connected(timeout=5) == "CP/7"


def test_basic_auth():
    server = CsmsThread(password="s3cret-s3cret-16").start()
    try:
        url = f"ws://127.0.0.1:{server.port}/ocpp/CP_1"
        for creds in [None, ("CP_1", "wrong"), ("CP_2", "s3cret-s3cret-16")]:
            headers = None
            if creds:
                import base64
                token = base64.b64encode(":".join(creds).encode()).decode()
                headers = {"Authorization": "Basic " + token}
            with pytest.raises(InvalidStatus) as refused:
                sync_connect(url, subprotocols=["ocpp1.6"], additional_headers=headers)
            assert refused.value.response.status_code == 401
        assert len(server.refused) == 3
        with sync_connect(url.replace("ws://", "ws://CP_1:s3cret-s3cret-16@"),
                          subprotocols=["ocpp1.6"]):
            assert server.wait_connected("CP_1", timeout=5) == "CP_1"
    finally:
        server.stop()


def test_malformed_frames_from_charger_are_violations(server):
    with raw_client(server) as ws:
        raw_boot(ws)
        ws.send("not json")
        ws.send('[2,"d1","Heartbeat",{"a":1,"a":2}]')
        ws.send('[3,"never-sent",{}]')
        ws.send('[2,"x","Heartbeat"]')
        reply = json.loads(ws.recv(timeout=5))
        ws.send(b'[2,"bin","Heartbeat",{}]')
        ws.recv(timeout=5)
        ws.send('[2,"u1","FooBar",{}]')
        unsupported = json.loads(ws.recv(timeout=5))
        ws.send("[" * 100000 + "]" * 100000)
        ws.send('[2,"h2","Heartbeat",{}]')          # still served afterwards
        assert json.loads(ws.recv(timeout=5))[:2] == [3, "h2"]
    text = "\n".join(server.violations)
    assert reply[:3] == [4, "x", "FormationViolation"]
    assert unsupported[:3] == [4, "u1", "NotSupported"]
    for needle in ["not strict JSON", "duplicate object key", "unknown UniqueId",
                   "needs 4 elements", "binary frame", "FooBar", "recursion"]:
        assert needle in text, needle


def test_registration_is_enforced(server):
    server.boot_responses = [("Pending", 2)]
    with raw_client(server) as ws:
        ws.send('[2,"h0","Heartbeat",{}]')           # before any boot
        ws.recv(timeout=5)
        assert raw_boot(ws)[2]["status"] == "Pending"
        ws.send('[2,"h1","Heartbeat",{}]')           # while Pending
        ws.recv(timeout=5)
        raw_boot(ws)                                 # too early: interval is 2 s
    assert len(server.violations) == 3
    assert "unknown (no BootNotification yet)" in server.violations[0]
    assert "Heartbeat sent while registration is Pending" in server.violations[1]
    assert "before the interval elapsed" in server.violations[2]


def test_answering_while_rejected_is_a_violation(server):
    server.boot_responses = [("Rejected", 60)]
    with raw_client(server) as ws:
        assert raw_boot(ws)[2]["status"] == "Rejected"
        server.send_raw('[2,"r1","Reset",{"type":"Soft"}]')
        assert json.loads(ws.recv(timeout=5))[1] == "r1"
        ws.send('[3,"r1",{"status":"Accepted"}]')
        server.wait_raw(lambda f: f.parsed[0] == 3, timeout=5)
    assert server.violations == ["CP_1: answered Reset while registration is Rejected"]


def test_triggered_message_is_allowed_while_pending(server, client):
    server.boot_responses = [("Pending", 60)]
    cp = client.connect(server.url)
    server.call(call.TriggerMessage(requested_message="StatusNotification"))
    client.call(cp, status(GOOD_TS))
    assert server.violations == []
    client.call(cp, status(GOOD_TS))               # the second one is not triggered
    assert len(server.violations) == 1


# ------------------------------------------------------------ policies

def test_boot_tags_transactions_and_data_transfer(csms, client):
    csms.boot_responses = [("Rejected", 0), ("Pending", 0)]
    csms.heartbeat_interval = 7
    csms.id_tags = {"BAD": "Blocked", "KID": ("Accepted", "PARENT"),
                    "OLD": {"status": "Expired", "expiryDate": "2020-01-01T00:00:00Z"}}
    csms.default_tag_status = "Invalid"
    csms.data_transfer_status = "UnknownVendorId"
    cp = client.connect(csms.url, boot=False)
    answers = [client.call(cp, BOOT) for _ in range(3)]
    assert [(a.status, a.interval) for a in answers] == [
        ("Rejected", 0), ("Pending", 0), ("Accepted", 7)]
    assert answers[2].current_time.endswith("Z")
    assert is_rfc3339_date_time(client.call(cp, call.Heartbeat()).current_time)

    def tag(t):
        return client.call(cp, call.Authorize(id_tag=t)).id_tag_info
    assert tag("BAD") == {"status": "Blocked"}
    assert tag("KID") == {"status": "Accepted", "parent_id_tag": "PARENT"}
    assert tag("OLD") == {"status": "Expired", "expiry_date": "2020-01-01T00:00:00Z"}
    assert tag("nobody") == {"status": "Invalid"}
    dt = client.call(cp, call.DataTransfer(vendor_id="x"))
    assert dt.status == "UnknownVendorId"

    start = dict(connector_id=1, id_tag="KID", meter_start=0, timestamp=GOOD_TS)
    first = client.call(cp, call.StartTransaction(**start))
    again = client.call(cp, call.StartTransaction(**start))     # a resend after a power cut
    second = client.call(cp, call.StartTransaction(**dict(start, meter_start=5)))
    assert (first.transaction_id, again.transaction_id, second.transaction_id) == (1, 1, 2)
    mv = [{"timestamp": GOOD_TS, "sampledValue": [{"value": "10"}]}]
    client.call(cp, call.MeterValues(connector_id=1, transaction_id=1, meter_value=mv))
    stop = client.call(cp, call.StopTransaction(meter_stop=10, timestamp=GOOD_TS,
                                                transaction_id=1, id_tag="BAD"))
    assert stop.id_tag_info == {"status": "Blocked"}
    tx = csms.transactions[1]
    assert tx["start"]["idTag"] == "KID" and tx["start"]["meterStart"] == 0
    assert tx["meter_values"][0]["meterValue"][0]["sampledValue"] == [{"value": "10"}]
    assert tx["stop"]["meterStop"] == 10
    assert csms.transactions[2]["stop"] is None
    for action in ["FirmwareStatusNotification", "DiagnosticsStatusNotification"]:
        request = (call.FirmwareStatusNotification(status="Idle")
                   if action.startswith("Firmware")
                   else call.DiagnosticsStatusNotification(status="Idle"))
        assert client.call(cp, request) is not None
    # Every frame both ways is in the ledger, in order.
    directions = [f.direction for f in csms.ledger]
    assert directions == ["in", "out"] * (len(directions) // 2)


def test_no_reply_and_callerror_policies(server, client):
    cp = client.connect(server.url)
    server.callerror_actions = {"Heartbeat": "InternalError"}
    with pytest.raises(Exception) as err:
        client.call(cp, call.Heartbeat())
    assert type(err.value).__name__ == "InternalError"
    server.no_reply_actions = {"Heartbeat"}
    server.callerror_actions = {}
    with pytest.raises(TimeoutError):
        asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(cp.call(call.Heartbeat()), 0.5), client.loop).result(5)
    assert server.violations == []


# ------------------------------------------------------------ CS -> CP calls

def test_call_result_error_timeout_and_strict_answer(csms, client):
    cp = client.connect(csms.url)
    assert csms.call(call.Reset(type="Hard")).status == "Accepted"
    with pytest.raises(OcppNotImplemented):
        csms.call(call.ClearCache())
    cp.reset_delay = 1.0
    with pytest.raises(TimeoutError):
        csms.call(call.Reset(type="Soft"), timeout=0.3)
    time.sleep(1.0)                      # let the late answer arrive
    cp.reset_delay = 0
    assert csms.call(call.Reset(type="Soft")).status == "Accepted"
    cp.schedule_start = "yesterday"
    with pytest.raises(ViolationError):
        csms.call(call.GetCompositeSchedule(connector_id=1, duration=60))
    assert len(csms.violations) == 1 and "scheduleStart" in csms.violations[0]
    csms.violations.clear()


def test_call_needs_cp_id_with_two_chargers(csms, client):
    client.connect(csms.url, "CP_1")
    client.connect(csms.url, "CP_2")
    with pytest.raises(LookupError):
        csms.call(call.Reset(type="Hard"))
    assert csms.call(call.Reset(type="Hard"), cp_id="CP_2").status == "Accepted"
    boots = csms.messages("BootNotification", "CP_2")
    assert [m["chargePointVendor"] for m in boots] == ["uCharge"]


# ------------------------------------------------------------ harness waits

def test_wait_for_cursors_match_and_expect_none(csms, client):
    cp = client.connect(csms.url)
    assert csms.wait_for("BootNotification")["chargePointModel"] == "uCharge-1"
    for conn, state in [(0, "Available"), (1, "Available"), (1, "Preparing"),
                        (1, "Charging"), (0, "Unavailable")]:
        client.call(cp, status(GOOD_TS, conn, state))
    # Successive waits return successive messages.
    assert csms.wait_for("StatusNotification")["connectorId"] == 0
    assert csms.wait_for("StatusNotification")["status"] == "Available"
    # A match skips ahead; a callable works as match.
    assert csms.wait_for("StatusNotification", match={"status": "Charging"})["connectorId"] == 1
    assert csms.wait_for("StatusNotification", match=lambda p: p["connectorId"] == 0)[
        "status"] == "Unavailable"
    # Per-connector cursors are independent of the action cursor.
    assert csms.wait_for_status(0, "Available")["connectorId"] == 0
    assert csms.wait_for_status(1, "Preparing")["status"] == "Preparing"
    assert csms.wait_for_status(0, "Unavailable")
    with pytest.raises(TimeoutError, match="StatusNotification connector 1 -> Faulted"):
        csms.wait_for_status(1, "Faulted", timeout=0.3)
    assert len(csms.messages("StatusNotification")) == 5

    csms.expect_none("Heartbeat", 0.3)
    mark = csms.mark()
    client.call(cp, call.Heartbeat())
    with pytest.raises(AssertionError, match="unexpected Heartbeat"):
        csms.expect_none("Heartbeat", 0.3, since=mark)
    # wait_for returns only after the CSMS has answered (ledgers updated).
    client.call(cp, call.StartTransaction(connector_id=1, id_tag="T", meter_start=5,
                                          timestamp=GOOD_TS))
    assert csms.wait_for("StartTransaction")["meterStart"] == 5
    assert csms.transactions[1]["start"]["meterStart"] == 5


def test_policy_attributes_pass_through(csms):
    csms.heartbeat_interval = 11
    csms.id_tags["X"] = "Blocked"
    csms.no_reply_actions = {"Heartbeat"}
    assert csms.cs.heartbeat_interval == 11 and csms.cs.id_tags == {"X": "Blocked"}
    assert csms.cs.no_reply_actions == {"Heartbeat"}
    assert "heartbeat_interval" not in vars(csms)
    assert csms.url == f"ws://127.0.0.1:{csms.port}/ocpp"


def test_send_raw_and_wait_raw(csms, client):
    client.connect(csms.url)
    csms.send_raw('[2,"raw-1","Reset",{"type":"Hard"}]')
    frame = csms.wait_raw(lambda f: f.parsed and f.parsed[0] in (3, 4), timeout=5)
    assert frame.parsed == [3, "raw-1", {"status": "Accepted"}]
    assert frame.cp_id == "CP_1" and isinstance(frame.raw, str)
    csms.send_raw('[2,"raw-2","NoSuchAction",{}]')
    frame = csms.wait_raw(lambda f: f.parsed[1] == "raw-2", timeout=5)
    assert frame.parsed[2] == "NotSupported"
    with pytest.raises(TimeoutError):
        csms.wait_raw(lambda f: True, timeout=0.3)
    out = [f.raw for f in csms.ledger if f.direction == "out"]
    assert '[2,"raw-2","NoSuchAction",{}]' in out


def test_send_raw_frame_types(server):
    with raw_client(server) as ws:
        server.wait_connected(timeout=5)
        server.send_raw(b"\x00\x01")
        assert ws.recv(timeout=5) == b"\x00\x01"
        server.send_raw(b"[]", text=True)
        assert ws.recv(timeout=5) == "[]"
        server.send_raw("[]")
        assert ws.recv(timeout=5) == "[]"
    assert [f.raw for f in server.ledger if f.direction == "out"] == [b"\x00\x01", b"[]", "[]"]


# ------------------------------------------------------------ process driver

# Stand-in for main.py, valid for both interpreters. It never flushes: the
# driver must get live output anyway.
FAKE_MAIN = """
import sys
print("booting with", sys.argv[1])
while True:
    cmd = sys.stdin.readline().strip()
    print("console:", cmd)
    if cmd == "quit":
        print("bye")
        sys.exit(0)
    if not cmd:
        break
"""


def test_charger_process_driver(tmp_path, interpreter, monkeypatch):
    # The driver itself must make CPython output unbuffered.
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "main.py").write_text(FAKE_MAIN)
    (root / "config.json").write_text(json.dumps(
        {"csms": {"url": "ws://x/ocpp", "id": "CP_9"}, "station": {"connectors": 1},
         "data_dir": "data", "ocpp": {"HeartbeatInterval": 300, "Keep": 1}}))
    cfg = write_config(tmp_path / "cp", "ws://127.0.0.1:1234/ocpp", "CP_1",
                       ocpp={"HeartbeatInterval": 5}, station={"connectors": 2},
                       repo_root=root)
    written = json.loads(cfg.read_text())
    assert written["csms"] == {"url": "ws://127.0.0.1:1234/ocpp", "id": "CP_1"}
    assert written["ocpp"] == {"HeartbeatInterval": 5, "Keep": 1}
    assert written["station"] == {"connectors": 2} and written["data_dir"] == "data"

    unit = Charger(interpreter, cfg, root)
    assert unit.cp_id == "CP_1"
    unit.start()
    assert str(cfg) in unit.wait_log("booting with")
    unit.console("plug 1")
    assert unit.wait_log("console:") == "console: plug 1"
    with pytest.raises(TimeoutError):
        unit.wait_log("never printed", timeout=0.3)
    assert unit.stop() == 0 and unit.returncode == 0
    assert unit.output()[-1] == "bye"

    unit.start()                         # same config again
    assert unit.wait_log("booting with")  # cursor moved to the new run
    unit.kill()
    assert unit.returncode == -9
    with pytest.raises(RuntimeError):
        unit.console("status")
    assert (cfg.parent / "charger.log").read_text().count("===== run") == 2
