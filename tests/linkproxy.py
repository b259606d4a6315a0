"""A TCP relay between the charger and the Central System that a test can cut and restore,
to simulate the network going away (connection loss, CSMS unreachable) without faking
either end, or go wrong in the ways a field does: silent (half-open), a Central System that
stops reading, half a frame and then nothing."""
import asyncio

from tests.harness import LoopThread

# A ping as a server sends it (unmasked, largest control payload): each costs the charger
# a pong of the same size.
_PING = bytes([0x89, 125]) + b"p" * 125
_MAX_PINGS = 1000000  # a loopback connection may buffer ~12 MB


class LinkProxy:
    def __init__(self, target_port, host="127.0.0.1"):
        self.target = (host, target_port)
        self.host = host
        self.port = None
        self.up = True
        self.stalled = False
        self.deaf = False
        self.connections = 0
        self.pings_sent = 0
        self._half = None          # marker of the frame to cut in half (half_frame)
        self._writers = set()
        self._to_charger = set()   # the writers towards the charger
        self._loop = None
        self._server = None

    def start(self):
        self._loop = LoopThread("linkproxy")
        self._server = self._run(asyncio.start_server(self._accept, self.host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self):
        self.cut()
        self._server.close()
        self._loop.stop(5)  # cancels the relays still running

    def url(self):
        return "ws://%s:%d/ocpp" % (self.host, self.port)

    def _run(self, coro):
        return self._loop.run(coro, 5)

    def cut(self):
        """Drop every open connection and refuse new ones (they are closed at once)."""
        self.up = False

        async def close_all():
            for w in list(self._writers):
                w.transport.abort()  # an RST, as when a cable is pulled or a router reboots
            self._writers.clear()
            self._to_charger.clear()
        self._run(close_all())

    def restore(self):
        self.up = True

    def stall(self):
        """Keep connections open but let nothing through: a half-open link."""
        self.stalled = True

    def deafen(self):
        """The Central System stops reading its socket but keeps pinging: the charger's
        pongs (and whatever else it sends) pile up in the TCP buffers until its sends block.
        Nothing from the Central System gets through meanwhile, new connections included."""
        self.deaf = True

        async def flood():
            for w in list(self._to_charger):
                asyncio.ensure_future(self._flood(w))
        self._run(flood())

    def half_frame(self, marker):
        """The next chunk from the Central System holding `marker` (bytes) reaches the
        charger cut in half; that connection then passes nothing more to the charger."""
        self._half = marker

    def unstall(self):
        """Back to a working network: what was stalled, deaf or cut short is dropped (it is
        dead for both ends by now) and new connections go through."""
        self.stalled = self.deaf = False
        self._half = None
        self.cut()
        self.restore()

    async def _flood(self, writer):
        try:
            while self.deaf and self.pings_sent < _MAX_PINGS:
                writer.write(_PING)
                self.pings_sent += 1
                await writer.drain()  # blocks once the charger stops reading
        except (OSError, asyncio.CancelledError):
            pass

    async def _accept(self, reader, writer):
        if not self.up:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        self._to_charger.add(writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer, False),
                                 self._pipe(up_reader, writer, True))
        except asyncio.CancelledError:  # the proxy stops
            pass

    async def _pipe(self, reader, writer, to_charger):
        cut_short = False  # this connection sent half a frame to the charger
        try:
            while True:
                if self.deaf and not to_charger:  # not reading: the charger's data backs up
                    await asyncio.sleep(0.05)
                    continue
                data = await reader.read(4096)
                if not data or not self.up:
                    break
                if self.stalled or cut_short or (self.deaf and to_charger):
                    continue
                if to_charger and self._half is not None and self._half in data:
                    self._half = None
                    cut_short = True
                    data = data[:len(data) // 2]
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            self._to_charger.discard(writer)
            writer.transport.abort()
