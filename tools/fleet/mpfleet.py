"""`--interpreter micropython`: the fleet's chargers in MicroPython unix-port processes.

K processes (--procs) each run tools/fleet/mprunner.py on a consecutive slice of the ids; this
side writes their job files, reads their JSON lines (progress, reply latencies, marks, the
final counters), adds them into tools/fleet/stats.py's Stats and the same report dicts
cli.combine() sums for CPython workers. Ctrl-C is passed on to the children as SIGINT; each
closes its chargers' websockets, then reports.

What a profile may ask of a MicroPython fleet: connectors, ocpp keys (heartbeats,
MeterValues), ramp_s and the EVs (arrivals, sessions, power, unknown cards, remote starts).
Link drops, reconnect storms, offline periods and reboots need the host's transport and
power-cut seams (tools/fleet/run.py) and are refused, as are --check and --cprofile.
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import time

from tools.driver import MICROPYTHON, ROOT
from tools.fleet.stats import Stats

RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mprunner.py")


def refusal(args):
    """Why this run cannot be done on MicroPython (a message), or None."""
    p = args.profile_data
    link = p["link"]
    no = [name for name, on in (
        ("link.drops_per_hour", link["drops_per_hour"]),
        ("link.storms_at_s", link["storms_at_s"]),
        ("link.offline_per_hour", link["offline_per_hour"]),
        ("reboots_per_hour", p["reboots_per_hour"]),
        ("--check", args.check), ("--cprofile", args.cprofile), ("--echo", args.echo))
        if on]
    if no:
        return ("not available with --interpreter micropython: %s (link cuts, offline "
                "periods and power cuts use the CPython fleet's seams; run without "
                "--interpreter)" % ", ".join(no))
    if not os.access(MICROPYTHON, os.X_OK):
        return "micropython not found at %s (`make setup` installs it)" % MICROPYTHON
    return None


def spawn(args, data):
    """Start the runners over consecutive slices of the fleet; -> [(Popen, count)]."""
    from tools.fleet.run import Fleet
    # The checked base config, written by the CPython fleet's own code.
    proto = Fleet(args.csms, 1, args.profile_data, data=data, password=args.password,
                  ca_file=args.ca_file, insecure=args.insecure, log_level=args.log_level,
                  base_config=args.config)
    proto._config()
    n, k = args.count, args.procs
    out = []
    for w in range(k):
        lo, hi = args.first + n * w // k, args.first + n * (w + 1) // k
        if hi <= lo:
            continue
        job = {"root": ROOT, "config": os.path.join(data, "_base", "config.json"),
               "data": data, "first": lo,
               "ids": [args.id_format.format(i) for i in range(lo, hi)],
               "profile": args.profile_data, "seed": args.seed, "duration": args.duration,
               "drain": args.drain, "page": os.sysconf("SC_PAGE_SIZE"),
               "hz": os.sysconf("SC_CLK_TCK")}
        # The unix port's RSS is the touched part of its heap, which a collection only
        # starts to reuse when the heap is full: sized to the share, not a fixed large one.
        heap = args.mp_heap or "%dK" % (2048 + 48 * (hi - lo))
        path = os.path.join(data, "_base", "job%d.json" % w)
        with open(path, "w") as f:
            json.dump(job, f)
        p = subprocess.Popen([MICROPYTHON, "-X", "heapsize=" + heap, RUNNER, path],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             start_new_session=True)
        out.append((p, hi - lo))
    return out


async def gather(children, on_progress):
    """Read the runners' lines until they end; -> reports in the form cli.combine() takes."""
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    latest = [None] * len(children)
    stats = [Stats() for _ in children]
    reports = [None] * len(children)

    def interrupt():
        for p, _ in children:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
    loop.add_signal_handler(signal.SIGINT, interrupt)
    loop.add_signal_handler(signal.SIGTERM, interrupt)

    async def read(i, p, n):
        s = stats[i]
        while True:
            line = await loop.run_in_executor(None, p.stdout.readline)
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                print(line, end="", file=sys.stderr)
                continue
            s.steady = msg.get("st", False)
            for action, us in msg.get("l", {}).items():
                for v in us:
                    if action.startswith("("):
                        s.latency_of(action, v / 1e6)
                    else:
                        s.reply_latency(action, v / 1e6)
            if "p" in msg:
                latest[i] = msg["p"]
                if all(latest):
                    total = {k: sum(c[k] for c in latest) for k in latest[0]}
                    on_progress(time.monotonic() - t0, total)
            if "r" in msg:
                for name, d in msg["r"].items():
                    setattr(s, name, d)
                s.frames_in, s.frames_out = msg["frames"]
                reports[i] = {"stats": s.to_json(), "marks": msg["m"], "counts": msg["p"],
                              "chargers": n, "last_problem": msg.get("last_problem"),
                              "heap": msg.get("heap", {})}
    try:
        await asyncio.gather(*(read(i, p, n) for i, (p, n) in enumerate(children)))
    finally:
        for p, _ in children:
            p.wait()
    return [r for r in reports if r is not None]


def heap_kib_per_charger(reports):
    """The MicroPython heap in use (after a collection) per charger once steady, or None."""
    if not all("steady" in r["heap"] for r in reports):
        return None
    used = sum(r["heap"]["steady"] - r["heap"]["base"] for r in reports)
    return used / sum(r["chargers"] for r in reports) / 1024
