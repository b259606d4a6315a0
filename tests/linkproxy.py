"""A TCP relay between the charger and the Central System that a test can cut and restore,
to simulate the network going away (connection loss, CSMS unreachable) without faking
either end."""
import asyncio

from tests.harness import LoopThread


class LinkProxy:
    def __init__(self, target_port, host="127.0.0.1"):
        self.target = (host, target_port)
        self.host = host
        self.port = None
        self.up = True
        self.stalled = False
        self.connections = 0
        self._writers = set()
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
        self._run(close_all())

    def restore(self):
        self.up = True

    def stall(self):
        """Keep connections open but let nothing through: a half-open link."""
        self.stalled = True

    def unstall(self):
        self.stalled = False
        self.cut()      # what was stalled is dead for both ends by now
        self.restore()

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
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader, writer):
        try:
            while True:
                data = await reader.read(4096)
                if not data or not self.up:
                    break
                if self.stalled:
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
