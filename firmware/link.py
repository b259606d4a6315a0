"""The link to the Central System: connect, keep alive, find a dead link, back off, again.

`Link.run(session)` owns the websocket: it connects (the `connect` seam: the configured
Central System by default, a loopback transport in the in-process tests), runs `session(conn)`
beside the keeper (which finds a dead link) until either ends, closes the socket and
reconnects after an exponential backoff with jitter. A connection is an object with
`send(text)`, `recv()`, `ping(data)`, `close(code, reason)`, `idle_ms()` and `dead` (see
firmware/ws.py).

Link liveness (README "Link liveness"): ws.py bounds every send and every frame once begun;
the keeper here finds a link that went silent. Pings on (WebSocketPingInterval P > 0): a
ping once P s passed without any frame, and the link is dead when nothing came
min(P, connect_timeout) s after that. Pings off: the Heartbeat probes a quiet link (sent at
least every 300 s, see ChargePoint._heartbeat_due). Either way a call unanswered while
nothing else came marks the link dead (firmware/rpc.py), and the keeper ends it at once.

The network under the link (the board's Network part, WiFi on the ESP32) is joined here too,
with the same backoff: before each connect the supervisor starts a join when the network is
down and waits up to _JOIN_MS for it; the keeper ends the link as soon as the network is
lost; a backoff wait while the network is down ends early when it comes up. So an access
point missing at boot or lost later is joined again without a power cycle (README "WiFi").
DNS: the last good address of the Central System's host is kept (here and in
`<data_dir>/dns.json`) and used when a lookup fails (firmware/net.py).
"""
import json

from firmware import store, ws
from firmware.compat import asyncio, const, ticks_ms, ticks_diff, unload, urandom
from firmware.rpc import NotConnected

_STABLE_MS = const(60000)     # a link that lived this long resets the reconnect backoff
_LOOK_S = const(1)            # the keeper looks at the link this often
_MIN_WAIT_MS = const(20)      # ... and at a ping deadline, not sooner than this
_JOIN_MS = const(15000)       # one network join: association and DHCP
_NET_LOOK_MS = const(250)     # a down network is looked at this often


async def first_to_end(coros):
    """Run `coros` as tasks until the first one ends; cancel the others. Re-raises the first
    failure, so no task of a link dies unseen."""
    ended = asyncio.Event()
    failure = []

    async def guard(coro):
        try:
            await coro
        except asyncio.CancelledError:
            return
        except Exception as e:
            failure.append(e)
        ended.set()

    tasks = [asyncio.create_task(guard(c)) for c in coros]
    try:
        await ended.wait()
    finally:
        for t in tasks:
            t.cancel()
    if failure:
        raise failure[0]


class Link:
    def __init__(self, cfg, keys, log, indicator, connect=None, network=None):
        self._cfg = cfg
        self._csms = cfg["csms"]
        self._keys = keys
        self._log = log
        self._indicator = indicator
        self._connect = connect or self._websocket
        self.conn = None
        self.owner = None  # the ChargePoint, for security events
        # The keeper's longest sleep: a charger of a fleet (tools/fleet) looks less often,
        # then only at the ping deadlines and every look_s for a link marked dead.
        self.look_s = _LOOK_S
        self._network = network
        self._joined = False  # the network was up at the last look (for the log)
        self._dns_path = store.join(cfg.get("_data") or cfg["_dir"], "dns.json")
        self._dns = None      # host -> last good address, read on first use

    async def _websocket(self):
        # URL, credentials and certificates come from the security profile; its code and
        # the certificate store's are dropped again once the link is up.
        from firmware import secprofile
        if self._dns is None:
            known = store.read_json(self._dns_path, {})
            self._dns = known if isinstance(known, dict) else {}
        before = dict(self._dns)
        try:
            return await secprofile.connect(self._cfg, self._keys, self._log, self.owner,
                                            dns=self._dns, dns_log=self._log)
        finally:
            unload("firmware.secprofile")
            if self.owner is None or self.owner.loaded("certificates") is None:
                unload("firmware.certificates")
            if self._dns != before:  # a new address: one small write, rarely
                store.write_atomic(self._dns_path, json.dumps(self._dns))

    async def _join(self):
        """True once the network is up: at once when it is, else after a join attempt of at
        most _JOIN_MS; False when the attempt failed (the caller backs off)."""
        net = self._network
        if net is None:
            return True
        if net.up():
            return self._joined or self._came_up()
        if self._joined:
            self._joined = False
            self._log.warn("wifi", "network lost")
        self._log.info("wifi", "joining the network")
        net.start()
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < _JOIN_MS:
            await asyncio.sleep(_NET_LOOK_MS / 1000)
            if net.up():
                return self._came_up()
        self._log.warn("wifi", "not joined after %d s" % (_JOIN_MS // 1000))
        return False

    def _came_up(self):
        self._joined = True
        ip, rssi = self._network.info()
        if ip is not None:  # a host's network has nothing to tell
            self._log.info("wifi", "up: ip %s, rssi %s dBm" % (ip, rssi))
        return True

    async def _pause(self, seconds):
        """The backoff wait; with the network down it ends once the network is up again
        (joined by the driver in the background), so a returning access point is used at
        once. A network that stays up (the Central System is what failed) waits it out."""
        net = self._network
        if net is None or net.up():
            await asyncio.sleep(seconds)
            return
        t0 = ticks_ms()
        while ticks_diff(ticks_ms(), t0) < seconds * 1000:
            await asyncio.sleep(_NET_LOOK_MS / 1000)
            if net.up():
                self._came_up()
                return

    async def run(self, session):
        """Keep a link up for ever, running `session(conn)` on each one."""
        csms = self._csms
        delay = csms["reconnect_min"]
        while True:
            self._indicator.show("connecting")
            started = ticks_ms()
            up = False
            try:
                if not await self._join():
                    raise OSError("no network")
                self.conn = await self._connect()
                up = True
                self._log.info("ws", "connected")
                await first_to_end((session(self.conn), self._keeper(self.conn)))
            except asyncio.CancelledError:
                raise
            except (ws.WsError, NotConnected, OSError) as e:
                why = str(e)
                if why.startswith("HTTP 401") or why.startswith("HTTP 403"):
                    why += (" - the Central System refused our credentials: check csms.id (the"
                            " Basic auth user name) and csms.password")
                self._log.warn("ws", ("link down: %s" if up else "cannot connect: %s") % why)
            except Exception as e:
                self._log.exc("cp", "connection task failed", e)
            finally:
                await self.close(1000)
            if ticks_diff(ticks_ms(), started) > _STABLE_MS:
                delay = csms["reconnect_min"]
            # Full jitter keeps a fleet that lost the same CSMS from reconnecting in lockstep.
            wait = delay * (0.5 + urandom(1)[0] / 510)
            self._log.info("ws", "reconnecting in %.1f s" % wait)
            await self._pause(wait)
            delay = min(delay * 2, csms["reconnect_max"])

    async def _keeper(self, conn):
        """Ends a dead link by raising WsError (see the module docstring for the rules)."""
        pinged = None
        wait = _LOOK_S * 1000
        while True:
            await asyncio.sleep(wait / 1000)
            wait = self.look_s * 1000
            if conn.dead:  # found by rpc, or a send that failed in another task
                raise ws.WsError(conn.dead)
            net = self._network
            if net is not None and not net.up():  # the socket may not notice for minutes
                raise ws.WsError("network lost")
            interval = self._keys["WebSocketPingInterval"] * 1000
            if interval <= 0:
                continue
            idle = conn.idle_ms()
            limit = interval + min(interval, self._csms["connect_timeout"] * 1000)
            if idle > limit:
                raise ws.WsError("no frame from the Central System for %d s" % (idle // 1000))
            # One ping per silence: any frame since the last ping starts a new one. A ping
            # goes only after `interval` ms without a frame, so with none since, idle would
            # exceed the time since the ping; a pong within the same ms makes them equal.
            if idle >= interval and (pinged is None or ticks_diff(ticks_ms(), pinged) >= idle):
                pinged = ticks_ms()
                await conn.ping(b"")
            # Wake at the next deadline itself: looking only every second would ping up to
            # a second late, and with a short P that second is all the margin there is.
            due = (interval if idle < interval else limit) - idle
            wait = min(wait, max(_MIN_WAIT_MS, due + 1))

    async def close(self, code, reason=""):
        """Close the link now (a later run() loop connects again)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await conn.close(code, reason)
            except Exception:
                pass
