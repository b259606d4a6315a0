"""Blocking drivers for the scenario tests, over the asyncio ones of tools/driver.py.

CsmsThread runs a tools.csms.CentralSystem and Charger runs the firmware (main.py) as a
child process, each on an event loop in a background thread (LoopThread); their methods
block the test until the loop has the answer.
"""

import asyncio
import concurrent.futures
import json
import threading
import time
from pathlib import Path

from tools import driver
from tools.csms import CentralSystem

REPO_ROOT = Path(driver.ROOT)

# The CsmsThread's own attributes; every other name is read from and
# written to its CentralSystem, so tests can write `csms.heartbeat_interval = 5`.
_OWN = frozenset(("cs", "calls", "_loop", "_raw_cursor"))


class LoopThread:
    """An asyncio event loop in a daemon thread; run() blocks the caller for a result."""

    def __init__(self, name):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self):
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.run_forever()
        # Stopped: cancel what is left (servers' connection handlers...), then close.
        tasks = asyncio.all_tasks(loop)
        for t in tasks:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def run(self, coro, timeout):
        """The result of `coro` run on the loop; TimeoutError a little after `timeout` s,
        RuntimeError if another thread stops the loop first."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = None if timeout is None else time.monotonic() + timeout + 5
        # Looks now and then: a loop stopped meanwhile (a kill from a timer thread) would
        # leave the coroutine unrun and this thread waiting for ever.
        while not concurrent.futures.wait([fut], 0.25).done:
            if not self._thread.is_alive():
                fut.cancel()
                raise RuntimeError("event loop stopped")
            if deadline is not None and time.monotonic() > deadline:
                fut.cancel()
                raise TimeoutError("no answer from the event loop within %s s" % timeout)
        return fut.result()

    def stop(self, timeout=10):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


class CsmsThread:
    """CentralSystem in a background thread, with blocking helpers.

    Message waits go through a tools.driver.Calls: successive wait_for(action) calls
    return successive messages; a match skips (and consumes) earlier non-matching ones.
    wait_for_status keeps a separate cursor per connector.
    """

    def __init__(self, **kwargs):
        cs = CentralSystem(**kwargs)
        object.__setattr__(self, "cs", cs)
        object.__setattr__(self, "calls", driver.Calls(cs))
        object.__setattr__(self, "_loop", None)
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
        object.__setattr__(self, "_loop", LoopThread("csms"))
        try:
            self._run(self.cs.start(), timeout)
        except BaseException:
            self._loop.stop()
            object.__setattr__(self, "_loop", None)
            raise
        return self

    def stop(self, timeout=10):
        if self._loop is None:
            return
        try:
            self._run(self.cs.stop(), timeout)
        finally:
            self._loop.stop(timeout)
            object.__setattr__(self, "_loop", None)

    @property
    def port(self):
        return self.cs.port

    @property
    def url(self):
        """Base URL for a charger config; the charger appends "/<id>"."""
        return self.cs.url

    @property
    def violations(self):
        """The CentralSystem's live list (so tests may .clear() it)."""
        return self.cs.violations

    def _run(self, coro, timeout):
        return self._loop.run(coro, timeout)

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
        return self._run(self.calls.wait(action, match, timeout, cp_id),
                         timeout + driver.REPLY_GRACE)

    def wait_for_status(self, connector_id, status, timeout=10, cp_id=None):
        """Next StatusNotification of `connector_id` with `status`."""
        return self._run(self.calls.wait_status(connector_id, status, timeout, cp_id),
                         timeout + driver.REPLY_GRACE)

    def expect_none(self, action, seconds, cp_id=None, match=None, since=None):
        """Assert no `action` Call (matching `match`) arrives within
        `seconds`, counting from now or from ledger position `since`."""
        self._run(self.calls.expect_none(action, seconds, cp_id, match, since), seconds)

    def messages(self, action, cp_id=None):
        """Payloads of every `action` Call received so far."""
        return self.calls.messages(action, cp_id)


def write_config(dest_dir, url, cp_id="CP_1", ocpp=None, station=None, csms=None,
                 repo_root=REPO_ROOT):
    """Per-test firmware config: repo config.json with the CSMS url/id, a
    local data_dir and the given overrides merged in. Returns its path."""
    return driver.write_config(dest_dir, url, cp_id, ocpp=ocpp, station=station, csms=csms,
                               root=repo_root)


class Charger:
    """The firmware as a child process: `interpreter main.py CONFIG`.

    A tools.driver.Firmware on an event loop of its own for each run. stdout and stderr
    are merged and collected line by line (and copied to `log_path`). wait_log() has a
    cursor like CsmsThread.wait_for: each call returns a line after the previously
    matched one; start() moves the cursor to the new run.
    """

    def __init__(self, interpreter, config_path, repo_root=REPO_ROOT, log_path=None):
        self.interpreter = str(interpreter)
        self.config_path = str(config_path)
        self.log_path = (str(log_path) if log_path is not None
                         else str(Path(config_path).parent / "charger.log"))
        try:
            with open(config_path, encoding="utf-8") as f:
                self.cp_id = json.load(f)["csms"]["id"]
        except (OSError, ValueError, KeyError, TypeError):
            self.cp_id = Path(config_path).parent.name
        self.fw = driver.Firmware([self.interpreter, "main.py", self.config_path],
                                  cwd=repo_root, log_path=self.log_path)
        self._loop = None

    def start(self):
        if self.running:
            raise RuntimeError("charger already running")
        self._close()  # a run that ended by itself
        self._loop = LoopThread("charger-" + self.cp_id)
        self._run(self.fw.start(), 10)
        return self

    def _run(self, coro, timeout):
        loop = self._loop  # once: kill() may clear it from another thread
        if loop is None:  # no run going on: what the output holds already
            return asyncio.run(coro)
        return loop.run(coro, timeout)

    def _close(self, timeout=5):
        """End the run: wait up to `timeout` s for the process to exit, SIGKILL it then,
        read its last output, stop the loop."""
        if self._loop is not None:
            try:
                self._loop.run(self.fw.finish(timeout), timeout + 5)
            finally:
                self._loop.stop()
                self._loop = None

    @property
    def runs(self):
        return self.fw.runs

    @property
    def returncode(self):
        return self.fw.returncode

    @property
    def running(self):
        return self.fw.running

    def console(self, line):
        """Type one console command (e.g. "plug 1")."""
        if not self.running:
            raise RuntimeError(f"charger not running (exit code {self.returncode}); "
                               f"cannot send {line!r}")
        self._run(self.fw.console(line), 10)

    def wait_log(self, substring, timeout=10):
        """Next output line (after the previous match) containing substring."""
        return self._run(self.fw.wait_line(substring, timeout), timeout)

    def wait(self, timeout=None):
        """The exit code once the process has ended by itself; TimeoutError after
        `timeout` s."""
        if self._loop is None:
            return self.returncode
        return self._run(self.fw.wait(timeout), timeout)

    def output(self):
        """All output lines so far (every run)."""
        return list(self.fw.lines)

    def tail(self, n=60):
        return self.fw.tail(n)

    def stop(self, timeout=5):
        """console("quit"), wait up to `timeout` s, then SIGKILL. Returns
        the exit code."""
        if self.running:
            try:
                self.console("quit")
            except (OSError, RuntimeError):
                pass
        self._close(timeout)
        return self.returncode

    def kill(self):
        """SIGKILL, like pulling the power."""
        self._close(0)
