"""Benchmarks (figures, not pass/fail): RAM on the MicroPython unix port and request latency.

    python -m tools.bench [--quick]

Prints:
  * the smallest `-X heapsize` at which a full charging session completes (boot, status,
    plug, swipe, start, 10 meter values, stop), from source, from the .mpy bundle and from a
    ROMFS image of it (mounted from RAM, so the image counts here; its heap besides the image
    is what a board with a ROMFS partition needs);
  * the live heap (gc.collect() then mem_alloc) when idle after boot, its peak during the
    transaction, and the transaction's working set (peak minus idle);
  * the round-trip time of 2000 GetConfiguration calls from the Central System.
The unix port is 64-bit: objects take up to twice the RAM they take on the 32-bit ESP32.
"""
import argparse
import asyncio
import os
import re
import shutil
import sys
import time

from ocpp.v16 import call

from tools.driver import ROOT, launch, micropython_path

SESSION_KEYS = {"MeterValueSampleInterval": 1, "HeartbeatInterval": 60}


def build_mpy(dest):
    """The .mpy bundle that `make bundle` builds (device modules compiled by mpy-cross)."""
    from tools import bundle
    bundle.build(dest, include_config=False)
    return dest


# Runs on the unix port: it has no ROMFS partition, so the image is mounted from RAM (and
# counts against the heap there); on a board the same image lives in flash.
_ROM_RUNNER = """import sys, vfs
with open(sys.argv.pop(1), "rb") as f:
    image = f.read()
vfs.mount(vfs.VfsRom(image), "/rom")
sys.path.insert(0, "/rom")
import main
main.main()
"""
ROM_IMAGE = "app.romfs"


def build_romfs(dest):
    """A folder that runs the charger from a ROMFS image of the .mpy bundle: `rom_run.py`
    mounts `app.romfs` at /rom and starts main.py. Returns (folder, image size)."""
    from tools import bundle
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    image = bundle.write_romfs(build_mpy(dest + "-bundle"), os.path.join(dest, ROM_IMAGE))
    shutil.copyfile(os.path.join(ROOT, "main.py"), os.path.join(dest, "main.py"))
    with open(os.path.join(dest, "rom_run.py"), "w") as f:
        f.write(_ROM_RUNNER)
    return dest, os.path.getsize(image)


async def heap_alloc(fw):
    """Heap bytes in use after a collection, from the console's `mem` command."""
    return int(re.search(r"alloc=(\d+)", await fw.ask("mem", "mem: alloc=")).group(1))


class Heap:
    """Heap after a collection at each step of a session: idle (booted, Available) and the
    highest seen while a transaction ran; `working_set` is the difference."""

    def __init__(self):
        self.idle = self.peak = 0

    @property
    def working_set(self):
        return self.peak - self.idle


async def session(cwd, heap_kb, quiet=True, folder=None, samples=10, script=("main.py",)):
    """One charging session under `micropython -X heapsize=`: boot, status, plug, swipe,
    start, `samples` MeterValues, stop. Returns a Heap, or None when it did not complete."""
    argv = [micropython_path(), "-X", "heapsize=%dK" % heap_kb] + list(script)
    folder = folder or os.path.join(ROOT, "build", "bench-run")
    cs, fw, calls = await launch(folder, argv, SESSION_KEYS, "BENCH", cwd)
    heap = Heap()

    async def probe():
        heap.peak = max(heap.peak, await heap_alloc(fw))

    try:
        await calls.wait("BootNotification", timeout=10)
        await calls.wait_status(1, "Available", timeout=10)
        heap.idle = await heap_alloc(fw)
        await fw.console("plug 1")
        await fw.console("swipe BENCH")
        await calls.wait("StartTransaction", timeout=10)
        await probe()
        for _ in range(samples):
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
        await fw.finish(0)
        await cs.stop()
    if not ok and not quiet:
        print("\n".join(fw.lines[-5:]))
    return heap if ok else None


async def smallest_heap(cwd, lo=16, hi=512, script=("main.py",)):
    """Binary search (in KB) for the smallest heap that completes a session twice in a row
    -> (KB, Heap of a session at that size), or (None, None)."""
    if await session(cwd, hi, script=script) is None:
        return None, None
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if (await session(cwd, mid, script=script) is not None
                and await session(cwd, mid, script=script) is not None):
            hi = mid
        else:
            lo = mid
    return hi, await session(cwd, hi, script=script)


async def rtt(argv, n):
    cs, fw, calls = await launch(os.path.join(ROOT, "build", "bench-rtt"), argv + ["main.py"],
                                 SESSION_KEYS, "BENCH")
    try:
        await calls.wait_status(1, "Available", timeout=15)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            await cs.call(None, call.GetConfiguration())
            times.append(time.perf_counter() - t)
        await fw.console("quit")
        await fw.finish()
    finally:
        await fw.finish(0)
        await cs.stop()
    times.sort()
    return sum(times), times[len(times) // 2], times[int(len(times) * 0.95)], times[-1]


async def wear(samples=10):
    """Flash writes and journal bytes of one transaction: start, `samples` meter values, stop."""
    keys = {"MeterValueSampleInterval": 1, "HeartbeatInterval": 3600}
    cs, fw, calls = await launch(os.path.join(ROOT, "build", "bench-wear"),
                                 [micropython_path(), "main.py"], keys, "BENCH")

    async def counters():
        return [int(x) for x in re.findall(r"=(\d+)", await fw.ask("flash", "flash: journal"))]
    try:
        await calls.wait_status(1, "Available", timeout=15)
        await fw.console("plug 1")
        await asyncio.sleep(0.3)
        before = await counters()
        await fw.console("swipe WEAR")
        await calls.wait("StartTransaction", timeout=10)
        for _ in range(samples):
            await calls.wait("MeterValues", timeout=10)
        await fw.console("swipe WEAR")
        await calls.wait("StopTransaction", timeout=10)
        await asyncio.sleep(0.5)
        after = await counters()
        await fw.console("quit")
        await fw.finish()
    finally:
        await fw.finish(0)
        await cs.stop()
    return [b - a for a, b in zip(before, after)]


async def growth(n):
    """Heap after GC before and after `n` short transactions (MicroPython)."""
    keys = {"MeterValueSampleInterval": 0, "HeartbeatInterval": 3600}
    cs, fw, calls = await launch(os.path.join(ROOT, "build", "bench-growth"),
                                 [micropython_path(), "main.py"], keys, "BENCH")
    try:
        await calls.wait_status(1, "Available", timeout=15)
        heaps = []
        for i in range(n + 1):
            if i in (1, n):
                heaps.append(await heap_alloc(fw))
            tag = "G%04d" % i
            await fw.console("plug 1")
            await fw.console("swipe " + tag)
            await calls.wait("StartTransaction", {"idTag": tag}, timeout=10)
            await fw.console("swipe " + tag)
            await calls.wait("StopTransaction", timeout=10)
            await fw.console("unplug 1")
            await calls.wait_status(1, "Available", timeout=10)
        await fw.console("quit")
        await fw.finish()
    finally:
        await fw.finish(0)
        await cs.stop()
    return heaps


async def main(args):
    if args.growth:
        before, after = await growth(args.growth)
        print("heap after GC: %d B after the first transaction, %d B after %d transactions "
              "(%+d B)" % (before, after, args.growth, after - before))
        return
    w = await wear()
    print("flash wear, one transaction (start, 10 meter values, stop), online:")
    print("  journal: %d writes, %d bytes appended; transaction mirror: %d writes; "
          "total %d writes" % (w[0], w[1], w[3], w[0] + w[3]))
    n = 200 if args.quick else 2000
    print("RAM: full session on the MicroPython unix port (64-bit)")
    rom_dir, image = build_romfs(os.path.join(ROOT, "build", "bench-romfs"))
    mpy_dir = build_mpy(os.path.join(ROOT, "build", "bench-mpy"))
    runs = (("source .py", ROOT, ("main.py",), 0),
            (".mpy bundle", mpy_dir, ("main.py",), 0),
            ("ROMFS image", rom_dir, ("rom_run.py", ROM_IMAGE), image))
    for label, cwd, script, image in runs:
        kb, heap = await smallest_heap(cwd, script=script)
        if kb is None:
            print("  %-12s session failed even with 512 KB" % label)
        elif heap is None:
            print("  %-12s smallest heapsize %d KB (the repeat run at that size failed)"
                  % (label, kb))
        else:
            print("  %-12s smallest heapsize %d KB; live heap idle %.1f KB, peak %.1f KB, "
                  "transaction working set %.1f KB"
                  % (label, kb, heap.idle / 1024, heap.peak / 1024, heap.working_set / 1024))
        if image and heap is not None:
            print("  %-12s the image (%.1f KB) is in that heap here; on a board it stays in "
                  "flash: besides it, idle %.1f KB, peak %.1f KB"
                  % ("", image / 1024, (heap.idle - image) / 1024, (heap.peak - image) / 1024))
    print("latency: %d GetConfiguration (all keys) from the CSMS, sequential" % n)
    for label, argv in (("micropython", [micropython_path()]), ("cpython", [sys.executable])):
        total, p50, p95, worst = await rtt(argv, n)
        print("  %-12s total %.2f s, %.2f ms per call (p50 %.2f, p95 %.2f, max %.2f ms)"
              % (label, total, total / n * 1000, p50 * 1000, p95 * 1000, worst * 1000))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m tools.bench",
                                 description="Print RAM and latency figures.")
    ap.add_argument("--quick", action="store_true", help="200 calls instead of 2000")
    ap.add_argument("--growth", type=int, metavar="N",
                    help="only: heap before/after N transactions (e.g. 1000)")
    asyncio.run(main(ap.parse_args()))
