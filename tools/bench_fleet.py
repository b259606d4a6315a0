"""Fleet figures: chargers per core, RSS per charger and the limit a run hit.

    python -m tools.bench_fleet [--count N] [--seconds S] [--load heartbeats|metervalues|both]
    python -m tools.bench --fleet ...        (the same)

Starts the local Central System (tools.csms --fast, a 10 s HeartbeatInterval) in its own
process and a fleet (tools.fleet) in another, so their CPU times are apart; then prints, per
load, the fleet's chargers per core (N x steady wall time / fleet CPU time), its CPU per frame,
RSS per idle connected charger (RSS growth over N chargers), the Central System's CPU, the
latency of its replies, and which limit bounded the run: the fleet's core, the Central
System's, the file descriptors, or none (the figure is then N / CPU share, an extrapolation).
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

LOADS = {"heartbeats": "heartbeats", "metervalues": "metervalues"}


def _cpu_of(pid):
    """(user + system) CPU seconds of a running process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(count, seconds, profile, procs=1, interval=10):
    """One fleet run against a fresh local Central System -> (fleet summary, CSMS cores)."""
    port = _free_port()
    csms = subprocess.Popen(
        [sys.executable, "-m", "tools.csms", "--fast", "--host", "127.0.0.1", "--port",
         str(port), "--heartbeat-interval", str(interval), "--ping-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        csms.stdout.readline()  # "listening on ..."
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
            out = os.path.join(tmp, "summary.json")
            c0, t0 = _cpu_of(csms.pid), time.monotonic()
            fleet = subprocess.run(
                [sys.executable, "-m", "tools.fleet", "--csms",
                 "ws://127.0.0.1:%d/ocpp" % port, "--count", str(count), "--profile", profile,
                 "--duration", str(seconds), "--procs", str(procs), "--ramp", str(count / 50),
                 "--quiet", "--json", out],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            csms_cores = (_cpu_of(csms.pid) - c0) / (time.monotonic() - t0)
            if fleet.returncode != 0 or not os.path.exists(out):
                raise SystemExit("fleet failed:\n" + fleet.stdout[-3000:])
            with open(out) as f:
                return json.load(f), csms_cores
    finally:
        csms.terminate()
        csms.wait()


def limit(s, csms_cores, count, procs):
    """What bounded this run (the first that applies)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if not s["all_booted"]:
        return "not all chargers booted (see the fleet's summary)"
    if csms_cores > 0.85:
        return "the Central System's core (%.2f cores busy)" % csms_cores
    if s["fleet_cores"] / procs > 0.85:
        return "the fleet's core (%.2f cores busy over %d process(es))" % (s["fleet_cores"],
                                                                           procs)
    if count / procs > soft - 50:
        return "file descriptors (ulimit -n %d per process)" % soft
    return ("none at %d chargers: the fleet used %.2f cores, the Central System %.2f; "
            "chargers per core is N / fleet CPU share" % (count, s["fleet_cores"], csms_cores))


def report(name, s, csms_cores, count, procs):
    lat = s["latency_ms"]
    print("%s: %d chargers, %.0f s steady" % (name, s["chargers"], s["steady_window_s"]))
    print("  fleet: %.0f chargers per core (%.3f cores, %.0f%% of it in the kernel), %.0f us "
          "of CPU per frame" % (s["chargers_per_core"], s["fleet_cores"],
                                100 * s["fleet_system_cpu_s"] / s["fleet_cpu_s"],
                                s["cpu_us_per_frame"]))
    print("  memory: %.1f KiB RSS per charger (%.0f MiB in all)"
          % (s["rss_kib_per_charger"], s["rss_mib"]))
    print("  Central System: %.2f cores; replies p50 %.1f ms, p95 %.1f, p99 %.1f, max %.1f"
          % (csms_cores, lat["p50"], lat["p95"], lat["p99"], lat["max"]))
    tx = s["transactions"]
    if tx.get("started"):
        print("  transactions: started %d, delivered stops %d, meter values %d (thinned %d), "
              "still queued %d, lost %d"
              % (tx["started"], tx.get("stop_delivered", 0),
                 tx.get("meter_values_delivered", 0), tx.get("meter_values_thinned", 0),
                 tx.get("still_queued", 0), tx.get("lost", 0)))
    print("  limit: " + limit(s, csms_cores, count, procs))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.bench_fleet",
                                 description="Fleet figures against the local Central System.")
    ap.add_argument("--count", type=int, default=2000, help="chargers (2000)")
    ap.add_argument("--seconds", type=float, default=90,
                    help="run length (90; the chargers start at 50 a second)")
    ap.add_argument("--load", choices=["heartbeats", "metervalues", "both"], default="both")
    ap.add_argument("--procs", type=int, default=1, help="fleet processes (1)")
    args = ap.parse_args(argv)
    loads = ["heartbeats", "metervalues"] if args.load == "both" else [args.load]
    for name in loads:
        s, csms_cores = run(args.count, args.seconds, LOADS[name], args.procs)
        report(name, s, csms_cores, args.count, args.procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
