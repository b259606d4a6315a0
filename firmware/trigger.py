"""Remote Trigger profile: TriggerMessage sends the requested message right after the reply."""
from firmware.rpc import CallFailed, NotConnected


def TriggerMessage(cp, req):
    what = req["requestedMessage"]
    cid = req.get("connectorId")
    if cid is not None and (cid < 0 or cid > len(cp.connectors)):
        return {"status": "Rejected"}
    if what == "MeterValues" and cid == 0:
        return {"status": "Rejected"}

    async def send():
        try:
            await _send(cp, what, cid)
        except (CallFailed, NotConnected) as e:
            cp.log.warn("cp", "triggered %s failed: %s" % (what, e))
    return {"status": "Accepted"}, send


async def _send(cp, what, cid):
    if what == "BootNotification":
        await cp.trigger_boot()
    elif what == "Heartbeat":
        await cp.heartbeat()
    elif what == "StatusNotification":
        if cid in (None, 0):
            cp.queue_status(0, cp.status0())
        for c in cp.connectors:
            if cid is None or cid == c.id:
                cp.report_status(c)
    elif what == "MeterValues":
        for c in cp.connectors:
            if cid is None or cid == c.id:
                cp.sessions.sample(c, "Trigger")
        cp.kick()
    elif what == "DiagnosticsStatusNotification":
        await cp.rpc.call("DiagnosticsStatusNotification", {"status": cp.diagnostics_status})
    elif what == "FirmwareStatusNotification":
        await cp.rpc.call("FirmwareStatusNotification", {"status": cp.firmware_status})
