"""OCPP 1.6 Smart Charging: installed charging profiles and the limits they impose.

Pure logic (no I/O but the profile file): the caller feeds in unix seconds and gets
back limits, the next instant anything changes, and GetCompositeSchedule payloads.

Semantics (OCPP 1.6 §3.13, §5.5, §5.7, §5.16, §7.8-7.13):
- Per connector, at each instant: the Tx side is the highest-stackLevel TxProfile of
  that connector that gives a limit at that instant; when none does, the
  highest-stackLevel TxDefaultProfile of that connector or of connector 0 (a tie goes
  to the connector's own). The result is the minimum of the Tx side and the
  highest-stackLevel ChargePointMaxProfile, each converted to the unit asked for.
  Connector 0 sees the ChargePointMaxProfiles only.
- A profile gives no limit outside validFrom..validTo, before its schedule starts, after
  its duration (per cycle for Recurring) or before its first period: the instant then
  falls through to lower stack levels, then to "no limit".
- Schedule start: Absolute = startSchedule; Recurring = startSchedule's time of day
  (Daily) or of week (Weekly), repeated both ways; Relative, and Absolute without
  startSchedule ("relative to start of charging"), = the transaction start, or the
  query time when no transaction runs (what a transaction started now would get).
  A ChargePointMaxProfile has no charging start: validFrom, else its installation time.
- A->W: limit * voltage * phases, phases = the period's numberPhases, else the
  configured phases (not the spec's assumed 3: the station knows its wiring). W->A
  rounds down to 0.1 A. minChargingRate is stored and reported, never enforced.
- A ChargePointMaxProfile limits the whole station; with several connectors it is
  applied to each one in full, not shared (local load balancing is not done here).
"""
import json

from firmware import clock
from firmware import store
from firmware.compat import const
from firmware.schedule import CP_MAX, TX, TX_DEFAULT, Entry, convert, tenths

_MAX_OUT = const(128)     # composite periods per reply: keeps GetCompositeSchedule.conf < 8 kB
_MAX_STEPS = const(2000)  # boundaries visited per composite (bounds CPU time, not output)
_UNIT_NAMES = ("Current", "A", "Power", "W")  # configuration word -> unit, pairwise


class SmartCharging:
    def __init__(self, path, n_connectors, limits, log, voltage=230.0, phases=1, max_amps=32.0):
        """limits: the live OCPP configuration (ChargeProfileMaxStackLevel,
        ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled,
        ChargingScheduleAllowedChargingRateUnit), read on every check.
        max_amps: the station rating, reported in a composite schedule where no
        profile limits."""
        self.path = path
        self.n = n_connectors
        self.limits = limits
        self.log = log
        self.volt10 = tenths(voltage)
        self.phases = phases
        self.max10 = tenths(max_amps)
        self._entries = []
        self._load()

    # -- persistence ----------------------------------------------------------------------
    def _load(self):
        data = store.read_json(self.path, None)
        rows = data.get("profiles") if isinstance(data, dict) else None
        for row in rows or ():
            try:
                self._entries.append(Entry(row[0], row[2], row[1]))
            except (KeyError, IndexError, TypeError, ValueError) as e:
                self.log.warn("sc", "dropping unreadable stored profile: %r" % (e,))

    def _save(self):
        rows = [[e.connector_id, e.installed_at, e.profile] for e in self._entries]
        store.write_atomic(self.path, json.dumps({"profiles": rows}))

    # -- SetChargingProfile -----------------------------------------------------------------
    def _limit(self, key, default):
        try:
            return int(self.limits.get(key, default))
        except (TypeError, ValueError):
            return default

    def _units(self):
        raw = self.limits.get("ChargingScheduleAllowedChargingRateUnit", "Current,Power")
        out = []
        for u in str(raw).split(","):
            u = u.strip()
            for i in range(0, len(_UNIT_NAMES), 2):
                if u == _UNIT_NAMES[i] or u == _UNIT_NAMES[i + 1]:
                    out.append(_UNIT_NAMES[i + 1])
        return out

    def _problem(self, c, p, tx_id):
        # Why `p` may not be installed on connector c, or None.
        purpose = p["chargingProfilePurpose"]
        if not 0 <= c <= self.n:
            return "no connector %d" % c
        if purpose == CP_MAX and c != 0:
            return "ChargePointMaxProfile only on connector 0"
        if purpose == TX:
            if c == 0:
                return "TxProfile not on connector 0"
            if tx_id is None:
                return "no transaction on connector %d" % c
            ptx = p.get("transactionId")
            if ptx is not None and ptx != tx_id:
                return "transactionId %r is not the running %r" % (ptx, tx_id)
        stack = p["stackLevel"]
        if not 0 <= stack <= self._limit("ChargeProfileMaxStackLevel", 8):
            return "stackLevel %d out of range" % stack
        sched = p["chargingSchedule"]
        periods = sched["chargingSchedulePeriod"]
        if not periods or len(periods) > self._limit("ChargingScheduleMaxPeriods", 24):
            return "%d periods" % len(periods)
        if sched["chargingRateUnit"] not in self._units():
            return "rate unit %s not allowed" % sched["chargingRateUnit"]
        prev = -1
        for q in periods:
            if q["startPeriod"] <= prev:
                return "startPeriod %d not ascending" % q["startPeriod"]
            prev = q["startPeriod"]
            if q["limit"] < 0 or q.get("numberPhases") not in (None, 1, 2, 3):
                return "bad period at %d" % prev
        d = sched.get("duration")
        if d is not None and d < 0:
            return "negative duration"
        return None

    def set_profile(self, connector_id, profile, tx_id=None, now=0):
        """Install `profile` (csChargingProfiles, wire names) -> "Accepted" | "Rejected".
        tx_id: the transaction running on connector_id, or None."""
        try:
            why = self._problem(connector_id, profile, tx_id)
            entry = None if why else Entry(connector_id, profile, now)
        except (KeyError, TypeError, ValueError) as e:
            why = "malformed: %r" % (e,)
        if why:
            self.log.warn("sc", "profile rejected: " + why)
            return "Rejected"
        # Same id anywhere, or same stackLevel and purpose on this connector: replaced (§5.16.3).
        keep = [e for e in self._entries
                if e.id != entry.id and not (e.connector_id == connector_id
                                             and e.purpose == entry.purpose
                                             and e.stack == entry.stack)]
        if len(keep) + 1 > self._limit("MaxChargingProfilesInstalled", 8):
            self.log.warn("sc", "profile rejected: %d profiles installed" % len(keep))
            return "Rejected"
        keep.append(entry)
        self._entries = keep
        self._save()
        self.log.info("sc", "profile %d installed: %s stack %d on connector %d"
                      % (entry.id, entry.purpose, entry.stack, connector_id))
        return "Accepted"

    # -- ClearChargingProfile ---------------------------------------------------------------
    def clear(self, profile_id=None, connector_id=None, purpose=None, stack_level=None):
        """-> "Accepted" when at least one profile was removed, else "Unknown". With an id,
        that profile only (the other criteria are ignored, §5.5 "either ... or"); otherwise
        every profile matching all given criteria; no criteria: all of them."""
        if profile_id is not None:
            keep = [e for e in self._entries if e.id != profile_id]
        else:
            keep = [e for e in self._entries
                    if not ((connector_id is None or e.connector_id == connector_id)
                            and (purpose is None or e.purpose == purpose)
                            and (stack_level is None or e.stack == stack_level))]
        if len(keep) == len(self._entries):
            return "Unknown"
        self.log.info("sc", "%d profile(s) cleared" % (len(self._entries) - len(keep)))
        self._entries = keep
        self._save()
        return "Accepted"

    def tx_ended(self, connector_id):
        """The transaction on connector_id ended: its TxProfiles go (§3.13.1)."""
        keep = [e for e in self._entries
                if not (e.purpose == TX and e.connector_id == connector_id)]
        if len(keep) != len(self._entries):
            self._entries = keep
            self._save()

    def profiles(self):
        """[(connector_id, profile)] as installed."""
        return [(e.connector_id, e.profile) for e in self._entries]

    # -- evaluation -------------------------------------------------------------------------
    def _relevant(self, c):
        if c == 0:
            return [e for e in self._entries if e.purpose == CP_MAX]
        return [e for e in self._entries
                if e.purpose == CP_MAX or e.connector_id == c
                or (e.purpose == TX_DEFAULT and e.connector_id == 0)]

    def _at(self, entries, t, rel_start, unit):
        """(limit in tenths of unit or None, numberPhases given or None, next boundary or None)."""
        nxt = None
        best = {}  # purpose -> (rank, entry, tenths, phases)
        for e in entries:
            v, ph, n = e.at(t, rel_start)
            if n is not None and (nxt is None or n < nxt):
                nxt = n
            if v is None:
                continue
            rank = e.stack * 2 + (1 if e.connector_id else 0)  # a tie goes to the connector's own
            b = best.get(e.purpose)
            if b is None or rank > b[0]:
                best[e.purpose] = (rank, e, v, ph)
        value = phases = None
        for purpose in (CP_MAX, TX if TX in best else TX_DEFAULT):
            b = best.get(purpose)
            if b is None:
                continue
            e, v, ph = b[1], b[2], b[3]
            v = convert(v, e.unit, unit, ph or self.phases, self.volt10)
            if value is None or v <= value:  # on a tie the Tx side's phases are reported
                value, phases = v, ph
        return value, phases, nxt

    def _rel(self, tx_start, now):
        return int(tx_start) if tx_start is not None else now

    def limit(self, connector_id, now, tx_start=None):
        """The current limit in A for connector_id (0 = the station), or None (no limit)."""
        now = int(now)
        v = self._at(self._relevant(connector_id), now, self._rel(tx_start, now), "A")[0]
        return None if v is None else v / 10

    def next_change(self, connector_id, now, tx_start=None):
        """Unix seconds of the next instant a profile of connector_id changes, or None."""
        now = int(now)
        return self._at(self._relevant(connector_id), now, self._rel(tx_start, now), "A")[2]

    def composite(self, connector_id, duration, unit, now, tx_start=None):
        """chargingSchedule for GetCompositeSchedule.conf from `now` for `duration` s, or None
        when connector_id is unknown. unit: "A", "W" or None (W if every profile concerned
        is in W, else A). Stretches no profile limits report the physical limit (the station
        rating), so does the whole window when nothing limits it. Every period names its
        numberPhases: the profile's, else the wired phases (1 on a single-phase station).
        Past _MAX_OUT periods the schedule (and its duration) is cut short."""
        if not 0 <= connector_id <= self.n or duration < 0:
            return None
        now = int(now)
        entries = self._relevant(connector_id)
        if unit not in ("A", "W"):
            unit = "W" if entries and all(e.unit == "W" for e in entries) else "A"
        rel = self._rel(tx_start, now)
        end = now + int(duration)
        gap = convert(self.max10, "A", unit, self.phases, self.volt10)
        out = []
        last = None
        t = now
        for _ in range(_MAX_STEPS):
            v, ph, nxt = self._at(entries, t, rel, unit)
            if v is None:
                v = gap
            ph = ph or self.phases
            if (v, ph) != last:
                if len(out) == _MAX_OUT:
                    end = t
                    break
                out.append({"startPeriod": t - now, "limit": v / 10, "numberPhases": ph})
                last = (v, ph)
            if nxt is None or nxt >= end:
                break
            t = nxt
        else:
            end = t  # step budget spent: report what was computed
        sched = {"duration": end - now, "startSchedule": clock.iso(now),
                 "chargingRateUnit": unit, "chargingSchedulePeriod": out}
        mcr = self._min_rate(entries, now, rel, unit)
        if mcr is not None:
            sched["minChargingRate"] = mcr / 10
        return sched

    def _min_rate(self, entries, now, rel, unit):
        # minChargingRate of the Tx-side profile in force at `now`, in `unit`, or None.
        best = None
        for e in entries:
            if e.purpose == CP_MAX or e.at(now, rel)[0] is None:
                continue
            rank = (e.purpose == TX, e.stack, e.connector_id != 0)
            if best is None or rank > best[0]:
                best = (rank, e)
        m = None if best is None else best[1].profile["chargingSchedule"].get("minChargingRate")
        if m is None:
            return None
        return convert(tenths(m), best[1].unit, unit, self.phases, self.volt10)
