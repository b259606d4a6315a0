"""Smart Charging profile: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule,
and the limit pushed to the HAL (pilot PWM on the board) as profiles and periods change."""
from firmware import store
from firmware.compat import const

_MIN_AMPS = const(6)  # IEC 61851: below 6 A no charging is allowed


def _path(cp):
    return store.join(cp.cfg["_data"], "profiles.json")


def smart(cp):
    """The charger's SmartCharging engine, loaded on first need: a charger that never gets a
    profile never pays the RAM of the schedule code."""
    if cp.smart is None:
        from firmware.smartcharging import SmartCharging
        st = cp.cfg["station"]
        cp.smart = SmartCharging(_path(cp), len(cp.connectors), cp.keys, cp.log,
                                 st["voltage"], st["phases"], st["max_current"])
    return cp.smart


def register(cp):
    h = _Handlers(cp)
    for action in ("SetChargingProfile", "ClearChargingProfile", "GetCompositeSchedule"):
        cp.rpc.on(action, getattr(h, action))
    if store.exists(_path(cp)):
        for c in cp.connectors:
            if c.tx is None:
                smart(cp).tx_ended(c.id)  # TxProfiles of transactions a reboot ended


def apply_limits(cp):
    """Push the effective limit of every connector to its pilot; called every second and
    after any profile change, so each period boundary takes effect within a second."""
    now = cp.now()
    for c in cp.connectors:
        start = c.tx.start_time if c.tx is not None else None
        limit = cp.smart.limit(c.id, now, start) if cp.smart is not None else None
        if limit is not None and limit < _MIN_AMPS:
            limit = 0.0
        if limit != c.limit:
            c.limit = limit
            cp.log.info("smart", "connector %d limit %s" % (c.id, "none" if limit is None else "%.1f A" % limit))
            if c.tx is not None and not c.tx.rejected:
                c.hw.pilot.set_current_limit(c.offered_a())


class _Handlers:
    def __init__(self, cp):
        self.cp = cp

    def SetChargingProfile(self, req):
        cp = self.cp
        cid = req["connectorId"]
        conn = cp.connector(cid)
        tx_id = conn.tx.tx_id if conn is not None and conn.tx is not None else None
        status = smart(cp).set_profile(cid, req["csChargingProfiles"], tx_id, cp.now())
        cp.log.info("smart", "SetChargingProfile %s on connector %d: %s"
                    % (req["csChargingProfiles"]["chargingProfileId"], cid, status))
        apply_limits(cp)
        return {"status": status}

    def ClearChargingProfile(self, req):
        cp = self.cp
        status = smart(cp).clear(req.get("id"), req.get("connectorId"), req.get("chargingProfilePurpose"),
                                 req.get("stackLevel"))
        apply_limits(cp)
        return {"status": status}

    def GetCompositeSchedule(self, req):
        cp = self.cp
        cid = req["connectorId"]
        if cid != 0 and cp.connector(cid) is None:
            return {"status": "Rejected"}
        unit = req.get("chargingRateUnit")
        unit = None if unit is None else ("A" if unit == "A" else "W")
        conn = cp.connector(cid)
        start = conn.tx.start_time if conn is not None and conn.tx is not None else None
        now = cp.now()
        sched = smart(cp).composite(cid, req["duration"], unit, now, start)
        reply = {"status": "Accepted", "connectorId": cid}
        if sched is not None:
            reply["scheduleStart"] = cp.iso(now)
            reply["chargingSchedule"] = sched
        return reply
