"""A fleet of 20 chargers of the real firmware on the MicroPython unix port
(`tools.fleet --interpreter micropython`) against the strict local Central System: the
summary must agree with the Central System's own ledger."""
import collections
import json
import subprocess
import sys

import pytest

from tests.harness import CsmsThread
from tests.mp import needs_mp
from tools.csms import cp_id_from_path

pytestmark = [pytest.mark.slow, needs_mp]

N = 20
PROFILE = {
    "ocpp": {"WebSocketPingInterval": 0, "MeterValueSampleInterval": 3},
    "ramp_s": 2,
    "ev": {"initial_share": 0.6, "arrivals_per_hour": 360, "session_s": [2, 4],
           "unknown_card_share": 0.15, "remote_start_share": 0.15, "remote_wait_s": 8},
}


@pytest.fixture
def central():
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


def fleet(tmp_path, url, *extra, profile=PROFILE, timeout=60):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tools.fleet", "--interpreter", "micropython", "--csms", url,
         "--count", str(N), "--profile", str(path), "--quiet", "--json", str(out),
         "--csv", str(tmp_path / "actions.csv")] + list(extra),
        capture_output=True, text=True, timeout=timeout)
    return proc, out


def test_micropython_fleet_of_20_matches_the_central_systems_ledger(central, tmp_path):
    proc, out = fleet(tmp_path, central.url, "--procs", "2", "--duration", "12",
                      "--drain", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads(out.read_text())
    cs = central.cs
    seen = collections.Counter(
        f.parsed[2] for f in cs.ledger
        if f.direction == "in" and isinstance(f.parsed, list) and f.parsed[:1] == [2])
    rows = {r["action"]: r for r in s["actions"] if not r["action"].startswith("(")}
    assert set(rows) == set(seen)
    for action, r in rows.items():
        assert seen[action] == r["sent"] == r["answered"], r
        assert r["callerrors"] == r["invalid"] == r["timeouts"] == 0, r
    assert s["chargers"] == N and s["processes"] == 2 and s["all_booted"]
    assert s["events"]["connects"] == N and s["events"].get("reconnects", 0) == 0
    assert sorted(cs.connections.values()) == [1] * N
    assert rows["BootNotification"]["sent"] == N and seen["Heartbeat"] > 0
    tx, txs = s["transactions"], cs.transactions
    assert tx["started"] == tx["stopped"] == tx["start_delivered"] == tx["stop_delivered"]
    assert len(txs) == tx["started"] >= 5
    assert all(t["start"] is not None and t["stop"] is not None for t in txs.values())
    assert sum(len(t["meter_values"]) for t in txs.values()) == tx["meter_values_delivered"]
    assert tx["meter_values_delivered"] == tx["meter_values_queued"] > 0
    assert tx["lost"] == 0 and tx["still_queued"] == 0
    refused = sum(1 for f in cs.ledger if f.direction == "out" and f.parsed[0] == 3
                  and f.parsed[2].get("idTagInfo", {}).get("status") == "Invalid")
    assert s["events"].get("cards_refused", 0) == refused > 0
    remote = sum(1 for f in cs.ledger if f.direction == "out" and f.parsed[:1] == [2]
                 and f.parsed[2] == "RemoteStartTransaction")
    assert s["requests"].get("RemoteStartTransaction", 0) == remote > 0
    assert s["latency_all_ms"]["n"] == sum(r["answered"] for r in rows.values())
    assert 0 < s["rss_kib_per_charger"] < 1000
    assert "transactions: started %d" % tx["started"] in proc.stdout


def test_micropython_fleet_refuses_a_reconnect_storm(tmp_path):
    profile = dict(PROFILE, link={"storms_at_s": [6]})
    proc, _ = fleet(tmp_path, "ws://127.0.0.1:9/ocpp", profile=profile)
    assert proc.returncode == 2
    assert "not available with --interpreter micropython: link.storms_at_s" in proc.stderr
