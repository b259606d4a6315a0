"""Core profile: the Central System's requests every charge point answers."""
from firmware import keys
from firmware.compat import asyncio, const

_RESET_DRAIN_MS = const(15000)  # how long a Reset waits for StopTransactions to be delivered
_HOLD_MS = const(10000)         # longest a RemoteStop waits for a StartTransaction.conf


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
    secret = keys.secret(req["key"])
    if secret:  # from now on no log line shows it, whoever writes it (README "Security")
        cp.log.hide(req["value"])
    if req["key"] in ("AuthorizationKey", "SecurityProfile"):  # checked, tried, never echoed
        from firmware import profiles
        return profiles.module("secprofile").ChangeConfiguration(cp, req)
    status = cp.keys.change(req["key"], req["value"])
    cp.log.info("cp", "ChangeConfiguration %s=%s: %s"
                % (req["key"], "(not shown)" if secret else req["value"], status))
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


def _free(cp, c):
    return c.free() and c.auth_tag is None and cp.operative


def RemoteStartTransaction(cp, req):
    """The rule of a swipe: a connector reserved for another idTag takes this one only when
    the reservation names a parentIdTag and this idTag's group is the same; that group comes
    from the local list or cache, else from an Authorize.req (whatever
    AuthorizeRemoteTxRequests says), and the answer waits for it."""
    reservations = cp.loaded("reservation")
    tag = req["idTag"]
    cid = req.get("connectorId")
    cp.log.info("cp", "RemoteStartTransaction for %s on connector %s, asked by the Central"
                " System" % (tag, "any" if cid is None else cid))
    profile = req.get("chargingProfile")
    if profile is not None and profile.get("chargingProfilePurpose") != "TxProfile":
        return {"status": "Rejected"}
    if cid is None:
        conn = None
        for c in cp.connectors:
            if _free(cp, c) and (conn is None or c.plugged()):
                res = reservations.holds(c) if reservations else None
                if res is None or res["tag"] == tag or res.get("parent"):
                    conn = c
    else:
        conn = cp.connector(cid)
    if conn is None or not _free(cp, conn):
        return {"status": "Rejected"}
    res = reservations.holds(conn) if reservations else None
    if res is not None and res["tag"] != tag:
        if not res.get("parent"):
            return {"status": "Rejected"}  # reserved for someone else
        return _for_group(cp, conn, tag, res, profile)
    # Hold the connector now so a second request cannot take it while Authorize runs.
    _arm(cp, conn, tag, None, profile)

    async def authorize():
        if not cp.keys["AuthorizeRemoteTxRequests"]:
            return
        status, parent = await cp.auth.authorize(tag)
        if conn.auth_tag != tag:
            return
        if status != "Accepted":
            cp.log.info("auth", "remote start for %s: %s" % (tag, status))
            conn.auth_tag = None
        else:
            conn.auth_parent = parent
    return {"status": "Accepted"}, authorize


def _arm(cp, conn, tag, parent, profile):
    conn.arm(tag, parent, cp.keys["ConnectionTimeOut"])
    conn.profile = profile
    conn.finishing = False


async def _for_group(cp, conn, tag, res, profile):
    # The answer waits for the group (rpc.py: a handler's coroutine); Authorize.req is
    # bounded by the call timeout.
    status, parent = await cp.auth.authorize(tag)
    reservations = cp.loaded("reservation")
    now = reservations.holds(conn) if reservations is not None else None
    if (status == "Accepted" and now is not None and now["id"] == res["id"]
            and _free(cp, conn) and reservations.matches(now, tag, parent)):
        _arm(cp, conn, tag, parent, profile)
        cp.log.info("auth", "remote start for %s on connector %d: group %s of reservation %d"
                    % (tag, conn.id, parent, res["id"]))
        return {"status": "Accepted"}
    cp.log.info("auth", "remote start for %s: %s, not of reservation %d's group"
                % (tag, status, res["id"]))
    return {"status": "Rejected"}


def _remote_stop(cp, tx_id):
    for c in cp.connectors:
        if c.tx is not None and c.tx.tx_id == tx_id:
            cp.sessions.stop(c, "Remote")
            return True
    return False


def _unconfirmed(cp):
    for c in cp.connectors:
        if c.tx is not None and c.tx.tx_id is None:
            return True
    return False


def RemoteStopTransaction(cp, req):
    """An unknown transactionId while a StartTransaction of ours waits for its conf may be
    that transaction's: some Central Systems send the RemoteStop before their conf reaches
    us. The answer then waits for the conf, at most min(half the call timeout, _HOLD_MS), and
    is given as if the conf had come first. (Half: the answer must leave before our own
    StartTransaction times out, when a silent link is given up, rpc.py.)"""
    tx_id = req["transactionId"]
    cp.log.info("cp", "RemoteStopTransaction %d, asked by the Central System" % tx_id)
    if _remote_stop(cp, tx_id):
        return {"status": "Accepted"}
    if not _unconfirmed(cp):
        return {"status": "Rejected"}

    async def held():
        waited, bound = 0, min(cp.rpc.timeout_ms // 2, _HOLD_MS)
        while waited < bound and _unconfirmed(cp):
            await asyncio.sleep(0.1)
            waited += 100
        stopped = _remote_stop(cp, tx_id)
        cp.log.info("tx", "RemoteStopTransaction %s held %d ms: %s"
                    % (tx_id, waited, "Accepted" if stopped else "Rejected"))
        return {"status": "Accepted" if stopped else "Rejected"}
    return held()


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
        # shutdown() first: it records the ResetOrReboot event, and a board's reset() does
        # not return.
        cp.shutdown("hard" if hard else "soft")
        cp.board.reset(hard)
    return {"status": "Accepted"}, reset


def UnlockConnector(cp, req):
    cp.log.info("cp", "UnlockConnector %d, asked by the Central System" % req["connectorId"])
    conn = cp.connector(req["connectorId"])
    if conn is None or conn.hw.lock is None:
        return {"status": "NotSupported"}
    if conn.tx is not None:
        cp.sessions.stop(conn, "UnlockCommand")
    return {"status": "Unlocked" if conn.hw.lock.unlock() else "UnlockFailed"}
