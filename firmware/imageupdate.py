"""The boot-time side of a whole-image update (kind "image", firmware/updates.py): which
partition runs, the version that goes with it, and the confirmation. Imported only when
app/active.json names an image update, so a charger without one never loads it.
"""
import json

from firmware import store
from firmware.compat import unload


def partition(cfg, which="RUNNING"):
    """The label of the OTA partition running now (or set to boot: which="BOOT"), or None
    without partitions."""
    from hal import ota
    try:
        Part = ota.partition_class(cfg)
        return None if Part is None else Part(getattr(Part, which)).info()[4]
    finally:
        unload("hal.ota")


def switched(cfg, active):
    """The new image is set to boot but not running yet: only a reset starts it."""
    label = active.get("partition")
    return partition(cfg, "BOOT") == label and partition(cfg) != label


def version(cfg, active):
    """The running image's version: the new one's, or the previous one's after the
    bootloader went back."""
    if partition(cfg) != active.get("partition"):
        return active.get("previous_version")
    return active.get("version")


def confirm(cp, path, active):
    """Once the boot is Accepted. Running the new image: it came up, keep it (mark it
    valid: the bootloader no longer rolls back). Running another one: the bootloader went
    back (the new one never confirmed), the update failed. `active` is updated and
    stored at `path` (app/active.json); the caller reports it."""
    if active.get("report") not in ("Installed", "InstallationFailed"):
        return
    if active.get("confirmed"):
        return
    running = partition(cp.cfg)
    if running == active.get("partition"):
        from hal import ota
        try:
            ota.partition_class(cp.cfg).mark_app_valid_cancel_rollback()
        except OSError as e:  # e.g. a bootloader built without app rollback
            cp.log.warn("update", "mark_app_valid_cancel_rollback: %s" % e)
        unload("hal.ota")
        cp.log.info("update", "image %s on %s confirmed" % (active.get("version"), running))
    else:
        cp.log.warn("update", "image %s on %s did not come up; back on %s"
                    % (active.get("version"), active.get("partition"), running))
        active["report"] = "InstallationFailed"
        active["version"] = active.get("previous_version")
    active["confirmed"] = True
    store.write_atomic(path, json.dumps(active))
