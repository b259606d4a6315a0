"""Time arithmetic of one OCPP 1.6 charging profile: what it allows at an instant and
when that next changes. Boundaries are computed on demand (a recurring profile is never
expanded into a list), times are integer unix seconds and limits integer tenths of the
profile's unit, so the ESP32's single-precision floats never touch a timestamp or a sum.
"""
from firmware import clock
from firmware.compat import const

_DAY = const(86400)
_WEEK = const(604800)

CP_MAX = "ChargePointMaxProfile"
TX_DEFAULT = "TxDefaultProfile"
TX = "TxProfile"


def tenths(x):
    """A wire limit (float, multiple of 0.1) as integer tenths."""
    return int(round(x * 10))


def convert(t10, unit, to_unit, phases, volt10):
    """`t10` tenths of `unit` as tenths of `to_unit`; A<->W over `phases` at `volt10`
    tenths of a volt. W->A rounds down so a converted limit is never exceeded."""
    if unit == to_unit:
        return t10
    if to_unit == "W":
        return t10 * volt10 * phases // 10
    return t10 * 10 // (volt10 * phases)


def _time(s):
    return None if s is None else clock.parse_iso(s)


class Entry:
    """An installed profile: the wire dict as received plus the instants it needs,
    parsed once. Raises KeyError/ValueError/TypeError on a malformed profile."""

    def __init__(self, connector_id, profile, installed_at):
        self.connector_id = connector_id
        self.profile = profile
        self.installed_at = int(installed_at)
        self.id = profile["chargingProfileId"]
        self.purpose = profile["chargingProfilePurpose"]
        self.stack = profile["stackLevel"]
        sched = profile["chargingSchedule"]
        self.unit = sched["chargingRateUnit"]
        self.periods = sched["chargingSchedulePeriod"]
        self.duration = sched.get("duration")
        kind = profile["chargingProfileKind"]
        self.cycle = 0
        if kind == "Recurring":
            rk = profile.get("recurrencyKind")
            if rk not in ("Daily", "Weekly"):
                raise ValueError("Recurring without recurrencyKind")
            self.cycle = _WEEK if rk == "Weekly" else _DAY
        # A Relative profile's startSchedule is meaningless and ignored. An Absolute one
        # without it is "relative to start of charging" (OCPP 1.6 §7.13), see _start().
        self.anchor = None if kind == "Relative" else _time(sched.get("startSchedule"))
        if self.cycle and self.anchor is None:
            raise ValueError("Recurring without startSchedule")
        self.valid_from = _time(profile.get("validFrom"))
        self.valid_to = _time(profile.get("validTo"))

    def _start(self, t, rel_start):
        # Start of the schedule (cycle) in force at t.
        if self.cycle:
            # The anchor only fixes the phase: the recurrence also runs before it
            # (validFrom bounds a profile in time). Floor division keeps this right
            # across midnight and for t before the anchor.
            return self.anchor + (t - self.anchor) // self.cycle * self.cycle
        if self.anchor is not None:
            return self.anchor
        if self.purpose == CP_MAX:
            # No charging start exists for the grid limit: validFrom, else installation.
            return self.valid_from if self.valid_from is not None else self.installed_at
        return rel_start

    def at(self, t, rel_start):
        """(limit in tenths or None, numberPhases or None, next boundary after t or None)
        at instant t. rel_start: the start of charging for Relative schedules."""
        vf = self.valid_from
        vt = self.valid_to
        if vf is not None and t < vf:
            return None, None, vf
        if vt is not None and t >= vt:
            return None, None, None
        s = self._start(t, rel_start)
        off = t - s
        win = self.duration
        if self.cycle and (win is None or win > self.cycle):
            win = self.cycle  # periods past one recurrence are not executed (§5.16.4)
        value = phases = nxt = None
        ps = self.periods
        if off < 0:
            nxt = s
        elif win is not None and off >= win:
            # Past the schedule's duration: no limit from this profile until the next cycle.
            nxt = s + self.cycle if self.cycle else None
        else:
            i = -1
            n = len(ps)
            while i + 1 < n and ps[i + 1]["startPeriod"] <= off:
                i += 1
            if i < 0:
                nxt = s + ps[0]["startPeriod"]
            else:
                p = ps[i]
                value = tenths(p["limit"])
                phases = p.get("numberPhases")
                if i + 1 < n and (win is None or ps[i + 1]["startPeriod"] < win):
                    nxt = s + ps[i + 1]["startPeriod"]
                elif win is not None:
                    nxt = s + win
        if vt is not None and (nxt is None or nxt > vt):
            nxt = vt
        return value, phases, nxt
