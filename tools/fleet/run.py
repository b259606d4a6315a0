"""N chargers of the real firmware in one asyncio loop: the firmware's ChargePoint on a
simulated board each, with its own id and data folder, driven by a behaviour profile.

Nothing here re-implements the charger: the fleet only plays the world around it (EVs, cards,
cables, a network that fails, power cuts) through the simulated board's console commands and
the link's connect seam, and watches the firmware's Rpc to count and time what crosses the
wire. The simulated board is not polled (hal/base.py Board.polled): an idle charger sleeps
until its next deadline, which is what makes thousands per core possible.
"""
import asyncio
import json
import os
import random
import resource
import time

from firmware import compat
from firmware import config as fw_config
from firmware import ocppj, schema16
from firmware.chargepoint import ChargePoint
from firmware.log import Log
from firmware.rpc import CallFailed, NotConnected
from hal import sim
from tools.fleet.stats import Stats

_SCHEMA_CODES = (schema16.FORMATION, schema16.OCCURENCE, schema16.PROPERTY, schema16.TYPE)
_KEEPER_LOOK_S = 30   # a fleet charger's keeper looks for a dead link this often at most
_START_WAIT_S = 30    # a driver waits this long for the transaction to start


def _keep_loaded(name):
    pass


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds():
    """(user, system) CPU seconds of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


class FleetLog(Log):
    """The firmware's Log without printing: WARN and ERROR lines are counted, the last kept;
    `echo` prints them with the charger's id."""

    def __init__(self, charger, level, now):
        Log.__init__(self, level, now, None)
        self._charger = charger

    def _emit(self, lvl, tag, msg):
        if lvl < self.level:
            return
        ch = self._charger
        if lvl >= 2:
            stats = ch.fleet.stats
            stats.event("log_error" if lvl == 3 else "log_warn")
            ch.fleet.last_problem = "%s %s: %s" % (ch.id, tag, msg[:160])
            # Grouped by their words without numbers: "ws: link down: no reply to # within".
            key = "%s: %s" % (tag, " ".join(w for w in msg[:60].split()[:8]
                                            if not any(d in w for d in "0123456789")))
            stats.warnings[key] = stats.warnings.get(key, 0) + 1
        if ch.fleet.echo:
            print("%s %s %s: %s" % (ch.id, "DIWE"[lvl], tag, msg[:200]), flush=True)

    def exc(self, tag, msg, e):
        self._emit(3, tag, "%s: %r" % (msg, e))


class Charger:
    """One charger of the fleet: the firmware (rebuilt after a reboot) and its world."""

    def __init__(self, fleet, index, cp_id, cfg):
        self.fleet = fleet
        self.id = cp_id
        self.cfg = cfg
        self.rng = random.Random(fleet.seed * 1000003 + index)
        self.cp = None
        self.board = None
        self.connects = 0
        self.tx_in = 0         # messages put in the journal (transactions, security events)
        self.tx_out = 0        # ... delivered (their CALLRESULT taken in: outbox.done)
        self.thinned = 0       # ... MeterValues the full journal dropped by design (thin)
        self._left = 0         # ... still in the journal when the last run ended
        self._t_sent = 0.0     # when our CALL in flight went out
        self._t_reply = 0.0    # when the answer to it was read
        self._reply_kind = 0
        self._sent_id = None   # the id of the last CALL of ours timed
        self._tasks = []

    # -- the firmware ------------------------------------------------------------------------
    async def run(self):
        fleet = self.fleet
        while True:
            board = sim.SimBoard(self.cfg)
            board.polled = False
            for hw in board.connectors:
                hw.relay.set(False)
            log = FleetLog(self, fleet.log_level, board.rtc.now)
            cp = ChargePoint(self.cfg, board, log)
            self._instrument(cp)
            self.cp, self.board = cp, board
            try:
                reason = await cp.run()
            finally:
                for hw in board.connectors:
                    hw.relay.set(False)
                self._left = len(cp.outbox.journal)
            if reason == "quit" or fleet.ending:
                return
            fleet.stats.event("restarts")

    def _instrument(self, cp):
        """Count and time what the firmware's Rpc sends and reads; see the module doc."""
        fleet, stats = self.fleet, self.fleet.stats
        rpc, outbox, journal = cp.rpc, cp.outbox, cp.outbox.journal
        send, handle, call, put_tx = rpc._send, rpc.handle, rpc.call, outbox.put_tx
        done, thin = outbox.done, journal.thin
        # Queued while the charger was built: PowerLoss stops, the StartupOfTheDevice event.
        at_boot = len(outbox.journal) - self._left
        if at_boot:
            self.tx_in += at_boot
            stats.txn("queued_at_boot", at_boot)

        def sent(text):  # a str, or the pieces of one (ocppj.pieces)
            stats.frames_out += 1
            pending = rpc._pending  # set by Rpc.call just before it sends its CALL
            if pending is not None and pending[0] != self._sent_id:
                self._sent_id = pending[0]
                self._t_sent = time.perf_counter()
                self._reply_kind = 0
            return send(text)

        def read(text):
            stats.frames_in += 1
            kind = text[1:2]
            if kind == "3" or kind == "4":
                self._t_reply = time.perf_counter()
                self._reply_kind = int(kind)
                if fleet.check:
                    self._audit_reply(text)
            elif kind == "2":
                self._request(text)
            return handle(text)

        async def timed(action, payload, timeout_ms=None, on_result=None):
            stats.call_sent(action)
            try:
                reply = await call(action, payload, timeout_ms, on_result)
            except CallFailed as e:
                self._answered(action)
                if e.code == "Timeout":
                    stats.timeouts[action] = stats.timeouts.get(action, 0) + 1
                else:
                    book = stats.callerrors if self._reply_kind == 4 else stats.invalid
                    key = "%s %s" % (action, e.code)
                    book[key] = book.get(key, 0) + 1
                raise
            except NotConnected:
                stats.not_connected[action] = stats.not_connected.get(action, 0) + 1
                raise
            self._answered(action)
            stats.answered[action] = stats.answered.get(action, 0) + 1
            if action == "Authorize" and reply["idTagInfo"]["status"] != "Accepted":
                stats.event("cards_refused")
            elif action == "BootNotification":
                stats.event("boot_" + reply["status"].lower())
            return reply

        def delivered(entry, reply):
            # Counted where the firmware takes the CALLRESULT in and acks the journal
            # (Rpc.call's on_result), not where call() returns: under load its wait may
            # time out, or the sender be cancelled, after the reply was read and acked.
            done(entry, reply)
            if entry.seq is not None:
                self._delivered(entry.action, reply)

        def thinned():
            # The journal's own thin() (firmware/journal.py _make_room): every second
            # pending MeterValues dropped by design when the journal is full.
            n = thin()
            if n:
                self.thinned += n
                stats.txn("meter_values_thinned", n)
            return n

        def queued(action, ref, payload):
            before = len(outbox.journal)
            put_tx(action, ref, payload)
            if len(outbox.journal) == before:  # a MeterValues the full journal refused
                stats.txn("meter_values_refused")
                return
            self.tx_in += 1
            stats.txn({"StartTransaction": "started", "StopTransaction": "stopped",
                       "MeterValues": "meter_values_queued"}.get(action, action + " queued"))

        rpc._send, rpc.handle, rpc.call, outbox.put_tx = sent, read, timed, queued
        outbox.done, journal.thin = delivered, thinned
        connect = cp.link._connect

        async def connecting():
            t = time.perf_counter()
            try:
                conn = await connect()
            except Exception:
                stats.event("connect_failed")
                raise
            stats.latency_of("(connect)", time.perf_counter() - t)
            stats.event("reconnects" if self.connects else "connects")
            self.connects += 1
            return conn

        cp.link._connect = connecting
        cp.link.look_s = _KEEPER_LOOK_S

    def _answered(self, action):
        if self._reply_kind and self._t_reply >= self._t_sent:
            self.fleet.stats.reply_latency(action, self._t_reply - self._t_sent)

    def _delivered(self, action, reply):
        """A journal record's CALLRESULT (see _instrument)."""
        stats = self.fleet.stats
        self.tx_out += 1
        if action == "StartTransaction":
            stats.txn("start_delivered")
            if reply["idTagInfo"]["status"] != "Accepted":
                stats.txn("start_refused")
        elif action == "StopTransaction":
            stats.txn("stop_delivered")
        elif action == "MeterValues":
            stats.txn("meter_values_delivered")
        else:  # SecurityEventNotification: journaled too (firmware/secevents.py)
            stats.txn("security_events_delivered")

    # -- --check: the Central System's frames against the firmware's own tables ------------
    def _audit_reply(self, text):
        stats = self.fleet.stats
        pending = self.cp.rpc._pending
        try:
            msg = json.loads(text)
        except ValueError:
            stats.audit("(frame)", "not JSON: %r" % text[:80])
            return
        action = pending[1] if pending else "(unmatched)"
        if not pending or msg[1] != pending[0]:
            stats.audit(action, "reply to an unknown message id %r" % (msg[1],))
            return
        if msg[0] == 3:
            err = schema16.validate(action + ".conf", msg[2]) if len(msg) == 3 else (
                "FormationViolation", "CALLRESULT with %d elements" % len(msg))
            stats.audit(action, err and "%s: %s" % err)
        else:
            ok = len(msg) == 5 and msg[2] in ocppj.ERROR_CODES
            stats.audit(action, None if ok else "CALLERROR not OCPP-J 1.6: %s" % text[:120])

    def _request(self, text):
        """A CALL of the Central System: counted by action; audited with --check."""
        stats = self.fleet.stats
        try:
            msg = ocppj.decode(text)
        except ocppj.OcppError as e:
            stats.requests["(malformed)"] = stats.requests.get("(malformed)", 0) + 1
            if self.fleet.check:
                stats.audit("(request)", "%s %s" % (e.code, e.description[:120]))
            return
        action = msg[2][:40]
        stats.requests[action] = stats.requests.get(action, 0) + 1
        if self.fleet.check:
            try:
                ocppj.check_request(msg[2], msg[3])
                stats.audit(action + " (request)")
            except ocppj.OcppError as e:
                stats.audit(action + " (request)", "%s %s" % (e.code, e.description[:120]))

    # -- the world: EVs, drivers, network, power -------------------------------------------
    def start_world(self):
        p = self.fleet.profile
        ev, link = p["ev"], p["link"]
        if ev["initial_share"] > 0 or ev["arrivals_per_hour"] > 0:
            for n in range(1, p["connectors"] + 1):
                self._tasks.append(asyncio.create_task(self._ev(n)))
        if link["drops_per_hour"] or link["offline_per_hour"] or p["reboots_per_hour"]:
            self._tasks.append(asyncio.create_task(self._trouble()))

    def stop_world(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []

    def command(self, *words):
        return self.board.command([str(w) for w in words])

    async def _ev(self, n):
        ev = self.fleet.profile["ev"]
        rng = self.rng
        if rng.random() < ev["initial_share"]:
            await self._until_booted()
            await self._session(n)
        rate = ev["arrivals_per_hour"] / 3600
        while rate > 0:
            await asyncio.sleep(rng.expovariate(rate))
            await self._session(n)

    async def _until_booted(self):
        while self.cp is None or not self.cp.accepted:
            await asyncio.sleep(1)

    async def _session(self, n):
        ev, rng, stats = self.fleet.profile["ev"], self.rng, self.fleet.stats
        self.command("power", n, int(rng.uniform(*ev["power_kw"]) * 1000))
        self.command("plug", n)
        draw = rng.random()
        if draw < ev["unknown_card_share"]:
            kind, tag = "unknown", "UNKNOWN%05d" % rng.randrange(100000)
        elif draw < ev["unknown_card_share"] + ev["remote_start_share"]:
            kind, tag = "remote", None
        else:
            kind, tag = "card", "TAG%05d" % rng.randrange(100000)
        stats.event("sessions_" + kind)
        if tag is not None:
            await asyncio.sleep(rng.uniform(0.5, 2))  # the driver finds the card
            self.command("swipe", tag)
        wait = ev["remote_wait_s"] if kind == "remote" else (
            3 if kind == "unknown" else _START_WAIT_S)
        started = await self._tx_on(n, wait)
        if started:
            await asyncio.sleep(rng.uniform(*ev["session_s"]))
        elif kind != "unknown":
            stats.event("sessions_not_started")
        self.command("unplug", n)
        await asyncio.sleep(1)  # the next EV does not arrive in the same second

    async def _tx_on(self, n, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            cp = self.cp
            if cp is not None and cp.connectors[n - 1].tx is not None:
                return True
            await asyncio.sleep(0.5)
        return False

    async def _trouble(self):
        p, rng, stats = self.fleet.profile, self.rng, self.fleet.stats
        link = p["link"]
        rates = (("drop", link["drops_per_hour"] / 3600),
                 ("offline", link["offline_per_hour"] / 3600),
                 ("reboot", p["reboots_per_hour"] / 3600))
        total = sum(r for _, r in rates)
        while True:
            await asyncio.sleep(rng.expovariate(total))
            pick = rng.random() * total
            for what, r in rates:
                if pick < r:
                    break
                pick -= r
            if self.cp is None:
                continue
            stats.event(what + "s")
            if what == "offline":  # the simulated access point goes away, then comes back
                self.command("ap", "off")
                asyncio.get_running_loop().call_later(rng.uniform(*link["offline_s"]),
                                                      self._back_online)
            self.cut()
            if what == "reboot":  # a power cut: no close, no StopTransaction, then boot
                self.cp.shutdown("hard")

    def _back_online(self):
        if self.board is not None:
            self.command("ap", "on")

    def cut(self):
        """Break the link at once, as a dead network does: no close handshake."""
        conn = self.cp.link.conn if self.cp else None
        w = getattr(conn, "_w", None)
        transport = getattr(w, "transport", None)
        if transport is not None:
            transport.abort()
            return True
        return False


class Fleet:
    """Chargers `first` .. `first + count - 1` of a fleet in this process."""

    def __init__(self, csms_url, count, profile, first=0, id_format="CP_{:05d}", data=None,
                 seed=1, password=None, ca_file=None, insecure=False, check=False,
                 echo=False, log_level="warn", base_config=None):
        # One process holds thousands of chargers: the modules a charger loads to connect
        # stay loaded (shared by all) instead of being imported again for every connection.
        # Set by a fleet, not on import: a process that only imports this module (the tests)
        # keeps the firmware's own unloading.
        compat.unload = _keep_loaded
        self.url = csms_url
        self.count = count
        self.first = first
        self.profile = profile
        self.id_format = id_format
        self.data = data
        self.seed = seed
        self.password = password
        self.ca_file = ca_file
        self.insecure = insecure
        self.check = check
        self.echo = echo
        self.log_level = log_level
        self.base_config = base_config
        self.stats = Stats()
        self.chargers = []
        self.ending = False
        self.last_problem = None
        self.marks = {}  # name -> (monotonic, user+system CPU s, RSS bytes, frames, system CPU s)
        self._stop = asyncio.Event()
        self._tasks = []
        self._gc_t = 0.0
        self.profile_out = None  # cProfile the steady window into this file
        self._profiler = None

    # -- set-up ------------------------------------------------------------------------------
    def _config(self):
        """The checked config every charger starts from (config.json + the options)."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        with open(self.base_config or os.path.join(root, "config.json")) as f:
            cfg = json.load(f)
        csms = cfg.setdefault("csms", {})
        csms["url"] = self.url
        if self.password is not None:
            csms["password"] = self.password
            # An explicit password for a load test: sent over ws:// too, if that is the URL.
            csms["allow_plain_basic_auth"] = True
        if self.ca_file:
            csms["ca_file"] = self.ca_file
        if self.insecure:
            csms["verify_tls"] = False
        cfg.setdefault("station", {})["connectors"] = self.profile["connectors"]
        cfg.setdefault("ocpp", {}).update(self.profile["ocpp"])
        cfg.setdefault("log", {})["level"] = self.log_level
        cfg.setdefault("hardware", {})["board"] = "sim"  # checked as the simulator
        folder = os.path.join(self.data, "_base")
        os.makedirs(folder, exist_ok=True)
        cfg["data_dir"] = "."
        path = os.path.join(folder, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        try:
            return fw_config.load(path)
        except fw_config.ConfigError as e:
            raise SystemExit("fleet: config: %s" % e)

    def build(self):
        base = self._config()
        # What every charger loads to connect and to answer, loaded once before the memory
        # baseline: the RSS per charger is then the chargers' own.
        for name in ("ws", "wsopen", "net", "secprofile", "core", "certificates"):
            __import__("firmware." + name)
        for i in range(self.first, self.first + self.count):
            cp_id = self.id_format.format(i)
            cfg = dict(base)
            cfg["csms"] = dict(base["csms"], id=cp_id)
            cfg["_data"] = os.path.join(self.data, cp_id)
            os.makedirs(cfg["_data"], exist_ok=True)
            self.chargers.append(Charger(self, i, cp_id, cfg))

    def mark(self, name):
        user, system = cpu_seconds()
        self.marks[name] = (time.monotonic(), user + system, rss_bytes(),
                            self.stats.frames_in + self.stats.frames_out, system)

    # -- running -------------------------------------------------------------------------------
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
        s = self.stats
        errors = (sum(s.callerrors.values()) + sum(s.timeouts.values())
                  + sum(s.invalid.values()) + s.events.get("log_error", 0))
        return {"chargers": len(self.chargers), "connected": connected, "booted": booted,
                "charging": charging, "errors": errors,
                "frames": s.frames_in + s.frames_out}

    async def run(self, duration, drain_s=20.0, on_progress=None, every=1.0, settle_s=5.0):
        """Start every charger (spread over the profile's ramp), run `duration` seconds (None:
        until stop()), then end the sessions, let the outboxes drain, and quit every charger
        (each closes its websocket). The steady window, for the CPU and latency figures,
        begins `settle_s` after every charger is booted (the first sessions start meanwhile)."""
        import gc
        gc.collect()
        gc.callbacks.append(self._gc_timed)
        self.mark("base")
        ramp = self.profile["ramp_s"]
        loop_t0 = time.monotonic()
        starter = asyncio.create_task(self._start_all(ramp))
        storms = asyncio.create_task(self._storms(loop_t0))
        deadline = None if duration is None else loop_t0 + duration
        steady = False
        booted = None
        try:
            while not self._stop.is_set():
                left = every if deadline is None else min(every, deadline - time.monotonic())
                if left <= 0:
                    break
                asked = time.monotonic() + left
                try:
                    await asyncio.wait_for(self._stop.wait(), left)
                except asyncio.TimeoutError:
                    pass
                lag = time.monotonic() - asked  # how late the loop woke us: its backlog
                self.stats.latency_of("(loop lag)", max(lag, 0))
                c = self.counts()
                c["lag_ms"] = int(lag * 1000)
                if booted is None and starter.done() and c["booted"] == len(self.chargers):
                    booted = time.monotonic()
                    self.mark("booted")
                    # Thousands of chargers are long-lived objects: a full collection would
                    # walk them all again and again (seconds at 10 000 chargers, the loop
                    # stalled meanwhile). Frozen, only what the steady state makes is seen.
                    gc.collect()
                    gc.freeze()
                if not steady and booted is not None and time.monotonic() - booted >= settle_s:
                    steady = self.stats.steady = True
                    self.mark("steady")
                    if self.profile_out:
                        import cProfile
                        self._profiler = cProfile.Profile()
                        self._profiler.enable()
                if on_progress:
                    on_progress(time.monotonic() - loop_t0, c)
        finally:
            self.mark("end")
            if self._profiler is not None:
                self._profiler.disable()
                self._profiler.dump_stats(self.profile_out)
            self.stats.steady = False  # the drain's burst of StopTransactions is no steady state
            starter.cancel()
            storms.cancel()
            interrupted = self._stop.is_set()
            await self._finish(0 if interrupted else drain_s)
            self.mark("done")
            gc.callbacks.remove(self._gc_timed)
            gc.unfreeze()

    def _gc_timed(self, phase, info):
        """The pauses of full collections, as "(gc full)" in the latency table."""
        if info["generation"] != 2:
            return
        if phase == "start":
            self._gc_t = time.perf_counter()
        else:
            self.stats.latency_of("(gc full)", time.perf_counter() - self._gc_t)

    def stop(self):
        """End the run now (Ctrl-C): no draining, every charger closes its websocket."""
        self._stop.set()

    async def _start_all(self, ramp):
        n = len(self.chargers)
        t0 = time.monotonic()
        for i, ch in enumerate(self.chargers):
            due = t0 + (ramp * i / n if n else 0)
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            self._tasks.append(asyncio.create_task(ch.run()))
            ch.start_world()

    async def _storms(self, t0):
        for at in self.profile["link"]["storms_at_s"]:
            wait = t0 + at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            cut = sum(1 for ch in self.chargers if ch.cut())
            self.stats.event("storms")
            self.stats.event("storm_cuts", cut)

    async def _finish(self, drain_s):
        self.ending = True
        for ch in self.chargers:
            ch.stop_world()
        if drain_s:
            for ch in self.chargers:  # every EV leaves: the transactions stop
                if ch.board is not None:
                    for n, hw in enumerate(ch.board.connectors, 1):
                        if hw.pilot.plug != "A":
                            ch.command("unplug", n)
            end = time.monotonic() + drain_s
            await asyncio.sleep(1)  # the ticks that queue the StopTransactions
            while time.monotonic() < end and any(
                    ch.cp is not None and (len(ch.cp.outbox) or ch.cp.rpc._pending
                                           or not ch.cp.online()) for ch in self.chargers):
                await asyncio.sleep(0.2)
        for ch in self.chargers:
            if ch.cp is not None:
                ch.cp.shutdown("quit")
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)
        for t in self._tasks:
            t.cancel()
        stats = self.stats
        queued = lost = 0
        for ch in self.chargers:
            left = len(ch.cp.outbox.journal) if ch.cp is not None else 0
            queued += left
            lost += ch.tx_in - ch.tx_out - ch.thinned - left
        stats.txn("still_queued", queued)
        stats.txn("lost", lost)

    def report(self):
        """This process's figures: stats, marks, counts (JSON-able)."""
        return {"stats": self.stats.to_json(), "marks": self.marks, "counts": self.counts(),
                "chargers": len(self.chargers), "last_problem": self.last_problem}
