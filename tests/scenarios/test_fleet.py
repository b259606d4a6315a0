"""A fleet of 50 chargers of the real firmware (tools.fleet, CPython) against the strict local
Central System: the fleet's summary must agree with the Central System's own ledger, in a
clean run and through a reconnect storm."""
import collections
import json
import subprocess
import sys

import pytest

from tests.harness import CsmsThread
from tools.csms import cp_id_from_path

pytestmark = pytest.mark.slow

N = 50
PROFILE = {
    "ocpp": {"WebSocketPingInterval": 0, "MeterValueSampleInterval": 3},
    "ramp_s": 2,
    "ev": {"initial_share": 0.5, "arrivals_per_hour": 360, "session_s": [2, 5],
           "unknown_card_share": 0.1, "remote_start_share": 0.1, "remote_wait_s": 8},
}


@pytest.fixture
def central():
    """The strict Central System, counting connections per charger; no violations allowed."""
    server = CsmsThread()
    cs = server.cs
    cs.connections = collections.Counter()
    serve = cs._serve_connection

    async def counted(ws):
        cs.connections[cp_id_from_path(ws.request.path)] += 1
        await serve(ws)
    cs._serve_connection = counted
    cs.quiet = True
    cs.heartbeat_interval = 4
    cs.remote_start_after = 1.5
    cs.id_tags = {"UNKNOWN*": "Invalid"}
    server.start()
    yield server
    server.stop()
    assert list(server.violations) == [], "\n".join(server.violations)


def run_fleet(tmp_path, url, profile, seconds):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.fleet", "--csms", url, "--count", str(N),
         "--profile", str(path), "--duration", str(seconds), "--drain", "15", "--check",
         "--quiet", "--json", str(out), "--csv", str(tmp_path / "actions.csv")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def inbound_calls(cs):
    n = collections.Counter()
    for f in cs.ledger:
        if f.direction == "in" and isinstance(f.parsed, list) and f.parsed[:1] == [2]:
            n[f.parsed[2]] += 1
    return n


def check_against_ledger(cs, s, exact):
    """The summary's counts against what the Central System recorded."""
    seen = inbound_calls(cs)
    sent = {r["action"]: r["sent"] for r in s["actions"] if not r["action"].startswith("(")}
    for r in s["actions"]:
        if r["action"].startswith("("):
            continue
        # A CALL in flight when its link was cut (a storm) may never reach the CSMS.
        assert seen[r["action"]] <= r["sent"], r
        assert seen[r["action"]] >= r["answered"], r
        if exact:
            assert seen[r["action"]] == r["sent"], r
        assert r["callerrors"] == r["invalid"] == r["timeouts"] == 0, r
    assert set(seen) == set(sent)
    tx = s["transactions"]
    txs = cs.transactions
    assert tx["started"] == tx["stopped"] == tx["start_delivered"] == tx["stop_delivered"]
    assert len(txs) == tx["started"] > 10
    assert all(t["start"] is not None and t["stop"] is not None for t in txs.values())
    assert sum(len(t["meter_values"]) for t in txs.values()) == tx["meter_values_delivered"]
    assert tx["meter_values_delivered"] == tx["meter_values_queued"] > 0
    assert tx["lost"] == 0 and tx["still_queued"] == 0
    # Unknown cards: refused by the CSMS's policy, and counted by the fleet.
    refused = sum(1 for f in cs.ledger if f.direction == "out" and f.parsed[0] == 3
                  and f.parsed[2].get("idTagInfo", {}).get("status") == "Invalid")
    assert s["events"].get("cards_refused", 0) == refused > 0
    # Remote starts: the CSMS's RemoteStartTransactions reached the chargers.
    remote = sum(1 for f in cs.ledger if f.direction == "out" and f.parsed[:1] == [2]
                 and f.parsed[2] == "RemoteStartTransaction")
    assert s["requests"].get("RemoteStartTransaction", 0) == remote > 0
    assert all(c["violations"] == 0 for c in s["check"].values()), s["check"]
    assert s["chargers"] == N and s["all_booted"]
    assert 0 < s["rss_kib_per_charger"] < 400


def test_fleet_of_50_clean_run_matches_the_central_systems_ledger(central, tmp_path):
    s, text = run_fleet(tmp_path, central.url, PROFILE, 12)
    cs = central.cs
    check_against_ledger(cs, s, exact=True)
    assert s["events"]["connects"] == N and s["events"].get("reconnects", 0) == 0
    assert sorted(cs.connections.values()) == [1] * N
    assert s["latency_all_ms"]["n"] == sum(r["answered"] for r in s["actions"])
    assert "transactions: started %d" % s["transactions"]["started"] in text
    assert (tmp_path / "actions.csv").read_text().startswith("action,sent,answered")


def test_fleet_of_50_reconnect_storm_loses_no_transaction(central, tmp_path):
    profile = dict(PROFILE, link={"storms_at_s": [6]})
    s, _ = run_fleet(tmp_path, central.url, profile, 14)
    cs = central.cs
    check_against_ledger(cs, s, exact=False)
    e = s["events"]
    assert e["storms"] == 1 and e["storm_cuts"] == N
    # Every charger came back after the storm, on a new connection.
    assert len(cs.connections) == N and min(cs.connections.values()) >= 2
    assert sum(cs.connections.values()) == e["connects"] + e["reconnects"]
