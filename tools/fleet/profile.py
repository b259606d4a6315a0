"""Behaviour profiles of a fleet: a small JSON file, checked and completed with defaults.

    {"description": "...",
     "connectors": 1,                    charger layout (config.json "station")
     "ocpp": {"MeterValueSampleInterval": 10},   keys every charger starts with
     "ramp_s": 10,                       chargers start spread over this many seconds
     "ev": {"initial_share": 0.0,        share of connectors with an EV already at the start
            "arrivals_per_hour": 0.0,    EV arrivals per connector (Poisson), while free
            "session_s": [600, 3600],    plugged-in time, uniform in [min, max]
            "power_kw": [3.7, 11.0],     EV draw, uniform in [min, max]
            "unknown_card_share": 0.0,   cards the Central System should refuse
            "remote_start_share": 0.0,   EVs that plug in and wait for RemoteStartTransaction
            "remote_wait_s": 60},        ... this long before the driver gives up
     "link": {"drops_per_hour": 0.0,     a charger's own link breaks (Poisson, per charger)
              "storms_at_s": [],         every charger loses its link at these times
              "offline_per_hour": 0.0,   a charger's network is down ...
              "offline_s": [30, 120]},   ... for this long, uniform
     "reboots_per_hour": 0.0}            power cycles per charger (Poisson)

Every number is checked (type and range); an unknown field is an error, so a typo never
silently runs a different test. `parse(text)` -> the complete profile dict, ValueError saying
which field is wrong.
"""
import json
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")

# field -> (default, kind); kinds: "share" 0..1, "rate" >= 0, "range" [lo, hi] with
# 0 <= lo <= hi, "secs" > 0, "times" list of times >= 0, "int" 1..10, "dict", "str".
_SCHEMA = {
    "description": ("", "str"),
    "connectors": (1, "int"),
    "ocpp": ({}, "dict"),
    "ramp_s": (10.0, "rate"),
    "ev": {
        "initial_share": (0.0, "share"),
        "arrivals_per_hour": (0.0, "rate"),
        "session_s": ([600.0, 3600.0], "range"),
        "power_kw": ([3.7, 11.0], "range"),
        "unknown_card_share": (0.0, "share"),
        "remote_start_share": (0.0, "share"),
        "remote_wait_s": (60.0, "secs"),
    },
    "link": {
        "drops_per_hour": (0.0, "rate"),
        "storms_at_s": ([], "times"),
        "offline_per_hour": (0.0, "rate"),
        "offline_s": ([30.0, 120.0], "range"),
    },
    "reboots_per_hour": (0.0, "rate"),
}


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(kind, v, where):
    if kind == "str":
        if not isinstance(v, str):
            raise ValueError("%s: expected a string" % where)
        return v
    if kind == "dict":
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise ValueError("%s: expected an object of OCPP keys" % where)
        return dict(v)
    if kind == "int":
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 10:
            raise ValueError("%s: expected an integer 1..10" % where)
        return v
    if kind == "times":
        if not isinstance(v, list) or not all(_number(t) and t >= 0 for t in v):
            raise ValueError("%s: expected a list of times in seconds (>= 0)" % where)
        return sorted(float(t) for t in v)
    if kind == "range":
        if (not isinstance(v, list) or len(v) != 2 or not all(_number(x) for x in v)
                or not 0 <= v[0] <= v[1]):
            raise ValueError("%s: expected [min, max] with 0 <= min <= max" % where)
        return [float(v[0]), float(v[1])]
    if not _number(v):
        raise ValueError("%s: expected a number" % where)
    if kind == "share" and not 0 <= v <= 1:
        raise ValueError("%s: expected a share 0..1" % where)
    if kind == "rate" and v < 0:
        raise ValueError("%s: expected a number >= 0" % where)
    if kind == "secs" and v <= 0:
        raise ValueError("%s: expected seconds > 0" % where)
    return float(v)


def _fill(schema, given, where):
    if not isinstance(given, dict):
        raise ValueError("%s: expected an object" % (where or "profile"))
    unknown = sorted(set(given) - set(schema))
    if unknown:
        raise ValueError("%sunknown field %s" % (where + "." if where else "", unknown[0]))
    out = {}
    for name, rule in schema.items():
        path = where + "." + name if where else name
        if isinstance(rule, dict):
            out[name] = _fill(rule, given.get(name, {}), path)
        elif name in given:
            out[name] = _check(rule[1], given[name], path)
        else:
            out[name] = json.loads(json.dumps(rule[0]))  # a fresh copy of the default
    if where == "":
        ev = out["ev"]
        if ev["unknown_card_share"] + ev["remote_start_share"] > 1:
            raise ValueError("ev: unknown_card_share + remote_start_share must not exceed 1")
    return out


def parse(text):
    """A profile from JSON text -> the complete dict (defaults filled in)."""
    try:
        given = json.loads(text)
    except ValueError as e:
        raise ValueError("not JSON: %s" % e)
    return _fill(_SCHEMA, given, "")


def load(name_or_path):
    """A profile by file path, or by the name of a shipped one (tools/fleet/profiles)."""
    path = name_or_path
    if not os.path.exists(path):
        path = os.path.join(HERE, name_or_path + ".json")
    with open(path, encoding="utf-8") as f:
        return parse(f.read())


def shipped():
    return sorted(n[:-5] for n in os.listdir(HERE) if n.endswith(".json"))
