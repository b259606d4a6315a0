"""Smart Charging: profiles from the Central System limit what the EV gets."""
import time

from ocpp.v16 import call

from firmware.clock import iso, parse_iso
from tests.scenarios.steps import FAST, booted, start_session

KEYS = dict(FAST, MeterValueSampleInterval=1,
            MeterValuesSampledData="Energy.Active.Import.Register,Power.Active.Import,"
                                   "Current.Offered")


def profile(pid, purpose, stack, periods, unit="A", kind="Absolute", start=None, duration=None,
            **extra):
    schedule = {"charging_rate_unit": unit,
                "charging_schedule_period": [{"start_period": s, "limit": l} for s, l in periods]}
    if start is not None:
        schedule["start_schedule"] = start
    if duration is not None:
        schedule["duration"] = duration
    p = {"charging_profile_id": pid, "stack_level": stack, "charging_profile_purpose": purpose,
         "charging_profile_kind": kind, "charging_schedule": schedule}
    p.update(extra)
    return p


def offered_and_power(mv):
    values = {s["measurand"]: float(s["value"]) for s in mv["meterValue"][0]["sampledValue"]}
    return values["Current.Offered"], values["Power.Active.Import"]


def wait_offered(csms, tx_id, amps, timeout=8):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mv = csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=timeout)
        offered, power = offered_and_power(mv)
        if offered == amps:
            return power
    raise AssertionError("Current.Offered never became %s A" % amps)


def set_profile(csms, connector, p):
    """SetChargingProfile.req -> the status the charger answered."""
    req = call.SetChargingProfile(connector_id=connector, cs_charging_profiles=p)
    return csms.call(req).status


def composite(csms, connector, duration, unit=None):
    req = call.GetCompositeSchedule(connector_id=connector, duration=duration)
    if unit:
        req = call.GetCompositeSchedule(connector_id=connector, duration=duration,
                                        charging_rate_unit=unit)
    return csms.call(req)


def steps(result):
    """(startPeriod, limit) of each period of a GetCompositeSchedule.conf."""
    return [(p["start_period"], p["limit"])
            for p in result.charging_schedule["charging_schedule_period"]]


def first_limit(result):
    return result.charging_schedule["charging_schedule_period"][0]["limit"]


def test_tc_056_tx_default_profile(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    now = iso(int(time.time()) - 5)
    p = profile(1, "TxDefaultProfile", 0, [(0, 10.0)], start=now)
    assert set_profile(csms, 0, p) == "Accepted"
    tx_id = start_session(csms, cp)
    power = wait_offered(csms, tx_id, 10.0)
    assert power == 10 * 230
    result = composite(csms, 1, 300)
    assert result.status == "Accepted"
    assert first_limit(result) == 10.0


def test_tc_057_tx_profile_over_tx_default(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    now = iso(int(time.time()) - 5)
    set_profile(csms, 1, profile(1, "TxDefaultProfile", 0, [(0, 16.0)], start=now))
    tx_id = start_session(csms, cp)
    wait_offered(csms, tx_id, 16.0)
    tx_profile = profile(2, "TxProfile", 0, [(0, 8.0)], start=now, transaction_id=tx_id)
    assert set_profile(csms, 1, tx_profile) == "Accepted"
    assert wait_offered(csms, tx_id, 8.0) == 8 * 230
    cp.console("swipe TAG1")
    csms.wait_for("StopTransaction")
    # TC_058: a TxProfile without a running transaction is rejected.
    late = profile(3, "TxProfile", 0, [(0, 8.0)], start=now, transaction_id=tx_id)
    assert set_profile(csms, 1, late) == "Rejected"


def test_tc_059_remote_start_with_charging_profile(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    p = profile(7, "TxProfile", 0, [(0, 12.0), (3600, 6.0)], kind="Relative")
    reply = csms.call(call.RemoteStartTransaction(id_tag="REMOTEP", connector_id=1,
                                                  charging_profile=p))
    assert reply.status == "Accepted"
    cp.console("plug 1")
    csms.wait_for("StartTransaction", {"idTag": "REMOTEP"})
    csms.wait_for_status(1, "Charging")
    time.sleep(1.5)
    result = composite(csms, 1, 3700)
    periods = result.charging_schedule["charging_schedule_period"]
    assert result.status == "Accepted" and periods[0]["limit"] == 12.0
    assert abs(periods[1]["start_period"] - 3600) <= 5 and periods[1]["limit"] == 6.0
    assert abs(parse_iso(result.schedule_start) - time.time()) < 5
    # TC_060: a remote start whose profile is not a TxProfile is rejected.
    cp.console("swipe REMOTEP")
    csms.wait_for("StopTransaction")
    bad = profile(8, "TxDefaultProfile", 0, [(0, 12.0)], kind="Relative")
    reply = csms.call(call.RemoteStartTransaction(id_tag="X", connector_id=1,
                                                  charging_profile=bad))
    assert reply.status == "Rejected"


def test_tc_066_get_composite_schedule(csms, charger):
    charger(ocpp=KEYS)
    booted(csms)
    t0 = int(time.time()) - 5  # in the past: the charger's clock may be a second behind ours
    start = iso(t0)
    set_profile(csms, 0, profile(
        1, "ChargePointMaxProfile", 0, [(0, 20.0), (200, 12.0)], start=start))
    set_profile(csms, 1, profile(
        2, "TxDefaultProfile", 0, [(0, 16.0), (100, 10.0), (300, 14.0)], start=start))
    set_profile(csms, 1, profile(
        3, "TxDefaultProfile", 1, [(0, 18.0)], start=start, duration=50))
    result = composite(csms, 1, 400, "A")
    got = steps(result)
    shift = parse_iso(result.schedule_start) - t0
    # min(ChargePointMax, Tx default stack 1 for 50 s then stack 0), as seen from scheduleStart
    expected = [(0, 18.0), (50, 16.0), (100, 10.0), (200, 10.0), (300, 12.0)]
    expected = [(max(0, s - shift), l) for s, l in expected if s - shift < 400]
    merged = []
    for s, l in expected:
        if merged and merged[-1][1] == l:
            continue
        merged.append((s, l))
    assert got == merged
    assert first_limit(composite(csms, 0, 400, "A")) == 20.0
    watts = composite(csms, 1, 400, "W").charging_schedule
    assert watts["charging_rate_unit"] == "W"
    assert watts["charging_schedule_period"][0]["limit"] == 18 * 230
    assert composite(csms, 5, 100).status == "Rejected"


def test_tc_067_clear_charging_profile(csms, charger):
    charger(ocpp=KEYS)
    booted(csms)
    start = iso(int(time.time()) - 5)
    for pid, stack in ((1, 0), (2, 1), (3, 2)):
        set_profile(csms, 1, profile(
            pid, "TxDefaultProfile", stack, [(0, 10.0 + stack)], start=start))
    assert first_limit(composite(csms, 1, 60)) == 12.0
    assert csms.call(call.ClearChargingProfile(id=3)).status == "Accepted"
    assert first_limit(composite(csms, 1, 60)) == 11.0
    reply = csms.call(call.ClearChargingProfile(connector_id=1, stack_level=1,
                                                charging_profile_purpose="TxDefaultProfile"))
    assert reply.status == "Accepted"
    assert first_limit(composite(csms, 1, 60)) == 10.0
    assert csms.call(call.ClearChargingProfile()).status == "Accepted"
    assert steps(composite(csms, 1, 60)) == [(0, 32.0)]  # no profile: the rating
    assert csms.call(call.ClearChargingProfile(id=99)).status == "Unknown"


def test_tc_072_stacking_charging_profiles(csms, charger):
    charger(ocpp=KEYS)
    booted(csms)
    # Both start a little in the past: the charger's clock (set from the Central System's
    # currentTime, whole seconds) may run a second behind this process's, and a composite
    # starting before the profiles would rightly open with the unlimited rating.
    t0 = int(time.time()) - 5
    set_profile(csms, 1, profile(
        1, "TxDefaultProfile", 0, [(0, 16.0)], start=iso(t0)))
    set_profile(csms, 1, profile(
        2, "TxDefaultProfile", 1, [(0, 8.0)], start=iso(t0), duration=120))
    result = composite(csms, 1, 300)
    shift = parse_iso(result.schedule_start) - t0
    got = steps(result)
    assert got == [(0, 8.0), (120 - shift, 16.0)]


def test_recurring_daily_profile_across_midnight(csms, charger):
    charger(ocpp=KEYS)
    booted(csms)
    # Cheap at night: 22:00-06:00 UTC 20 A, otherwise 8 A, every day.
    p = profile(5, "TxDefaultProfile", 0, [(0, 20.0), (6 * 3600, 8.0), (22 * 3600, 20.0)],
                kind="Recurring", start="2026-01-01T00:00:00Z", duration=86400,
                recurrency_kind="Daily")
    assert set_profile(csms, 1, p) == "Accepted"
    result = composite(csms, 1, 86400)
    t = parse_iso(result.schedule_start)
    periods = result.charging_schedule["charging_schedule_period"]

    def expected_at(u):
        h = u % 86400 // 3600
        return 20.0 if h >= 22 or h < 6 else 8.0
    for p_ in periods:
        assert p_["limit"] == expected_at(t + p_["start_period"])
    boundaries = sorted((t + p_["start_period"]) % 86400 for p_ in periods[1:])
    assert boundaries == [6 * 3600, 22 * 3600]
    midnight = 86400 - t % 86400                  # the next 00:00 UTC lies inside the window
    assert expected_at(t + midnight - 1) == expected_at(t + midnight) == 20.0


def test_profile_limits_are_enforced(csms, charger):
    charger(ocpp=KEYS)
    booted(csms)
    start = iso(int(time.time()))
    too_deep = profile(1, "TxDefaultProfile", 9, [(0, 10.0)], start=start)
    assert set_profile(csms, 1, too_deep) == "Rejected"
    too_long = profile(2, "TxDefaultProfile", 0, [(i * 60, 10.0) for i in range(25)], start=start)
    assert set_profile(csms, 1, too_long) == "Rejected"
    cp_max_on_1 = profile(3, "ChargePointMaxProfile", 0, [(0, 10.0)], start=start)
    assert set_profile(csms, 1, cp_max_on_1) == "Rejected"
    for pid in range(8):
        ok = profile(10 + pid, "TxDefaultProfile", pid, [(0, 10.0)], start=start)
        assert set_profile(csms, 1, ok) == "Accepted"
    ninth = profile(30, "TxDefaultProfile", 8, [(0, 10.0)], start=start)
    assert set_profile(csms, 1, ninth) == "Rejected"


def test_profiles_survive_a_reboot(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    start = iso(int(time.time()) - 5)
    set_profile(csms, 0, profile(
        1, "TxDefaultProfile", 0, [(0, 9.0)], start=start))
    cp.stop()
    cp.start()
    booted(csms)
    assert first_limit(composite(csms, 1, 60)) == 9.0


def test_composite_schedule_number_phases_and_physical_limit(csms, charger):
    """numberPhases in every period (the station's wired phases where no profile names them:
    1 on a single-phase station); with no profile limiting the connector, a schedule of its
    physical limit (station.max_current) instead of none."""
    charger(ocpp=KEYS, station={"phases": 1, "max_current": 16})
    booted(csms)
    for cid in (1, 0):
        result = composite(csms, cid, 300)
        assert result.status == "Accepted"
        sched = result.charging_schedule
        assert sched["charging_rate_unit"] == "A" and sched["duration"] == 300
        assert sched["charging_schedule_period"] == [
            {"start_period": 0, "limit": 16.0, "number_phases": 1}]
    watts = composite(csms, 1, 60, "W").charging_schedule
    assert watts["charging_schedule_period"] == [
        {"start_period": 0, "limit": 16 * 230, "number_phases": 1}]
    start = iso(int(time.time()) - 5)
    set_profile(csms, 1, profile(1, "TxDefaultProfile", 0, [(0, 10.0), (100, 6.0)], start=start))
    periods = composite(csms, 1, 300).charging_schedule["charging_schedule_period"]
    assert [p["limit"] for p in periods] == [10.0, 6.0]
    assert all(p["number_phases"] == 1 for p in periods), periods


def test_composite_schedule_three_phase_station(csms, charger):
    charger(ocpp=KEYS, station={"phases": 3, "max_current": 32})
    booted(csms)
    periods = composite(csms, 1, 60, "W").charging_schedule["charging_schedule_period"]
    assert periods == [{"start_period": 0, "limit": 32 * 230 * 3, "number_phases": 3}]
