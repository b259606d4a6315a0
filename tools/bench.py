"""Benchmarks (figures, not pass/fail): flash writes, RAM on the MicroPython unix port and
request latency.

    python -m tools.bench [--quick | --flash | --growth N]
    python -m tools.bench --fleet [--count N] ...   (fleet figures: tools/bench_fleet.py)

Prints:
  * flash writes (journal, transaction mirror, log ring) of one online transaction, of one
    periodic sample, and under the floods of README "Flash and log budgets": 300
    TriggerMessage(MeterValues) in a transaction, 1000 unmatched CALLRESULTs, 1000 CALLs of
    an unknown action (each answered and logged), and 25 s of
    UpdateFirmware {"retries": 2147483647, "retryInterval": 0} at an unreachable host;
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
import datetime
import os
import re
import shutil
import socket
import sys
import time

from ocpp.v16 import call

from tools.driver import ROOT, is_call, launch, micropython_path

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


# ---- flash writes ----------------------------------------------------------------------------
# Counted by the firmware itself (console `flash`): journal appends/acks/rewrites, transaction
# mirror writes, log ring appends and rotations. The caps the floods are held to are in the
# README ("Flash and log budgets") and asserted by tests/scenarios/test_time_and_budgets.py.

async def flash_counters(fw):
    """{"journal": n, "mirror": n, "log": n} flash writes so far (log None on a firmware
    that does not count them)."""
    line = await fw.ask("flash", "flash: journal")
    found = dict(re.findall(r"(journal writes|bytes|mirror writes|log writes)=(\d+)", line))
    return {k.split()[0]: int(found[k]) if k in found else None
            for k in ("journal writes", "mirror writes", "log writes", "bytes")}


def delta(before, after):
    """after - before for each counter, and "total" flash writes (bytes are not writes)."""
    d = {k: (after[k] - before[k] if after[k] is not None else None) for k in before}
    d["total"] = sum(d[k] or 0 for k in ("journal", "mirror", "log"))
    return d


def _run_folder(name):
    return os.path.join(ROOT, "build", name)


async def wear(samples=10, argv=None, folder=None, cwd=ROOT):
    """Flash writes of one online transaction (start, `samples` meter values, stop) and of
    one periodic sample -> (per transaction, per sample), each a delta() dict."""
    keys = {"MeterValueSampleInterval": 1, "HeartbeatInterval": 3600}
    cs, fw, calls = await launch(folder or _run_folder("bench-wear"),
                                 (argv or [micropython_path()]) + ["main.py"], keys, "BENCH",
                                 cwd)
    try:
        await calls.wait_status(1, "Available", timeout=15)
        await fw.console("plug 1")
        await asyncio.sleep(0.3)
        before = await flash_counters(fw)
        await fw.console("swipe WEAR")
        await calls.wait("StartTransaction", timeout=10)
        await calls.wait("MeterValues", timeout=10)
        await asyncio.sleep(0.3)  # its CALLRESULT acks it in the journal
        first = await flash_counters(fw)
        for _ in range(samples):
            await calls.wait("MeterValues", timeout=10)
        await asyncio.sleep(0.3)
        last = await flash_counters(fw)
        await fw.console("swipe WEAR")
        await calls.wait("StopTransaction", timeout=10)
        await asyncio.sleep(0.5)
        after = await flash_counters(fw)
        await fw.console("quit")
        await fw.finish()
    finally:
        await fw.finish(0)
        await cs.stop()
    per_sample = {k: v / samples for k, v in delta(first, last).items() if v is not None}
    return delta(before, after), per_sample


async def _charger(argv, folder, keys, cwd):
    """(cs, fw, calls) of a charger that has booted and reported Available."""
    cs, fw, calls = await launch(folder, list(argv) + ["main.py"], keys, "BENCH", cwd)
    try:
        await calls.wait_status(1, "Available", timeout=15)
    except BaseException:
        await fw.finish(0)
        await cs.stop()
        raise
    return cs, fw, calls


async def _end(cs, fw):
    await fw.console("quit")
    await fw.finish()
    await fw.finish(0)
    await cs.stop()


async def flood_triggers(argv, folder, n=300, cwd=ROOT):
    """`n` TriggerMessage(MeterValues) during a transaction (no periodic samples) -> the
    flash writes they cost, and the triggered MeterValues received (with transactionId)."""
    keys = {"MeterValueSampleInterval": 0, "HeartbeatInterval": 3600, "MinimumStatusDuration": 0}
    cs, fw, calls = await _charger(argv, folder, keys, cwd)
    try:
        await fw.console("plug 1")
        await fw.console("swipe FLOOD")
        await calls.wait("StartTransaction", timeout=10)
        await calls.wait_status(1, "Charging", timeout=10)
        await asyncio.sleep(1.0)  # StartTransaction.conf taken in, the journal at rest
        mark = len(cs.ledger)
        before = await flash_counters(fw)
        t0 = time.monotonic()
        for _ in range(n):
            reply = await cs.call(None, call.TriggerMessage(requested_message="MeterValues",
                                                            connector_id=1))
            assert reply.status == "Accepted", reply
        await asyncio.sleep(1.0)
        result = delta(before, await flash_counters(fw))
        result["seconds"] = time.monotonic() - t0
        got = [f.parsed[3] for f in cs.ledger[mark:] if is_call(f, "MeterValues")]
        result["received"] = len(got)
        result["with_tx_id"] = sum(1 for p in got if "transactionId" in p)
        energy = [_energy_wh(p) for p in got]
        result["wh"] = energy[-1] - energy[0] if energy else 0
        result["violations"] = list(cs.violations)
    finally:
        await _end(cs, fw)
    return result


def _energy_wh(payload):
    """Energy.Active.Import.Register of a MeterValues payload, in Wh."""
    for sv in payload["meterValue"][0]["sampledValue"]:
        if sv.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register":
            return float(sv["value"]) * (1000 if sv.get("unit") == "kWh" else 1)
    return 0


UNMATCHED = '[3,"unmatched-%d",{}]'         # a CALLRESULT for a call never made
UNKNOWN_CALL = '[2,"unknown-%d","NoSuchAction",{}]'  # answered NotImplemented, logged


async def flood_frames(argv, folder, n=1000, frame=UNMATCHED, cwd=ROOT):
    """`n` frames (`frame` % i), as fast as they go -> the flash writes they cost (and
    whether the charger still answers)."""
    keys = {"HeartbeatInterval": 3600}
    cs, fw, calls = await _charger(argv, folder, keys, cwd)
    try:
        await asyncio.sleep(0.5)
        before = await flash_counters(fw)
        t0 = time.monotonic()
        for i in range(n):
            await cs.send_raw(None, frame % i)
        # A round trip behind the flood: every reply has been read when it comes back.
        reply = await cs.call(None, call.TriggerMessage(requested_message="Heartbeat"),
                              timeout=30)
        await calls.wait("Heartbeat", timeout=30)
        result = delta(before, await flash_counters(fw))
        result["seconds"] = time.monotonic() - t0
        result["answers"] = reply.status == "Accepted"
        result["violations"] = list(cs.violations)
    finally:
        await _end(cs, fw)
    return result


async def flood_update(argv, folder, seconds=3.0, cwd=ROOT):
    """UpdateFirmware {"retries": 2147483647, "retryInterval": 0} at a port nobody listens
    on, for `seconds` -> the download attempts and flash writes in that time, and whether a
    second UpdateFirmware then runs (`second_runs`: it replaces the first while that one
    waits between attempts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cs, fw, calls = await _charger(argv, folder, {"HeartbeatInterval": 3600}, cwd)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        await asyncio.sleep(0.5)
        mark = len(fw.lines)
        before = await flash_counters(fw)
        await cs.call(None, call.UpdateFirmware(location="http://127.0.0.1:%d/fw.tar" % port,
                                                retrieve_date=now, retries=2147483647,
                                                retry_interval=0))
        await asyncio.sleep(seconds)
        result = delta(before, await flash_counters(fw))
        result["attempts"] = sum(1 for line in fw.lines[mark:]
                                 if re.search(r"download \d+ of \d+ failed", line))
        await cs.call(None, call.UpdateFirmware(location="http://127.0.0.1:%d/new.tar" % port,
                                                retrieve_date=now))
        try:
            await fw.wait_line("download 1 of 1 failed", timeout=3, start=mark)
            await calls.wait("FirmwareStatusNotification", {"status": "DownloadFailed"},
                             timeout=3)
            result["second_runs"] = True
        except TimeoutError:
            result["second_runs"] = False
        result["violations"] = list(cs.violations)
    finally:
        await _end(cs, fw)
    return result


def _writes(d):
    log = "n/a" if d.get("log") is None else d["log"]
    return "journal %s (%s bytes), mirror %s, log %s: total %s" % (
        d["journal"], d["bytes"], d["mirror"], log, d["total"])


async def print_wear(argv):
    tx, sample = await wear(argv=argv)
    print("flash writes, one transaction online (start, 10 meter values, stop): " + _writes(tx))
    print("flash writes, per periodic sample: journal %.1f (%.0f bytes), mirror %.1f, log %.1f: "
          "total %.1f" % (sample["journal"], sample["bytes"], sample["mirror"],
                          sample.get("log", 0), sample["total"]))
    t = await flood_triggers(argv, _run_folder("bench-flood-trigger"))
    print("flash writes, 300 TriggerMessage(MeterValues) in a transaction (%.1f s, %.0f Wh "
          "metered meanwhile): %s; %d triggered MeterValues sent"
          % (t["seconds"], t["wh"], _writes(t), t["received"]))
    for frame, what in ((UNMATCHED, "unmatched CALLRESULTs"),
                        (UNKNOWN_CALL, "CALLs of an unknown action")):
        u = await flood_frames(argv, _run_folder("bench-flood-frames"), frame=frame)
        print("flash writes, 1000 %s (%.1f s): %s" % (what, u["seconds"], _writes(u)))
    f = await flood_update(argv, _run_folder("bench-flood-update"), seconds=25)
    print("flash writes, UpdateFirmware retries=2147483647 retryInterval=0, unreachable host, "
          "25 s: %s; %d download attempts" % (_writes(f), f["attempts"]))


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
    await print_wear([micropython_path()])
    if args.flash:
        return
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
    if "--fleet" in sys.argv[1:]:  # fleet figures: tools/bench_fleet.py
        from tools import bench_fleet
        sys.exit(bench_fleet.main([a for a in sys.argv[1:] if a != "--fleet"]))
    ap = argparse.ArgumentParser(prog="python -m tools.bench",
                                 description="Print RAM and latency figures.")
    ap.add_argument("--quick", action="store_true", help="200 calls instead of 2000")
    ap.add_argument("--flash", action="store_true",
                    help="only: flash writes per transaction, per sample and under floods")
    ap.add_argument("--growth", type=int, metavar="N",
                    help="only: heap before/after N transactions (e.g. 1000)")
    asyncio.run(main(ap.parse_args()))
