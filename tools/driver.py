"""Run the firmware as a child process next to an in-process Central System (asyncio).

Used by `tools.demo` and `tools.bench`; the pytest harness has a threaded twin.
"""
import asyncio
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def micropython_path():
    mp = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.access(mp, os.X_OK):
        sys.exit("micropython not found next to %s: run `make setup` (it installs it)" % sys.executable)
    return mp


def write_config(folder, port, cp_id="CP_1", ocpp=None):
    """A fresh folder with a config for the local CSMS at `port`; returns the config path."""
    with open(os.path.join(ROOT, "config.json")) as f:
        cfg = json.load(f)
    cfg["csms"]["url"] = "ws://127.0.0.1:%d/ocpp" % port
    cfg["csms"]["id"] = cp_id
    cfg["data_dir"] = "data"
    cfg["ocpp"].update(ocpp or {})
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    path = os.path.join(folder, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


class Firmware:
    """The charger process: console on stdin, log lines collected (and optionally echoed)."""

    def __init__(self, argv, cwd=ROOT, echo=None):
        self.argv = argv
        self.cwd = cwd
        self.echo = echo
        self.lines = []
        self.proc = None
        self._pump = None
        self._new = asyncio.Event()

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.cwd, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._pump = asyncio.create_task(self._read())
        return self

    async def _read(self):
        while True:
            raw = await self.proc.stdout.readline()
            if not raw:
                self._new.set()
                return
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if self.echo:
                self.echo(line)
            self._new.set()

    async def console(self, line):
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    async def wait_line(self, substring, timeout=10, start=0):
        """Index and text of the first output line from `start` containing `substring`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pos = start
        while True:
            while pos < len(self.lines):
                if substring in self.lines[pos]:
                    return pos, self.lines[pos]
                pos += 1
            if self.proc.returncode is not None and self._pump.done():
                raise RuntimeError("firmware exited (%s) before %r" % (self.proc.returncode, substring))
            self._new.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("no %r in firmware output within %s s" % (substring, timeout))
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def ask(self, command, answer, timeout=5):
        """Type a console command and return the first output line after it containing `answer`."""
        mark = len(self.lines)
        await self.console(command)
        return (await self.wait_line(answer, timeout, mark))[1]

    async def finish(self, timeout=10):
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        await self._pump
        return code

    def kill(self):
        if self.proc and self.proc.returncode is None:
            self.proc.kill()


class Calls:
    """Waits for Calls from a charger in a CentralSystem's ledger, each action with its own cursor."""

    def __init__(self, cs):
        self.cs = cs
        self.cursor = {}

    async def wait(self, action, match=None, timeout=15):
        def wanted(f):
            p = f.parsed
            return (f.direction == "in" and isinstance(p, list) and len(p) == 4 and p[0] == 2
                    and p[2] == action and all(p[3].get(k) == v for k, v in (match or {}).items()))
        index, frame = await self.cs.wait_frame(wanted, timeout, self.cursor.get(action, 0))
        self.cursor[action] = index + 1
        return frame.parsed[3]
