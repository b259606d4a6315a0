"""The fleet's command line: one process, or K worker processes (--procs) whose figures are
added up; live progress on stderr, the summary on stdout, JSON and CSV on request."""
import argparse
import asyncio
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from tools.fleet import profile as profiles
from tools.fleet.stats import Stats


def _args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m tools.fleet",
        description="Run N chargers of the real firmware (simulated boards) against a "
                    "Central System. Ctrl-C stops cleanly and prints the summary so far.")
    ap.add_argument("--csms", required=True, metavar="URL",
                    help="Central System base URL (ws:// or wss://); each charger appends /<id>")
    ap.add_argument("--count", type=int, required=True, metavar="N", help="chargers")
    ap.add_argument("--first", type=int, default=0, metavar="M",
                    help="number of the first charger (several machines split one fleet)")
    ap.add_argument("--id-format", default="CP_{:05d}",
                    help="charge point id from the charger's number (CP_{:05d})")
    ap.add_argument("--profile", default="heartbeats", metavar="FILE",
                    help="behaviour profile: a JSON file or a shipped name (%s)"
                    % ", ".join(profiles.shipped()))
    ap.add_argument("--duration", type=float, default=None, metavar="S",
                    help="run this long, then end the sessions and drain (default: until "
                         "Ctrl-C)")
    ap.add_argument("--drain", type=float, default=20.0, metavar="S",
                    help="longest wait for the outboxes to empty at the end (20)")
    ap.add_argument("--ramp", type=float, metavar="S",
                    help="start the chargers over S seconds (the profile's ramp_s)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the profile (1)")
    ap.add_argument("--data", metavar="DIR",
                    help="keep the chargers' data folders here (default: a temp folder in "
                         "/dev/shm, removed at the end)")
    ap.add_argument("--procs", type=int, default=1, metavar="K",
                    help="spread the chargers over K processes (one per core)")
    ap.add_argument("--password", help="HTTP Basic auth password (user = charge point id)")
    ap.add_argument("--ca-file", help="CA certificate (PEM) of a wss:// Central System")
    ap.add_argument("--insecure", action="store_true", help="do not verify the TLS server")
    ap.add_argument("--config", help="config.json every charger starts from (the repo's)")
    ap.add_argument("--check", action="store_true",
                    help="audit every frame of the Central System against the firmware's "
                         "schema tables and report violations per action")
    ap.add_argument("--json", metavar="F", help="write the summary as JSON")
    ap.add_argument("--csv", metavar="F", help="write the per-action table as CSV")
    ap.add_argument("--log-level", default="warn", choices=["debug", "info", "warn", "error"])
    ap.add_argument("--echo", action="store_true", help="print the chargers' log lines")
    ap.add_argument("--quiet", action="store_true", help="no live progress line")
    ap.add_argument("--cprofile", metavar="F",
                    help="profile the steady window with cProfile into F (one process)")
    ap.add_argument("--interpreter", default="python", choices=["python", "micropython"],
                    help="run the chargers on CPython (default) or in MicroPython unix-port "
                         "processes (--procs of them; no link cuts, reboots or --check)")
    ap.add_argument("--mp-heap", metavar="SIZE",
                    help="heap of each MicroPython process, fixed at its start (default: "
                         "2 MiB + 48 KiB per charger: ~18 KiB live each, room to collect)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.count < 1 or args.procs < 1 or args.first < 0:
        ap.error("--count and --procs must be >= 1, --first >= 0")
    try:
        args.id_format.format(0)
    except (IndexError, KeyError, ValueError) as e:
        ap.error("--id-format: %s" % e)
    try:
        args.profile_data = profiles.load(args.profile)
    except (OSError, ValueError) as e:
        ap.error("--profile %s: %s" % (args.profile, e))
    if args.ramp is not None:
        args.profile_data["ramp_s"] = max(0.0, args.ramp)
    if args.interpreter == "micropython":
        from tools.fleet import mpfleet
        why = mpfleet.refusal(args)
        if why:
            ap.error(why)
    return args


def _progress_line(t, c, rate):
    return ("[%5.0fs] connected %d/%d  booted %d  charging %d  errors %d  %.0f msg/s  "
            "loop lag %d ms" % (t, c["connected"], c["chargers"], c["booted"], c["charging"],
                                c["errors"], rate, c.get("lag_ms", 0)))


class _Progress:
    def __init__(self, quiet):
        self.quiet = quiet
        self.last = (0.0, 0)
        self.tty = sys.stderr.isatty()
        self.printed = 0.0

    def __call__(self, t, c):
        dt = t - self.last[0]
        rate = (c["frames"] - self.last[1]) / dt if dt > 0 else 0.0
        self.last = (t, c["frames"])
        if self.quiet:
            return
        line = _progress_line(t, c, rate)
        if self.tty:
            sys.stderr.write("\r" + line + "   ")
            sys.stderr.flush()
        elif t - self.printed >= 5:
            self.printed = t
            print(line, file=sys.stderr, flush=True)

    def done(self):
        if self.tty and not self.quiet:
            sys.stderr.write("\n")


async def _run_here(args, data, on_progress):
    from tools.fleet.run import Fleet
    fleet = Fleet(args.csms, args.count, args.profile_data, first=args.first,
                  id_format=args.id_format, data=data, seed=args.seed, password=args.password,
                  ca_file=args.ca_file, insecure=args.insecure, check=args.check,
                  echo=args.echo, log_level=args.log_level, base_config=args.config)
    fleet.profile_out = args.cprofile
    fleet.build()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, fleet.stop)
    loop.add_signal_handler(signal.SIGTERM, fleet.stop)
    await fleet.run(args.duration, args.drain, on_progress)
    return fleet.report()


def _worker(args, data):
    """A worker of --procs: progress and the final report as JSON lines on stdout."""
    def progress(t, c):
        print(json.dumps({"progress": c, "t": t}), flush=True)
    report = asyncio.run(_run_here(args, data, progress))
    print(json.dumps({"report": report}), flush=True)
    return 0


def _spawn(args, argv, data):
    """Start args.procs workers over consecutive slices of the fleet; -> their reports."""
    n, k = args.count, args.procs
    procs = []
    for w in range(k):
        lo, hi = args.first + n * w // k, args.first + n * (w + 1) // k
        if hi <= lo:
            continue
        cmd = [sys.executable, "-m", "tools.fleet"] + _strip(argv) + [
            "--worker", "--first", str(lo), "--count", str(hi - lo), "--data", data,
            "--seed", str(args.seed)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                      start_new_session=True))
    return procs


def _strip(argv):
    """argv without the options the parent sets per worker (or writes itself)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in ("--first", "--count", "--procs", "--data", "--json", "--csv", "--seed"):
            skip = "=" not in a
            continue
        out.append(a)
    return out


async def _gather(procs, on_progress):
    latest = [None] * len(procs)
    reports = [None] * len(procs)
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()

    def interrupt():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
    loop.add_signal_handler(signal.SIGINT, interrupt)
    loop.add_signal_handler(signal.SIGTERM, interrupt)

    async def read(i, p):
        while True:
            line = await loop.run_in_executor(None, p.stdout.readline)
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                print(line, end="", file=sys.stderr)
                continue
            if "progress" in msg:
                latest[i] = msg["progress"]
                if all(latest):
                    total = {k: sum(c[k] for c in latest) for k in latest[0]}
                    total["lag_ms"] = max(c["lag_ms"] for c in latest)
                    on_progress(time.monotonic() - t0, total)
            elif "report" in msg:
                reports[i] = msg["report"]
    await asyncio.gather(*(read(i, p) for i, p in enumerate(procs)))
    for p in procs:
        p.wait()
    return [r for r in reports if r is not None]


def combine(reports):
    """The reports of one or more processes as one summary dict."""
    stats = Stats()
    for r in reports:
        stats.merge(Stats.from_json(r["stats"]))
    n = sum(r["chargers"] for r in reports)
    out = {"chargers": n, "processes": len(reports)}
    # CPU and memory, added over the processes: the steady window is from all booted to
    # the end (before draining); without one (never all booted) from the start.
    cpu = system = wall = frames = rss_delta = 0.0
    rss_total = 0
    for r in reports:
        m = r["marks"]
        a = m.get("steady") or m["base"]
        b = m["end"]
        cpu += b[1] - a[1]
        system += b[4] - a[4]
        wall = max(wall, b[0] - a[0])
        frames += b[3] - a[3]
        rss_delta += (m.get("steady") or m["end"])[2] - m["base"][2]
        rss_total += m["end"][2]
    out["steady_window_s"] = wall
    if all("booted" in r["marks"] for r in reports):
        # Building, connecting and booting a charger (and its first sessions' start).
        out["startup_cpu_ms_per_charger"] = sum(
            r["marks"]["booted"][1] - r["marks"]["base"][1] for r in reports) / n * 1000
    out["all_booted"] = all("steady" in r["marks"] for r in reports)
    out["fleet_cpu_s"] = cpu
    out["fleet_system_cpu_s"] = system  # the kernel's share: socket calls, wake-ups
    out["fleet_cores"] = cpu / wall if wall else None
    out["chargers_per_core"] = n * wall / cpu if cpu else None
    out["frames_in_window"] = frames
    out["cpu_us_per_frame"] = cpu / frames * 1e6 if frames else None
    out["rss_mib"] = rss_total / 2**20
    out["rss_kib_per_charger"] = rss_delta / n / 1024 if n else None
    out["actions"] = stats.per_action()
    out["latency_ms"] = stats.steady_latency.summary()  # steady: the ramp left out
    out["latency_all_ms"] = stats.all_latency.summary()
    conn = stats.latency.get("(connect)")
    out["connect_ms"] = conn.summary() if conn else None
    out["callerrors"] = stats.callerrors
    out["timeouts"] = stats.timeouts
    out["invalid_replies"] = stats.invalid
    out["not_connected"] = stats.not_connected
    out["events"] = stats.events
    out["requests"] = stats.requests
    out["warnings"] = stats.warnings
    out["transactions"] = stats.tx
    out["frames"] = {"in": stats.frames_in, "out": stats.frames_out}
    if stats.check:
        out["check"] = stats.check
    problems = [r["last_problem"] for r in reports if r.get("last_problem")]
    out["last_problem"] = problems[-1] if problems else None
    return out


def _ms(v):
    return "-" if v is None else ("%.1f" % v if v < 100 else "%.0f" % v)


def render(s, profile_name):
    lines = ["fleet: %d chargers in %d process(es), profile %s"
             % (s["chargers"], s["processes"], profile_name)]
    e, tx = s["events"], s["transactions"]
    lines.append("links: connects %d, reconnects %d, failed connects %d, drops %d, storms %d "
                 "(%d links cut), offline periods %d, reboots %d"
                 % (e.get("connects", 0), e.get("reconnects", 0), e.get("connect_failed", 0),
                    e.get("drops", 0), e.get("storms", 0),
                    e.get("storm_cuts", 0), e.get("offlines", 0), e.get("reboots", 0)))
    lines.append("%-26s %8s %8s %6s %6s %6s %8s %8s %8s %8s" % (
        "action", "sent", "answered", "error", "t/o", "lost", "p50 ms", "p95", "p99", "max"))
    for r in s["actions"]:
        lines.append("%-26s %8d %8d %6d %6d %6d %8s %8s %8s %8s" % (
            r["action"], r["sent"], r["answered"], r["callerrors"] + r["invalid"],
            r["timeouts"], r["not_connected"], _ms(r["p50"]), _ms(r["p95"]), _ms(r["p99"]),
            _ms(r["max"])))
    for label, key in (("replies once steady", "latency_ms"),
                       ("replies of the whole run", "latency_all_ms")):
        lat = s[key]
        lines.append("%s: %d, p50 %s ms, p95 %s, p99 %s, max %s"
                     % (label, lat["n"], _ms(lat["p50"]), _ms(lat["p95"]), _ms(lat["p99"]),
                        _ms(lat["max"])))
    for name in ("callerrors", "invalid_replies", "timeouts"):
        if s[name]:
            lines.append("%s: %s" % (name.replace("_", " "), ", ".join(
                "%s %d" % kv for kv in sorted(s[name].items()))))
    lines.append("transactions: started %d, stopped %d, delivered starts %d stops %d "
                 "meter values %d/%d (thinned %d), queued at boot %d, still queued %d, lost %d"
                 % (tx.get("started", 0), tx.get("stopped", 0), tx.get("start_delivered", 0),
                    tx.get("stop_delivered", 0), tx.get("meter_values_delivered", 0),
                    tx.get("meter_values_queued", 0), tx.get("meter_values_thinned", 0),
                    tx.get("queued_at_boot", 0), tx.get("still_queued", 0), tx.get("lost", 0)))
    lines.append("sessions: card %d, unknown card %d (cards refused %d), remote %d, "
                 "not started %d" % (e.get("sessions_card", 0), e.get("sessions_unknown", 0),
                                     e.get("cards_refused", 0), e.get("sessions_remote", 0),
                                     e.get("sessions_not_started", 0)))
    if s["requests"]:
        lines.append("requests of the Central System: " + ", ".join(
            "%s %d" % kv for kv in sorted(s["requests"].items())))
    if s["chargers_per_core"]:
        lines.append("fleet CPU: %.1f s (%.1f s of it in the kernel) in a %.0f s steady window%s"
                     " = %.3f cores -> %.0f chargers per core; %.0f us per frame"
                     % (s["fleet_cpu_s"], s["fleet_system_cpu_s"], s["steady_window_s"],
                        "" if s["all_booted"] else " (not all booted)", s["fleet_cores"],
                        s["chargers_per_core"], s["cpu_us_per_frame"] or 0))
    lines.append("memory: RSS %.1f MiB, %.1f KiB per charger"
                 % (s["rss_mib"], s["rss_kib_per_charger"] or 0))
    if s.get("mp_heap_kib_per_charger"):
        lines.append("MicroPython heap in use: %.1f KiB per charger (after a collection)"
                     % s["mp_heap_kib_per_charger"])
    if s.get("startup_cpu_ms_per_charger"):
        lines.append("start-up: %.1f ms of CPU per charger (build, connect, boot)"
                     % s["startup_cpu_ms_per_charger"])
    if "check" in s:
        bad = {a: c for a, c in s["check"].items() if c["violations"]}
        checked = sum(c["checked"] for c in s["check"].values())
        lines.append("check: %d frames audited, %d with violations" % (
            checked, sum(c["violations"] for c in bad.values())))
        for a, c in sorted(bad.items()):
            lines.append("  %s: %d of %d, e.g. %s" % (a, c["violations"], c["checked"],
                                                       "; ".join(c["examples"])))
    if s["warnings"]:
        top = sorted(s["warnings"].items(), key=lambda kv: -kv[1])[:6]
        lines.append("chargers' warnings: " + "; ".join("%s (%d)" % kv for kv in top))
    if s["last_problem"]:
        lines.append("last warning: %s" % s["last_problem"])
    return "\n".join(lines)


def write_csv(path, s):
    fields = ["action", "sent", "answered", "callerrors", "invalid", "timeouts",
              "not_connected", "p50", "p95", "p99", "max"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in s["actions"]:
            w.writerow({k: r[k] for k in fields})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = _args(argv)
    if args.worker:
        return _worker(args, args.data)
    # The chargers' flash: a RAM disk when there is one (thousands of small journal and
    # mirror files; on a disk each open costs ~0.1 ms of kernel time).
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    data = args.data or tempfile.mkdtemp(prefix="fleet-", dir=shm)
    progress = _Progress(args.quiet)
    try:
        if args.interpreter == "micropython":
            from tools.fleet import mpfleet
            reports = asyncio.run(mpfleet.gather(mpfleet.spawn(args, data), progress))
        elif args.procs > 1:
            procs = _spawn(args, argv, data)
            reports = asyncio.run(_gather(procs, progress))
        else:
            reports = [asyncio.run(_run_here(args, data, progress))]
    finally:
        progress.done()
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)
    if not reports:
        print("fleet: no worker reported", file=sys.stderr)
        return 1
    summary = combine(reports)
    summary["profile"] = args.profile
    summary["interpreter"] = args.interpreter
    if args.interpreter == "micropython":
        from tools.fleet import mpfleet
        summary["mp_heap_kib_per_charger"] = mpfleet.heap_kib_per_charger(reports)
    print(render(summary, args.profile), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    if args.csv:
        write_csv(args.csv, summary)
    return 0

