"""GetLog (security extension): upload the diagnostics log or the security log.

The log's lines between oldestTimestamp and latestTimestamp are copied to a temporary file
in data_dir and sent with HTTP(S) PUT or FTP STOR into the directory `remoteLocation`
(transfer.in_folder appends the file name, as for GetDiagnostics). The reply names the file
("<charge point id>-<UTC time>-security.log" / "-diagnostics.log"). LogStatusNotification
(with the request's requestId): Uploading, then Uploaded, or after the attempts job.py allows:
PermissionDenied (the server refused our credentials), UploadFailure; BadMessage for a
location that is no URL, NotSupportedOperation for a scheme we cannot upload to (anything
but https:// at SecurityProfile 2 and 3, transfer.settings()).
One upload at a time: a GetLog while another waits between attempts replaces it
(AcceptedCanceled); while one is sending, it is Rejected. A feature module
(firmware/profiles.py), loaded on the first GetLog.
"""
import os

from firmware import clock, store
from firmware.compat import const
from firmware.job import Job
from firmware.outbox import Entry

_MAX_ID = const(120)  # of the charge point id in the file name
_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._"
_SCHEMES = ("http://", "https://", "ftp://")
_DENIED = ("HTTP 401", "HTTP 403", "ftp: 530")  # the server refused who we are


def file_name(cp_id, t, log_type):
    """E.g. "CP_1-20240501T120000Z-security.log"."""
    safe = "".join(c if c in _SAFE else "_" for c in cp_id[:_MAX_ID])
    return "%s-%s-%s.log" % (safe, clock.iso(t).replace("-", "").replace(":", ""),
                             "security" if log_type == "SecurityLog" else "diagnostics")


def load(cp):
    return LogUpload(cp)


def GetLog(cp, req):
    job = cp.feature("getlog")
    canceled = False
    if job.busy:
        if not job.waiting:
            cp.log.warn("getlog", "GetLog %d rejected: an upload is under way" % req["requestId"])
            return {"status": "Rejected"}
        cp.log.info("getlog", "GetLog %d replaces the waiting upload %s"
                    % (req["requestId"], job.request_id))
        job.replace()  # the waiting upload ends at its next step
        canceled = True
    params = req["log"]
    since = clock.window_bound(params.get("oldestTimestamp"))
    until = clock.window_bound(params.get("latestTimestamp"))
    name = file_name(cp.cfg["csms"]["id"], cp.now(), req["logType"])
    job.request_id = req["requestId"]
    reply = {"status": "AcceptedCanceled" if canceled else "Accepted", "filename": name}
    return job.start(reply, lambda: job.upload(req, name, since, until), "UploadFailure",
                     "log upload")


class LogUpload(Job):
    """One log upload at a time per charger; `request_id` of the latest GetLog."""

    def __init__(self, cp):
        super().__init__(cp, "getlog", "LogStatusNotification", "log_status", ("Uploading",))
        self.request_id = None
        self._tmp = store.join(cp.cfg["_data"], "getlog.tmp")
        try:
            os.remove(self._tmp)  # left by an upload a reset cut short
        except OSError:
            pass

    def status(self, status):
        """Log status and send it with the requestId (Job.status sends no requestId)."""
        cp = self.cp
        cp.log_status = status if status == "Uploading" else "Idle"
        cp.log.info(self.tag, "log upload %s %s" % (self.request_id, status))
        payload = {"status": status}
        if self.request_id is not None:
            payload["requestId"] = self.request_id

        def delivered(_reply):
            self.delivered = status
        cp.outbox.put(Entry(self._notification, payload, delivered))
        cp.kick()

    def _lines(self, log_type, since, until):
        cp = self.cp
        if log_type == "SecurityLog":
            return cp.feature("secevents").ring.lines(since, until)
        cp.log.flush()  # the lines still in RAM belong in the file too
        return cp.log.lines(since, until)

    def _write(self, path, log_type, since, until):
        cp = self.cp
        st = cp.cfg["station"]
        n = 0
        with open(path, "w") as f:
            f.write("# %s %s %s, firmware %s, %s %s to %s\n" % (
                st["vendor"], st["model"], cp.cfg["csms"]["id"], cp.firmware_version, log_type,
                clock.iso(since) if since is not None else "start",
                clock.iso(until) if until is not None else "now"))
            lines = self._lines(log_type, since, until)
            for t, text in lines:
                # A diagnostics line's clock time (hh:mm:ss) gives way to the UTC date-time;
                # a security log line has its date-time already.
                if text[2:3] == ":" and text[5:6] == ":":
                    text = clock.iso(t) + " " + text[9:]
                f.write(text)
                f.write("\n")
                n += 1
        sec = cp.loaded("secevents")
        if sec is not None and not sec._last:
            cp.drop("secevents")  # loaded for this copy only (secevents.py keeps it no longer)
        return n

    async def upload(self, req, name, since, until):
        cp = self.cp
        location = req["log"]["remoteLocation"]
        scheme = location[:location.find("://") + 3].lower()
        from firmware import transfer  # loaded for the upload only
        opts = transfer.settings(cp)  # trust, and https only at SecurityProfile >= 2
        if scheme not in _SCHEMES or (opts["tls_only"] and scheme != "https://"):
            cp.log.warn(self.tag, "GetLog location: %s"
                        % ("no URL" if "://" not in location else "cannot upload to " + scheme))
            self.status("BadMessage" if "://" not in location else "NotSupportedOperation")
            transfer.release()
            return
        self.status("Uploading")
        tmp = self._tmp
        result = "UploadFailure"
        try:
            n = self._write(tmp, req["logType"], since, until)
            url = transfer.in_folder(location, name)
            why = []

            async def attempt():
                try:
                    size, _ = await transfer.upload(url, tmp, method="PUT", **opts)
                except Exception as e:
                    why.append(str(e))
                    raise
                cp.log.info(self.tag, "uploaded %s: %d lines, %d bytes" % (name, n, size))
            if await self.attempts(req, "upload", attempt):
                result = "Uploaded"
            elif why and why[-1].startswith(_DENIED):
                result = "PermissionDenied"
        finally:
            transfer.release()
            try:
                os.remove(tmp)
            except OSError:
                pass
        self.status(result)
