"""tools.fleet: the behaviour profile parser and the statistics (histograms, merging)."""
import json
import random

import pytest

from tools.fleet import profile
from tools.fleet.cli import _strip, combine
from tools.fleet.stats import Histogram, Stats


# -- profiles ------------------------------------------------------------------------------

def test_an_empty_profile_is_all_defaults():
    p = profile.parse("{}")
    assert p["connectors"] == 1 and p["ocpp"] == {}
    assert p["ev"]["arrivals_per_hour"] == 0.0 and p["ev"]["session_s"] == [600.0, 3600.0]
    assert p["link"]["storms_at_s"] == [] and p["reboots_per_hour"] == 0.0


def test_defaults_are_fresh_copies():
    a, b = profile.parse("{}"), profile.parse("{}")
    a["ev"]["session_s"][0] = 1
    a["ocpp"]["X"] = 1
    assert b["ev"]["session_s"][0] == 600.0 and b["ocpp"] == {}


def test_given_values_are_kept_and_normalised():
    p = profile.parse(json.dumps({
        "connectors": 2, "ocpp": {"MeterValueSampleInterval": 10},
        "ev": {"arrivals_per_hour": 3, "session_s": [60, 120], "unknown_card_share": 0.25},
        "link": {"storms_at_s": [90, 30]}}))
    assert p["connectors"] == 2 and p["ocpp"] == {"MeterValueSampleInterval": 10}
    assert p["ev"]["arrivals_per_hour"] == 3.0 and p["ev"]["session_s"] == [60.0, 120.0]
    assert p["ev"]["unknown_card_share"] == 0.25
    assert p["link"]["storms_at_s"] == [30.0, 90.0]  # in time order


@pytest.mark.parametrize("text, where", [
    ('{"ev": {"arrival_per_hour": 1}}', "ev.unknown field arrival_per_hour"),
    ('{"colour": 1}', "unknown field colour"),
    ('{"ev": {"unknown_card_share": 1.5}}', "ev.unknown_card_share: expected a share"),
    ('{"ev": {"session_s": [10]}}', "ev.session_s: expected [min, max]"),
    ('{"ev": {"session_s": [20, 10]}}', "ev.session_s: expected [min, max]"),
    ('{"ev": {"arrivals_per_hour": -1}}', "ev.arrivals_per_hour: expected a number >= 0"),
    ('{"ev": {"arrivals_per_hour": true}}', "ev.arrivals_per_hour: expected a number"),
    ('{"ev": {"remote_wait_s": 0}}', "ev.remote_wait_s: expected seconds > 0"),
    ('{"link": {"storms_at_s": [5, -1]}}', "link.storms_at_s: expected a list"),
    ('{"link": []}', "link: expected an object"),
    ('{"connectors": 0}', "connectors: expected an integer 1..10"),
    ('{"ocpp": ["HeartbeatInterval"]}', "ocpp: expected an object"),
    ('{"ev": {"unknown_card_share": 0.6, "remote_start_share": 0.5}}',
     "must not exceed 1"),
    ('[1, 2]', "profile: expected an object"),
    ('{"ev": ', "not JSON"),
])
def test_a_wrong_field_is_named(text, where):
    with pytest.raises(ValueError) as e:
        profile.parse(text)
    assert where in str(e.value)


def test_the_shipped_profiles_parse():
    names = profile.shipped()
    assert {"heartbeats", "metervalues", "storm"} <= set(names)
    for name in names:
        p = profile.load(name)
        assert p["description"]
    assert profile.load("metervalues")["ocpp"]["MeterValueSampleInterval"] == 10
    assert profile.load("storm")["link"]["storms_at_s"]


# -- statistics ------------------------------------------------------------------------------

def test_percentiles_are_within_two_percent():
    rng = random.Random(7)
    values = [rng.lognormvariate(0, 1) / 1000 for _ in range(20000)]  # seconds, ~1 ms
    h = Histogram()
    for v in values:
        h.add(v)
    values.sort()
    for p in (50, 95, 99):
        exact = values[int(len(values) * p / 100) - 1] * 1000
        assert abs(h.percentile(p) - exact) / exact < 0.02, p
    assert h.percentile(100) == pytest.approx(values[-1] * 1000)
    s = h.summary()
    assert s["n"] == 20000 and s["max"] == pytest.approx(values[-1] * 1000)
    assert s["mean"] == pytest.approx(sum(values) / len(values) * 1000)


def test_an_empty_histogram_has_no_percentiles():
    assert Histogram().summary() == {"n": 0, "mean": None, "p50": None, "p95": None,
                                     "p99": None, "max": None}


def test_single_values_and_tiny_latencies():
    h = Histogram()
    h.add(0.0000001)  # below a microsecond: the first bucket
    assert h.percentile(50) <= 0.001
    h = Histogram()
    h.add(0.25)
    assert h.percentile(50) == pytest.approx(250, rel=0.02)
    assert h.percentile(99) <= h.percentile(100) == 250


def test_merged_histograms_equal_one_fed_with_everything():
    rng = random.Random(3)
    both, a, b = Histogram(), Histogram(), Histogram()
    for i in range(5000):
        v = rng.expovariate(500)
        both.add(v)
        (a if i % 3 else b).add(v)
    a.merge(Histogram.from_json(json.loads(json.dumps(b.to_json()))))
    assert a.counts == both.counts and a.n == both.n and a.max_us == both.max_us


def _stats(sent, answered, latencies, errors=None):
    s = Stats()
    for action, n in sent.items():
        for _ in range(n):
            s.call_sent(action)
    s.answered.update(answered)
    for action, v in latencies:
        s.reply_latency(action, v)
    s.callerrors.update(errors or {})
    s.txn("started", 2)
    s.event("reconnects")
    s.audit("Heartbeat")
    s.audit("Heartbeat", "FormationViolation: x")
    s.frames_in, s.frames_out = 10, 12
    return s


def test_stats_merge_through_json_and_make_per_action_rows():
    a = _stats({"Heartbeat": 3, "BootNotification": 1}, {"Heartbeat": 3},
               [("Heartbeat", 0.001)] * 3, {"BootNotification SecurityError": 1})
    b = _stats({"Heartbeat": 2}, {"Heartbeat": 2}, [("Heartbeat", 0.004)] * 2)
    a.merge(Stats.from_json(json.loads(json.dumps(b.to_json()))))
    assert a.sent == {"Heartbeat": 5, "BootNotification": 1}
    assert a.tx == {"started": 4} and a.events == {"reconnects": 2}
    assert a.check["Heartbeat"]["checked"] == 4 and a.check["Heartbeat"]["violations"] == 2
    assert a.frames_in == 20 and a.frames_out == 24
    rows = {r["action"]: r for r in a.per_action()}
    assert rows["BootNotification"]["callerrors"] == 1 and rows["BootNotification"]["p50"] is None
    hb = rows["Heartbeat"]
    assert (hb["sent"], hb["answered"], hb["callerrors"]) == (5, 5, 0)
    assert hb["p50"] == pytest.approx(1.0, rel=0.02) and hb["max"] == pytest.approx(4.0)
    assert a.all_latency.n == 5


def _report(n, stats, marks):
    return {"stats": stats.to_json(), "marks": marks, "counts": {}, "chargers": n,
            "last_problem": None}


def test_combine_adds_cpu_and_memory_over_processes():
    s = _stats({"Heartbeat": 10}, {"Heartbeat": 10}, [("Heartbeat", 0.002)] * 10)
    mib = 2 ** 20
    # (monotonic, CPU s, RSS, frames, system CPU s)
    m1 = {"base": (0, 1, 50 * mib, 0, 0), "steady": (10, 2, 60 * mib, 100, 0.1),
          "end": (110, 7, 61 * mib, 10100, 1.1)}
    m2 = {"base": (0, 1, 50 * mib, 0, 0), "steady": (12, 2, 70 * mib, 100, 0.1),
          "end": (112, 5, 70 * mib, 6100, 0.6)}
    out = combine([_report(1000, s, m1), _report(2000, s, m2)])
    assert out["chargers"] == 3000 and out["processes"] == 2
    assert out["fleet_cpu_s"] == 8 and out["fleet_system_cpu_s"] == pytest.approx(1.5)
    assert out["steady_window_s"] == 100
    assert out["chargers_per_core"] == pytest.approx(3000 * 100 / 8)
    assert out["cpu_us_per_frame"] == pytest.approx(8 / 16000 * 1e6)
    assert out["rss_kib_per_charger"] == pytest.approx(30 * 1024 / 3000)
    assert out["actions"][0]["sent"] == 20 and out["all_booted"]


def test_worker_arguments_drop_what_the_parent_sets():
    argv = ["--csms", "ws://x", "--count", "10", "--procs=2", "--json", "a.json",
            "--check", "--seed", "4", "--profile", "storm", "--ramp", "3"]
    assert _strip(argv) == ["--csms", "ws://x", "--check", "--profile", "storm", "--ramp", "3"]


# -- transaction accounting ------------------------------------------------------------------

class _Rpc:
    _pending = None

    async def _send(self, text):
        pass

    async def handle(self, text):
        pass

    async def call(self, action, payload, timeout_ms=None, on_result=None):
        raise AssertionError("not called here")


def _instrumented(tmp_path, max_bytes):
    from firmware.journal import Journal
    from firmware.outbox import Outbox
    from tests.fakes import Log
    from tools.fleet.run import Charger, Fleet

    class Link:
        async def _connect(self):
            pass

    class Cp:
        pass

    log = Log()
    cp = Cp()
    cp.rpc, cp.link = _Rpc(), Link()
    cp.outbox = Outbox(log, Journal(str(tmp_path / "j"), log, max_bytes))
    fleet = Fleet("ws://x", 1, profile.parse("{}"))
    ch = Charger(fleet, 0, "CP_0", {})
    ch._instrument(cp)
    return fleet, ch, cp.outbox


def _lost(ch, outbox):
    return ch.tx_in - ch.tx_out - ch.thinned - len(outbox.journal)


def test_a_reply_taken_in_counts_as_delivered_though_the_call_never_returned(tmp_path):
    # Under load Rpc.call's wait may time out (or its task be cancelled) after the reader
    # took the CALLRESULT in: the firmware acked the record, so it was delivered.
    fleet, ch, outbox = _instrumented(tmp_path, 64 * 1024)
    outbox.put_tx("StartTransaction", "r1", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                             "timestamp": "2026-01-01T00:00:00Z"})
    outbox.put_tx("StopTransaction", "r1", {"meterStop": 5, "timestamp": "2026-01-01T00:01:00Z"})
    start = outbox.next()
    outbox.done(start, {"transactionId": 7, "idTagInfo": {"status": "Accepted"}})  # on_result
    stop = outbox.next()
    assert stop.action == "StopTransaction" and stop.payload["transactionId"] == 7
    assert ch.tx_in == 2 and ch.tx_out == 1 and _lost(ch, outbox) == 0
    outbox.done(stop, {})
    tx = fleet.stats.tx
    assert tx["start_delivered"] == tx["stop_delivered"] == 1 and len(outbox.journal) == 0
    assert ch.tx_out == 2 and _lost(ch, outbox) == 0


def test_meter_values_thinned_by_a_full_journal_are_counted_apart_not_lost(tmp_path):
    fleet, ch, outbox = _instrumented(tmp_path, 8 * 1024)
    outbox.put_tx("StartTransaction", "r1", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                             "timestamp": "2026-01-01T00:00:00Z"})
    for i in range(200):
        outbox.put_tx("MeterValues", "r1", {"connectorId": 1, "meterValue": [
            {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": str(i)}]}]})
    tx = fleet.stats.tx
    assert ch.thinned == tx["meter_values_thinned"] > 0
    assert ch.tx_in == 1 + tx["meter_values_queued"]
    assert len(outbox.journal) < ch.tx_in  # some MeterValues were dropped
    assert _lost(ch, outbox) == 0
