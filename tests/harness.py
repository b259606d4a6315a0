"""Synchronous drivers for scenario tests.

CsmsThread runs tools.csms.CentralSystem on its own event loop in a
background thread and offers blocking helpers; Charger runs the firmware
(main.py) as a child process and talks to its console.
"""

import asyncio
import copy
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from tools.csms import CentralSystem

REPO_ROOT = Path(__file__).resolve().parent.parent

# The CsmsThread's own attributes; every other name is read from and
# written to its CentralSystem, so tests can write `csms.heartbeat_interval = 5`.
_OWN = frozenset(("cs", "_loop", "_thread", "_cursors", "_raw_cursor"))

# How long wait_for() lingers for the CSMS's own answer to a matched Call, so
# the test sees the ledgers updated (e.g. the transaction opened).
_REPLY_GRACE = 2.0


def _matches(payload, match):
    if match is None:
        return True
    if callable(match):
        return bool(match(payload))
    return all(k in payload and payload[k] == v for k, v in match.items())


def _is_call(frame, action, cp_id):
    p = frame.parsed
    return (frame.direction == "in" and isinstance(p, list) and len(p) == 4
            and p[0] == 2 and p[2] == action and isinstance(p[3], dict)
            and (cp_id is None or frame.cp_id == cp_id))


class CsmsThread:
    """CentralSystem in a background thread, with blocking helpers.

    Message waits use per-action cursors: successive wait_for(action) calls
    return successive messages; a match skips (and consumes) earlier
    non-matching ones. wait_for_status keeps a separate cursor per connector.
    """

    def __init__(self, **kwargs):
        object.__setattr__(self, "cs", CentralSystem(**kwargs))
        object.__setattr__(self, "_loop", None)
        object.__setattr__(self, "_thread", None)
        object.__setattr__(self, "_cursors", {})
        object.__setattr__(self, "_raw_cursor", 0)

    # Policies and records live on the CentralSystem (see _OWN).
    def __getattr__(self, name):
        if name == "cs":  # not constructed yet; avoid recursing
            raise AttributeError(name)
        return getattr(self.cs, name)

    def __setattr__(self, name, value):
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.cs, name, value)

    # --- lifecycle

    def start(self, timeout=10):
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure = []

        def run():
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.cs.start())
            except BaseException as e:  # reported to the starting thread
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=run, name="csms", daemon=True)
        object.__setattr__(self, "_loop", loop)
        object.__setattr__(self, "_thread", thread)
        thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("CentralSystem did not start")
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout=10):
        if self._thread is None:
            return
        try:
            self._run(self.cs.stop(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            object.__setattr__(self, "_thread", None)

    @property
    def port(self):
        return self.cs.port

    @property
    def url(self):
        """Base URL for a charger config; the charger appends "/<id>"."""
        return f"ws://127.0.0.1:{self.cs.port}/ocpp"

    @property
    def violations(self):
        """The CentralSystem's live list (so tests may .clear() it)."""
        return self.cs.violations

    def _run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout + 5)
        except TimeoutError:
            fut.cancel()
            raise

    def mark(self):
        """Current ledger position, for the `since` arguments."""
        return len(self.cs.ledger)

    # --- CS -> CP

    def call(self, request, cp_id=None, timeout=10):
        """Send an ocpp.v16.call.* request, return the call_result object."""
        return self._run(self.cs.call(cp_id, request, timeout), timeout)

    def send_raw(self, data, cp_id=None, text=None):
        """Send data verbatim: str -> text frame, bytes -> binary frame,
        bytes with text=True -> text frame (e.g. invalid UTF-8). Later
        wait_raw() calls only look at frames that arrive after this."""
        object.__setattr__(self, "_raw_cursor", len(self.cs.ledger))
        self._run(self.cs.send_raw(cp_id, data, text), 10)

    def wait_raw(self, predicate, timeout=10, cp_id=None, since=None):
        """Next not-yet-consumed frame FROM a charger (after the last
        send_raw, or `since`) with predicate(frame) true -> tools.csms.Frame."""
        start = self._raw_cursor if since is None else since

        def wanted(frame):
            return (frame.direction == "in"
                    and (cp_id is None or frame.cp_id == cp_id)
                    and predicate(frame))
        try:
            index, frame = self._run(self.cs.wait_frame(wanted, timeout, start), timeout)
        except TimeoutError:
            raise TimeoutError(f"no frame from {cp_id or 'the charger'} matched "
                               f"within {timeout} s") from None
        object.__setattr__(self, "_raw_cursor", index + 1)
        return frame

    # --- CP -> CS

    def wait_connected(self, cp_id=None, timeout=10):
        """Block until the charger is connected; returns its id."""
        return self._run(self.cs.wait_connected(cp_id, timeout), timeout)

    def wait_for(self, action, match=None, timeout=10, cp_id=None):
        """Payload (camelCase dict) of the next not-yet-consumed `action`
        Call from the charger that satisfies `match` (dict of field: value,
        or a callable taking the payload)."""
        return self._wait_call((cp_id, action), action, match, timeout, cp_id,
                               f"{action} matching {match!r}" if match else action)

    def wait_for_status(self, connector_id, status, timeout=10, cp_id=None):
        """Next StatusNotification of `connector_id` with `status`."""
        return self._wait_call(
            (cp_id, "StatusNotification", connector_id), "StatusNotification",
            {"connectorId": connector_id, "status": status}, timeout, cp_id,
            f"StatusNotification connector {connector_id} -> {status}")

    def _wait_call(self, key, action, match, timeout, cp_id, what):
        start = self._cursors.get(key, 0)

        def wanted(frame):
            return _is_call(frame, action, cp_id) and _matches(frame.parsed[3], match)
        try:
            index, frame = self._run(self.cs.wait_frame(wanted, timeout, start), timeout)
        except TimeoutError:
            seen = [f.parsed[3] for f in self.cs.ledger[start:]
                    if _is_call(f, action, cp_id)]
            raise TimeoutError(f"no {what} within {timeout} s; {action} seen "
                               f"since the last wait: {seen}") from None
        self._cursors[key] = index + 1
        if action not in self.cs.no_reply_actions:
            uid = frame.parsed[1]

            def reply(f):
                p = f.parsed
                return (f.direction == "out" and f.cp_id == frame.cp_id
                        and isinstance(p, list) and len(p) >= 3
                        and p[0] in (3, 4) and p[1] == uid)
            try:
                self._run(self.cs.wait_frame(reply, _REPLY_GRACE, index), _REPLY_GRACE)
            except TimeoutError:
                pass
        return frame.parsed[3]

    def expect_none(self, action, seconds, cp_id=None, match=None, since=None):
        """Assert no `action` Call (matching `match`) arrives within
        `seconds`, counting from now or from ledger position `since`."""
        start = len(self.cs.ledger) if since is None else since

        def wanted(frame):
            return _is_call(frame, action, cp_id) and _matches(frame.parsed[3], match)
        try:
            _, frame = self._run(self.cs.wait_frame(wanted, seconds, start), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {action} from {frame.cp_id}: "
                             f"{frame.parsed[3]}")

    def messages(self, action, cp_id=None):
        """Payloads of every `action` Call received so far."""
        return [f.parsed[3] for f in list(self.cs.ledger) if _is_call(f, action, cp_id)]


def write_config(dest_dir, url, cp_id="CP_1", ocpp=None, station=None, csms=None,
                 repo_root=REPO_ROOT):
    """Per-test firmware config: repo config.json with the CSMS url/id, a
    local data_dir and the given overrides merged in. Returns its path."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    with open(Path(repo_root) / "config.json", encoding="utf-8") as f:
        cfg = json.load(f)
    cfg = copy.deepcopy(cfg)
    cfg["csms"]["url"] = url
    cfg["csms"]["id"] = cp_id
    cfg["data_dir"] = "data"
    for section, overrides in (("ocpp", ocpp), ("station", station), ("csms", csms)):
        if overrides:
            cfg.setdefault(section, {}).update(overrides)
    path = dest_dir / "config.json"
    path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return path


class Charger:
    """The firmware as a child process: `interpreter main.py CONFIG`.

    stdout and stderr are merged and collected line by line (and copied to
    `log_path`). wait_log() has a cursor like CsmsThread.wait_for: each call
    returns a line after the previously matched one; start() moves the cursor
    to the new run.
    """

    def __init__(self, interpreter, config_path, repo_root=REPO_ROOT, log_path=None):
        self.interpreter = str(interpreter)
        self.config_path = str(config_path)
        self.repo_root = str(repo_root)
        self.log_path = (str(log_path) if log_path is not None
                         else str(Path(config_path).parent / "charger.log"))
        try:
            with open(config_path, encoding="utf-8") as f:
                self.cp_id = json.load(f)["csms"]["id"]
        except (OSError, ValueError, KeyError, TypeError):
            self.cp_id = Path(config_path).parent.name
        self.proc = None
        self._lines = []
        self._cond = threading.Condition()
        self._cursor = 0
        self._reader = None
        self.runs = 0

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("charger already running")
        self.runs += 1
        with self._cond:
            self._cursor = len(self._lines)
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"===== run {self.runs}: {self.interpreter} main.py "
                      f"{self.config_path}\n")
        # CPython block-buffers stdout into a pipe; the log must be live.
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [self.interpreter, "main.py", self.config_path], cwd=self.repo_root,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env)
        self._reader = threading.Thread(target=self._read, args=(self.proc,),
                                        name="charger-output", daemon=True)
        self._reader.start()
        return self

    def _read(self, proc):
        with open(self.log_path, "a", encoding="utf-8") as log:
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                log.write(line + "\n")
                log.flush()
                with self._cond:
                    self._lines.append(line)
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def returncode(self):
        return None if self.proc is None else self.proc.poll()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def console(self, line):
        """Type one console command (e.g. "plug 1")."""
        if not self.running:
            raise RuntimeError(f"charger not running (exit code {self.returncode}); "
                               f"cannot send {line!r}")
        self.proc.stdin.write(line.encode("utf-8") + b"\n")
        self.proc.stdin.flush()

    def wait_log(self, substring, timeout=10):
        """Next output line (after the previous match) containing substring."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                while self._cursor < len(self._lines):
                    line = self._lines[self._cursor]
                    self._cursor += 1
                    if substring in line:
                        return line
                reader_done = self._reader is None or not self._reader.is_alive()
                remaining = deadline - time.monotonic()
                if reader_done or remaining <= 0:
                    state = ("process exited with code %s" % self.returncode
                             if reader_done else "timeout %s s" % timeout)
                    raise TimeoutError(f"{substring!r} not in charger output "
                                       f"({state}); tail:\n{self.tail()}")
                self._cond.wait(remaining)

    def output(self):
        """All output lines so far (every run)."""
        with self._cond:
            return list(self._lines)

    def tail(self, n=60):
        return "\n".join(self.output()[-n:])

    def stop(self, timeout=5):
        """console("quit"), wait up to `timeout` s, then SIGKILL. Returns
        the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.console("quit")
            except (BrokenPipeError, OSError, RuntimeError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finish()
        return self.proc.returncode

    def kill(self):
        """SIGKILL, like pulling the power."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._finish()

    def _finish(self):
        if self._reader is not None:
            self._reader.join(5)
        if self.proc is not None and self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
