"""Counters and latency histograms of a fleet run, mergeable across processes (as JSON).

Latencies go into log-spaced buckets (2 % apart) instead of a list: memory stays constant
however long the run, percentiles are within 2 %, and the histograms of K processes add up.
"""
import math

_STEPS = 50  # buckets per factor e: each bucket is ~2 % wide


def _bucket(us):
    return int(math.log(us) * _STEPS) if us >= 1 else 0


def _value(bucket):
    """The middle of a bucket, in microseconds."""
    return math.exp((bucket + 0.5) / _STEPS) if bucket else 1.0


class Histogram:
    def __init__(self):
        self.counts = {}
        self.n = 0
        self.max_us = 0.0
        self.sum_us = 0.0

    def add(self, seconds):
        us = seconds * 1e6
        b = _bucket(us)
        self.counts[b] = self.counts.get(b, 0) + 1
        self.n += 1
        self.sum_us += us
        if us > self.max_us:
            self.max_us = us

    def merge(self, other):
        for b, c in other.counts.items():
            self.counts[b] = self.counts.get(b, 0) + c
        self.n += other.n
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)

    def percentile(self, p):
        """The p-th percentile in milliseconds (None when empty); the max for p = 100."""
        if not self.n:
            return None
        if p >= 100:
            return self.max_us / 1000
        rank = max(1, math.ceil(self.n * p / 100))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return min(_value(b), self.max_us) / 1000
        return self.max_us / 1000

    def summary(self):
        """{"n", "mean", "p50", "p95", "p99", "max"} in milliseconds."""
        out = {"n": self.n, "mean": self.sum_us / self.n / 1000 if self.n else None}
        for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
            out[name] = self.percentile(p)
        return out

    def to_json(self):
        return {"counts": {str(b): c for b, c in self.counts.items()}, "n": self.n,
                "max_us": self.max_us, "sum_us": self.sum_us}

    @classmethod
    def from_json(cls, d):
        h = cls()
        h.counts = {int(b): c for b, c in d["counts"].items()}
        h.n, h.max_us, h.sum_us = d["n"], d["max_us"], d["sum_us"]
        return h


def _add(counter, key, n=1):
    counter[key] = counter.get(key, 0) + n


class Stats:
    """What one process of a fleet saw. Keys of `calls` etc. are OCPP actions."""

    COUNTERS = ("sent", "answered", "callerrors", "timeouts", "not_connected", "invalid",
                "requests", "events", "tx", "warnings")

    def __init__(self):
        self.sent = {}           # our CALLs, by action
        self.answered = {}       # CALLRESULTs that passed the firmware's checks
        self.callerrors = {}     # "Action code" -> n
        self.timeouts = {}       # no answer within call_timeout
        self.not_connected = {}  # the link went down while the call waited
        self.invalid = {}        # "Action code" -> n: a CALLRESULT the schema refused
        self.requests = {}       # the Central System's CALLs, by action
        self.events = {}         # connects, reconnects, drops, storms, reboots, sessions...
        self.tx = {}             # started, stopped, start_delivered, stop_delivered, ...
        self.warnings = {}       # the chargers' WARN and ERROR lines, by their first words
        self.latency = {}        # action -> Histogram
        self.all_latency = Histogram()     # every reply of the run, the ramp included
        self.steady_latency = Histogram()  # the replies once the fleet is steady
        self.steady = False
        self.check = {}          # --check: action -> {"checked", "violations", "examples"}
        self.frames_in = 0
        self.frames_out = 0

    # -- recording ---------------------------------------------------------------------------
    def call_sent(self, action):
        _add(self.sent, action)

    def latency_of(self, name, seconds):
        h = self.latency.get(name)
        if h is None:
            h = self.latency[name] = Histogram()
        h.add(seconds)

    def reply_latency(self, action, seconds):
        """The Central System answered our CALL `action` (result or error) after `seconds`."""
        self.latency_of(action, seconds)
        self.all_latency.add(seconds)
        if self.steady:
            self.steady_latency.add(seconds)

    def event(self, name, n=1):
        _add(self.events, name, n)

    def txn(self, name, n=1):
        _add(self.tx, name, n)

    def audit(self, action, problem=None):
        c = self.check.get(action)
        if c is None:
            c = self.check[action] = {"checked": 0, "violations": 0, "examples": []}
        c["checked"] += 1
        if problem:
            c["violations"] += 1
            if len(c["examples"]) < 3:
                c["examples"].append(problem[:200])

    # -- merging and output ---------------------------------------------------------------
    def merge(self, other):
        for name in self.COUNTERS:
            mine = getattr(self, name)
            for k, v in getattr(other, name).items():
                _add(mine, k, v)
        for action, h in other.latency.items():
            self.latency.setdefault(action, Histogram()).merge(h)
        self.all_latency.merge(other.all_latency)
        self.steady_latency.merge(other.steady_latency)
        for action, c in other.check.items():
            mine = self.check.setdefault(action, {"checked": 0, "violations": 0,
                                                  "examples": []})
            mine["checked"] += c["checked"]
            mine["violations"] += c["violations"]
            mine["examples"] = (mine["examples"] + c["examples"])[:3]
        self.frames_in += other.frames_in
        self.frames_out += other.frames_out

    def to_json(self):
        d = {name: dict(getattr(self, name)) for name in self.COUNTERS}
        d["latency"] = {a: h.to_json() for a, h in self.latency.items()}
        d["all_latency"] = self.all_latency.to_json()
        d["steady_latency"] = self.steady_latency.to_json()
        d["check"] = self.check
        d["frames_in"], d["frames_out"] = self.frames_in, self.frames_out
        return d

    @classmethod
    def from_json(cls, d):
        s = cls()
        for name in cls.COUNTERS:
            setattr(s, name, dict(d.get(name, {})))
        s.latency = {a: Histogram.from_json(h) for a, h in d.get("latency", {}).items()}
        s.all_latency = Histogram.from_json(d["all_latency"])
        s.steady_latency = Histogram.from_json(d["steady_latency"])
        s.check = d.get("check", {})
        s.frames_in, s.frames_out = d.get("frames_in", 0), d.get("frames_out", 0)
        return s

    def per_action(self):
        """Rows {action, sent, answered, callerrors, timeouts, invalid, p50..max} by action."""
        actions = sorted(set(self.sent) | set(self.latency))
        rows = []
        for a in actions:
            row = {"action": a, "sent": self.sent.get(a, 0), "answered": self.answered.get(a, 0),
                   "callerrors": sum(v for k, v in self.callerrors.items()
                                     if k.split(" ")[0] == a),
                   "timeouts": self.timeouts.get(a, 0),
                   "not_connected": self.not_connected.get(a, 0),
                   "invalid": sum(v for k, v in self.invalid.items() if k.split(" ")[0] == a)}
            lat = self.latency.get(a, Histogram()).summary()
            for k in ("p50", "p95", "p99", "max"):
                row[k] = lat[k]
            rows.append(row)
        return rows
