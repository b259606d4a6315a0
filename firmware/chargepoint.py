"""The charge point, composition root of one charger: it builds the parts (keys, connectors,
outbox, sessions, auth, link), runs the boot sequence, the heartbeat, the outbox sender and the
tick that polls the hardware, and loads feature modules on first use (firmware/profiles.py).
A board that is not polled (hal/base.py Board.polled: the simulator in a fleet) is ticked
only when something may have changed and at the charger's own deadlines; each task sleeps
until its next deadline, so an idle charger costs no CPU.
Built by app.py from a config and a board; `connect` replaces the websocket (in-process tests).
"""
from firmware import clock, profiles, store, updates
from firmware.compat import asyncio, const, ticks_ms, ticks_diff, unload
from firmware.auth import Auth
from firmware.connector import Connector
from firmware.journal import Journal
from firmware.keys import Keys
from firmware.link import Link, first_to_end
from firmware.metering import phase_labels
from firmware.outbox import Entry, Outbox
from firmware.rpc import Rpc, CallFailed
from firmware.sessions import Sessions

_TICK_MS = const(100)
_BOOT_RETRY_S = const(30)     # BootNotification interval 0 or no answer
_MIN_AMPS = const(6)          # IEC 61851: below 6 A no charging is allowed
_PROBE_S = const(300)         # websocket pings off: the longest quiet time before a Heartbeat
_TIME_EVENT_S = const(60)     # a clock change larger than this is a SettingSystemTime event
_SESSION = ("Charging", "SuspendedEV", "SuspendedEVSE")


def bridge(prev, new):
    """The status a Central System must see between `prev` and `new` when the OCPP 1.6
    transition table (section 4.9) has no direct step, or None. A session always starts from
    Preparing (A2/G2/F2 then B3-B5: A3-A5 are for chargers without authorization)."""
    if new in _SESSION:
        return "Preparing" if prev in ("Available", "Reserved", "Finishing") else None
    if new == "Finishing":
        return "Preparing" if prev in ("Available", "Reserved", "Unavailable") else None
    if new == "Preparing":
        return "Finishing" if prev in _SESSION else None
    if new == "Reserved":
        return None if prev in (None, "Available", "Faulted", "Reserved") else "Available"
    if new == "Unavailable" and prev == "Preparing":
        return "Available"
    return None


class ChargePoint:
    def __init__(self, cfg, board, log, connect=None):
        self.cfg = cfg
        self.board = board
        self.log = log
        data = cfg["_data"]
        self._state_path = store.join(data, "state.json")
        st = cfg["station"]
        self.keys = Keys(cfg["ocpp"], store.join(data, "keys.json"), st["connectors"], log)
        self.connectors = [Connector(i + 1, hw, st["max_current"])
                           for i, hw in enumerate(board.connectors)]
        # ConnectorPhaseRotation is read here only: changing it needs a reboot.
        for c in self.connectors:
            c.phase_labels = phase_labels(self.keys["ConnectorPhaseRotation"], c.id)
        self.operative = True  # connector 0: the charge point as a whole
        state = store.read_json(self._state_path, {})
        avail = state.get("available") if isinstance(state, dict) else None
        if isinstance(avail, list) and len(avail) == len(self.connectors) + 1:
            self.operative = bool(avail[0])
            for c in self.connectors:
                c.operative = bool(avail[c.id])
        # A board without a backup battery wakes up in 2000: the last known time is saner
        # for messages made before the Central System tells the time again.
        self._clock_path = store.join(data, "clock.json")
        self._clock_saved = None
        known = store.read_json(self._clock_path)
        self._clock_known = known if isinstance(known, int) else 0  # floor of _set_time
        if isinstance(known, int) and board.rtc.now() < known:
            board.rtc.set(known)
            log.warn("clock", "clock was behind the last known time, set to " + clock.iso(known))
        self.rpc = Rpc(log, cfg["csms"]["call_timeout"] * 1000, self.handler)
        self.link = Link(cfg, self.keys, log, board.indicator, connect, board.network)
        self.link.owner = self
        # Security events of the parts that know no charge point (firmware/secevents.py).
        self.rpc.on_event = log.on_event = self.security_event
        self.outbox = Outbox(log, Journal(store.join(data, "journal"), log))
        self._features = {}        # feature module name -> its state (see feature())
        self.sessions = Sessions(self)
        self.auth = Auth(self)
        self.sessions.recover()
        self.accepted = False      # BootNotification Accepted in this power cycle
        self.boot_status = None    # the last BootNotification answer (console `status`)
        self.ticks = 0             # hardware ticks done (the console waits on them)
        self.tampered = False      # the enclosure's tamper switch reads open
        self.reported0 = None      # connector 0 status the CSMS has
        self.queued0 = None
        self._wake = asyncio.Event()   # the sender: something to send
        self._poked = asyncio.Event()  # the ticker of a board that is not polled
        self._flushed = ticks_ms()
        self._stop = asyncio.Event()
        self.exit_reason = None
        self._aligned = None  # last ClockAlignedDataInterval slot seen
        self.firmware_version = updates.firmware_version(cfg)  # the running slot's version
        # The last Firmware/DiagnosticsStatusNotification status, for TriggerMessage.
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self._last_tx_count = -1
        self._last_send_ms = ticks_ms()
        # Stored profiles and reservations must act from the first tick, not the first request.
        for row in profiles.FEATURES:
            if row[4] and store.exists(profiles.state_path(self, row[1])):
                self.feature(row[1])
        self.security_event("StartupOfTheDevice", "firmware %s" % (self.firmware_version or "?"))

    # -- features (firmware/profiles.py) ----------------------------------------------------
    def handler(self, action):
        """The handler of a Central System request, `handler(req) -> reply`, or None."""
        name = profiles.module_for(action)
        if name is None:
            return None
        fn = getattr(profiles.module(name), action)

        def handle(req):
            reply = fn(self, req)
            # A request may change what the next tick decides (availability, a remote start)
            # or when the sender is due (a key).
            self.kick()
            if isinstance(reply, tuple):
                return reply[0], self._then(reply[1])
            return reply
        return handle

    def _then(self, after):
        async def run():
            try:
                await after()
            finally:
                self._poked.set()
        return run

    def feature(self, name):
        """The state of feature module `name`, loaded (module and state) on first use."""
        state = self._features.get(name)
        if state is None:
            state = self._features[name] = profiles.module(name).load(self)
        return state

    def loaded(self, name):
        """The state of feature `name` if it is loaded, else None (nothing is loaded)."""
        return self._features.get(name)

    def drop(self, name):
        """Forget feature `name` and unload its module: its RAM can be collected."""
        self._features.pop(name, None)
        unload("firmware." + name)

    # -- helpers --------------------------------------------------------------------------
    def now(self):
        return self.board.rtc.now()

    def security_event(self, event_type, tech_info=None):
        """Record a security event (firmware/secevents.py); never raises."""
        from firmware import secevents
        secevents.record(self, event_type, tech_info)

    def iso(self, t=None):
        return clock.iso(self.now() if t is None else t)

    def online(self):
        return self.rpc.connected and self.accepted

    def connector(self, cid):
        return self.connectors[cid - 1] if 1 <= cid <= len(self.connectors) else None

    def save_state(self):
        avail = [1 if self.operative else 0] + [1 if c.operative else 0 for c in self.connectors]
        store.write_atomic(self._state_path, '{"available": %s}' % avail)

    def kick(self):
        self._wake.set()
        self._poked.set()

    def poke(self):
        """An input of a board that is not polled changed: tick now."""
        self._poked.set()

    def shutdown(self, reason):
        """End run(): "quit", "soft" or "hard" (reset)."""
        if reason != "quit" and not self._stop.is_set():
            self.security_event("ResetOrReboot", "%s reset" % reason)
        self.exit_reason = reason
        self._stop.set()

    def apply_limits(self):
        """Push the effective limit of every connector to its pilot; called every second and
        after any profile change, so each period boundary takes effect within a second."""
        smart = self.loaded("smart")
        now = self.now()
        for c in self.connectors:
            start = c.tx.start_time if c.tx is not None else None
            limit = smart.limit(c.id, now, start) if smart is not None else None
            if limit is not None and limit < _MIN_AMPS:
                limit = 0.0
            if limit != c.limit:
                c.limit = limit
                self.log.info("smart", "connector %d limit %s"
                              % (c.id, "none" if limit is None else "%.1f A" % limit))
                if c.tx is not None and not c.tx.rejected:
                    c.hw.pilot.set_current_limit(c.offered_a())

    # -- status notifications ---------------------------------------------------------------
    def status0(self):
        """The status of connector 0, the charge point as a whole."""
        return "Available" if self.operative else "Unavailable"

    def queue_status(self, cid, status, error="NoError", replace=True):
        def done(_reply):
            if cid == 0:
                self.reported0 = status
            else:
                self.connectors[cid - 1].reported = (status, error)
        payload = {"connectorId": cid, "errorCode": error, "status": status,
                   "timestamp": self.iso()}
        self.outbox.put(Entry("StatusNotification", payload, done, key=cid), replace)
        self.kick()

    def report_status(self, c):
        """Queue connector c's present status now (TriggerMessage), in the table's sequence."""
        st = c.status()
        prev = c.queued[0] if c.queued else None
        c.queued = st
        self._report(c, prev, st)

    def _report(self, c, prev, st):
        """Queue connector c's status st after prev (the last one queued or reported), with
        the bridge status first where the 1.6 table needs one: facts that changed within one
        tick, or a status shorter than MinimumStatusDuration, never skip a step of it."""
        mid = bridge(prev, st[0])
        if mid is not None:
            self._put_status(c, prev, mid, "NoError")
            prev = mid
        self._put_status(c, prev, st[0], st[1])

    def _put_status(self, c, prev, status, error):
        # A status still waiting is replaced (the Central System needs the latest, not each
        # flap) only where the shortened sequence is one the table allows.
        before = c.before
        replace = self.outbox.keyed(c.id) and (status == before or bridge(before, status) is None)
        if not replace:
            c.before = prev
        self.queue_status(c.id, status, error, replace)

    def _update_statuses(self):
        s0 = self.status0()
        if s0 != self.queued0:
            self.queued0 = s0
            if self.accepted:
                self.queue_status(0, s0)
        hold = self.keys["MinimumStatusDuration"] * 1000
        for c in self.connectors:
            st = c.status()
            if st != c.seen:
                c.seen, c.seen_ms = st, ticks_ms()
            # MinimumStatusDuration: a status must last this long before it is reported;
            # faults are reported at once.
            if st != c.queued and (st[1] != "NoError"
                                   or ticks_diff(ticks_ms(), c.seen_ms) >= hold):
                prev = c.queued[0] if c.queued else None
                c.queued = st
                # A status with an error code stays visible at WARN (README "Faults and safety").
                (self.log.info if st[1] == "NoError" else self.log.warn)(
                    "status", "connector %d %s%s"
                    % (c.id, st[0], "" if st[1] == "NoError" else " " + st[1]))
                if self.accepted:
                    self._report(c, prev, st)

    def _resync_statuses(self):
        """After boot or reconnect: tell the CSMS every status it does not have."""
        s0 = self.status0()
        self.queued0 = s0
        if self.reported0 != s0:
            self.queue_status(0, s0)
        for c in self.connectors:
            c.queued = c.status()
            if c.reported != c.queued:
                self._report(c, c.reported[0] if c.reported else None, c.queued)

    # -- tasks ------------------------------------------------------------------------------
    async def _ticker(self):
        board = self.board
        board.changed = self.poke
        if not board.polled:
            await self._ticker_on_events()
            return
        n = 0
        while True:
            n += 1
            if n % 50 == 0:  # every 5 s
                self.log.flush()
            if n % 10 == 0:  # every second: profile periods, reservation expiry, aligned data
                self.apply_limits()
                reservations = self.loaded("reservation")
                if reservations is not None:
                    reservations.tick()
                self._clock_aligned()
            board.watchdog.feed()
            board.poll()
            self._tick()
            await asyncio.sleep(_TICK_MS / 1000)

    def _tick(self):
        self.ticks += 1
        tag = self.board.reader.poll()
        if tag:
            self.log.info("hw", "card %s presented" % tag)
            self.sessions.present_tag(tag)
        for c in self.connectors:
            self.sessions.tick(c)
        self._update_statuses()
        opened = self.board.tamper.opened()
        if opened != self.tampered:  # each opening is one event, not one per tick
            self.tampered = opened
            if opened:
                self.log.warn("hw", "enclosure opened (tamper switch)")
                self.security_event("TamperDetectionActivated")
            else:
                self.log.info("hw", "enclosure closed")

    async def _ticker_on_events(self):
        """The tick of a board that is not polled: when poked (an input changed, a request
        came, something was queued), once more a tick later (for what the tasks it let run
        decided meanwhile), and at the next deadline (_next_tick_ms)."""
        board = self.board
        again = False
        while True:
            if self.log.waiting() and ticks_diff(ticks_ms(), self._flushed) >= 5000:
                self._flushed = ticks_ms()
                self.log.flush()
            self.apply_limits()
            reservations = self.loaded("reservation")
            if reservations is not None:
                reservations.tick()
            self._clock_aligned()
            board.watchdog.feed()
            self._tick()
            wait = self._next_tick_ms()
            if again and (wait is None or wait > _TICK_MS):
                wait = _TICK_MS
            self._poked.clear()
            again = False
            if wait is None:
                await self._poked.wait()
                again = True
                continue
            try:
                await asyncio.wait_for(self._poked.wait(), max(wait, _TICK_MS) / 1000)
                again = True
            except asyncio.TimeoutError:
                pass

    def _next_tick_ms(self):
        """Milliseconds until something is due without any input changing, or None."""
        now = ticks_ms()
        waits = []
        if self.log.waiting():
            waits.append(5000 - ticks_diff(now, self._flushed))
        if self.loaded("smart") is not None or self.loaded("reservation") is not None:
            waits.append(1000)  # profile periods and reservation expiry, as when polled
        interval = self.keys["ClockAlignedDataInterval"]
        if interval > 0:
            waits.append((interval - self.now() % interval) * 1000)
        hold = self.keys["MinimumStatusDuration"] * 1000
        for c in self.connectors:
            if c.status() != c.queued:
                waits.append(hold - ticks_diff(now, c.seen_ms))
            if c.auth_tag is not None:
                waits.append(ticks_diff(c.auth_until, now))
            tx = c.tx
            if tx is not None:
                waits.append(ticks_diff(tx.next_sample, now))
                if tx.rejected and c.hw.relay.is_on():
                    waits.append(1000)  # MaxEnergyOnInvalidId
        return min(waits) if waits else None

    def _clock_aligned(self):
        interval = self.keys["ClockAlignedDataInterval"]
        if interval <= 0:
            self._aligned = None
            return
        slot = self.now() // interval
        if self._aligned is not None and slot != self._aligned:
            self.sessions.aligned(slot * interval)
        self._aligned = slot

    async def _sender(self):
        """Deliver the outbox and heartbeats while the link is up and the boot accepted."""
        while True:
            # Nothing new goes out once the charger stops: a reply that came too late to be
            # taken in would have the message sent again after the restart.
            entry = self.outbox.next() if self.accepted and not self._stop.is_set() else None
            if entry is None:
                if self.accepted and self._heartbeat_due():
                    await self.heartbeat()
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._sender_wait())
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                await self.rpc.call(entry.action, entry.payload,
                                    on_result=lambda reply: self._delivered(entry, reply))
            except CallFailed as e:
                self.log.warn("ocpp", "%s failed: %s" % (entry.action, e))
                # A timeout is no attempt: see firmware/outbox.py for the delivery rule.
                self.outbox.failed(entry, e.code, self.keys["TransactionMessageAttempts"],
                                   self.keys["TransactionMessageRetryInterval"])

    def _delivered(self, entry, reply):
        """An outbox entry's CALLRESULT, taken in as it is read (see Rpc.call)."""
        self.outbox.done(entry, reply)  # a flash failure here ends the sender, which restarts
        try:
            if entry.on_reply:
                entry.on_reply(reply)
            elif entry.action == "StartTransaction":
                self.sessions.started(entry.ref, reply)
            elif (entry.action == "StopTransaction" and "idTagInfo" in reply
                  and "idTag" in entry.payload):
                self.auth.remember(entry.payload["idTag"], reply["idTagInfo"])
        except Exception as e:
            self.log.exc("ocpp", "handling %s reply" % entry.action, e)

    def _heartbeat_due(self):
        if self.rpc.tx_count != self._last_tx_count:
            self._last_tx_count = self.rpc.tx_count
            self._last_send_ms = self.rpc.sent_ms
            return False
        return ticks_diff(ticks_ms(), self._last_send_ms) >= self._heartbeat_every()

    def _heartbeat_every(self):
        every = self.keys["HeartbeatInterval"]
        if self.keys["WebSocketPingInterval"] <= 0:  # then the Heartbeat probes the link
            every = min(every, _PROBE_S)             # (README "Link liveness")
        return every * 1000

    def _sender_wait(self):
        """Seconds the sender sleeps unless kicked: half a second on a polled board; else
        until the heartbeat is due or a transaction message's retry wait is over."""
        if not self.accepted or self.board.polled:
            return 0.5
        wait = self._heartbeat_every() - ticks_diff(ticks_ms(), self._last_send_ms)
        retry = self.outbox.wait_ms()
        if retry is not None and retry < wait:
            wait = retry
        return max(wait, 50) / 1000

    async def heartbeat(self):
        try:
            reply = await self.rpc.call("Heartbeat", {})
            self._set_time(reply["currentTime"])
        except CallFailed as e:
            self.log.warn("ocpp", "Heartbeat failed: %s" % e)

    def _set_time(self, text):
        """Set the clock from a currentTime, unless it is implausible (README "Time")."""
        try:
            t = clock.parse_iso(text)
        except ValueError:
            self.log.warn("clock", "bad currentTime %r" % text)
            return
        # A running transaction's timestamps must not go back past what is on flash (its
        # start, the last saved time): its StopTransaction would end before it began.
        floor = -1
        for c in self.connectors:
            if c.tx is not None:
                floor = max(floor, c.tx.start_time, self._clock_known)
        if not clock.plausible(t):
            self.log.warn("clock", "currentTime %s refused: not in 2020..2099" % text)
            return
        if t < floor:
            self.log.warn("clock", "currentTime %s refused: before %s, during a transaction"
                          % (text, clock.iso(floor)))
            return
        before = self.now()
        self.board.rtc.set(t)
        if abs(t - before) > _TIME_EVENT_S:
            self.security_event("SettingSystemTime", "from %s to %s (Central System time)"
                                % (clock.iso(before), text[:40]))
        self._clock_known = min(self._clock_known, t)  # a correction back, accepted
        # Persist at most hourly: flash wears, and an hour-old time is still sane.
        if self._clock_saved is None or ticks_diff(ticks_ms(), self._clock_saved) > 3600000:
            self._clock_saved = ticks_ms()
            store.write_atomic(self._clock_path, str(t))
            self._clock_known = t

    async def trigger_boot(self):
        """TriggerMessage(BootNotification): boot again on the running link."""
        self.accepted = False
        await self.boot()

    async def boot(self):
        """BootNotification until Accepted. Pending: CS calls are answered meanwhile.
        Rejected: nothing is sent or answered until the interval has passed."""
        st = self.cfg["station"]
        payload = {"chargePointVendor": st["vendor"], "chargePointModel": st["model"]}
        if st["serial"]:
            payload["chargePointSerialNumber"] = st["serial"]
            if st["charge_box_serial"]:  # deprecated in 1.6, still read by older systems
                payload["chargeBoxSerialNumber"] = st["serial"]
        if self.firmware_version:
            payload["firmwareVersion"] = self.firmware_version
        while True:
            self.rpc.silent = False
            try:
                reply = await self.rpc.call("BootNotification", payload,
                                            on_result=self._boot_reply)
            except CallFailed as e:
                self.log.warn("boot", "BootNotification failed: %s" % e)
                await asyncio.sleep(_BOOT_RETRY_S)
                continue
            self._set_time(reply["currentTime"])
            status, interval = reply["status"], reply["interval"]
            self.boot_status = status
            # Rejected: the Central System does not know this charger (csms.id?) - no session
            # can start, so it is a warning, not news.
            (self.log.warn if status == "Rejected" else self.log.info)(
                "boot", "BootNotification %s (interval %d s)%s" % (
                    status, interval, " - the Central System does not accept csms.id %s"
                    % self.cfg["csms"]["id"] if status == "Rejected" else ""))
            if status == "Accepted":
                if interval > 0:
                    self.keys.override("HeartbeatInterval", interval)
                self.accepted = True
                self.board.indicator.show("ready")
                try:
                    updates.confirm(self)  # a new application proved itself: keep it
                except Exception as e:
                    self.log.exc("boot", "update confirmation", e)
                return
            await asyncio.sleep(interval if interval > 0 else _BOOT_RETRY_S)

    def _boot_reply(self, reply):
        # Taken in before the next frame is read: a request right behind a Rejected reply
        # must already find the charger mute.
        self.rpc.silent = reply["status"] == "Rejected"

    async def _online(self):
        """Boot on this link if not booted yet, then deliver statuses, the outbox, heartbeats."""
        if not self.accepted:
            await self.boot()
        self._resync_statuses()
        await self._sender()

    async def _session(self, conn):
        """Everything that lives as long as one connection (run by Link.run)."""
        self.rpc.attach(conn)
        try:
            await first_to_end((self.rpc.serve(conn), self._online()))
        finally:
            self.rpc.detach()
            self.outbox.drop_volatile()

    async def _core(self, coro):
        """Run a core task; when it ends (a bug), restart the charger at once."""
        err = None
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:
            err = e
        if not self._stop.is_set():
            self.log.error("cp", "a core task ended (%r); restarting" % (err,))
            if isinstance(err, MemoryError):
                self.security_event("MemoryExhaustion", "a core task")
            self.shutdown("soft")

    async def run(self):
        """Run until shutdown(); returns the reason ("quit", "soft", "hard")."""
        tasks = [asyncio.create_task(self._core(self._ticker())),
                 asyncio.create_task(self._core(self.link.run(self._session)))]
        try:
            await self._stop.wait()
        finally:
            self.log.flush()
            # The link task first: while the close handshake waits for its echo, a link
            # that saw its session end must not connect again.
            tasks[1].cancel()
            await self.link.close(1001, "going away")
            for t in tasks:
                t.cancel()
        return self.exit_reason
