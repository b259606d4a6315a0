"""UpdateFirmware and SignedUpdateFirmware: wait for the retrieve time, download the bundle,
check it, wait for the transactions to end, install it (firmware/install.py) into a fresh
application slot (kind "mpy") or the next OTA partition (kind "image"), switch to it and
restart. A feature module (firmware/profiles.py): loaded on the first request.

Whichever message brought it, a bundle is installed only when its manifest carries a valid
vendor signature (firmware/vendorsig.py; the trusted keys are vendor_keys.json next to
config.json) and it is of the kind this charger runs (updates.kind()); the loader checks
an installed slot again at every start. SignedUpdateFirmware (OCPP 1.6 security extension)
adds the Central System's proof: its signingCertificate must chain to an installed
ManufacturerRootCertificate (else the reply is InvalidCertificate and no download
happens), and its signature must verify over the downloaded file (else InvalidSignature).
Both failures are also security events (InvalidFirmwareSigningCertificate,
InvalidFirmwareSignature).

UpdateFirmware statuses (FirmwareStatusNotification): Downloading, Downloaded or
DownloadFailed, Installing, InstallationFailed; Installed or a rollback's
InstallationFailed follow the restart (firmware/updates.py). SignedUpdateFirmware's
(SignedFirmwareStatusNotification, with requestId): DownloadScheduled, Downloading,
DownloadPaused (between attempts), Downloaded, DownloadFailed, InvalidSignature,
SignatureVerified, InstallScheduled (installDateTime ahead, or transactions running),
Installing, InstallVerificationFailed (vendor signature or digest), InstallationFailed,
InstallRebooting, then Installed / InstallationFailed after the restart.
`retries` is the number of download attempts (default 1, at most 5), `retryInterval` the
pause between them (default 30 s, at least 5 s; firmware/job.py says why). A new request
replaces one that waits for its retrieve time or between attempts (that one is reported
DownloadFailed if it had begun; SignedUpdateFirmware answers AcceptedCanceled); one that is
downloading, installing or waiting for transactions to end is kept and the new request is
ignored (SignedUpdateFirmware: Rejected).
"""
import binascii
import gc
import json

from firmware import clock, store
from firmware.compat import asyncio, const, ticks_diff, ticks_ms, unload
from firmware.job import Job, policy
from firmware.outbox import Entry
from firmware.updates import FACTORY, active_path, active_slot

_MAX_BUNDLE = const(1000000)   # bytes of tar accepted: two slots and the tar fit on flash
_MAX_IMAGE_TAR = const(2200000)  # an image bundle: a 2 MB firmware image and the manifest
_WAIT_STEP_S = const(10)       # retrieveDate is re-checked this often (the clock may be set)
_DRAIN_MS = const(15000)       # how long the restart waits for messages to reach the CSMS
_IN_PROGRESS = ("Downloading", "Downloaded", "Installing")
_SIGNED_RUNNING = ("DownloadScheduled", "Downloading", "DownloadPaused", "Downloaded",
                   "SignatureVerified", "InstallScheduled", "Installing", "InstallRebooting")
# A signed status as FirmwareStatusNotification reports it (TriggerMessage): that enum has
# no signed-only values.
_PLAIN = {"DownloadScheduled": "Idle", "DownloadPaused": "Downloading",
          "SignatureVerified": "Downloaded", "InstallScheduled": "Downloaded",
          "InstallRebooting": "Installing", "InvalidSignature": "Idle",
          "InstallVerificationFailed": "InstallationFailed"}


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
    u.request_id = None
    answer = u.start({}, lambda: u.update(req, req["location"], when, None),
                     "InstallationFailed", "firmware update")
    cp.log.info("update", "UpdateFirmware from %s at %s" % (req["location"][:120],
                                                             clock.iso(when)))
    return answer


def SignedUpdateFirmware(cp, req):
    fw = req["firmware"]
    u = cp.feature("updater")
    if u.busy and not u.waiting:
        cp.log.warn("update", "SignedUpdateFirmware rejected: an update is already under way")
        return {"status": "Rejected"}
    why, key = signing_key(cp, fw["signingCertificate"])
    if why:
        cp.log.warn("update", "SignedUpdateFirmware: signing certificate refused: " + why)
        security_event(cp, "InvalidFirmwareSigningCertificate", why)
        # "revoked" is x509.REVOKED (the module is unloaded again by now).
        return {"status": "RevokedCertificate" if why == "revoked" else "InvalidCertificate"}
    status = "Accepted"
    if u.busy:
        cp.log.warn("update", "SignedUpdateFirmware replaces the update waiting to download")
        u.replace("DownloadFailed" if cp.firmware_status == "Downloading" else None)
        status = "AcceptedCanceled"
    try:
        when = clock.parse_iso(fw["retrieveDateTime"])
    except ValueError:
        when = cp.now()
    u.request_id = req["requestId"]
    proof = (key, fw["signature"], fw.get("installDateTime"))
    answer = u.start({"status": status}, lambda: u.update(req, fw["location"], when, proof),
                     "InstallationFailed", "firmware update")
    cp.log.info("update", "SignedUpdateFirmware %d from %s at %s"
                % (req["requestId"], fw["location"][:120], clock.iso(when)))
    return answer


def kind():
    """The bundles this charger takes: "image" when the application is frozen into the
    MicroPython image (a folder on flash would not replace it), else "mpy"."""
    import firmware
    path = getattr(firmware, "__path__", "")
    return "image" if isinstance(path, str) and path.startswith(".frozen") else "mpy"


def vendor_keys(cfg):
    """The trusted vendor keys: vendor_keys.json next to config.json (vendorsig.py)."""
    from firmware import vendorsig
    return vendorsig.load_keys(store.join(cfg["_dir"], vendorsig.KEYS_FILE))


def manufacturer_roots(cp):
    """DER ManufacturerRootCertificates installed on the charger (the certificate store)."""
    try:
        return cp.feature("certificates").ders("ManufacturerRootCertificate")
    except (ImportError, KeyError, AttributeError) as e:
        cp.log.warn("update", "no certificate store: %s" % e)
        return []


def signing_key(cp, pem):
    """(why the signing certificate is refused or None, its public key)."""
    from firmware import x509
    try:
        chain = x509.pem_to_ders(pem)
        if not chain:
            return "no certificate in signingCertificate", None
        roots = manufacturer_roots(cp)
        if not roots:
            return "no ManufacturerRootCertificate is installed", None
        try:
            revoked = x509.load_revoked(store.join(cp.cfg["_dir"], x509.REVOKED_FILE))
        except ValueError as e:
            return "revocation list unusable: %s" % e, None  # refused, not trusted blindly
        why = x509.check_chain(chain, roots, cp.now(), usage=x509.CODE_SIGNING,
                               revoked=revoked)
        return why, (None if why else x509.Cert(chain[0]).key)
    except (ValueError, IndexError, TypeError) as e:
        return "unreadable signing certificate: %s" % e, None
    finally:
        unload("firmware.x509")


def verify_file(key, digest, sig_b64):
    """True when `sig_b64` (base64) is the key's signature over the file whose sha256 is
    `digest`: key ("ec", x, y) ECDSA P-256, or ("rsa", n, e) PKCS#1 v1.5."""
    try:
        sig = binascii.a2b_base64(sig_b64)
    except (ValueError, TypeError):
        return False
    from firmware import signature
    try:
        return bool(signature.verify(key, digest, sig))
    finally:
        unload("firmware.signature")
        unload("firmware.p256")
        unload("firmware.rsa")


def security_event(cp, event, info=None):
    """A SecurityEventNotification (firmware/secevents.py), when this firmware has them."""
    try:
        from firmware import secevents
    except ImportError:
        cp.log.warn("update", "security event %s: %s" % (event, info))
        return
    secevents.record(cp, event, info)  # logged there


class Updater(Job):
    """One update at a time per charger; `busy` while it runs. `request_id` is the
    running SignedUpdateFirmware's (None for UpdateFirmware), `signed_status` its last
    status (an ExtendedTriggerMessage reports it)."""

    def __init__(self, cp):
        super().__init__(cp, "update", "FirmwareStatusNotification", "firmware_status",
                         _IN_PROGRESS)
        data = cp.cfg["_data"]
        self._data = data
        self._tar = store.join(data, "update.tar")
        self.slot = active_slot(data)
        self.request_id = None
        self.signed_status = "Idle"

    def status(self, status):
        """Log status, send it (plain or signed notification) and keep it for triggers."""
        if self.request_id is None:
            self.cp.signed_firmware_status = None  # a trigger reports the plain status
            return super().status(status)
        cp = self.cp
        self.signed_status = status
        plain = _PLAIN.get(status, status)
        cp.firmware_status = plain if plain in _IN_PROGRESS else "Idle"
        # What an ExtendedTriggerMessage reports (firmware/exttrigger.py).
        cp.signed_firmware_status = status if status in _SIGNED_RUNNING else "Idle"
        cp.firmware_request_id = self.request_id
        cp.log.info(self.tag, "signed firmware status %s (request %d)"
                    % (status, self.request_id))

        def delivered(_reply):
            self.delivered = status
        cp.outbox.put(Entry("SignedFirmwareStatusNotification",
                            {"status": status, "requestId": self.request_id}, delivered))
        cp.kick()

    async def update(self, req, location, when, proof):
        """From the retrieve time to the restart into the new application. `proof` is
        SignedUpdateFirmware's (signing key, signature, installDateTime), else None."""
        cp = self.cp
        if proof is not None and when > cp.now():
            self.status("DownloadScheduled")
        while when > cp.now():
            await self.pause(min(when - cp.now(), _WAIT_STEP_S))
        self.status("Downloading")
        digest = await self._download_all(req, location, proof is not None)
        if digest is None:
            self.status("DownloadFailed")
            return
        self.status("Downloaded")
        if proof is not None:
            if not verify_file(proof[0], digest, proof[1]):
                cp.log.warn("update", "the firmware signature does not verify")
                security_event(cp, "InvalidFirmwareSignature", "SignedUpdateFirmware signature")
                _rm(self._tar)
                self.status("InvalidSignature")
                return
            self.status("SignatureVerified")
            await self._install_time(proof[2])
        await self._transactions_end(proof is not None)
        self.status("Installing")
        try:
            how = await self._install()
        finally:
            _rm(self._tar)
        if how is None:
            return
        if proof is not None:
            self.status("InstallRebooting")
        await self._restart(how)

    async def _download_all(self, req, location, signed):
        """The download with its attempts -> the file's sha256, or None."""
        n, interval = policy(req)
        for i in range(n):
            try:
                return await self._download(location)
            except Exception as e:  # NetError, or whatever a broken server causes
                self.cp.log.warn(self.tag, "download %d of %d failed: %s" % (i + 1, n, e))
            if i + 1 < n:
                if signed:
                    self.status("DownloadPaused")
                await self.pause(interval)
                if signed:
                    self.status("Downloading")
        return None

    async def _download(self, url):
        from firmware import transfer
        limit = _MAX_IMAGE_TAR if kind() == "image" else _MAX_BUNDLE
        # The Central System's trust settings, and https only at SecurityProfile >= 2.
        try:
            n, digest = await transfer.download(url, self._tar, max_bytes=limit,
                                                **transfer.settings(self.cp))
        finally:
            transfer.release()  # the installation needs the room
        self.cp.log.info("update", "downloaded %d bytes, sha256 %s" % (n, digest))
        return binascii.unhexlify(digest)

    async def _install_time(self, at):
        cp = self.cp
        try:
            when = clock.parse_iso(at) if at else None
        except ValueError:
            when = None
        if when is not None and when > cp.now():
            self.status("InstallScheduled")
            while when > cp.now():
                await asyncio.sleep(min(when - cp.now(), _WAIT_STEP_S))

    async def _transactions_end(self, signed):
        cp = self.cp
        said = False
        while any(c.tx is not None for c in cp.connectors):
            if not said:
                cp.log.info("update", "installing once the running transaction(s) end")
                if signed:
                    self.status("InstallScheduled")
                said = True
            await asyncio.sleep(1)

    async def _install(self):
        """Install the downloaded bundle -> what to restart into, or None (reported)."""
        cp = self.cp
        from firmware import install
        roots = vendor_keys(cp.cfg)
        signed = self.request_id is not None
        # The signature check needs about 11 KB of big-number temporaries on a 32-bit
        # build (README Crypto figures): start it from a collected heap.
        gc.collect()
        image = kind() == "image"
        new = folder = part = None
        try:
            if image:
                part = self._next_partition()
                folder = store.join(self._data, "app/image")
                install.remove_tree(folder)
                store.makedirs(folder)
                t0 = ticks_ms()
                version = await install.install_image(self._tar, part, folder, roots)
                cp.log.info("update", "image %s written to %s and verified in %d ms"
                            % (version, part.info()[4], ticks_diff(ticks_ms(), t0)))
            else:
                new = "b" if self.slot == "a" else "a"
                folder = store.join(self._data, "app/" + new)
                version = await install.install(self._tar, folder, roots)
        except install.SignatureError as e:
            cp.log.warn("update", "installation refused: %s" % e)
            security_event(cp, "InvalidFirmwareSignature", str(e)[:200])
            if folder:
                install.remove_tree(folder)
            self.status("InstallVerificationFailed" if signed else "InstallationFailed")
            return None
        except MemoryError as e:
            cp.log.exc("update", "installation failed", e)
            if folder:
                install.remove_tree(folder)
            self.status("InstallationFailed")
            return None
        except (install.InstallError, OSError, ValueError) as e:
            cp.log.warn("update", "installation failed: %s" % e)
            if folder:
                install.remove_tree(folder)
            self.status("InstallationFailed")
            return None
        finally:
            unload("firmware.install")  # the charger goes on without it, or restarts
            unload("firmware.vendorsig")
            unload("firmware.p256")
        if image:
            _rm(folder)  # the manifest was needed while writing only
            return self._switch_image(part, version)
        self._switch(new, version)
        return new

    def _next_partition(self):
        from hal import ota
        Part = ota.partition_class(self.cp.cfg)
        if Part is None:
            raise OSError("this board has no OTA partitions")
        return Part(Part.RUNNING).get_next_update()

    def _current_version(self):
        return self.cp.firmware_version if self.slot != FACTORY else None

    def _switch(self, new, version):
        state = {"slot": new, "previous": self.slot, "version": version,
                 "previous_version": self._current_version(), "tries": 0,
                 "confirmed": False, "report": "Installed", "request": self.request_id}
        store.write_atomic(active_path(self._data), json.dumps(state))
        self.cp.log.info("update", "application %s (%s) installed; it runs after the restart"
                         % (new, version))

    def _switch_image(self, part, version):
        # The bootloader starts the new image once; updates.confirm() marks it valid after
        # the first Accepted boot, else the bootloader goes back to the running one.
        label = part.info()[4]
        state = {"kind": "image", "partition": label, "version": version,
                 "previous_version": self.cp.firmware_version, "confirmed": False,
                 "report": "Installed", "request": self.request_id}
        store.write_atomic(active_path(self._data), json.dumps(state))
        part.set_boot()
        self.cp.log.info("update", "image %s set to boot from %s after the restart"
                         % (version, label))
        return label

    async def _restart(self, new):
        cp = self.cp
        for c in cp.connectors:
            if c.tx is not None:  # started while installing: end it as a reboot does
                cp.sessions.stop(c, "Reboot")
        last = "Installing" if self.request_id is None else "InstallRebooting"
        waited = 0
        while ((self.delivered != last or cp.outbox.has_tx()) and cp.online()
               and waited < _DRAIN_MS):
            await asyncio.sleep(0.1)
            waited += 100
        cp.log.info("update", "restarting into %s" % new)
        cp.shutdown("hard")  # first: it records ResetOrReboot; a board's reset() never returns
        cp.log.flush()
        cp.board.reset(True)


def _rm(path):
    from firmware.install import remove_tree
    remove_tree(path)
