"""`make demo`: one charging session on the host, firmware on the MicroPython unix port,
against the strict local Central System. Prints a timeline; exits 0 when the session
completed with no protocol violation.

    python -m tools.demo [--python] [--keep]
"""
import argparse
import asyncio
import os
import shutil
import sys
import time

from tools.csms import CentralSystem, stamp
from tools.driver import ROOT, launch, micropython_path

TAG = "DEMO-TAG-1"
FAST = {"MeterValueSampleInterval": 2, "HeartbeatInterval": 30,
        "MeterValuesSampledData": "Energy.Active.Import.Register,Power.Active.Import,"
                                  "Current.Import,Voltage"}


class Demo:
    def __init__(self, calls, fw):
        self.calls = calls
        self.fw = fw
        self.t0 = time.monotonic()

    def step(self, text):
        # The Central System's and the charger's time base: ISO 8601 UTC (tools/csms.py).
        print("%s ==> %s  (+%.1f s)" % (stamp(), text, time.monotonic() - self.t0), flush=True)

    async def console(self, line):
        self.step("console: " + line)
        await self.fw.console(line)

    async def run(self):
        wait, status = self.calls.wait, self.calls.wait_status
        await wait("BootNotification")
        await status(1, "Available")
        await self.console("plug 1")
        await status(1, "Preparing")
        await self.console("swipe " + TAG)
        await wait("Authorize", {"idTag": TAG})
        start = await wait("StartTransaction", {"idTag": TAG})
        await status(1, "Charging")
        for _ in range(3):
            await wait("MeterValues", timeout=10)
        await self.console("swipe " + TAG)
        stop = await wait("StopTransaction")
        await status(1, "Finishing")
        await self.console("unplug 1")
        await status(1, "Available")
        await self.console("quit")
        return start, stop


async def main(args):
    cs = CentralSystem(host="127.0.0.1", port=0, quiet=False)
    cs.heartbeat_interval = 30
    folder = os.path.join(ROOT, "build", "demo")
    exe = sys.executable if args.python else micropython_path()
    print("firmware: %s main.py %s" % (os.path.basename(exe),
                                       os.path.relpath(os.path.join(folder, "config.json"), ROOT)),
          flush=True)

    def echo(line):
        print("          [charger] " + line, flush=True)
    cs, fw, calls = await launch(folder, [exe, "main.py"], FAST, "DEMO_CP", cs=cs, echo=echo)
    demo = Demo(calls, fw)
    ok = False
    try:
        start, stop = await asyncio.wait_for(demo.run(), 90)
        code = await fw.finish()
        delivered = stop["meterStop"] - start["meterStart"]
        demo.step("session complete: %d Wh delivered, stop reason %s, charger exit code %d"
                  % (delivered, stop.get("reason", "Local"), code))
        ok = code == 0 and delivered >= 0
    except (asyncio.TimeoutError, TimeoutError, RuntimeError) as e:
        demo.step("FAILED: %s" % (e or "timeout"))
    finally:
        await fw.finish(0)
        await cs.stop()
    if cs.violations:
        print("protocol violations:", *cs.violations, sep="\n  ")
        ok = False
    print("demo %s: %d frames exchanged, %d violations"
          % ("passed" if ok else "FAILED", len(cs.ledger), len(cs.violations)))
    if ok and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--python", action="store_true",
                    help="run the firmware on CPython instead of MicroPython")
    ap.add_argument("--keep", action="store_true",
                    help="keep build/demo (config, data) afterwards")
    sys.exit(asyncio.run(main(ap.parse_args())))
