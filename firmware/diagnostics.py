"""GetDiagnostics: upload the log ring's lines between startTime and stopTime.

The reply names the file ("<charge point id>-<UTC time>.log"), or leaves fileName out
when the log holds nothing in that window (then nothing is uploaded). The lines are
copied to a temporary file in data_dir, which is sent with HTTP(S) PUT or FTP STOR into
`location`: OCPP 1.6 makes it a directory, so the file name is appended to it, with or
without a "/" at its end (transfer.in_folder, the rule GetLog shares).
Statuses: Uploading, then Uploaded or UploadFailed after `retries` attempts. A feature
module (firmware/profiles.py): loaded on the first GetDiagnostics.
"""
import os

from firmware import clock, store
from firmware.compat import const
from firmware.job import Job

_MAX_ID = const(120)           # of the charge point id in the file name
_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._"


def file_name(cp_id, t):
    """E.g. "CP_1-20240501T120000Z.log": a name any FTP or HTTP server takes as it is."""
    safe = "".join(c if c in _SAFE else "_" for c in cp_id[:_MAX_ID])
    return "%s-%s.log" % (safe, clock.iso(t).replace("-", "").replace(":", ""))


def load(cp):
    return Diagnostics(cp)


def GetDiagnostics(cp, req):
    d = cp.feature("diagnostics")
    if d.busy:
        cp.log.warn("diag", "GetDiagnostics ignored: an upload is under way")
        return {}
    since = clock.window_bound(req.get("startTime"))
    until = clock.window_bound(req.get("stopTime"))
    cp.log.flush()  # the lines still in RAM belong in the file too
    if not d.has_lines(since, until):
        cp.log.info("diag", "GetDiagnostics: no log lines in the requested window")
        return {}
    name = file_name(cp.cfg["csms"]["id"], cp.now())
    return d.start({"fileName": name}, lambda: d.upload(req, name, since, until),
                   "UploadFailed", "diagnostics upload")


class Diagnostics(Job):
    """One upload at a time per charger; `busy` while it runs."""

    def __init__(self, cp):
        super().__init__(cp, "diag", "DiagnosticsStatusNotification", "diagnostics_status",
                         ("Uploading",))
        self._tmp = store.join(cp.cfg["_data"], "diagnostics.tmp")
        try:
            os.remove(self._tmp)  # left by an upload a reset cut short
        except OSError:
            pass

    def has_lines(self, since, until):
        """Whether the log holds a line between since and until (None: open end)."""
        lines = self.cp.log.lines(since, until)
        try:
            for _ in lines:
                return True
            return False
        finally:
            lines.close()  # closes the log file now, not at the next garbage collection

    def _write(self, path, since, until):
        cp = self.cp
        st = cp.cfg["station"]
        n = 0
        # The ring is bounded (a few KB), so copying it in one go keeps the charger waiting
        # only briefly, and no log rotation can happen in the middle of the copy.
        with open(path, "w") as f:
            f.write("# %s %s %s, firmware %s, log %s to %s\n" % (
                st["vendor"], st["model"], cp.cfg["csms"]["id"], cp.firmware_version,
                clock.iso(since) if since is not None else "start",
                clock.iso(until) if until is not None else "now"))
            held = cp.outbox.report()
            if held:  # transaction messages the Central System kept refusing (outbox.py)
                f.write("# journal: %d pending, %s\n" % (len(cp.outbox.journal), held))
            for t, text in cp.log.lines(since, until):
                # Lines carry their UTC date-time (firmware/log.py); older ones only hh:mm:ss,
                # which gives way to the full date-time.
                if text[2:3] == ":" and text[5:6] == ":":
                    text = "%s %s" % (clock.iso(t), text[9:])
                f.write(text)
                f.write("\n")
                n += 1
        return n

    async def upload(self, req, name, since, until):
        """Copy the window of the log to a file and send it to the request's location."""
        cp = self.cp
        self.status("Uploading")
        tmp = self._tmp
        ok = False
        from firmware import transfer  # loaded for the upload only
        try:
            n = self._write(tmp, since, until)
            opts = transfer.settings(cp)  # trust, and https only at SecurityProfile >= 2

            async def attempt():
                url = transfer.in_folder(req["location"], name)
                size, _ = await transfer.upload(url, tmp, method="PUT", **opts)
                cp.log.info("diag", "uploaded %s: %d lines, %d bytes" % (name, n, size))
            ok = await self.attempts(req, "upload", attempt)
        finally:
            transfer.release()
            try:
                os.remove(tmp)
            except OSError:
                pass
        self.status("Uploaded" if ok else "UploadFailed")
