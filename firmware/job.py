"""A file job of the charge point (firmware update, diagnostics upload, a coming log upload):
one at a time, its transfer tried as often as the request says (within caps), every step
reported.

    class Diagnostics(Job):                 # the feature module's state (load(cp))
        def __init__(self, cp):
            super().__init__(cp, "diag", "DiagnosticsStatusNotification",
                             "diagnostics_status", ("Uploading",))

    def GetDiagnostics(cp, req):            # the handler
        d = cp.feature("diagnostics")
        if d.busy:
            return {}                       # answered and ignored
        return d.start({"fileName": name}, lambda: d.upload(req), "UploadFailed",
                       "diagnostics upload")

    async def upload(self, req):            # the work, after the reply
        self.status("Uploading")
        ok = await self.attempts(req, "upload", attempt)
        self.status("Uploaded" if ok else "UploadFailed")

A job that is `waiting` (in pause(): for its start time, or between attempts) may be
replaced: replace() ends it at its next step, and start() may then run the new request.
"""
from firmware.compat import asyncio, const
from firmware.outbox import Entry

# Budgets (README "Flash and log budgets"): whatever `retries` and `retryInterval` say, a job
# makes at most _MAX_ATTEMPTS transfer attempts, at least _MIN_INTERVAL_S apart. Each failed
# attempt costs a connection (a TLS handshake: ~40 KB of heap and seconds of CPU on the
# ESP32) and a WARN line on flash; a server that failed now is rarely back within seconds,
# and 5 tries over 20 s or more see past a restart or a brief outage. Longer outages are
# the Central System's to retry: it learns of the failure from the status notification.
_MAX_ATTEMPTS = const(5)
_MIN_INTERVAL_S = const(5)
_DEFAULT_INTERVAL_S = const(30)
_STEP_S = const(1)  # pause() looks this often whether the job was replaced


class _Replaced(Exception):
    pass


def policy(req):
    """(attempts, seconds between) from an UpdateFirmware / GetDiagnostics request:
    `retries` total attempts (1.._MAX_ATTEMPTS), `retryInterval` (default 30 s, at least
    _MIN_INTERVAL_S)."""
    attempts = req.get("retries")
    interval = req.get("retryInterval")
    attempts = attempts if isinstance(attempts, int) and attempts > 1 else 1
    interval = interval if isinstance(interval, int) and interval >= 0 else _DEFAULT_INTERVAL_S
    return min(attempts, _MAX_ATTEMPTS), max(interval, _MIN_INTERVAL_S)


class Job:
    """`busy` while the job runs, `waiting` while it is paused; `delivered` is the last
    status the Central System has acknowledged."""

    def __init__(self, cp, tag, notification, attr, running):
        self.cp = cp
        self.tag = tag                     # log tag
        self.busy = False
        self.waiting = False
        self.delivered = None
        self._notification = notification  # e.g. "FirmwareStatusNotification"
        self._attr = attr                  # the cp attribute TriggerMessage reports
        self._running = running            # statuses that mean "still at it"; others: Idle
        self._run = 0                      # number of the current run: older ones end

    def status(self, status):
        """Log status, send it to the Central System, and keep it for TriggerMessage."""
        cp = self.cp
        setattr(cp, self._attr, status if status in self._running else "Idle")
        cp.log.info(self.tag, "%s %s" % (self._attr.replace("_", " "), status))

        def delivered(_reply):
            self.delivered = status
        cp.outbox.put(Entry(self._notification, {"status": status}, delivered))
        cp.kick()

    def start(self, reply, work, failed, what):
        """(reply, after) for the request's handler: after the reply, `await work()` runs
        with busy set; an exception in it is logged as "<what> failed" and reported as the
        status `failed`."""
        self.busy = True
        self._run += 1
        run = self._run

        async def go():
            try:
                await work()
            except _Replaced:
                pass
            except Exception as e:
                self.cp.log.exc(self.tag, what + " failed", e)
                self.status(failed)
            finally:
                if run == self._run:  # else a newer request owns busy
                    self.busy = False
        return reply, go

    def replace(self, status=None):
        """End the waiting job (at its next step) and report `status` for it, if given:
        it is no longer busy, start() may run another request."""
        self._run += 1
        self.busy = self.waiting = False
        if status is not None:
            self.status(status)

    async def pause(self, seconds):
        """Sleep `seconds` as a replaceable job (raises _Replaced once replace() was
        called)."""
        run = self._run
        self.waiting = True
        try:
            while seconds > 0:
                step = min(seconds, _STEP_S)
                await asyncio.sleep(step)
                seconds -= step
                if run != self._run:
                    raise _Replaced()
        finally:
            if run == self._run:
                self.waiting = False

    async def attempts(self, req, what, attempt):
        """`await attempt()` until it returns, as often and as far apart as the request's
        retries / retryInterval say (see policy()) -> True if one succeeded. Each failure
        is logged as "<what> 1 of 3 failed: <why>"."""
        n, interval = policy(req)
        for i in range(n):
            try:
                await attempt()
                return True
            except Exception as e:  # NetError, or whatever a broken server causes
                self.cp.log.warn(self.tag, "%s %d of %d failed: %s" % (what, i + 1, n, e))
            if i + 1 < n:
                await self.pause(interval)
        return False
