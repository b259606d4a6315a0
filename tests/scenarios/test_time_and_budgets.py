"""Findings 5 and 6 of "Field-safe charging": the Central System's clock is taken only when
plausible, and no request or flood of frames can wear out the flash (README "Time" and
"Flash and log budgets"). The floods are tools.bench's, kept short here."""
import asyncio
import datetime

import pytest
from ocpp.v16 import call

import tools.csms
from tests.scenarios.steps import FAST, booted, start_session
from tools import bench


def heartbeat_saying(csms, monkeypatch, current_time):
    """TriggerMessage(Heartbeat), answered with `current_time` as the Central System's time."""
    monkeypatch.setattr(tools.csms, "utc_now_iso", lambda: current_time)
    assert csms.call(call.TriggerMessage(requested_message="Heartbeat")).status == "Accepted"
    csms.wait_for("Heartbeat")


def triggered_reading(csms):
    assert csms.call(call.TriggerMessage(requested_message="MeterValues",
                                         connector_id=1)).status == "Accepted"
    mv = csms.wait_for("MeterValues", lambda p: p["meterValue"][0]["sampledValue"][0].get(
        "context") == "Trigger")
    return when(mv["meterValue"][0]["timestamp"])


def when(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_finding_5_implausible_current_time_is_refused(csms, charger, monkeypatch):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    started = when(csms.transactions[tx_id]["start"]["timestamp"])
    now = datetime.datetime.now(datetime.timezone.utc)
    # Past 2099: refused; our timestamps stay on today's clock.
    heartbeat_saying(csms, monkeypatch, "9999-12-31T23:59:58Z")
    assert abs((triggered_reading(csms) - now).total_seconds()) < 60
    cp.wait_log("currentTime 9999-12-31T23:59:58Z refused: not in 2020..2099")
    # Plausible, but before the transaction began: refused while it runs.
    heartbeat_saying(csms, monkeypatch, "2021-01-01T00:00:00Z")
    assert triggered_reading(csms) >= started
    cp.wait_log("currentTime 2021-01-01T00:00:00Z refused: before")
    monkeypatch.undo()
    assert csms.call(call.RemoteStopTransaction(transaction_id=tx_id)).status == "Accepted"
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert started <= when(stop["timestamp"]) < started + datetime.timedelta(minutes=1)
    # Once no transaction runs, a correction back in time is taken again (in the window).
    heartbeat_saying(csms, monkeypatch, "2021-01-01T00:00:00Z")
    monkeypatch.undo()
    assert triggered_reading(csms) < when("2021-01-01T00:01:00Z")


# ---- flash budgets under floods (caps: README "Flash and log budgets") ---------------------

def run_bench(flood, interpreter, tmp_path, **kw):
    result = asyncio.run(asyncio.wait_for(
        flood([interpreter], str(tmp_path / "run"), **kw), 90))
    assert result["violations"] == []
    return result


def test_finding_6_update_firmware_retry_flood_is_capped(interpreter, tmp_path):
    r = run_bench(bench.flood_update, interpreter, tmp_path, seconds=3)
    # At most 5 attempts, at least 5 s apart: 1 attempt in 3 s (was ~8000, and as many
    # warnings written to flash).
    assert r["attempts"] == 1, r
    assert r["journal"] == 0 and r["mirror"] == 0 and r["log"] <= 3, r
    # A second UpdateFirmware replaces the one waiting between attempts (it was ignored).
    assert r["second_runs"], r


@pytest.mark.parametrize("frame", [bench.UNMATCHED, bench.UNKNOWN_CALL],
                         ids=["unmatched-reply", "unknown-call"])
def test_finding_6_frame_flood_costs_a_few_log_writes(interpreter, tmp_path, frame):
    r = run_bench(bench.flood_frames, interpreter, tmp_path, n=1000, frame=frame)
    assert r["answers"]
    # Log writes: at most 2 forced flushes a second plus the periodic one (was 1 per frame).
    assert r["journal"] == 0 and r["mirror"] == 0, r
    assert r["log"] <= 2 * r["seconds"] + 2, r


@pytest.mark.parametrize("n", [300])
def test_finding_6_triggered_meter_values_cost_no_journal_writes(interpreter, tmp_path, n):
    r = run_bench(bench.flood_triggers, interpreter, tmp_path, n=n)
    # One triggered MeterValues waits in RAM per connector, with its transactionId (TC_054);
    # it never enters the journal (was 2 journal writes per trigger).
    assert r["received"] >= 1 and r["with_tx_id"] == r["received"], r
    assert r["journal"] == 0, r
    # A volatile register (the sim's) reaches the mirror before a reading leaves: at most
    # once per Wh metered meanwhile (README "Energy register"), not once per trigger.
    assert r["mirror"] <= r["wh"] + 2, r
    assert r["log"] <= 2 * r["seconds"] + 2, r
