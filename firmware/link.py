"""The link to the Central System: connect, keep alive, find a dead link, back off, again.

`Link.run(session)` owns the websocket: it connects (the `connect` seam: the configured
Central System by default, a loopback transport in the in-process tests), runs `session(conn)`
beside the keep-alive pinger until either ends, closes the socket and reconnects after an
exponential backoff with jitter. A connection is an object with `send(text)`, `recv()`,
`ping(data)`, `close(code, reason)` and `idle_ms()` (see firmware/ws.py).
"""
from firmware import store, ws
from firmware.compat import asyncio, const, ticks_ms, ticks_diff, urandom
from firmware.rpc import NotConnected

_STABLE_MS = const(60000)     # a link that lived this long resets the reconnect backoff
_NO_PING_POLL_S = const(5)    # WebSocketPingInterval 0: look again this often


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
    def __init__(self, cfg, keys, log, indicator, connect=None):
        self._csms = cfg["csms"]
        self._cfg_dir = cfg["_dir"]
        self._keys = keys
        self._log = log
        self._indicator = indicator
        self._connect = connect or self._websocket
        self.conn = None

    async def _websocket(self):
        csms = self._csms
        url = ws.join_url(csms["url"], csms["id"])
        auth = (csms["id"], csms["password"]) if csms["password"] else None
        ca = store.join(self._cfg_dir, csms["ca_file"]) if csms["ca_file"] else None
        timeout_ms = csms["connect_timeout"] * 1000
        self._log.info("ws", "connecting to " + url)
        return await ws.connect(url, protocol="ocpp1.6", auth=auth, ca_file=ca,
                                verify=csms["verify_tls"], max_message=csms["max_message"],
                                connect_timeout_ms=timeout_ms, handshake_timeout_ms=timeout_ms)

    async def run(self, session):
        """Keep a link up for ever, running `session(conn)` on each one."""
        csms = self._csms
        delay = csms["reconnect_min"]
        while True:
            self._indicator.show("connecting")
            started = ticks_ms()
            try:
                self.conn = await self._connect()
                self._log.info("ws", "connected")
                await first_to_end((session(self.conn), self._pinger(self.conn)))
            except asyncio.CancelledError:
                raise
            except (ws.WsError, NotConnected, OSError) as e:
                self._log.warn("ws", "link down: %s" % e)
            except Exception as e:
                self._log.exc("cp", "connection task failed", e)
            finally:
                await self.close(1000)
            if ticks_diff(ticks_ms(), started) > _STABLE_MS:
                delay = csms["reconnect_min"]
            # Full jitter keeps a fleet that lost the same CSMS from reconnecting in lockstep.
            wait = delay * (0.5 + urandom(1)[0] / 510)
            self._log.info("ws", "reconnecting in %.1f s" % wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, csms["reconnect_max"])

    async def _pinger(self, conn):
        while True:
            interval = self._keys["WebSocketPingInterval"]
            if interval <= 0:
                await asyncio.sleep(_NO_PING_POLL_S)
                continue
            await asyncio.sleep(interval)
            # Pings answered keep frames coming; two silent intervals mean a half-open link.
            if conn.idle_ms() > interval * 2000 + 1000:
                raise ws.WsError("no frame from the Central System for %d s"
                                 % (conn.idle_ms() // 1000))
            await conn.ping(b"")

    async def close(self, code, reason=""):
        """Close the link now (a later run() loop connects again)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await conn.close(code, reason)
            except Exception:
                pass
