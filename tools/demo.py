"""`make demo`: one charging session on the host, firmware on the MicroPython unix port,
against the strict local Central System. Prints a timeline; exits 0 when the session
completed with no protocol violation.

    python -m tools.demo [--python] [--keep]
"""
import argparse
import asyncio
import json
import os
import shutil
import sys
import time

from tools.csms import CentralSystem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "DEMO-TAG-1"


def interpreter(use_cpython):
    if use_cpython:
        return sys.executable
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.access(mp, os.X_OK):
        sys.exit("micropython not found next to %s: run `make demo` (it installs it)" % sys.executable)
    return mp


def write_config(folder, port):
    with open(os.path.join(ROOT, "config.json")) as f:
        cfg = json.load(f)
    cfg["csms"]["url"] = "ws://127.0.0.1:%d/ocpp" % port
    cfg["csms"]["id"] = "DEMO_CP"
    cfg["data_dir"] = "data"
    cfg["ocpp"].update({"MeterValueSampleInterval": 2, "HeartbeatInterval": 30,
                        "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"})
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    path = os.path.join(folder, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


class Demo:
    def __init__(self, cs, proc):
        self.cs = cs
        self.proc = proc
        self.t0 = time.monotonic()

    def step(self, text):
        print("%6.1f s  ==> %s" % (time.monotonic() - self.t0, text), flush=True)

    async def console(self, line):
        self.step("console: " + line)
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def wait(self, action, match=None, timeout=15):
        def wanted(f):
            p = f.parsed
            return (f.direction == "in" and isinstance(p, list) and len(p) == 4 and p[0] == 2
                    and p[2] == action and all(p[3].get(k) == v for k, v in (match or {}).items()))
        _, frame = await self.cs.wait_frame(wanted, timeout, self.cursor.get(action, 0))
        self.cursor[action] = self.cs.ledger.index(frame) + 1
        return frame.parsed[3]

    async def run(self):
        self.cursor = {}
        await self.wait("BootNotification")
        await self.wait("StatusNotification", {"connectorId": 1, "status": "Available"})
        await self.console("plug 1")
        await self.wait("StatusNotification", {"connectorId": 1, "status": "Preparing"})
        await self.console("swipe " + TAG)
        await self.wait("Authorize", {"idTag": TAG})
        start = await self.wait("StartTransaction", {"idTag": TAG})
        await self.wait("StatusNotification", {"connectorId": 1, "status": "Charging"})
        for _ in range(3):
            await self.wait("MeterValues", timeout=10)
        await self.console("swipe " + TAG)
        stop = await self.wait("StopTransaction")
        await self.wait("StatusNotification", {"connectorId": 1, "status": "Finishing"})
        await self.console("unplug 1")
        await self.wait("StatusNotification", {"connectorId": 1, "status": "Available"})
        await self.console("quit")
        return start, stop


async def pump(stream):
    while True:
        line = await stream.readline()
        if not line:
            return
        print("          [charger] " + line.decode(errors="replace").rstrip(), flush=True)


async def main(args):
    cs = CentralSystem(host="127.0.0.1", port=0, quiet=False)
    cs.heartbeat_interval = 30
    await cs.start()
    folder = os.path.join(ROOT, "build", "demo")
    config = write_config(folder, cs.port)
    exe = interpreter(args.python)
    print("firmware: %s main.py %s" % (os.path.basename(exe), os.path.relpath(config, ROOT)), flush=True)
    proc = await asyncio.create_subprocess_exec(exe, "main.py", config, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    reader = asyncio.create_task(pump(proc.stdout))
    demo = Demo(cs, proc)
    ok = False
    try:
        start, stop = await asyncio.wait_for(demo.run(), 90)
        code = await asyncio.wait_for(proc.wait(), 10)
        await reader
        delivered = stop["meterStop"] - start["meterStart"]
        demo.step("session complete: %d Wh delivered, stop reason %s, charger exit code %d"
                  % (delivered, stop.get("reason", "Local"), code))
        ok = code == 0 and delivered >= 0
    except (asyncio.TimeoutError, TimeoutError) as e:
        demo.step("FAILED: %s" % (e or "timeout"))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await cs.stop()
    if cs.violations:
        print("protocol violations:", *cs.violations, sep="\n  ")
        ok = False
    print("demo %s: %d frames exchanged, %d violations" % ("passed" if ok else "FAILED", len(cs.ledger),
                                                          len(cs.violations)))
    if ok and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--python", action="store_true", help="run the firmware on CPython instead of MicroPython")
    ap.add_argument("--keep", action="store_true", help="keep build/demo (config, data) afterwards")
    sys.exit(asyncio.run(main(ap.parse_args())))
