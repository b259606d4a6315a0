"""Core profile: the Central System's requests every charge point answers."""
from firmware.compat import asyncio, const

_RESET_DRAIN_MS = const(15000)  # how long a Reset waits for StopTransactions to be delivered


def ChangeAvailability(cp, req):
    cid, operative = req["connectorId"], req["type"] == "Operative"
    if cid == 0:
        targets = cp.connectors
    elif cp.connector(cid) is None:
        return {"status": "Rejected"}
    else:
        targets = [cp.connector(cid)]
    status = "Accepted"
    for c in targets:
        if c.tx is not None and c.operative != operative:
            c.scheduled = operative  # applied when its transaction ends
            status = "Scheduled"
        else:
            c.operative = operative
            c.scheduled = None
    if cid == 0:
        cp.operative = operative
    cp.save_state()
    cp.log.info("cp", "ChangeAvailability %d %s: %s" % (cid, req["type"], status))
    return {"status": status}


def ChangeConfiguration(cp, req):
    if req["key"] in ("AuthorizationKey", "SecurityProfile"):  # checked, tried, never echoed
        from firmware import profiles
        return profiles.module("secprofile").ChangeConfiguration(cp, req)
    status = cp.keys.change(req["key"], req["value"])
    cp.log.info("cp", "ChangeConfiguration %s=%s: %s" % (req["key"], req["value"], status))
    return {"status": status}


def GetConfiguration(cp, req):
    known, unknown = cp.keys.listing(req.get("key"))
    reply = {"configurationKey": known}
    if unknown:
        reply["unknownKey"] = unknown
    return reply


def ClearCache(cp, req):
    cp.auth.clear_cache()
    return {"status": "Accepted"}


def DataTransfer(cp, req):
    # This firmware defines no vendor messages of its own yet.
    if req["vendorId"] != cp.cfg["station"]["vendor"]:
        return {"status": "UnknownVendorId"}
    return {"status": "UnknownMessageId"}


def RemoteStartTransaction(cp, req):
    reservations = cp.loaded("reservation")
    tag = req["idTag"]
    cid = req.get("connectorId")
    if cid is None:
        conn = None
        for c in cp.connectors:
            if c.free() and c.auth_tag is None and (conn is None or c.plugged()):
                res = reservations.holds(c) if reservations else None
                if res is None or res["tag"] == tag:
                    conn = c
    else:
        conn = cp.connector(cid)
    cp.log.info("cp", "RemoteStartTransaction for %s on connector %s, asked by the Central"
                " System" % (tag, "any" if cid is None else cid))
    if conn is None or not conn.free() or conn.auth_tag is not None or not cp.operative:
        return {"status": "Rejected"}
    res = reservations.holds(conn) if reservations else None
    if res is not None and res["tag"] != tag:
        return {"status": "Rejected"}  # reserved for someone else
    profile = req.get("chargingProfile")
    if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
        return {"status": "Rejected"}
    # Hold the connector now so a second request cannot take it while Authorize runs.
    conn.arm(tag, None, cp.keys["ConnectionTimeOut"])
    conn.profile = profile
    conn.finishing = False

    async def authorize():
        if not cp.keys["AuthorizeRemoteTxRequests"]:
            return
        status, _parent = await cp.auth.authorize(tag)
        if status != "Accepted" and conn.auth_tag == tag:
            cp.log.info("auth", "remote start for %s: %s" % (tag, status))
            conn.auth_tag = None
    return {"status": "Accepted"}, authorize


def RemoteStopTransaction(cp, req):
    cp.log.info("cp", "RemoteStopTransaction %d, asked by the Central System"
                % req["transactionId"])
    for c in cp.connectors:
        if c.tx is not None and c.tx.tx_id == req["transactionId"]:
            cp.sessions.stop(c, "Remote")
            return {"status": "Accepted"}
    return {"status": "Rejected"}


def Reset(cp, req):
    hard = req["type"] == "Hard"
    cp.log.info("cp", "Reset %s, asked by the Central System" % req["type"])

    async def reset():
        for c in cp.connectors:
            if c.tx is not None:
                cp.sessions.stop(c, "HardReset" if hard else "SoftReset")
        # Give the StopTransactions a chance to reach the CSMS before the restart.
        waited = 0
        while cp.outbox.has_tx() and cp.online() and waited < _RESET_DRAIN_MS:
            await asyncio.sleep(0.1)
            waited += 100
        cp.log.info("cp", "%s reset" % req["type"].lower())
        cp.board.reset(hard)
        cp.shutdown("hard" if hard else "soft")
    return {"status": "Accepted"}, reset


def UnlockConnector(cp, req):
    cp.log.info("cp", "UnlockConnector %d, asked by the Central System" % req["connectorId"])
    conn = cp.connector(req["connectorId"])
    if conn is None or conn.hw.lock is None:
        return {"status": "NotSupported"}
    if conn.tx is not None:
        cp.sessions.stop(conn, "UnlockCommand")
    return {"status": "Unlocked" if conn.hw.lock.unlock() else "UnlockFailed"}
