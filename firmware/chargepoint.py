"""The charge point: connection supervisor, boot sequence, heartbeat, the outbox sender
and the tick that polls the hardware. Built by main.py from a config and a board.
"""
from firmware import clock, store, ws
from firmware.compat import asyncio, const, ticks_ms, ticks_diff, urandom
from firmware.auth import Auth
from firmware.connector import Connector
from firmware.metering import phase_labels
from firmware.journal import Journal
from firmware.keys import Keys
from firmware.outbox import Entry, Outbox
from firmware.rpc import Rpc, CallFailed, NotConnected
from firmware.sessions import Sessions
from firmware.smart_handlers import apply_limits

_TICK_MS = const(100)
_BOOT_RETRY_S = const(30)     # BootNotification interval 0 or no answer
_STABLE_MS = const(60000)     # a link that lived this long resets the reconnect backoff


class ChargePoint:
    def __init__(self, cfg, board, log):
        self.cfg = cfg
        self.board = board
        self.log = log
        data = cfg["_data"]
        self._state_path = store.join(data, "state.json")
        st = cfg["station"]
        self.keys = Keys(cfg["ocpp"], store.join(data, "keys.json"), st["connectors"], log)
        self.connectors = [Connector(i + 1, hw, st["max_current"]) for i, hw in enumerate(board.connectors)]
        for c in self.connectors:  # ConnectorPhaseRotation is read here only: changing it needs a reboot
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
        if isinstance(known, int) and board.rtc.now() < known:
            board.rtc.set(known)
            log.warn("clock", "clock was behind the last known time, set to " + clock.iso(known))
        self.rpc = Rpc(log, cfg["csms"]["call_timeout"] * 1000)
        self.outbox = Outbox(log, Journal(store.join(data, "journal"), log))
        self.smart = None          # SmartCharging, loaded when a profile exists or arrives
        self.reservations = None   # Reservations, loaded when one exists or is requested
        self.sessions = Sessions(self)
        self.auth = Auth(self)
        self.sessions.recover()
        self.accepted = False      # BootNotification Accepted in this power cycle
        self.reported0 = None      # connector 0 status the CSMS has
        self.queued0 = None
        self._ws = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.exit_reason = None
        self._aligned = None  # last ClockAlignedDataInterval slot seen
        self.firmware_version = None       # set by updates.register() from the running slot
        self.firmware_status = "Idle"      # last FirmwareStatusNotification status (TriggerMessage)
        self.diagnostics_status = "Idle"   # last DiagnosticsStatusNotification status
        self.accepted_hooks = []           # called once the boot is Accepted (update confirmation...)
        self._last_tx_count = -1
        self._last_send_ms = ticks_ms()
        from firmware import handlers
        handlers.register(self)

    # -- helpers ----------------------------------------------------------------------------
    def now(self):
        return self.board.rtc.now()

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

    def shutdown(self, reason):
        """End run(): "quit", "soft" or "hard" (reset)."""
        self.exit_reason = reason
        self._stop.set()

    # -- status notifications ---------------------------------------------------------------
    def _status0(self):
        return "Available" if self.operative else "Unavailable"

    def queue_status(self, cid, status, error="NoError", force=False):
        def done(_reply):
            if cid == 0:
                self.reported0 = status
            else:
                self.connectors[cid - 1].reported = (status, error)
        payload = {"connectorId": cid, "errorCode": error, "status": status, "timestamp": self.iso()}
        self.outbox.put(Entry("StatusNotification", payload, done, key=cid))
        self.kick()

    def _update_statuses(self):
        s0 = self._status0()
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
            if st != c.queued and (st[1] != "NoError" or ticks_diff(ticks_ms(), c.seen_ms) >= hold):
                c.queued = st
                self.log.info("status", "connector %d %s%s" % (c.id, st[0], "" if st[1] == "NoError" else " " + st[1]))
                if self.accepted:
                    self.queue_status(c.id, st[0], st[1])

    def _resync_statuses(self):
        """After boot or reconnect: tell the CSMS every status it does not have."""
        s0 = self._status0()
        self.queued0 = s0
        if self.reported0 != s0:
            self.queue_status(0, s0)
        for c in self.connectors:
            c.queued = c.status()
            if c.reported != c.queued:
                self.queue_status(c.id, c.queued[0], c.queued[1])

    # -- tasks ------------------------------------------------------------------------------
    async def _ticker(self):
        board = self.board
        n = 0
        while True:
            n += 1
            if n % 50 == 0:  # every 5 s
                self.log.flush()
            if n % 10 == 0:  # every second: charging-profile periods, reservation expiry, aligned data
                apply_limits(self)
                if self.reservations is not None:
                    self.reservations.tick()
                self._clock_aligned()
            board.watchdog.feed()
            board.poll()
            tag = board.reader.poll()
            if tag:
                self.log.info("hw", "card %s presented" % tag)
                self.sessions.present_tag(tag)
            for c in self.connectors:
                self.sessions.tick(c)
            self._update_statuses()
            await asyncio.sleep(_TICK_MS / 1000)

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
            entry = self.outbox.next() if self.accepted else None
            if entry is None:
                if self.accepted and self._heartbeat_due():
                    await self.heartbeat()
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                await self.rpc.call(entry.action, entry.payload, on_result=lambda reply: self._delivered(entry, reply))
            except CallFailed as e:
                if e.code == "NotConnected":
                    raise NotConnected()
                self.log.warn("ocpp", "%s failed: %s" % (entry.action, e))
                self.outbox.failed(entry, self.keys["TransactionMessageAttempts"],
                                   self.keys["TransactionMessageRetryInterval"])

    def _delivered(self, entry, reply):
        """An outbox entry's CALLRESULT, taken in as it is read (see Rpc.call)."""
        self.outbox.done(entry, reply)  # a flash failure here ends the sender, which restarts
        try:
            if entry.on_reply:
                entry.on_reply(reply)
            elif entry.action == "StartTransaction":
                self.sessions.started(entry.ref, reply)
            elif entry.action == "StopTransaction" and "idTagInfo" in reply and "idTag" in entry.payload:
                self.auth.remember(entry.payload["idTag"], reply["idTagInfo"])
        except Exception as e:
            self.log.exc("ocpp", "handling %s reply" % entry.action, e)

    def _heartbeat_due(self):
        if self.rpc.tx_count != self._last_tx_count:
            self._last_tx_count = self.rpc.tx_count
            self._last_send_ms = ticks_ms()
            return False
        return ticks_diff(ticks_ms(), self._last_send_ms) >= self.keys["HeartbeatInterval"] * 1000

    async def heartbeat(self):
        try:
            reply = await self.rpc.call("Heartbeat", {})
            self._set_time(reply["currentTime"])
        except CallFailed as e:
            if e.code == "NotConnected":
                raise NotConnected()
            self.log.warn("ocpp", "Heartbeat failed: %s" % e)

    def _set_time(self, text):
        try:
            t = clock.parse_iso(text)
        except ValueError:
            self.log.warn("clock", "bad currentTime %r" % text)
            return
        self.board.rtc.set(t)
        # Persist at most hourly: flash wears, and an hour-old time is still sane.
        if self._clock_saved is None or ticks_diff(ticks_ms(), self._clock_saved) > 3600000:
            self._clock_saved = ticks_ms()
            store.write_atomic(self._clock_path, str(t))

    async def boot(self):
        """BootNotification until Accepted. Pending: CS calls are answered meanwhile.
        Rejected: nothing is sent or answered until the interval has passed."""
        st = self.cfg["station"]
        payload = {"chargePointVendor": st["vendor"], "chargePointModel": st["model"]}
        if st["serial"]:
            payload["chargePointSerialNumber"] = st["serial"]
        version = self.firmware_version or st["firmware_version"]  # a slot's manifest version after an update
        if version:
            payload["firmwareVersion"] = version
        while True:
            self.rpc.silent = False
            try:
                reply = await self.rpc.call("BootNotification", payload, on_result=self._boot_reply)
            except CallFailed as e:
                if e.code == "NotConnected":
                    raise NotConnected()
                self.log.warn("boot", "BootNotification failed: %s" % e)
                await asyncio.sleep(_BOOT_RETRY_S)
                continue
            self._set_time(reply["currentTime"])
            status, interval = reply["status"], reply["interval"]
            self.log.info("boot", "BootNotification %s (interval %d s)" % (status, interval))
            if status == "Accepted":
                if interval > 0:
                    self.keys._values["HeartbeatInterval"] = interval
                self.accepted = True
                self.board.indicator.show("ready")
                for hook in self.accepted_hooks:
                    try:
                        hook()
                    except Exception as e:
                        self.log.exc("boot", "accepted hook", e)
                return
            await asyncio.sleep(interval if interval > 0 else _BOOT_RETRY_S)

    def _boot_reply(self, reply):
        # Taken in before the next frame is read: a request right behind a Rejected reply
        # must already find the charger mute.
        self.rpc.silent = reply["status"] == "Rejected"

    async def _session(self, conn):
        """Everything that lives as long as one websocket connection."""
        self.rpc.attach(conn)
        ended = asyncio.Event()
        failure = []

        async def guard(coro, finishes=False):
            # Keep a task's error for the supervisor instead of letting it die unseen.
            try:
                await coro
                if finishes:
                    return
            except asyncio.CancelledError:
                return
            except Exception as e:
                failure.append(e)
            ended.set()

        tasks = [asyncio.create_task(guard(self.rpc.serve(conn)))]
        try:
            if not self.accepted:
                tasks.append(asyncio.create_task(guard(self.boot(), True)))
                while not self.accepted and not ended.is_set():
                    await asyncio.sleep(0.05)
            if not ended.is_set():
                self._resync_statuses()
                tasks.append(asyncio.create_task(guard(self._sender())))
                tasks.append(asyncio.create_task(guard(self._pinger(conn))))
                await ended.wait()
        finally:
            self.rpc.detach()
            for t in tasks:
                t.cancel()
            self.outbox.drop_volatile()
        if failure:
            raise failure[0]

    async def _pinger(self, conn):
        while True:
            interval = self.keys["WebSocketPingInterval"]
            if interval <= 0:
                await asyncio.sleep(5)
                continue
            await asyncio.sleep(interval)
            # Pings answered keep frames coming; two silent intervals mean a half-open link.
            if conn.idle_ms() > interval * 2000 + 1000:
                raise ws.WsError("no frame from the Central System for %d s" % (conn.idle_ms() // 1000))
            await conn.ping(b"")

    async def _supervisor(self):
        csms = self.cfg["csms"]
        url = ws.join_url(csms["url"], csms["id"])
        auth = (csms["id"], csms["password"]) if csms["password"] else None
        ca = store.join(self.cfg["_dir"], csms["ca_file"]) if csms["ca_file"] else None
        delay = csms["reconnect_min"]
        while True:
            self.board.indicator.show("connecting")
            started = ticks_ms()
            try:
                self.log.info("ws", "connecting to " + url)
                conn = await ws.connect(url, protocol="ocpp1.6", auth=auth, ca_file=ca,
                                        verify=csms["verify_tls"], max_message=csms["max_message"],
                                        connect_timeout_ms=csms["connect_timeout"] * 1000,
                                        handshake_timeout_ms=csms["connect_timeout"] * 1000)
                self._ws = conn
                self.log.info("ws", "connected")
                await self._session(conn)
            except asyncio.CancelledError:
                raise
            except (ws.WsError, NotConnected, OSError) as e:
                self.log.warn("ws", "link down: %s" % e)
            except Exception as e:
                self.log.exc("cp", "connection task failed", e)
            finally:
                if self._ws is not None:
                    try:
                        await self._ws.close(1000)
                    except Exception:
                        pass
                    self._ws = None
            if ticks_diff(ticks_ms(), started) > _STABLE_MS:
                delay = csms["reconnect_min"]
            # Full jitter keeps a fleet that lost the same CSMS from reconnecting in lockstep.
            wait = delay * (0.5 + urandom(1)[0] / 510)
            self.log.info("ws", "reconnecting in %.1f s" % wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, csms["reconnect_max"])

    async def run(self):
        """Run until shutdown(); returns the reason ("quit", "soft", "hard")."""
        tasks = [asyncio.create_task(self._ticker()), asyncio.create_task(self._supervisor())]
        try:
            while not self._stop.is_set():
                for t in tasks:
                    if t.done():  # the ticker or supervisor died: that is a bug, restart the charger
                        self.log.error("cp", "a core task ended; restarting")
                        self.exit_reason = "soft"
                        self._stop.set()
                try:
                    await asyncio.wait_for(self._stop.wait(), 1)
                except asyncio.TimeoutError:
                    pass
        finally:
            self.log.flush()
            conn, self._ws = self._ws, None
            if conn is not None:
                try:
                    await conn.close(1001, "going away")
                except Exception:
                    pass
            for t in tasks:
                t.cancel()
        return self.exit_reason
