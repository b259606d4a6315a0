"""Benchmarks (figures, not pass/fail): flash writes, RAM on the MicroPython unix port and
request latency.

    python -m tools.bench [--quick | --flash | --ram | --growth N] [--romfs]
    python -m tools.bench --fleet [--count N] ...   (fleet figures: tools/bench_fleet.py)

Prints:
  * flash writes (journal, transaction mirror, log ring) of one online transaction, of one
    periodic sample, and under the floods of README "Flash and log budgets": 300
    TriggerMessage(MeterValues) in a transaction, 1000 unmatched CALLRESULTs, 1000 CALLs of
    an unknown action (each answered and logged), and 25 s of
    UpdateFirmware {"retries": 2147483647, "retryInterval": 0} at an unreachable host;
  * RAM, strictly (a MemoryError or a restarted core task anywhere in the charger's output
    fails a run): for three workloads -- the full session (boot, status, plug, swipe, start,
    10 meter values, stop), a tour of every Core request of the Central System (GetConfiguration
    of every key, ChangeConfiguration, remote start/stop, triggers, Reset...) and a tour of the
    other profiles (local list, reservation, smart charging, UpdateFirmware and GetDiagnostics
    with small transfers, TriggerMessage) -- on three builds side by side: the 64-bit unix port
    and the 32-bit one (`make unix32`) running the .mpy bundle, and the 32-bit one running
    firmware/ and hal/ frozen in (as an ESP32 image): the smallest `-X heapsize` (bisection, 2
    KB steps, the result run twice), the live heap (gc.collect() then mem_alloc) idle after
    boot, its peak and their difference (the working set), and the largest contiguous block
    the workload needs: the largest allocation that failed (MicroPython's "allocating N bytes")
    in the runs of the bisection at most 8 KB below the result; `--romfs` adds the session
    from a ROMFS image;
  * the round-trip time of 2000 GetConfiguration calls from the Central System.
The 64-bit port's objects take up to twice the RAM they take on the 32-bit ESP32; the 32-bit
frozen figures are the ones to budget an ESP32 without PSRAM on.
"""
import argparse
import asyncio
import datetime
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
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
    """Heap after a collection at each step of a workload: idle (booted, Available) and the
    highest seen while it ran; `working_set` is the difference. `failure` says why a run
    failed (None: it completed), `allocs` the sizes of the allocations that failed
    ("MemoryError: ... allocating N bytes") anywhere in its output."""

    def __init__(self):
        self.idle = self.peak = 0
        self.failure = None
        self.allocs = []

    @property
    def working_set(self):
        return self.peak - self.idle


# A run passes only when nothing in the charger's output says memory ran out or a core task
# had to be restarted (the firmware survives both, which hid them from a plain "completed").
_STRICT = ("MemoryError", "memory allocation failed", "a core task ended; restarting")
_ALLOC = re.compile(r"allocating (\d+) bytes")


def strict_failure(lines):
    """The first output line showing a MemoryError or a restarted task, or None."""
    for line in lines:
        if any(mark in line for mark in _STRICT):
            return line.strip()
    return None


def failed_allocs(lines):
    return [int(n) for line in lines for n in _ALLOC.findall(line)]


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


async def _session_steps(cs, fw, calls, probe, samples=10):
    """Boot, status, plug, swipe, start, `samples` MeterValues, stop."""
    await fw.console("status")
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


async def _core_tour(cs, fw, calls, probe):
    """Every Core request of the Central System, with triggers, ending in a soft Reset."""
    await cs.call(None, call.GetConfiguration(), timeout=15)  # every key: the biggest reply
    await probe()
    await cs.call(None, call.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"]))
    await cs.call(None, call.ChangeConfiguration(key="HeartbeatInterval", value="120"))
    await cs.call(None, call.ChangeConfiguration(key="MeterValueSampleInterval", value="1"))
    await cs.call(None, call.ClearCache())
    await cs.call(None, call.DataTransfer(vendor_id="bench", message_id="m", data="x" * 200))
    await cs.call(None, call.ChangeAvailability(connector_id=1, type="Inoperative"))
    await calls.wait_status(1, "Unavailable", timeout=10)
    await cs.call(None, call.ChangeAvailability(connector_id=1, type="Operative"))
    await calls.wait_status(1, "Available", timeout=10)
    await fw.console("plug 1")
    await cs.call(None, call.RemoteStartTransaction(id_tag="BENCH", connector_id=1))
    await calls.wait("StartTransaction", timeout=10)
    await probe()
    for _ in range(3):
        await calls.wait("MeterValues", timeout=10)
        await probe()
    tx_id = max(cs.transactions)
    await cs.call(None, call.RemoteStopTransaction(transaction_id=tx_id))
    await calls.wait("StopTransaction", timeout=10)
    await probe()
    await cs.call(None, call.UnlockConnector(connector_id=1))
    await fw.console("unplug 1")
    await calls.wait_status(1, "Available", timeout=10)
    for what in ("BootNotification", "Heartbeat", "StatusNotification", "MeterValues"):
        await cs.call(None, call.TriggerMessage(requested_message=what, connector_id=1))
        await calls.wait(what, timeout=10)
    await probe()
    await cs.call(None, call.Reset(type="Soft"))
    # On the board the HAL resets the chip: the charger boots again in a fresh heap. The host
    # restarts it in the same process (firmware/app.py), the old charger still referenced
    # while the config is read again; the budget is the board's, so the process is restarted
    # here as the chip would be. -> the output lines of the host-only restart, not counted.
    await fw.wait_line("stopped: soft", timeout=20)
    gap = fw.cursor  # the line after it
    fw.kill()
    await fw.finish(0)
    await fw.start()
    skipped = (gap, fw.cursor)
    await calls.wait("BootNotification", timeout=20)
    await calls.wait_status(1, "Available", timeout=20)
    await probe()
    return skipped


async def _profiles_tour(cs, fw, calls, probe, web):
    """Every request of the other feature profiles: local list, reservation, smart charging,
    UpdateFirmware and GetDiagnostics with small transfers, TriggerMessage of each kind."""
    entries = [{"id_tag": "LIST%02d" % i, "id_tag_info": {"status": "Accepted"}}
               for i in range(10)]
    await cs.call(None, call.SendLocalList(list_version=1, update_type="Full",
                                           local_authorization_list=entries))
    await cs.call(None, call.SendLocalList(list_version=2, update_type="Differential",
                                           local_authorization_list=entries[:2]))
    await cs.call(None, call.GetLocalListVersion())
    await probe()
    await cs.call(None, call.ReserveNow(connector_id=1, expiry_date=_iso(time.time() + 600),
                                        id_tag="RES", reservation_id=7))
    await calls.wait_status(1, "Reserved", timeout=10)
    await cs.call(None, call.CancelReservation(reservation_id=7))
    await calls.wait_status(1, "Available", timeout=10)
    await probe()
    schedule = {"charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": i * 300, "limit": 6 + i}
                                             for i in range(5)]}
    await cs.call(None, call.SetChargingProfile(connector_id=1, cs_charging_profiles={
        "charging_profile_id": 3, "stack_level": 1,
        "charging_profile_purpose": "TxDefaultProfile", "charging_profile_kind": "Absolute",
        "charging_schedule": dict(schedule, start_schedule=_iso(time.time() - 60))}))
    await cs.call(None, call.GetCompositeSchedule(connector_id=1, duration=1800))
    await cs.call(None, call.ClearChargingProfile(id=3))
    await probe()
    await cs.call(None, call.UpdateFirmware(location=web.url + "/fw.tar",
                                            retrieve_date=_iso(time.time())))
    await calls.wait("FirmwareStatusNotification",
                     lambda p: p["status"] in ("InstallationFailed", "DownloadFailed",
                                               "Installed"), timeout=30)
    await probe()
    await cs.call(None, call.GetDiagnostics(location=web.url + "/up/"))
    await calls.wait("DiagnosticsStatusNotification",
                     lambda p: p["status"] in ("Uploaded", "UploadFailed"), timeout=30)
    await probe()
    for what in ("BootNotification", "DiagnosticsStatusNotification",
                 "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StatusNotification"):
        await cs.call(None, call.TriggerMessage(requested_message=what))
        await calls.wait(what, timeout=10)
    await probe()


class _Files(http.server.BaseHTTPRequestHandler):
    """GET /fw.tar: a small file that is no update bundle; PUT anything: stored, 201."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, body=b""):
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # a charger that ran out of memory at the edge went away

    def do_GET(self):
        self._reply(200, b"not an update bundle\n" * 100)

    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(201, b"stored")


class Web(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Files)
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()


WORKLOADS = ("session", "core", "profiles")
_KEYS = {"session": SESSION_KEYS, "core": SESSION_KEYS,
         "profiles": dict(SESSION_KEYS, LocalAuthListEnabled=True)}


async def workload(kind, cwd, heap_kb, argv=None, quiet=True, folder=None, web=None,
                   script=("main.py",)):
    """One run of workload `kind` (WORKLOADS) under `argv` (default: the 64-bit unix port)
    with `-X heapsize=heap_kb K`, started in `cwd` (`script`: its main.py). -> Heap; `failure`
    set when it did not complete or its output shows a MemoryError or a restarted task."""
    argv = list(argv or [micropython_path()]) + ["-X", "heapsize=%dK" % heap_kb] + list(script)
    folder = folder or os.path.join(ROOT, "build", "bench-run")
    cs, fw, calls = await launch(folder, argv, _KEYS[kind], "BENCH", cwd)
    heap = Heap()
    skipped = (0, 0)
    own_web = web is None and kind == "profiles"
    web = Web() if own_web else web

    async def probe():
        heap.peak = max(heap.peak, await heap_alloc(fw))

    try:
        await calls.wait("BootNotification", timeout=15)
        await calls.wait_status(1, "Available", timeout=15)
        heap.idle = heap.peak = await heap_alloc(fw)
        if kind == "session":
            await _session_steps(cs, fw, calls, probe)
        elif kind == "core":
            skipped = await _core_tour(cs, fw, calls, probe)
        else:
            await _profiles_tour(cs, fw, calls, probe, web)
        await fw.console("quit")
        code = await fw.finish()
        if code != 0:
            heap.failure = "exit code %s" % code
        elif cs.violations:
            heap.failure = "protocol violations: %s" % list(cs.violations)[:3]
    except (TimeoutError, asyncio.TimeoutError, RuntimeError, OSError, LookupError) as e:
        heap.failure = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    except Exception as e:  # a CALLERROR or a schema violation in the Central System's eyes
        heap.failure = "%s: %s" % (type(e).__name__, e)
    finally:
        await fw.finish(0)
        await cs.stop()
        if own_web:
            web.shutdown()
            web.server_close()
    lines = fw.lines[:skipped[0]] + fw.lines[skipped[1]:]
    heap.failure = heap.failure or strict_failure(lines)
    heap.allocs = failed_allocs(lines)
    if heap.failure and not quiet:
        print("\n".join(fw.lines[-8:]))
    return heap


async def session(cwd, heap_kb, quiet=True, folder=None, argv=None, script=("main.py",)):
    """The full session (boot, status, plug, swipe, start, 10 MeterValues, stop) -> Heap, or
    None when it failed (strictly: see workload())."""
    heap = await workload("session", cwd, heap_kb, argv, quiet, folder, script=script)
    return None if heap.failure else heap


class Edge:
    """smallest_heap()'s result: `kb` the smallest heap (KB) at which the workload passed,
    `heap` that run's Heap; `fails` (KB, size of the first allocation that failed) of every
    run that failed with a MemoryError, `fail_kb` the largest heap that did not pass."""

    def __init__(self):
        self.kb = self.heap = None
        self.fail_kb = None
        self.fails = []

    def failed(self, kb, run):
        if run.allocs:
            self.fails.append((kb, run.allocs[0]))
        if self.fail_kb is None or kb > self.fail_kb:
            self.fail_kb = kb

    def largest_alloc(self, window=8):
        """The largest allocation that failed in a run at most `window` KB below the result:
        near the edge the heap holds what the workload needs, so what fails there is a
        block it needs whole (at far smaller heaps any allocation fails)."""
        near = [n for kb, n in self.fails if self.kb is None or kb >= self.kb - window]
        return max(near) if near else None


async def smallest_heap(kind, cwd, argv=None, lo=16, hi=512, step=2, web=None,
                        script=("main.py",)):
    """Bisect (KB) for the smallest heap at which workload `kind` passes strictly, once at
    each probe and again at the result -> Edge (kb None: it failed at `hi`)."""
    edge = Edge()
    first = await workload(kind, cwd, hi, argv, web=web, script=script)
    if first.failure:
        edge.failed(hi, first)
        return edge
    best = first
    while hi - lo > step:
        mid = (lo + hi) // 2
        run = await workload(kind, cwd, mid, argv, web=web, script=script)
        if run.failure:
            lo = mid
            edge.failed(mid, run)
        else:
            hi, best = mid, run
    # The edge is noisy (where long-lived objects land decides the fragmentation): the result
    # must pass twice in a row, else the next step up is tried, up to 10 steps.
    for _ in range(10):
        if best is None:
            best = await workload(kind, cwd, hi, argv, web=web, script=script)
        if not best.failure:
            again = await workload(kind, cwd, hi, argv, web=web, script=script)
            if not again.failure:
                edge.kb, edge.heap = hi, best
                return edge
            best = again
        edge.failed(hi, best)
        best, hi = None, hi + step
    return edge


UNIX32 = os.path.join(ROOT, "build", "unix32", "micropython32")


def unix32():
    """The 32-bit frozen build (`make unix32`, brought up to date) -> (path, None) or
    (None, why)."""
    r = subprocess.run(["make", "-s", "unix32"], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0 or not os.access(UNIX32, os.X_OK):
        return None, (r.stderr.strip() or r.stdout.strip() or "no binary").splitlines()[-1]
    return UNIX32, None


def frozen_folder(dest):
    """A folder with main.py only, for the frozen binary: firmware/ or hal/ there would
    shadow the frozen packages."""
    os.makedirs(dest, exist_ok=True)
    shutil.copyfile(os.path.join(ROOT, "main.py"), os.path.join(dest, "main.py"))
    return dest


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


def _kb(b):
    return "%.1f" % (b / 1024)


async def print_ram(romfs=False):
    """The smallest heap of each workload on each build, strictly, side by side."""
    mpy_dir = build_mpy(os.path.join(ROOT, "build", "bench-mpy"))
    mp32, why = unix32()
    builds = [("64-bit .mpy", [micropython_path()], mpy_dir, (128, 448))]
    if mp32:
        builds += [("32-bit .mpy", [mp32], mpy_dir, (64, 224)),
                   ("32-bit frozen", [mp32],
                    frozen_folder(os.path.join(ROOT, "build", "bench-frozen")), (24, 96))]
    else:
        print("RAM: no 32-bit build (%s): 64-bit only" % why)
    print("RAM, strict (a MemoryError or a restarted task anywhere fails a run): smallest "
          "-X heapsize; live heap after gc.collect() idle / peak / working set (peak - idle); "
          "the largest allocation that failed in a run at most 8 KB below that heap")
    print("  %-9s %s" % ("workload", " | ".join("%-44s" % b[0] for b in builds)))
    web = Web()
    try:
        for kind in WORKLOADS:
            cells = []
            for label, argv, cwd, (lo, hi) in builds:
                e = await smallest_heap(kind, cwd, argv, lo=lo, hi=hi, web=web)
                if e.kb is None:
                    cells.append("fails at %d KB" % e.fail_kb)
                    continue
                h, big = e.heap, e.largest_alloc()
                cells.append("%d KB; %s / %s / %s KB; %s" % (
                    e.kb, _kb(h.idle), _kb(h.peak), _kb(h.working_set),
                    "%d B" % big if big else "-"))
            print("  %-9s %s" % (kind, " | ".join("%-44s" % c for c in cells)))
    finally:
        web.shutdown()
        web.server_close()
    if romfs:
        folder, image = build_romfs(os.path.join(ROOT, "build", "bench-romfs"))
        e = await smallest_heap("session", folder, lo=128, hi=512,
                                script=("rom_run.py", ROM_IMAGE))
        if e.kb:
            print("  session from a ROMFS image (%.1f KB, in that heap on the unix port): %d KB;"
                  " besides the image idle %s KB, peak %s KB" % (
                      image / 1024, e.kb, _kb(e.heap.idle - image), _kb(e.heap.peak - image)))


async def main(args):
    if args.growth:
        before, after = await growth(args.growth)
        print("heap after GC: %d B after the first transaction, %d B after %d transactions "
              "(%+d B)" % (before, after, args.growth, after - before))
        return
    if args.ram:
        await print_ram(args.romfs)
        return
    await print_wear([micropython_path()])
    if args.flash:
        return
    n = 200 if args.quick else 2000
    await print_ram(args.romfs)
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
    ap.add_argument("--ram", action="store_true",
                    help="only: the smallest heap of each workload on each build")
    ap.add_argument("--romfs", action="store_true",
                    help="also: the session from a ROMFS image of the bundle")
    ap.add_argument("--growth", type=int, metavar="N",
                    help="only: heap before/after N transactions (e.g. 1000)")
    asyncio.run(main(ap.parse_args()))
