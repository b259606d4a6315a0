"""Smart Charging profile: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule.

The state is the SmartCharging engine (firmware/smartcharging.py), loaded on the first request
or at boot when profiles are stored: a charger that never gets a profile never pays its RAM.
The limit reaches the pilot through cp.apply_limits().
"""
from firmware.profiles import state_path


def load(cp):
    from firmware.smartcharging import SmartCharging
    st = cp.cfg["station"]
    engine = SmartCharging(state_path(cp, "smart"), len(cp.connectors), cp.keys, cp.log,
                           st["voltage"], st["phases"], st["max_current"])
    for c in cp.connectors:
        if c.tx is None:
            engine.tx_ended(c.id)  # TxProfiles of transactions a reboot ended
    return engine


def SetChargingProfile(cp, req):
    cid = req["connectorId"]
    conn = cp.connector(cid)
    tx_id = conn.tx.tx_id if conn is not None and conn.tx is not None else None
    profile = req["csChargingProfiles"]
    status = cp.feature("smart").set_profile(cid, profile, tx_id, cp.now())
    cp.log.info("smart", "SetChargingProfile %s on connector %d: %s"
                % (profile["chargingProfileId"], cid, status))
    cp.apply_limits()
    return {"status": status}


def ClearChargingProfile(cp, req):
    status = cp.feature("smart").clear(req.get("id"), req.get("connectorId"),
                                       req.get("chargingProfilePurpose"), req.get("stackLevel"))
    cp.apply_limits()
    return {"status": status}


def GetCompositeSchedule(cp, req):
    cid = req["connectorId"]
    if cid != 0 and cp.connector(cid) is None:
        return {"status": "Rejected"}
    unit = req.get("chargingRateUnit")
    unit = None if unit is None else ("A" if unit == "A" else "W")
    conn = cp.connector(cid)
    start = conn.tx.start_time if conn is not None and conn.tx is not None else None
    now = cp.now()
    sched = cp.feature("smart").composite(cid, req["duration"], unit, now, start)
    reply = {"status": "Accepted", "connectorId": cid}
    if sched is not None:
        reply["scheduleStart"] = cp.iso(now)
        reply["chargingSchedule"] = sched
    return reply
