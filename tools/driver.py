"""Drive the firmware as a child process next to the local Central System (asyncio).

The one implementation behind `tools.demo`, `tools.bench` and the scenario tests (which use
it through the threaded wrappers in tests/harness.py): start the firmware, type console lines
and wait for its output lines (Firmware); wait for the Calls a charger sends to a
tools.csms.CentralSystem (Calls).
"""
import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

from tools.csms import CentralSystem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `make setup` installs the unix port next to the interpreter; the one place that says so.
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")

# How long a wait for a Call lingers for the Central System's answer to it, so the caller
# then sees the ledgers updated (e.g. the transaction opened).
REPLY_GRACE = 2.0
# Longest output line kept whole (asyncio's default limit is 64 KB).
_MAX_LINE = 1 << 20


def micropython_path():
    """MICROPYTHON, or exit saying how to get it (for the command-line tools)."""
    if not os.access(MICROPYTHON, os.X_OK):
        sys.exit("micropython not found next to %s: run `make setup` (it installs it)"
                 % sys.executable)
    return MICROPYTHON


def write_config(folder, url, cp_id="CP_1", ocpp=None, station=None, csms=None, root=ROOT,
                 fresh=False):
    """A firmware config in `folder`: `root`/config.json with the CSMS `url` (the charger
    appends "/<cp_id>") and `cp_id`, data_dir "data" next to it, and the `ocpp`, `station`
    and `csms` overrides merged in. `fresh` empties the folder first. -> the config's Path."""
    folder = Path(folder)
    if fresh:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    with open(Path(root) / "config.json", encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["csms"]["url"] = url
    cfg["csms"]["id"] = cp_id
    cfg["data_dir"] = "data"
    for section, overrides in (("ocpp", ocpp), ("station", station), ("csms", csms)):
        if overrides:
            cfg.setdefault(section, {}).update(overrides)
    path = folder / "config.json"
    path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return path


class Firmware:
    """The firmware as a child process: console lines on stdin, output lines collected.

    `lines` holds the output of every run (stdout and stderr merged), also appended to
    `log_path` and passed to `echo` when given. wait_line() has a cursor: each call looks
    from the line after the previous match; a new run moves it to the run's first line.
    """

    def __init__(self, argv, cwd=ROOT, echo=None, log_path=None):
        self.argv = [str(a) for a in argv]
        self.cwd = str(cwd)
        self.echo = echo
        self.log_path = log_path
        self.lines = []
        self.cursor = 0
        self.runs = 0
        self.proc = None
        self._pump = None
        self._new = None

    @property
    def returncode(self):
        return None if self.proc is None else self.proc.returncode

    @property
    def running(self):
        return self.proc is not None and self.proc.returncode is None

    async def start(self):
        if self.running:
            raise RuntimeError("firmware already running")
        self.runs += 1
        self.cursor = len(self.lines)
        self._new = asyncio.Event()  # bound to this run's loop
        log = None
        if self.log_path:
            log = open(self.log_path, "a", encoding="utf-8")
            log.write("===== run %d: %s\n" % (self.runs, " ".join(self.argv)))
            log.flush()
        # CPython block-buffers stdout into a pipe; the output must be live.
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=self.cwd, env=env, limit=_MAX_LINE,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
        except BaseException:
            if log:
                log.close()
            raise
        self._pump = asyncio.create_task(self._read(self.proc.stdout, log))
        return self

    async def _read(self, stdout, log):
        try:
            while True:
                try:
                    raw = await stdout.readline()
                except ValueError:  # a line over _MAX_LINE: asyncio dropped it
                    raw = b"[output line over %d bytes dropped]\n" % _MAX_LINE
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.lines.append(line)
                if log:
                    log.write(line + "\n")
                    log.flush()
                if self.echo:
                    self.echo(line)
                self._new.set()
        finally:
            if log:
                log.close()
            self._new.set()

    async def console(self, line):
        """Type one console command (e.g. "plug 1")."""
        if not self.running:
            raise RuntimeError("charger not running (exit code %s); cannot send %r"
                               % (self.returncode, line))
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        await self.proc.stdin.drain()

    async def wait_line(self, substring, timeout=10, start=None):
        """The next output line containing `substring`, looking from `start` (default: the
        cursor). TimeoutError, with the output's tail, when none comes within `timeout` s
        or the process's output ends without one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pos = self.cursor if start is None else start
        while True:
            while pos < len(self.lines):
                line = self.lines[pos]
                pos += 1
                if substring in line:
                    self.cursor = pos
                    return line
            self.cursor = pos
            remaining = deadline - loop.time()
            if self._pump is None or self._pump.done():
                if self.returncode is None and self.proc is not None:
                    try:  # its output has ended: the exit code follows
                        await asyncio.wait_for(self.proc.wait(), 1)
                    except asyncio.TimeoutError:
                        pass
                state = "process exited with code %s" % self.returncode
            elif remaining <= 0:
                state = "timeout %s s" % timeout
            else:
                self._new.clear()
                try:
                    await asyncio.wait_for(self._new.wait(), remaining)
                except asyncio.TimeoutError:
                    pass
                continue
            raise TimeoutError("%r not in charger output (%s); tail:\n%s"
                               % (substring, state, self.tail()))

    async def ask(self, command, answer, timeout=5):
        """Type a console command; the first output line after it containing `answer`."""
        mark = len(self.lines)
        await self.console(command)
        return await self.wait_line(answer, timeout, mark)

    def tail(self, n=60):
        return "\n".join(self.lines[-n:])

    async def wait(self, timeout=None):
        """The exit code once the process has ended; TimeoutError after `timeout` s."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("charger still running after %s s" % timeout) from None

    async def finish(self, timeout=10):
        """Wait up to `timeout` s for the process to end, SIGKILL it then, read the rest of
        its output. -> exit code."""
        if self.proc is None:
            return None
        try:
            await self.wait(timeout)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
        await self._pump
        self.proc.stdin.close()
        return self.proc.returncode

    def kill(self):
        """SIGKILL, like pulling the power (finish() reaps it)."""
        if self.running:
            self.proc.kill()


def _matches(payload, match):
    if match is None:
        return True
    if callable(match):
        return bool(match(payload))
    return all(k in payload and payload[k] == v for k, v in match.items())


def is_call(frame, action, cp_id=None):
    """Whether a ledger frame is an `action` Call from `cp_id` (or any charger)."""
    p = frame.parsed
    return (frame.direction == "in" and isinstance(p, list) and len(p) == 4
            and p[0] == 2 and p[2] == action and isinstance(p[3], dict)
            and (cp_id is None or frame.cp_id == cp_id))


class Calls:
    """The Calls chargers send to a CentralSystem, taken in order.

    Each (charger, action) has a cursor: successive waits return successive Calls, and a
    wait with `match` skips (and consumes) earlier ones that do not match. wait_status
    keeps a cursor per connector. A wait returns once the Central System has answered.
    """

    def __init__(self, cs):
        self.cs = cs
        self.cursors = {}

    async def wait(self, action, match=None, timeout=15, cp_id=None):
        """Payload (camelCase dict) of the next `action` Call satisfying `match` (a dict of
        field: value, or a callable taking the payload)."""
        what = "%s matching %r" % (action, match) if match else action
        return await self._wait((cp_id, action), action, match, timeout, cp_id, what)

    async def wait_status(self, connector_id, status, timeout=15, cp_id=None):
        """The next StatusNotification of `connector_id` with `status`."""
        return await self._wait(
            (cp_id, "StatusNotification", connector_id), "StatusNotification",
            {"connectorId": connector_id, "status": status}, timeout, cp_id,
            "StatusNotification connector %s -> %s" % (connector_id, status))

    async def _wait(self, key, action, match, timeout, cp_id, what):
        cs = self.cs
        start = self.cursors.get(key, 0)

        def wanted(frame):
            return is_call(frame, action, cp_id) and _matches(frame.parsed[3], match)
        try:
            index, frame = await cs.wait_frame(wanted, timeout, start)
        except TimeoutError:
            seen = [f.parsed[3] for f in cs.ledger[start:] if is_call(f, action, cp_id)]
            raise TimeoutError("no %s within %s s; %s seen since the last wait: %s"
                               % (what, timeout, action, seen)) from None
        self.cursors[key] = index + 1
        if action not in cs.no_reply_actions:
            uid = frame.parsed[1]

            def reply(f):
                p = f.parsed
                return (f.direction == "out" and f.cp_id == frame.cp_id
                        and isinstance(p, list) and len(p) >= 3
                        and p[0] in (3, 4) and p[1] == uid)
            try:
                await cs.wait_frame(reply, REPLY_GRACE, index)
            except TimeoutError:
                pass
        return frame.parsed[3]

    async def expect_none(self, action, seconds, cp_id=None, match=None, since=None):
        """AssertionError if an `action` Call (satisfying `match`) arrives within `seconds`,
        counting from now or from ledger position `since`."""
        start = len(self.cs.ledger) if since is None else since

        def wanted(frame):
            return is_call(frame, action, cp_id) and _matches(frame.parsed[3], match)
        try:
            _, frame = await self.cs.wait_frame(wanted, seconds, start)
        except TimeoutError:
            return
        raise AssertionError("unexpected %s from %s: %s" % (action, frame.cp_id, frame.parsed[3]))

    def messages(self, action, cp_id=None):
        """Payloads of every `action` Call received so far."""
        return [f.parsed[3] for f in list(self.cs.ledger) if is_call(f, action, cp_id)]


async def launch(folder, argv, keys=None, cp_id="CP_1", cwd=ROOT, cs=None, echo=None):
    """Start a local Central System (`cs`, or a quiet one) and a charger booting against it,
    its config (with the OCPP `keys`) freshly written in `folder`; `argv` is the interpreter,
    its options and the script. -> (CentralSystem, Firmware, Calls)."""
    cs = await (cs or CentralSystem(host="127.0.0.1", port=0, quiet=True)).start()
    config = write_config(folder, cs.url, cp_id, ocpp=keys, fresh=True)
    try:
        fw = await Firmware(list(argv) + [config], cwd=cwd, echo=echo).start()
    except BaseException:
        await cs.stop()
        raise
    return cs, fw, Calls(cs)
