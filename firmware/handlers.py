"""Handlers for the Central System's requests: Core and Remote Trigger profiles."""
from firmware import store
from firmware.compat import asyncio, const
from firmware.rpc import CallFailed, NotConnected

_RESET_DRAIN_MS = const(15000)  # how long a Reset waits for StopTransactions to be delivered


def register(cp):
    h = _Handlers(cp)
    for action in ("ChangeAvailability", "ChangeConfiguration", "ClearCache", "DataTransfer",
                   "GetConfiguration", "GetLocalListVersion", "RemoteStartTransaction", "SendLocalList", "RemoteStopTransaction", "Reset",
                   "TriggerMessage", "UnlockConnector"):
        cp.rpc.on(action, getattr(h, action))
    from firmware import smart_handlers
    smart_handlers.register(cp)
    from firmware import updates
    updates.register(cp)  # UpdateFirmware, the running version, the post-update boot hook
    cp.rpc.on("GetDiagnostics", lambda req: _diagnostics(cp).on_request(req))
    cp.rpc.on("ReserveNow", lambda req: _reservations(cp).ReserveNow(req))
    cp.rpc.on("CancelReservation", lambda req: _reservations(cp).CancelReservation(req))
    if store.exists(store.join(cp.cfg["_data"], "reservations.json")):
        _reservations(cp)


def _diagnostics(cp):
    from firmware import diagnostics
    return diagnostics.load(cp)


def _reservations(cp):
    # Loaded on first use: a charger that is never reserved never pays its RAM.
    from firmware import reservation
    return reservation.load(cp)


class _Handlers:
    def __init__(self, cp):
        self.cp = cp

    def ChangeAvailability(self, req):
        cp = self.cp
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

    def ChangeConfiguration(self, req):
        status = self.cp.keys.change(req["key"], req["value"])
        self.cp.log.info("cp", "ChangeConfiguration %s=%s: %s" % (req["key"], req["value"], status))
        return {"status": status}

    def GetConfiguration(self, req):
        known, unknown = self.cp.keys.listing(req.get("key"))
        reply = {"configurationKey": known}
        if unknown:
            reply["unknownKey"] = unknown
        return reply

    def ClearCache(self, req):
        self.cp.auth.clear_cache()
        return {"status": "Accepted"}

    def SendLocalList(self, req):
        return {"status": self.cp.auth.send_local_list(req)}

    def GetLocalListVersion(self, req):
        return {"listVersion": self.cp.auth.list_version()}

    def DataTransfer(self, req):
        # This firmware defines no vendor messages of its own yet.
        if req["vendorId"] != self.cp.cfg["station"]["vendor"]:
            return {"status": "UnknownVendorId"}
        return {"status": "UnknownMessageId"}

    def RemoteStartTransaction(self, req):
        cp = self.cp
        cid = req.get("connectorId")
        if cid is None:
            conn = None
            for c in cp.connectors:
                if c.free() and c.auth_tag is None and (conn is None or c.plugged()):
                    res = cp.reservations.holds(c) if cp.reservations else None
                    if res is None or res["tag"] == req["idTag"]:
                        conn = c
        else:
            conn = cp.connector(cid)
        if conn is None or not conn.free() or conn.auth_tag is not None or not cp.operative:
            return {"status": "Rejected"}
        res = cp.reservations.holds(conn) if cp.reservations else None
        if res is not None and res["tag"] != req["idTag"]:
            return {"status": "Rejected"}  # reserved for someone else
        if "chargingProfile" in req and req["chargingProfile"].get("chargingProfilePurpose") != "TxProfile":
            return {"status": "Rejected"}
        tag = req["idTag"]
        # Hold the connector now so a second request cannot take it while Authorize runs.
        conn.arm(tag, None, cp.keys["ConnectionTimeOut"])
        conn.profile = req.get("chargingProfile")
        conn.finishing = False

        async def authorize():
            if not cp.keys["AuthorizeRemoteTxRequests"]:
                return
            status, parent = await cp.auth.authorize(tag)
            if status != "Accepted" and conn.auth_tag == tag:
                cp.log.info("auth", "remote start for %s: %s" % (tag, status))
                conn.auth_tag = None
        return {"status": "Accepted"}, authorize

    def RemoteStopTransaction(self, req):
        for c in self.cp.connectors:
            if c.tx is not None and c.tx.tx_id == req["transactionId"]:
                self.cp.sessions.stop(c, "Remote")
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def Reset(self, req):
        cp = self.cp
        hard = req["type"] == "Hard"

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

    def UnlockConnector(self, req):
        cp = self.cp
        conn = cp.connector(req["connectorId"])
        if conn is None or conn.hw.lock is None:
            return {"status": "NotSupported"}
        if conn.tx is not None:
            cp.sessions.stop(conn, "UnlockCommand")
        return {"status": "Unlocked" if conn.hw.lock.unlock() else "UnlockFailed"}

    def TriggerMessage(self, req):
        cp = self.cp
        what = req["requestedMessage"]
        cid = req.get("connectorId")
        if cid is not None and (cid < 0 or cid > len(cp.connectors)):
            return {"status": "Rejected"}
        if what == "MeterValues" and cid == 0:
            return {"status": "Rejected"}

        async def send():
            try:
                await self._triggered(what, cid)
            except (CallFailed, NotConnected) as e:
                cp.log.warn("cp", "triggered %s failed: %s" % (what, e))
        return {"status": "Accepted"}, send

    async def _triggered(self, what, cid):
        cp = self.cp
        if what == "BootNotification":
            cp.accepted = False
            await cp.boot()
        elif what == "Heartbeat":
            await cp.heartbeat()
        elif what == "StatusNotification":
            if cid in (None, 0):
                cp.queue_status(0, cp._status0())
            for c in cp.connectors:
                if cid is None or cid == c.id:
                    st = c.status()
                    cp.queue_status(c.id, st[0], st[1])
        elif what == "MeterValues":
            for c in cp.connectors:
                if cid is None or cid == c.id:
                    cp.sessions.sample(c, "Trigger")
            cp.kick()
        elif what == "DiagnosticsStatusNotification":
            await cp.rpc.call("DiagnosticsStatusNotification", {"status": cp.diagnostics_status})
        elif what == "FirmwareStatusNotification":
            await cp.rpc.call("FirmwareStatusNotification", {"status": cp.firmware_status})
