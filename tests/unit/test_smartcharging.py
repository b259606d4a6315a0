"""firmware.smartcharging: profile installation, clearing, stacking and composite schedules.

Scenarios follow the OCPP 1.6 compliance test cases (TC_056, TC_057, TC_066, TC_067,
TC_072) with the expected composite periods worked out by hand in the comments.
"""
import json

from firmware.clock import iso, parse_iso
from firmware.smartcharging import SmartCharging
from tests.fakes import Log
from tests.mp import run_mp

NOW = parse_iso("2024-03-10T12:00:00Z")  # a Sunday
LIMITS = {
    "ChargeProfileMaxStackLevel": 8,
    "ChargingScheduleMaxPeriods": 24,
    "MaxChargingProfilesInstalled": 10,
    "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
}


def make(tmp_path, n=2, limits=None, **kw):
    lim = dict(LIMITS)
    lim.update(limits or {})
    return SmartCharging(str(tmp_path / "profiles.json"), n, lim, Log(), **kw)


def prof(pid, purpose, stack, periods, kind="Absolute", start=None, duration=None, unit="A",
         recurrency=None, valid_from=None, valid_to=None, tx=None, min_rate=None):
    """A csChargingProfiles dict; periods: (startPeriod, limit[, numberPhases]); times unix."""
    sched = {"chargingRateUnit": unit, "chargingSchedulePeriod": []}
    for p in periods:
        q = {"startPeriod": p[0], "limit": float(p[1])}
        if len(p) > 2:
            q["numberPhases"] = p[2]
        sched["chargingSchedulePeriod"].append(q)
    if start is not None:
        sched["startSchedule"] = iso(start)
    if duration is not None:
        sched["duration"] = duration
    if min_rate is not None:
        sched["minChargingRate"] = min_rate
    p = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
         "chargingProfileKind": kind, "chargingSchedule": sched}
    if recurrency:
        p["recurrencyKind"] = recurrency
    if valid_from is not None:
        p["validFrom"] = iso(valid_from)
    if valid_to is not None:
        p["validTo"] = iso(valid_to)
    if tx is not None:
        p["transactionId"] = tx
    return p


def periods(sched):
    return [(p["startPeriod"], p["limit"]) for p in sched["chargingSchedulePeriod"]]


def ids(sc):
    return sorted(p["chargingProfileId"] for _, p in sc.profiles())


CPMAX, TXD, TXP = "ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"


# -- TC_056: TxDefaultProfile --------------------------------------------------------------
def test_tc056_tx_default_profile_on_one_connector_and_on_all(tmp_path):
    sc = make(tmp_path)
    assert sc.limit(1, NOW) is None
    # Nothing limits the connector: its physical limit, on the wired phases.
    assert sc.composite(1, 300, "A", NOW)["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32.0, "numberPhases": 1}]
    # Started 60 s ago: 6 A until offset 100 (NOW+40), then 16 A.
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 6), (100, 16)], start=NOW - 60),
                          now=NOW) == "Accepted"
    assert sc.limit(1, NOW) == 6.0
    assert sc.limit(1, NOW + 39) == 6.0
    assert sc.limit(1, NOW + 40) == 16.0
    assert sc.next_change(1, NOW) == NOW + 40
    assert sc.limit(2, NOW) is None and sc.limit(0, NOW) is None
    c = sc.composite(1, 300, "A", NOW)
    assert c == {"duration": 300, "startSchedule": "2024-03-10T12:00:00Z", "chargingRateUnit": "A",
                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0, "numberPhases": 1},
                                            {"startPeriod": 40, "limit": 16.0,
                                             "numberPhases": 1}]}
    # On connector 0 a TxDefaultProfile applies to every connector.
    assert sc.set_profile(0, prof(2, TXD, 0, [(0, 10)], start=NOW - 60), now=NOW) == "Accepted"
    assert sc.limit(2, NOW) == 10.0
    assert sc.limit(1, NOW) == 6.0  # same stack level: the connector's own wins
    assert sc.limit(0, NOW) is None  # connector 0 is the grid: ChargePointMaxProfile only
    # ... also when the connector's own arrives after the one for all connectors.
    assert sc.set_profile(2, prof(3, TXD, 0, [(0, 12)], start=NOW - 60), now=NOW) == "Accepted"
    assert sc.limit(2, NOW) == 12.0


# -- TC_057: TxProfile over TxDefaultProfile -----------------------------------------------
def test_tc057_tx_profile_overrules_default_then_ends_with_the_transaction(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(1, prof(1, TXD, 3, [(0, 6)], start=NOW - 3600), now=NOW) == "Accepted"
    tx = prof(2, TXP, 0, [(0, 20), (600, 10)], kind="Relative", duration=1200, tx=42)
    assert sc.set_profile(1, tx, tx_id=42, now=NOW) == "Accepted"
    t0 = NOW - 300  # transaction start
    # TxProfile wins over a higher stack level and even when it allows more.
    assert sc.limit(1, NOW, tx_start=t0) == 20.0
    assert sc.limit(1, NOW + 300, tx_start=t0) == 10.0
    # After its duration (offset 1200 = NOW+900) the default takes over again.
    assert sc.limit(1, NOW + 900, tx_start=t0) == 6.0
    c = sc.composite(1, 1200, "A", NOW, tx_start=t0)
    assert periods(c) == [(0, 20.0), (300, 10.0), (900, 6.0)]
    assert sc.limit(2, NOW, tx_start=t0) is None  # other connector untouched
    sc.tx_ended(1)
    assert ids(sc) == [1]
    assert sc.limit(1, NOW, tx_start=t0) == 6.0


def test_tx_profile_transaction_id_must_match(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(1, prof(2, TXP, 0, [(0, 10)], kind="Relative", tx=41), tx_id=42,
                          now=NOW) == "Rejected"
    assert sc.set_profile(1, prof(2, TXP, 0, [(0, 10)], kind="Relative", tx=42), tx_id=42,
                          now=NOW) == "Accepted"
    # Without transactionId the running transaction is assumed (profile from RemoteStart).
    assert sc.set_profile(2, prof(3, TXP, 0, [(0, 10)], kind="Relative"), tx_id=7,
                          now=NOW) == "Accepted"


# -- TC_066: three purposes merged -----------------------------------------------------------
def tc066(sc):
    # P1 grid limit 10 A all day; P2 default 6/12/8 A for 400 s; P3 TxProfile 7/11 A
    # for 150 s starting 100 s from now.
    assert sc.set_profile(0, prof(1, CPMAX, 0, [(0, 10)], start=NOW, duration=86400),
                          now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(2, TXD, 0, [(0, 6), (50, 12), (200, 8)], start=NOW,
                                  duration=400), now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(3, TXP, 0, [(0, 7), (80, 11)], start=NOW + 100, duration=150,
                                  tx=5), tx_id=5, now=NOW) == "Accepted"


def test_tc066_composite_is_the_minimum_of_max_and_tx_side(tmp_path):
    sc = make(tmp_path)
    tc066(sc)
    # By hand, offsets from NOW:      Tx side                 max  -> composite
    #   0- 50  P2 6 (P3 not started)                           10      6
    #  50-100  P2 12                                           10     10
    # 100-180  P3 7                                            10      7
    # 180-250  P3 11 (P3 present, so P2's 8 from 200 is moot)  10     10
    # 250-400  P3 over -> P2 8                                 10      8
    c = sc.composite(1, 400, "A", NOW)
    assert c["duration"] == 400 and c["startSchedule"] == iso(NOW) and c["chargingRateUnit"] == "A"
    assert periods(c) == [(0, 6.0), (50, 10.0), (100, 7.0), (180, 10.0), (250, 8.0)]
    # The grid connection sees only the ChargePointMaxProfile.
    assert periods(sc.composite(0, 400, "A", NOW)) == [(0, 10.0)]
    assert sc.next_change(1, NOW) == NOW + 50
    # P2's boundary counts, though it changes nothing
    assert sc.next_change(1, NOW + 180) == NOW + 200


def test_tc066_in_watts(tmp_path):
    sc = make(tmp_path, phases=3)  # 230 V x 3 phases = 690 W per A
    tc066(sc)
    c = sc.composite(1, 400, "W", NOW)
    assert c["chargingRateUnit"] == "W"
    assert periods(c) == [(0, 4140.0), (50, 6900.0), (100, 4830.0), (180, 6900.0), (250, 5520.0)]


# -- TC_067: clearing --------------------------------------------------------------------------
def test_tc067_clear_by_id_by_criteria_and_all(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(0, prof(1, CPMAX, 0, [(0, 32)], start=NOW), now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(2, TXD, 1, [(0, 6), (60, 8), (200, 10)], start=NOW,
                                  duration=400), now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(3, TXD, 2, [(0, 12)], start=NOW), now=NOW) == "Accepted"
    assert sc.set_profile(0, prof(4, TXD, 1, [(0, 14)], start=NOW), now=NOW) == "Accepted"
    assert sc.limit(1, NOW) == 12.0
    assert sc.clear(profile_id=99) == "Unknown"
    assert sc.clear(profile_id=2) == "Accepted"
    assert ids(sc) == [1, 3, 4]
    # All given criteria must match: id 3 has stack 2, id 2 is gone.
    assert sc.clear(connector_id=1, purpose=TXD, stack_level=1) == "Unknown"
    assert ids(sc) == [1, 3, 4]
    assert sc.clear(purpose=TXD, stack_level=1) == "Accepted"  # id 4, on connector 0
    assert ids(sc) == [1, 3]
    assert sc.clear(connector_id=0) == "Accepted"
    assert ids(sc) == [3]
    assert periods(sc.composite(1, 400, "A", NOW)) == [(0, 12.0)]
    # Survives a restart.
    assert ids(make(tmp_path)) == [3]
    assert sc.clear() == "Accepted"
    assert sc.profiles() == []
    assert periods(sc.composite(1, 400, "A", NOW)) == [(0, 32.0)] and sc.limit(1, NOW) is None
    assert sc.clear() == "Unknown"
    assert make(tmp_path).profiles() == []


def test_clear_by_id_ignores_other_criteria(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(1, prof(3, TXD, 2, [(0, 12)], start=NOW), now=NOW) == "Accepted"
    assert sc.clear(profile_id=3, connector_id=2, purpose=CPMAX) == "Accepted"
    assert sc.profiles() == []


# -- TC_072: stacking --------------------------------------------------------------------------
def test_tc072_higher_stack_until_it_ends_then_the_lower(tmp_path):
    sc = make(tmp_path, n=1)
    common = dict(start=NOW, valid_from=NOW - 10, valid_to=NOW + 401)
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 6), (100, 8), (200, 10)], duration=400,
                                  **common), now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(2, TXD, 1, [(0, 10), (100, 7)], duration=150, **common),
                          now=NOW) == "Accepted"
    # 0-100 P2 10 | 100-150 P2 7 | P2 over: 150-200 P1 8 | 200-400 P1 10
    assert periods(sc.composite(1, 400, "A", NOW)) == [(0, 10.0), (100, 7.0), (150, 8.0),
                                                       (200, 10.0)]
    # P1 ends at 400 too: nothing limits, the station rating (32 A) is reported.
    c = sc.composite(1, 500, "A", NOW)
    assert periods(c) == [(0, 10.0), (100, 7.0), (150, 8.0), (200, 10.0), (400, 32.0)]
    assert c["duration"] == 500
    assert sc.limit(1, NOW + 150) == 8.0
    assert sc.next_change(1, NOW) == NOW + 100
    assert sc.next_change(1, NOW + 150) == NOW + 200
    assert sc.limit(1, NOW + 400) is None
    assert sc.next_change(1, NOW + 400) == NOW + 401  # validTo, harmless
    assert sc.next_change(1, NOW + 401) is None


# -- Recurring -----------------------------------------------------------------------------------
def test_daily_recurring_across_midnight(tmp_path):
    sc = make(tmp_path, n=1)
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 25)], start=parse_iso("2024-01-01T00:00:00Z")),
                          now=NOW) == "Accepted"
    # 22:00 -> 02:00 10 A, 02:00 -> 06:00 20 A, then nothing from it until 22:00.
    night = prof(2, TXD, 1, [(0, 10), (14400, 20)], kind="Recurring", recurrency="Daily",
                 start=parse_iso("2024-01-01T22:00:00Z"), duration=28800)
    assert sc.set_profile(1, night, now=NOW) == "Accepted"
    for when, amps in [("2024-03-10T21:59:59Z", 25.0), ("2024-03-10T22:00:00Z", 10.0),
                       ("2024-03-10T23:30:00Z", 10.0), ("2024-03-11T01:59:59Z", 10.0),
                       ("2024-03-11T02:00:00Z", 20.0), ("2024-03-11T05:59:59Z", 20.0),
                       ("2024-03-11T06:00:00Z", 25.0), ("2024-02-29T23:00:00Z", 10.0),
                       ("2024-03-01T03:00:00Z", 20.0), ("2023-12-31T23:00:00Z", 10.0)]:
        assert sc.limit(1, parse_iso(when)) == amps, when
    for when, change in (("2024-03-10T23:30:00Z", "2024-03-11T02:00:00Z"),
                         ("2024-03-11T06:00:00Z", "2024-03-11T22:00:00Z")):
        assert sc.next_change(1, parse_iso(when)) == parse_iso(change), when
    # From 21:00 for 10 h: 25 | 22:00 10 | 02:00 20 | 06:00 25
    c = sc.composite(1, 36000, None, parse_iso("2024-03-10T21:00:00Z"))
    assert c["chargingRateUnit"] == "A"
    assert periods(c) == [(0, 25.0), (3600, 10.0), (18000, 20.0), (32400, 25.0)]
    # A week of it stays small: two changes a night.
    assert len(sc.composite(1, 7 * 86400, "A", NOW)["chargingSchedulePeriod"]) == 1 + 3 * 7


def test_recurring_duration_longer_than_the_cycle_is_cut(tmp_path):
    sc = make(tmp_path, n=1)
    # Daily from 00:00 with duration 100000 s: the period at 90000 s (01:00 the next
    # day) is never run, the next day restarts at period 0 (§5.16.4).
    p = prof(1, TXD, 0, [(0, 10), (86000, 12), (90000, 99)], kind="Recurring", recurrency="Daily",
             start=parse_iso("2024-01-01T00:00:00Z"), duration=100000)
    assert sc.set_profile(1, p, now=NOW) == "Accepted"
    eleven = parse_iso("2024-03-10T23:00:00Z")
    assert sc.next_change(1, eleven + 3300) == eleven + 3600  # 23:55 -> midnight
    assert periods(sc.composite(1, 7200, "A", eleven)) == [(0, 10.0), (3200, 12.0), (3600, 10.0)]
    assert sc.limit(1, eleven + 3600 + 3600) == 10.0


def test_weekly_recurring(tmp_path):
    sc = make(tmp_path, n=1)
    monday = parse_iso("2024-03-04T08:00:00Z")
    # Mondays 08:00-18:00 6 A; the period at 40000 s lies past the duration: never run.
    p = prof(1, TXD, 0, [(0, 6), (40000, 99)], kind="Recurring", recurrency="Weekly",
             start=monday, duration=36000)
    assert sc.set_profile(1, p, now=NOW) == "Accepted"
    for when, amps in [("2024-03-11T09:00:00Z", 6.0), ("2024-03-11T07:59:59Z", None),
                       ("2024-03-11T17:59:59Z", 6.0), ("2024-03-11T18:00:00Z", None),
                       ("2024-03-11T19:10:00Z", None), ("2024-03-12T09:00:00Z", None),
                       ("2024-03-10T09:00:00Z", None), ("2024-02-26T09:00:00Z", 6.0),
                       ("2024-04-01T08:00:00Z", 6.0)]:
        assert sc.limit(1, parse_iso(when)) == amps, when
    for when, change in (("2024-03-11T09:00:00Z", "2024-03-11T18:00:00Z"),
                         ("2024-03-11T18:00:00Z", "2024-03-18T08:00:00Z")):
        assert sc.next_change(1, parse_iso(when)) == parse_iso(change), when
    # validFrom bounds the recurrence.
    p2 = dict(p, validFrom="2024-03-04T00:00:00Z")
    assert sc.set_profile(1, p2, now=NOW) == "Accepted"
    assert sc.limit(1, parse_iso("2024-02-26T09:00:00Z")) is None
    assert sc.limit(1, parse_iso("2024-03-04T09:00:00Z")) == 6.0


# -- Relative -------------------------------------------------------------------------------------
def test_relative_starts_at_transaction_start_or_now(tmp_path):
    sc = make(tmp_path)
    # A startSchedule on a Relative profile means nothing and is ignored.
    tx = prof(1, TXP, 0, [(0, 16), (600, 8), (1200, 10)], kind="Relative", start=NOW + 86400)
    assert sc.set_profile(1, tx, tx_id=1, now=NOW) == "Accepted"
    assert sc.limit(1, NOW, tx_start=NOW - 700) == 8.0
    assert sc.next_change(1, NOW, tx_start=NOW - 700) == NOW + 500
    assert periods(sc.composite(1, 1000, "A", NOW, tx_start=NOW - 700)) == [(0, 8.0), (500, 10.0)]
    # A default without a transaction: as if one started at the query time.
    rel = prof(2, TXD, 0, [(0, 16), (600, 8)], kind="Relative")
    assert sc.set_profile(2, rel, now=NOW) == "Accepted"
    assert sc.limit(2, NOW + 5000) == 16.0
    assert periods(sc.composite(2, 1000, "A", NOW)) == [(0, 16.0), (600, 8.0)]
    assert periods(sc.composite(2, 1000, "A", NOW, tx_start=NOW - 600)) == [(0, 8.0)]
    # Absolute without startSchedule is relative to the start of charging (§7.13).
    sc.clear()
    assert sc.set_profile(2, prof(3, TXD, 0, [(0, 16), (600, 8)]), now=NOW) == "Accepted"
    assert sc.limit(2, NOW, tx_start=NOW - 600) == 8.0
    assert sc.limit(2, NOW) == 16.0


def test_charge_point_max_without_start_is_anchored_at_installation(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(0, prof(1, CPMAX, 0, [(0, 20), (600, 10)], kind="Relative"),
                          now=NOW - 1000) == "Accepted"
    assert sc.limit(0, NOW) == 10.0
    assert sc.limit(1, NOW, tx_start=NOW) == 10.0
    assert sc.limit(0, NOW - 500) == 20.0
    # ... or at validFrom when given.
    assert sc.set_profile(0, prof(1, CPMAX, 0, [(0, 20), (600, 10)], valid_from=NOW - 100),
                          now=NOW - 1000) == "Accepted"
    assert sc.limit(0, NOW) == 20.0
    assert sc.next_change(0, NOW) == NOW + 500


# -- validFrom / validTo --------------------------------------------------------------------------
def test_valid_from_and_valid_to_bound_a_profile(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 16)], start=NOW - 3600), now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(2, TXD, 1, [(0, 6)], start=NOW - 3600, valid_from=NOW + 100,
                                  valid_to=NOW + 200), now=NOW) == "Accepted"
    assert periods(sc.composite(1, 300, "A", NOW)) == [(0, 16.0), (100, 6.0), (200, 16.0)]
    assert sc.next_change(1, NOW) == NOW + 100
    assert sc.next_change(1, NOW + 100) == NOW + 200
    assert sc.limit(1, NOW + 199) == 6.0
    assert sc.limit(1, NOW + 200) == 16.0  # validTo is exclusive
    # An absolute schedule that starts later gives nothing before its start.
    assert sc.set_profile(1, prof(3, TXD, 2, [(0, 3)], start=NOW + 250, duration=20),
                          now=NOW) == "Accepted"
    assert periods(sc.composite(1, 300, "A", NOW)) == [(0, 16.0), (100, 6.0), (200, 16.0),
                                                       (250, 3.0), (270, 16.0)]


# -- units ----------------------------------------------------------------------------------------
def test_watts_and_amps_conversion(tmp_path):
    sc = make(tmp_path)  # 230 V, 1 phase configured
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 11000, 3)], unit="W", start=NOW),
                          now=NOW) == "Accepted"
    assert sc.limit(1, NOW) == 15.9  # 11000 / 690 = 15.94, rounded down
    c = sc.composite(1, 60, None, NOW)  # only W profiles concerned: reported in W
    assert c["chargingRateUnit"] == "W"
    assert c["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 11000.0, "numberPhases": 3}]
    assert sc.set_profile(2, prof(2, TXD, 0, [(0, 16)], start=NOW), now=NOW) == "Accepted"
    assert periods(sc.composite(2, 60, "W", NOW)) == [(0, 3680.0)]  # configured phases: 1
    assert sc.set_profile(2, prof(2, TXD, 0, [(0, 16, 3)], start=NOW), now=NOW) == "Accepted"
    assert sc.composite(2, 60, "W", NOW)["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 11040.0, "numberPhases": 3}]
    assert sc.set_profile(2, prof(2, TXD, 0, [(0, 7359)], unit="W", start=NOW),
                          now=NOW) == "Accepted"
    assert sc.limit(2, NOW) == 31.9
    # The grid limit in W against a default in A: compared in the unit asked for.
    assert sc.set_profile(0, prof(3, CPMAX, 0, [(0, 3000)], unit="W", start=NOW),
                          now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 16)], start=NOW), now=NOW) == "Accepted"
    assert sc.limit(1, NOW) == 13.0  # 3000 W / 230 V = 13.04 A < 16 A
    c = sc.composite(1, 60, None, NOW)
    assert c["chargingRateUnit"] == "A" and periods(c) == [(0, 13.0)]
    assert periods(sc.composite(1, 60, "W", NOW)) == [(0, 3000.0)]


def test_min_charging_rate_is_reported(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 16)], start=NOW, min_rate=6.0),
                          now=NOW) == "Accepted"
    assert sc.composite(1, 60, "A", NOW)["minChargingRate"] == 6.0
    assert sc.composite(1, 60, "W", NOW)["minChargingRate"] == 1380.0
    assert sc.limit(1, NOW) == 16.0
    # From the Tx-side profile in force: the higher stack level.
    assert sc.set_profile(1, prof(2, TXD, 1, [(0, 16)], start=NOW, min_rate=8.0),
                          now=NOW) == "Accepted"
    assert sc.composite(1, 60, "A", NOW)["minChargingRate"] == 8.0
    assert sc.set_profile(1, prof(3, TXD, 2, [(0, 16)], start=NOW), now=NOW) == "Accepted"
    assert "minChargingRate" not in sc.composite(1, 60, "A", NOW)


# -- replacement ---------------------------------------------------------------------------------
def test_replacement_by_id_and_by_stack_and_purpose(tmp_path):
    sc = make(tmp_path)
    assert sc.set_profile(1, prof(5, TXD, 0, [(0, 6)], start=NOW), now=NOW) == "Accepted"
    assert sc.set_profile(2, prof(5, TXD, 0, [(0, 7)], start=NOW), now=NOW) == "Accepted"
    assert sc.profiles() == [(2, prof(5, TXD, 0, [(0, 7)], start=NOW))]
    assert sc.set_profile(2, prof(6, TXD, 0, [(0, 8)], start=NOW), now=NOW) == "Accepted"
    assert ids(sc) == [6]  # same stackLevel and purpose on the same connector
    assert sc.set_profile(1, prof(7, TXD, 0, [(0, 9)], start=NOW), now=NOW) == "Accepted"
    assert sc.set_profile(0, prof(8, TXD, 0, [(0, 10)], start=NOW), now=NOW) == "Accepted"
    assert ids(sc) == [6, 7, 8]  # other connectors: kept side by side
    assert sc.limit(1, NOW) == 9.0 and sc.limit(2, NOW) == 8.0
    assert sc.set_profile(0, prof(9, TXD, 1, [(0, 11)], start=NOW), now=NOW) == "Accepted"
    assert sc.limit(1, NOW) == 11.0  # a higher stack on connector 0 wins
    # A future validFrom replaces now and leaves a gap until then (§3.13.2).
    assert sc.set_profile(0, prof(10, TXD, 1, [(0, 12)], start=NOW, valid_from=NOW + 60),
                          now=NOW) == "Accepted"
    assert 9 not in ids(sc)
    assert sc.limit(1, NOW) == 9.0 and sc.limit(1, NOW + 60) == 12.0


# -- rejections ----------------------------------------------------------------------------------
def test_rejections_leave_everything_unchanged(tmp_path):
    sc = make(tmp_path, limits={"ChargeProfileMaxStackLevel": "3", "ChargingScheduleMaxPeriods": 4,
                                "MaxChargingProfilesInstalled": 3,
                                "ChargingScheduleAllowedChargingRateUnit": "Current"})
    assert sc.set_profile(1, prof(1, TXD, 3, [(0, 6)], start=NOW), now=NOW) == "Accepted"
    path = tmp_path / "profiles.json"
    before = path.read_text()
    bad = [
        (1, prof(2, TXD, 4, [(0, 6)], start=NOW), None),                     # stack level too high
        (1, prof(2, TXD, -1, [(0, 6)], start=NOW), None),
        # 5 periods
        (1, prof(2, TXD, 0, [(0, 6), (1, 6), (2, 6), (3, 6), (4, 6)], start=NOW), None),
        (1, prof(2, TXD, 0, [], start=NOW), None),
        (1, prof(2, TXP, 0, [(0, 6)], kind="Relative"), None),             # TxProfile without tx
        (0, prof(2, TXP, 0, [(0, 6)], kind="Relative"), 5),           # TxProfile on connector 0
        (1, prof(2, CPMAX, 0, [(0, 6)], start=NOW), None),            # grid limit on connector 1
        (1, prof(2, TXD, 0, [(0, 6000)], unit="W", start=NOW), None),     # unit not allowed
        (3, prof(2, TXD, 0, [(0, 6)], start=NOW), None),                   # no connector 3
        (-1, prof(2, TXD, 0, [(0, 6)], start=NOW), None),
        (1, prof(2, TXD, 0, [(0, 6)], kind="Recurring", start=NOW), None),  # no recurrencyKind
        (1, prof(2, TXD, 0, [(0, 6)], kind="Recurring", recurrency="Daily"), None),  # no anchor
        (1, prof(2, TXD, 0, [(0, 6), (100, 7), (50, 8)], start=NOW), None),  # not ascending
        (1, prof(2, TXD, 0, [(0, -6)], start=NOW), None),
        (1, prof(2, TXD, 0, [(0, 6, 4)], start=NOW), None),                # 4 phases
        (1, prof(2, TXD, 0, [(0, 6)], start=NOW, duration=-1), None),
        (1, {"chargingProfileId": 2, "stackLevel": 0}, None),               # malformed
    ]
    for c, p, tx in bad:
        assert sc.set_profile(c, p, tx_id=tx, now=NOW) == "Rejected", p
    assert ids(sc) == [1] and path.read_text() == before
    assert sc.set_profile(1, prof(2, TXD, 0, [(0, 6), (1, 6), (2, 6), (3, 6)], start=NOW),
                          now=NOW) == "Accepted"
    assert sc.set_profile(0, prof(3, CPMAX, 0, [(0, 16)], start=NOW), now=NOW) == "Accepted"
    # Three installed: a fourth is too many, a replacement is not.
    assert sc.set_profile(2, prof(4, TXD, 0, [(0, 6)], start=NOW), now=NOW) == "Rejected"
    # id 3 moves to connector 2; id 5 replaces id 2 (same connector, purpose and stack level)
    assert sc.set_profile(2, prof(3, TXD, 0, [(0, 6)], start=NOW), now=NOW) == "Accepted"
    assert sc.set_profile(1, prof(5, TXD, 0, [(0, 7)], start=NOW), now=NOW) == "Accepted"
    assert ids(sc) == [1, 3, 5]


def test_power_only_station(tmp_path):
    sc = make(tmp_path, limits={"ChargingScheduleAllowedChargingRateUnit": "Power"})
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 6)], start=NOW), now=NOW) == "Rejected"
    assert sc.set_profile(1, prof(1, TXD, 0, [(0, 6000)], unit="W", start=NOW),
                          now=NOW) == "Accepted"


# -- persistence / bounds ------------------------------------------------------------------------
def test_persistence_round_trip_and_unreadable_file(tmp_path):
    sc = make(tmp_path)
    tc066(sc)
    again = make(tmp_path)
    assert again.profiles() == sc.profiles()
    assert again.composite(1, 400, "A", NOW) == sc.composite(1, 400, "A", NOW)
    assert not (tmp_path / "profiles.json.tmp").exists()
    (tmp_path / "profiles.json").write_text("{not json")
    assert make(tmp_path).profiles() == []
    bad_profile = {"profiles": [[1, NOW, {"stackLevel": 0}]]}
    (tmp_path / "profiles.json").write_text(json.dumps(bad_profile))
    broken = make(tmp_path)
    assert broken.profiles() == [] and broken.log.lines


def test_composite_bounds(tmp_path):
    sc = make(tmp_path, n=1)
    assert sc.composite(2, 60, "A", NOW) is None  # unknown connector
    # Installed, but limiting nothing in the window: the physical limit.
    assert sc.set_profile(1, prof(2, TXD, 0, [(0, 6)], start=NOW + 60), now=NOW) == "Accepted"
    assert periods(sc.composite(1, 60, "A", NOW)) == [(0, 32.0)]
    assert periods(sc.composite(1, 61, "A", NOW)) == [(0, 32.0), (60, 6.0)]
    assert sc.clear() == "Accepted"
    # 24 alternating 10-minute periods a day, for a week: cut at 128 periods.
    day = prof(1, TXD, 0, [(i * 600, 6 + i % 2) for i in range(24)], kind="Recurring",
               recurrency="Daily", start=parse_iso("2024-01-01T00:00:00Z"), duration=14400)
    assert sc.set_profile(1, day, now=NOW) == "Accepted"
    c = sc.composite(1, 7 * 86400, "A", parse_iso("2024-03-10T00:00:00Z"))
    out = c["chargingSchedulePeriod"]
    assert len(out) == 128
    assert c["duration"] > out[-1]["startPeriod"]
    assert c["duration"] < 7 * 86400


# -- MicroPython ---------------------------------------------------------------------------------
MP_SCRIPT = """
import json, sys
from firmware.smartcharging import SmartCharging
from tests.fakes import Log
with open(sys.argv[1]) as f:
    args = json.load(f)
sc = SmartCharging(args["path"], 2, args["limits"], Log(), phases=3)
for c, p, tx in args["set"]:
    print(sc.set_profile(c, p, tx, args["now"]))
now = args["now"]
print(json.dumps([sc.composite(1, 400, "W", now), sc.composite(1, 400, "A", now),
                  sc.limit(1, now + 120), sc.next_change(1, now + 120)]))
again = SmartCharging(args["path"], 2, args["limits"], Log(), phases=3)  # reloaded from flash
print(again.profiles() == sc.profiles()
      and again.composite(1, 400, "A", now) == sc.composite(1, 400, "A", now))
"""


def test_micropython_gives_the_same_composite(tmp_path):
    sets = [
        (0, prof(1, CPMAX, 0, [(0, 10)], start=NOW, duration=86400), None),
        (1, prof(2, TXD, 0, [(0, 6), (50, 12), (200, 8)], start=NOW, duration=400), None),
        (1, prof(3, TXP, 0, [(0, 7), (80, 11)], start=NOW + 100, duration=150, tx=5), 5),
        # Daily, 30 s at 9.5 A from NOW+300 (anchored on the day before).
        (1, prof(4, TXD, 1, [(0, 9.5), (14400, 20)], kind="Recurring", recurrency="Daily",
                 start=NOW + 300 - 86400, duration=30), None),
    ]
    args = {"path": str(tmp_path / "mp.json"), "limits": LIMITS, "now": NOW, "set": sets}
    # Through a file: the unix port aborts on command-line arguments over ~256 bytes.
    (tmp_path / "args.json").write_text(json.dumps(args))
    proc = run_mp(MP_SCRIPT, tmp_path / "args.json", timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().split("\n")
    assert lines[:4] == ["Accepted"] * 4
    sc = make(tmp_path, phases=3)
    for c, p, tx in sets:
        sc.set_profile(c, p, tx, NOW)
    expected = [sc.composite(1, 400, "W", NOW), sc.composite(1, 400, "A", NOW),
                sc.limit(1, NOW + 120), sc.next_change(1, NOW + 120)]
    assert json.loads(lines[4]) == expected
    assert lines[5] == "True"
    assert periods(expected[1]) == [(0, 6.0), (50, 10.0), (100, 7.0), (180, 10.0), (250, 8.0),
                                    (300, 9.5), (330, 8.0)]
