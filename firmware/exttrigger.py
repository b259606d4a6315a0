"""ExtendedTriggerMessage (security extension): TriggerMessage's messages (trigger.py sends
them), LogStatusNotification, SignedFirmwareStatusNotification for FirmwareStatusNotification,
and SignChargePointCertificate: a new key and CSR sent with SignCertificate by the
security-profile module (firmware/secprofile.py, `sign_request(cp)`); a build without that
module replies NotImplemented. A feature module (firmware/profiles.py), loaded on first use.
"""
from firmware import trigger
from firmware.compat import unload
from firmware.rpc import CallFailed, NotConnected

_SIGN = "SignChargePointCertificate"


def _signer():
    """The security-profile module's sign_request(cp), or None where it is missing."""
    try:
        from firmware import secprofile
    except ImportError:
        return None
    return getattr(secprofile, "sign_request", None)


def ExtendedTriggerMessage(cp, req):
    what = req["requestedMessage"]
    cid = req.get("connectorId")
    if cid is not None and (cid < 0 or cid > len(cp.connectors)):
        return {"status": "Rejected"}
    if what == "MeterValues" and cid == 0:
        return {"status": "Rejected"}
    sign = None
    if what == _SIGN:
        sign = _signer()
        if sign is None:
            return {"status": "NotImplemented"}

    async def send():
        try:
            if sign is not None:
                await sign(cp)
                unload("firmware.secprofile")  # as link.py does: needed again only for this
            else:
                await _send(cp, what, cid)
        except (CallFailed, NotConnected) as e:
            cp.log.warn("cp", "triggered %s failed: %s" % (what, e))
    return {"status": "Accepted"}, send


async def _send(cp, what, cid):
    if what == "LogStatusNotification":
        job = cp.loaded("getlog")
        payload = {"status": "Idle"}
        if job is not None and job.busy and getattr(cp, "log_status", "Idle") == "Uploading":
            payload = {"status": "Uploading", "requestId": job.request_id}
        await cp.rpc.call("LogStatusNotification", payload)
    elif what == "FirmwareStatusNotification":
        # The whitepaper's answer is the signed-update status, with the requestId of the
        # SignedUpdateFirmware under way (the update module keeps both on the charge point).
        status = getattr(cp, "signed_firmware_status", None) or cp.firmware_status
        payload = {"status": status}
        rid = getattr(cp, "firmware_request_id", None)
        if rid is not None and status != "Idle":
            payload["requestId"] = rid
        await cp.rpc.call("SignedFirmwareStatusNotification", payload)
    else:
        await trigger._send(cp, what, cid)
