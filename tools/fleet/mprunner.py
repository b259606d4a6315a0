"""A share of a fleet on the MicroPython unix port: `micropython tools/fleet/mprunner.py JOB`.

Started by `python -m tools.fleet --interpreter micropython` (tools/fleet/mpfleet.py), which
writes JOB (JSON: repository root, base config, ids, profile, seed, duration...). Imports
only firmware/, hal/ and MicroPython built-ins. Every charger is the firmware's ChargePoint
on a simulated board that is not polled; the runner plays the EVs of the profile (card,
unknown card, remote start) through the board's console commands. It writes JSON lines on
stdout, one a second:
    {"p": {connected, booted, charging, errors, frames}, "l": {action: [reply us, ...]},
     "st": steady?, "m": {mark: [t, cpu, rss, frames, system cpu]}}
and at the end {"r": counters} with the same counter names as tools/fleet/stats.py.
Link drops, storms, offline periods and reboots are not played here (the parent refuses
such a profile). SIGINT (KeyboardInterrupt) ends the run: every charger closes its
websocket, then the counters are written.
"""
import json
import math
import random
import sys
import time

_KEEPER_LOOK_S = 30
_START_WAIT_S = 30
_SETTLE_S = 5


def _add(d, k, n=1):
    d[k] = d.get(k, 0) + n


def _proc(page, hz):
    """(user+system CPU s, RSS bytes, system CPU s) of this process, from /proc."""
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * page
    user, system = int(fields[11]) / hz, int(fields[12]) / hz
    return user + system, rss, system


class Run:
    def __init__(self, job):
        self.job = job
        self.c = {"sent": {}, "answered": {}, "callerrors": {}, "timeouts": {},
                  "not_connected": {}, "invalid": {}, "requests": {}, "events": {}, "tx": {},
                  "warnings": {}}
        self.frames = [0, 0]
        self.lat = {}
        self.marks = {}
        self.heap = {}
        self.steady = False
        self.ending = False
        self.chargers = []
        self.last_problem = None

    def mark(self, name):
        if name in ("base", "steady"):
            # The live heap: the unix port's RSS is mostly the touched part of its fixed heap.
            import gc
            gc.collect()
            self.heap[name] = gc.mem_alloc()
        cpu, rss, system = _proc(self.job["page"], self.job["hz"])
        self.marks[name] = (time.time(), cpu, rss, self.frames[0] + self.frames[1], system)

    def counts(self):
        connected = booted = charging = 0
        for ch in self.chargers:
            cp = ch.cp
            if cp is None:
                continue
            if cp.rpc.connected:
                connected += 1
                if cp.accepted:
                    booted += 1
            for c in cp.connectors:
                if c.tx is not None:
                    charging += 1
        c = self.c
        errors = (sum(c["callerrors"].values()) + sum(c["timeouts"].values())
                  + sum(c["invalid"].values()) + c["events"].get("log_error", 0))
        return {"chargers": len(self.chargers), "connected": connected, "booted": booted,
                "charging": charging, "errors": errors, "frames": self.frames[0] + self.frames[1],
                "lag_ms": 0}

    def emit(self, extra=None):
        line = {"p": self.counts(), "l": self.lat, "st": self.steady, "m": self.marks}
        if extra:
            line.update(extra)
        self.lat = {}
        print(json.dumps(line))


def make_log(run, charger, level, now):
    from firmware.log import Log

    class FleetLog(Log):
        def _emit(self, lvl, tag, msg):
            if lvl < self.level or lvl < 2:
                return
            _add(run.c["events"], "log_error" if lvl == 3 else "log_warn")
            run.last_problem = "%s %s: %s" % (charger.id, tag, msg[:160])
            words = [w for w in msg[:60].split()[:8]
                     if not any(d in w for d in "0123456789")]
            _add(run.c["warnings"], "%s: %s" % (tag, " ".join(words)))

        def exc(self, tag, msg, e):
            self._emit(3, tag, "%s: %r" % (msg, e))
    return FleetLog(level, now, None)


class Charger:
    def __init__(self, run, index, cp_id, cfg):
        self.run_ = run
        self.id = cp_id
        self.cfg = cfg
        self.rng = random
        self.index = index
        self.cp = None
        self.board = None
        self.connects = 0
        self.tx_in = 0
        self.tx_out = 0     # delivered: their CALLRESULT taken in (outbox.done)
        self.thinned = 0    # MeterValues the full journal dropped by design (thin)
        self._left = 0
        self.tasks = []

    async def run(self):
        from firmware.chargepoint import ChargePoint
        from hal import sim
        run = self.run_
        while True:
            board = sim.SimBoard(self.cfg)
            board.polled = False
            for hw in board.connectors:
                hw.relay.set(False)
            cp = ChargePoint(self.cfg, board, make_log(run, self, 2, board.rtc.now))
            self._instrument(cp)
            self.cp, self.board = cp, board
            try:
                reason = await cp.run()
            finally:
                for hw in board.connectors:
                    hw.relay.set(False)
                self._left = len(cp.outbox.journal)
            if reason == "quit" or run.ending:
                return
            _add(run.c["events"], "restarts")

    def _instrument(self, cp):
        from firmware.rpc import CallFailed, NotConnected
        run, c = self.run_, self.run_.c
        rpc, outbox, journal = cp.rpc, cp.outbox, cp.outbox.journal
        send, handle, call, put_tx = rpc._send, rpc.handle, rpc.call, outbox.put_tx
        done, thin = outbox.done, journal.thin
        at_boot = len(outbox.journal) - self._left
        if at_boot:
            self.tx_in += at_boot
            _add(c["tx"], "queued_at_boot", at_boot)

        def sent(text):
            run.frames[1] += 1
            return send(text)

        def read(text):
            run.frames[0] += 1
            if text[1:2] == "2":
                try:
                    action = json.loads(text)[2][:40]
                except Exception:
                    action = "(malformed)"
                _add(c["requests"], action)
            return handle(text)

        async def timed(action, payload, timeout_ms=None, on_result=None):
            _add(c["sent"], action)
            t = time.ticks_us()
            try:
                reply = await call(action, payload, timeout_ms, on_result)
            except CallFailed as e:
                if e.code == "Timeout":
                    _add(c["timeouts"], action)
                else:
                    # A CALLERROR, or a CALLRESULT the firmware's checks refused.
                    self._latency(action, t)
                    _add(c["callerrors"], "%s %s" % (action, e.code))
                raise
            except NotConnected:
                _add(c["not_connected"], action)
                raise
            self._latency(action, t)
            _add(c["answered"], action)
            if action == "Authorize" and reply["idTagInfo"]["status"] != "Accepted":
                _add(c["events"], "cards_refused")
            elif action == "BootNotification":
                _add(c["events"], "boot_" + reply["status"].lower())
            return reply

        def delivered(entry, reply):
            # Where the firmware takes the CALLRESULT in and acks the journal (Rpc.call's
            # on_result), not where call() returns: its wait may time out, or the sender be
            # cancelled, after the reply was read and acked (see tools/fleet/run.py).
            done(entry, reply)
            if entry.seq is not None:
                self._delivered(entry.action, reply)

        def thinned():
            n = thin()  # by design when the journal is full (firmware/journal.py)
            if n:
                self.thinned += n
                _add(c["tx"], "meter_values_thinned", n)
            return n

        def queued(action, ref, payload):
            before = len(outbox.journal)
            put_tx(action, ref, payload)
            if len(outbox.journal) == before:
                _add(c["tx"], "meter_values_refused")
                return
            self.tx_in += 1
            _add(c["tx"], {"StartTransaction": "started", "StopTransaction": "stopped",
                           "MeterValues": "meter_values_queued"}.get(action, action + " queued"))

        rpc._send, rpc.handle, rpc.call, outbox.put_tx = sent, read, timed, queued
        outbox.done, journal.thin = delivered, thinned
        connect = cp.link._connect

        async def connecting():
            t = time.ticks_us()
            try:
                conn = await connect()
            except Exception:
                _add(c["events"], "connect_failed")
                raise
            self._latency("(connect)", t)
            _add(c["events"], "reconnects" if self.connects else "connects")
            self.connects += 1
            return conn

        cp.link._connect = connecting
        cp.link.look_s = _KEEPER_LOOK_S

    def _latency(self, action, t):
        lat = self.run_.lat
        us = time.ticks_diff(time.ticks_us(), t)
        if action in lat:
            lat[action].append(us)
        else:
            lat[action] = [us]

    def _delivered(self, action, reply):
        c = self.run_.c
        self.tx_out += 1
        if action == "StartTransaction":
            _add(c["tx"], "start_delivered")
            if reply["idTagInfo"]["status"] != "Accepted":
                _add(c["tx"], "start_refused")
        elif action == "StopTransaction":
            _add(c["tx"], "stop_delivered")
        elif action == "MeterValues":
            _add(c["tx"], "meter_values_delivered")
        else:  # SecurityEventNotification: journaled too
            _add(c["tx"], "security_events_delivered")

    # -- the EVs of the profile ---------------------------------------------------------------
    def command(self, *words):
        return self.board.command([str(w) for w in words])

    async def ev(self, n):
        from firmware.compat import asyncio
        ev = self.run_.job["profile"]["ev"]
        if random.random() < ev["initial_share"]:
            while self.cp is None or not self.cp.accepted:
                await asyncio.sleep(1)
            await self.session(n)
        rate = ev["arrivals_per_hour"] / 3600
        while rate > 0:
            await asyncio.sleep(-math.log(1.0 - random.random()) / rate)
            await self.session(n)

    async def session(self, n):
        from firmware.compat import asyncio
        ev, c = self.run_.job["profile"]["ev"], self.run_.c
        self.command("power", n, int(random.uniform(*ev["power_kw"]) * 1000))
        self.command("plug", n)
        draw = random.random()
        if draw < ev["unknown_card_share"]:
            kind, tag = "unknown", "UNKNOWN%05d" % random.randrange(100000)
        elif draw < ev["unknown_card_share"] + ev["remote_start_share"]:
            kind, tag = "remote", None
        else:
            kind, tag = "card", "TAG%05d" % random.randrange(100000)
        _add(c["events"], "sessions_" + kind)
        if tag is not None:
            await asyncio.sleep(random.uniform(0.5, 2))
            self.command("swipe", tag)
        wait = ev["remote_wait_s"] if kind == "remote" else (
            3 if kind == "unknown" else _START_WAIT_S)
        end = time.time() + wait
        started = False
        while time.time() < end:
            if self.cp is not None and self.cp.connectors[n - 1].tx is not None:
                started = True
                break
            await asyncio.sleep(0.5)
        if started:
            await asyncio.sleep(random.uniform(*ev["session_s"]))
        elif kind != "unknown":
            _add(c["events"], "sessions_not_started")
        self.command("unplug", n)
        await asyncio.sleep(1)


async def main(run):
    from firmware.compat import asyncio
    from firmware import config
    job = run.job
    base = config.load(job["config"])
    # What every charger loads to connect, loaded before the memory baseline.
    for name in ("ws", "wsopen", "net", "secprofile", "core"):
        __import__("firmware." + name)
    import gc
    gc.collect()
    run.mark("base")
    for i, cp_id in enumerate(job["ids"]):
        cfg = dict(base)
        cfg["csms"] = dict(base["csms"], id=cp_id)
        cfg["_data"] = job["data"] + "/" + cp_id
        try:
            import os
            os.mkdir(cfg["_data"])
        except OSError:
            pass
        run.chargers.append(Charger(run, job["first"] + i, cp_id, cfg))
    profile = job["profile"]
    ev = profile["ev"]
    n = len(run.chargers)
    t0 = time.time()
    tasks = []
    deadline = t0 + job["duration"] if job["duration"] is not None else None
    booted = None
    started = 0
    last = t0
    try:
        while True:
            # Start the chargers spread over the ramp, then report once a second.
            while started < n and time.time() >= t0 + profile["ramp_s"] * started / n:
                ch = run.chargers[started]
                tasks.append(asyncio.create_task(ch.run()))
                if ev["initial_share"] > 0 or ev["arrivals_per_hour"] > 0:
                    for k in range(1, profile["connectors"] + 1):
                        ch.tasks.append(asyncio.create_task(ch.ev(k)))
                started += 1
            await asyncio.sleep(0.05 if started < n else 1)
            now = time.time()
            if booted is None and started == n and run.counts()["booted"] == n:
                booted = now
                run.mark("booted")
            if not run.steady and booted is not None and now - booted >= _SETTLE_S:
                run.steady = True
                run.mark("steady")
            if now - last >= 1:
                last = now
                run.emit()
            if deadline is not None and now >= deadline:
                break
    except KeyboardInterrupt:
        run.mark("end")
        await finish(run, tasks, 0)
        return
    run.mark("end")
    run.steady = False
    await finish(run, tasks, job["drain"])


async def finish(run, tasks, drain_s):
    from firmware.compat import asyncio
    run.ending = True
    for ch in run.chargers:
        for t in ch.tasks:
            t.cancel()
    if drain_s:
        for ch in run.chargers:
            if ch.board is not None:
                for k, hw in enumerate(ch.board.connectors, 1):
                    if hw.pilot.plug != "A":
                        ch.command("unplug", k)
        end = time.time() + drain_s
        await asyncio.sleep(1)
        while time.time() < end and any(
                ch.cp is not None and (len(ch.cp.outbox) or ch.cp.rpc._pending
                                       or not ch.cp.online()) for ch in run.chargers):
            await asyncio.sleep(0.2)
    for ch in run.chargers:
        if ch.cp is not None:
            ch.cp.shutdown("quit")
    end = time.time() + 15
    while time.time() < end and not all(t.done() for t in tasks):
        await asyncio.sleep(0.1)
    for t in tasks:
        t.cancel()


async def close_all(run):
    """After Ctrl-C: MicroPython's loop stopped where it was; close every websocket."""
    from firmware.compat import asyncio
    for ch in run.chargers:
        cp = ch.cp
        if cp is None:
            continue
        for hw in cp.board.connectors:
            hw.relay.set(False)
        if cp.link.conn is not None:
            try:
                await asyncio.wait_for(cp.link.close(1001, "going away"), 2)
            except Exception:
                pass
            _add(run.c["events"], "closed_on_interrupt")


def report(run):
    queued = lost = 0
    for ch in run.chargers:
        left = len(ch.cp.outbox.journal) if ch.cp is not None else 0
        queued += left
        lost += ch.tx_in - ch.tx_out - ch.thinned - left
    _add(run.c["tx"], "still_queued", queued)
    _add(run.c["tx"], "lost", lost)
    if "end" not in run.marks:
        run.mark("end")
    run.mark("done")
    run.emit({"r": run.c, "frames": run.frames, "last_problem": run.last_problem,
              "heap": run.heap})


def start(path):
    with open(path) as f:
        job = json.load(f)
    sys.path.insert(0, job["root"])
    random.seed(job["seed"] * 1000003 + job["first"])
    run = Run(job)
    from firmware.compat import asyncio
    try:
        asyncio.run(main(run))
    except KeyboardInterrupt:
        # MicroPython: the loop stops where the signal found it; a fresh one closes the links.
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(close_all(run))
        except KeyboardInterrupt:
            pass
        run.marks.setdefault("end", None)
        if run.marks["end"] is None:
            del run.marks["end"]
    report(run)


start(sys.argv[1])
