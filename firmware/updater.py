"""UpdateFirmware: wait for retrieveDate, download the bundle, wait for the transactions
to end, install it into a fresh application slot (firmware/install.py), switch to it and
restart. A feature module (firmware/profiles.py): loaded on the first UpdateFirmware.

Statuses: Downloading, Downloaded or DownloadFailed, Installing; Installed or a rollback's
InstallationFailed follow the restart (firmware/updates.py). `retries` is the number of
download attempts (default 1, at most 5), `retryInterval` the pause between them (default
30 s, at least 5 s; firmware/job.py says why). A new UpdateFirmware replaces one that waits
for its retrieveDate or between attempts (that one is reported DownloadFailed if it had
begun); one that is downloading, installing or waiting for transactions to end is kept and
the new request is ignored.
"""
import json

from firmware import clock, store
from firmware.compat import asyncio, const, unload
from firmware.job import Job
from firmware.updates import FACTORY, active_path, active_slot

_MAX_BUNDLE = const(1000000)   # bytes of tar accepted: two slots and the tar fit on flash
_WAIT_STEP_S = const(10)       # retrieveDate is re-checked this often (the clock may be set)
_DRAIN_MS = const(15000)       # how long the restart waits for messages to reach the CSMS
_IN_PROGRESS = ("Downloading", "Downloaded", "Installing")


def load(cp):
    return Updater(cp)


def UpdateFirmware(cp, req):
    u = cp.feature("updater")
    if u.busy and not u.waiting:
        cp.log.warn("update", "UpdateFirmware ignored: an update is already under way")
        return {}
    if u.busy:
        cp.log.warn("update", "UpdateFirmware replaces the update waiting to download")
        u.replace("DownloadFailed" if cp.firmware_status == "Downloading" else None)
    try:
        when = clock.parse_iso(req["retrieveDate"])
    except ValueError:
        when = cp.now()
    answer = u.start({}, lambda: u.update(req, when), "InstallationFailed", "firmware update")
    cp.log.info("update", "UpdateFirmware from %s at %s" % (req["location"][:120],
                                                             clock.iso(when)))
    return answer


class Updater(Job):
    """One update at a time per charger; `busy` while it runs."""

    def __init__(self, cp):
        super().__init__(cp, "update", "FirmwareStatusNotification", "firmware_status",
                         _IN_PROGRESS)
        data = cp.cfg["_data"]
        self._data = data
        self._tar = store.join(data, "update.tar")
        self.slot = active_slot(data)

    async def update(self, req, when):
        """From retrieveDate to the restart into the new application."""
        cp = self.cp
        while when > cp.now():
            await self.pause(min(when - cp.now(), _WAIT_STEP_S))
        self.status("Downloading")
        if not await self.attempts(req, "download", lambda: self._download(req["location"])):
            self.status("DownloadFailed")
            return
        self.status("Downloaded")
        said = False
        while any(c.tx is not None for c in cp.connectors):
            if not said:
                cp.log.info("update", "installing once the running transaction(s) end")
                said = True
            await asyncio.sleep(1)
        self.status("Installing")
        new = "b" if self.slot == "a" else "a"
        folder = store.join(self._data, "app/" + new)
        from firmware import install
        try:
            version = await install.install(self._tar, folder)
        except (install.InstallError, OSError, MemoryError) as e:
            cp.log.warn("update", "installation failed: %s" % e)
            install.remove_tree(folder)
            self.status("InstallationFailed")
            return
        finally:
            install.remove_tree(self._tar)
            unload("firmware.install")  # the charger goes on without it, or restarts
        self._switch(new, version)
        await self._restart(new)

    async def _download(self, url):
        from firmware import transfer
        # The Central System's trust settings, and https only at SecurityProfile >= 2.
        n, digest = await transfer.download(url, self._tar, max_bytes=_MAX_BUNDLE,
                                            **transfer.settings(self.cp))
        self.cp.log.info("update", "downloaded %d bytes, sha256 %s" % (n, digest))

    def _switch(self, new, version):
        current = self.cp.firmware_version if self.slot != FACTORY else None
        state = {"slot": new, "previous": self.slot, "version": version,
                 "previous_version": current, "tries": 0, "confirmed": False,
                 "report": "Installed"}
        store.write_atomic(active_path(self._data), json.dumps(state))
        self.cp.log.info("update", "application %s (%s) installed; it runs after the restart"
                         % (new, version))

    async def _restart(self, new):
        cp = self.cp
        for c in cp.connectors:
            if c.tx is not None:  # started while installing: end it as a reboot does
                cp.sessions.stop(c, "Reboot")
        waited = 0
        while ((self.delivered != "Installing" or cp.outbox.has_tx()) and cp.online()
               and waited < _DRAIN_MS):
            await asyncio.sleep(0.1)
            waited += 100
        cp.log.info("update", "restarting into application %s" % new)
        cp.log.flush()
        cp.board.reset(True)
        cp.shutdown("hard")
