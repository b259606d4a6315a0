"""Firmware updates, the part that runs at every boot.

An update is a bundle (the tar `make bundle KEY=...` builds: manifest.json with its kind,
version and the size and sha256 of every file, manifest.sig, the vendor's signature over
it (firmware/vendorsig.py), and either firmware/ and hal/ (plus main.py, boot.py and
maybe config.json, which an update never replaces) or, of kind "image", a MicroPython
firmware image with the application frozen in). firmware/updater.py runs
(Signed)UpdateFirmware and firmware/install.py checks the signature, then writes
firmware/, hal/, the manifest and its signature into `<data_dir>/app/<slot>/`, every file
checked, or the image into the next OTA partition; both are loaded on the first request
only. The switch is one atomic write of app/active.json (format in main.py) and a hard
reset; the loader checks the slot's signature and files at every start, counts the
starts of the new application until the Central System accepts its boot and goes back to
the previous one after 3 failed starts. An image boots once (ESP-IDF app rollback) and
is marked valid after the first Accepted boot; the bootloader goes back to the running
image otherwise. active.json of an image update:

    {"kind": "image", "partition": "ota_1", "version": "1.2.0", "previous_version": "1.1.0",
     "confirmed": false, "report": "Installed", "request": null}

Here: firmware_version(cfg), BootNotification's firmwareVersion (the charge point keeps it
as cp.firmware_version), and confirm(cp), which the charge point calls once the
boot is Accepted: the confirmation of a new application and the report of how the last
update ended (FirmwareStatusNotification, or SignedFirmwareStatusNotification with its
requestId, Installed or InstallationFailed).
"""
import json
import os

from firmware import store
from firmware.compat import unload
from firmware.outbox import Entry

FACTORY = "factory"            # the application next to main.py (main.FACTORY)


def image_switched(cfg):
    """True when a new image is set to boot and waits for the reset: the application must
    not restart in place (firmware/app.py), the chip (or on a host, the process) must."""
    active = read_active(cfg["_data"])
    if active.get("kind") != "image" or active.get("confirmed"):
        return False
    from firmware import imageupdate
    try:
        return imageupdate.switched(cfg, active)
    finally:
        unload("firmware.imageupdate")


def active_path(data):
    return store.join(data, "app/active.json")


def read_active(data):
    active = store.read_json(active_path(data))
    return active if isinstance(active, dict) else {}


def active_slot(data):
    """The application slot the loader starts (FACTORY when there is no update)."""
    slot = read_active(data).get("slot")
    return slot if isinstance(slot, str) and slot else FACTORY


def firmware_version(cfg):
    """An installed slot's (or image's) version, else station.firmware_version."""
    active = read_active(cfg["_data"])
    version = active.get("version")
    if active.get("kind") == "image":
        from firmware import imageupdate
        try:
            version = imageupdate.version(cfg, active)
        finally:
            unload("firmware.imageupdate")
        return version if isinstance(version, str) else cfg["station"]["firmware_version"]
    if active_slot(cfg["_data"]) != FACTORY and isinstance(version, str):
        return version
    return cfg["station"]["firmware_version"]


def _remove(path):
    from firmware.install import remove_tree
    remove_tree(path)
    unload("firmware.install")  # an update that runs later loads it again


def confirm(cp):
    """Once the boot is Accepted: confirm a new application, tidy the flash and report
    how the last update ended."""
    data = cp.cfg["_data"]
    u = cp.loaded("updater")
    busy = u is not None and u.busy
    tar = store.join(data, "update.tar")
    if not busy and store.exists(tar):
        _remove(tar)  # the download of an update a reset cut short
    active = read_active(data)
    if not active:
        return
    if active.get("kind") == "image":
        from firmware import imageupdate
        try:
            imageupdate.confirm(cp, active_path(data), active)
        finally:
            unload("firmware.imageupdate")
        _report(cp, data, active)
        return
    slot = active_slot(data)
    if not active.get("confirmed") or active.get("tries"):
        active["confirmed"] = True
        active["tries"] = 0
        store.write_atomic(active_path(data), json.dumps(active))
        cp.log.info("update", "application %s (%s) confirmed" % (slot, cp.firmware_version))
    if active.get("failed"):
        cp.log.warn("update", "application %s did not come up; back on %s"
                    % (active["failed"], slot))
    if not busy:
        _remove_stale(cp, data, (slot, active.get("previous")))
    _report(cp, data, active)


def _report(cp, data, active):
    report = active.get("report")
    if report not in ("Installed", "InstallationFailed"):
        return

    def sent(_reply):
        now = read_active(data)
        if report == "Installed" and now.get("report") == report:
            _firmware_updated(cp, now.get("version"))
        if now.get("report") == report:
            now["report"] = None
            now.pop("failed", None)
            store.write_atomic(active_path(data), json.dumps(now))
    # Keyed: a boot accepted again before it went out does not send it twice.
    request = active.get("request")
    if isinstance(request, int):
        entry = Entry("SignedFirmwareStatusNotification", {"status": report,
                                                           "requestId": request},
                      sent, key="firmware-report")
    else:
        entry = Entry("FirmwareStatusNotification", {"status": report}, sent,
                      key="firmware-report")
    cp.outbox.put(entry)
    cp.kick()


def _firmware_updated(cp, version):
    # The security extension's event for a firmware that came up (firmware/secevents.py).
    try:
        from firmware import secevents
    except ImportError:
        return
    secevents.record(cp, "FirmwareUpdated", "version %s" % version)


def _remove_stale(cp, data, keep):
    # Slots neither running nor kept for a rollback only take flash.
    apps = store.join(data, "app")
    try:
        names = os.listdir(apps)
    except OSError:
        return
    for name in names:
        if name not in keep and not name.startswith("active.json"):
            cp.log.info("update", "removing unused application " + name)
            _remove(apps + "/" + name)

