"""A file job of the charge point (firmware update, diagnostics upload, a coming log upload):
one at a time, its transfer tried as often as the request says, every step reported.

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
"""
from firmware.compat import asyncio
from firmware.outbox import Entry


def policy(req):
    """(attempts, seconds between) from an UpdateFirmware / GetDiagnostics request:
    `retries` total attempts (at least 1), `retryInterval` (default 30 s)."""
    attempts = req.get("retries")
    interval = req.get("retryInterval")
    return (attempts if isinstance(attempts, int) and attempts > 1 else 1,
            interval if isinstance(interval, int) and interval >= 0 else 30)


class Job:
    """`busy` while the job runs; `delivered` is the last status the Central System has
    acknowledged."""

    def __init__(self, cp, tag, notification, attr, running):
        self.cp = cp
        self.tag = tag                     # log tag
        self.busy = False
        self.delivered = None
        self._notification = notification  # e.g. "FirmwareStatusNotification"
        self._attr = attr                  # the cp attribute TriggerMessage reports
        self._running = running            # statuses that mean "still at it"; others: Idle

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

        async def run():
            try:
                await work()
            except Exception as e:
                self.cp.log.exc(self.tag, what + " failed", e)
                self.status(failed)
            finally:
                self.busy = False
        return reply, run

    async def attempts(self, req, what, attempt):
        """`await attempt()` until it returns, as often and as far apart as the request's
        retries / retryInterval say -> True if one succeeded. Each failure is logged as
        "<what> 1 of 3 failed: <why>"."""
        n, interval = policy(req)
        for i in range(n):
            try:
                await attempt()
                return True
            except Exception as e:  # NetError, or whatever a broken server causes
                self.cp.log.warn(self.tag, "%s %d of %d failed: %s" % (what, i + 1, n, e))
            if i + 1 < n:
                await asyncio.sleep(interval)
        return False
