"""GetDiagnostics: upload the log ring's lines between startTime and stopTime.

The reply names the file ("<charge point id>-<UTC time>.log"), or leaves fileName out
when the log holds nothing in that window (then nothing is uploaded). The lines are
copied to a temporary file in data_dir, which is sent with HTTP(S) PUT or FTP STOR to
`location`; a location ending in "/" is a folder and gets the file name appended.
Statuses: Uploading, then Uploaded or UploadFailed after `retries` attempts.
"""
import os

from firmware import clock, store
from firmware.compat import asyncio, const
from firmware.outbox import Entry

_MAX_ID = const(120)           # of the charge point id in the file name
_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._"


def file_name(cp_id, t):
    """E.g. "CP_1-20240501T120000Z.log": a name any FTP or HTTP server takes as it is."""
    safe = "".join(c if c in _SAFE else "_" for c in cp_id[:_MAX_ID])
    return "%s-%s.log" % (safe, clock.iso(t).replace("-", "").replace(":", ""))


def _time(text):
    if text is None:
        return None
    try:
        return clock.parse_iso(text)
    except ValueError:
        return None


class Diagnostics:
    def __init__(self, cp):
        self.cp = cp
        self.busy = False
        self._tmp = store.join(cp.cfg["_data"], "diagnostics.tmp")
        try:
            os.remove(self._tmp)  # left by an upload a reset cut short
        except OSError:
            pass

    def _has_lines(self, since, until):
        lines = self.cp.log.lines(since, until)
        try:
            for _ in lines:
                return True
            return False
        finally:
            lines.close()  # closes the log file now, not at the next garbage collection

    def _status(self, status):
        cp = self.cp
        cp.diagnostics_status = "Uploading" if status == "Uploading" else "Idle"
        cp.log.info("diag", "diagnostics status " + status)
        cp.outbox.put(Entry("DiagnosticsStatusNotification", {"status": status}))
        cp.kick()

    def on_request(self, req):
        cp = self.cp
        if self.busy:
            cp.log.warn("diag", "GetDiagnostics ignored: an upload is under way")
            return {}
        since, until = _time(req.get("startTime")), _time(req.get("stopTime"))
        cp.log.flush()  # the lines still in RAM belong in the file too
        if not self._has_lines(since, until):
            cp.log.info("diag", "GetDiagnostics: no log lines in the requested window")
            return {}
        name = file_name(cp.cfg["csms"]["id"], cp.now())
        from firmware.transfer import retry_policy  # the transfer follows right after
        attempts, interval = retry_policy(req)
        self.busy = True

        async def run():
            try:
                await self._upload(req["location"], name, since, until, attempts, interval)
            except Exception as e:
                cp.log.exc("diag", "diagnostics upload failed", e)
                self._status("UploadFailed")
            finally:
                self.busy = False
        return {"fileName": name}, run

    def _write(self, path, since, until):
        cp = self.cp
        st = cp.cfg["station"]
        n = 0
        # The ring is bounded (a few KB), so copying it in one go keeps the charger waiting
        # only briefly, and no log rotation can happen in the middle of the copy.
        with open(path, "w") as f:
            f.write("# %s %s %s, firmware %s, log %s to %s\n" % (
                st["vendor"], st["model"], cp.cfg["csms"]["id"], getattr(cp, "firmware_version", None)
                or st["firmware_version"], clock.iso(since) if since is not None else "start",
                clock.iso(until) if until is not None else "now"))
            for t, text in cp.log.lines(since, until):
                # The line's own clock time (hh:mm:ss) gives way to the full UTC date-time.
                if text[2:3] == ":" and text[5:6] == ":":
                    text = text[9:]
                f.write("%s %s\n" % (clock.iso(t), text))
                n += 1
        return n

    async def _upload(self, location, name, since, until, attempts, interval):
        cp = self.cp
        cfg = cp.cfg
        self._status("Uploading")
        tmp = self._tmp
        ok = False
        try:
            from firmware import transfer  # loaded for the upload only
            n = self._write(tmp, since, until)
            csms = cfg["csms"]
            ca = store.join(cfg["_dir"], csms["ca_file"]) if csms["ca_file"] else None
            for i in range(attempts):
                try:
                    size, _ = await transfer.upload(location, tmp, method="PUT", filename=name,
                                                    ca_file=ca, verify=csms["verify_tls"])
                    cp.log.info("diag", "uploaded %s: %d lines, %d bytes" % (name, n, size))
                    ok = True
                    break
                except Exception as e:  # TransferError, or whatever a broken server causes
                    cp.log.warn("diag", "upload %d of %d failed: %s" % (i + 1, attempts, e))
                if i + 1 < attempts:
                    await asyncio.sleep(interval)
        finally:
            try:
                os.remove(tmp)
            except OSError:
                pass
        self._status("Uploaded" if ok else "UploadFailed")


def load(cp):
    """The charger's Diagnostics, created on first need."""
    d = getattr(cp, "diagnostics", None)
    if d is None:
        d = cp.diagnostics = Diagnostics(cp)
    return d


def register(cp):
    """GetDiagnostics handler. To keep this module out of RAM until the first request, a
    caller may instead register `lambda req: <import diagnostics>.load(cp).on_request(req)`."""
    cp.rpc.on("GetDiagnostics", lambda req: load(cp).on_request(req))
