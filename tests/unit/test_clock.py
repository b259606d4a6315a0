"""firmware.clock: unix seconds <-> RFC 3339, checked against CPython's datetime."""
import datetime
import json

import pytest

from firmware import clock
from tests.mp import run_mp

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def reference_iso(t):
    return (EPOCH + datetime.timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("t, text", [
    (0, "1970-01-01T00:00:00Z"),
    (-1, "1969-12-31T23:59:59Z"),
    (946684800, "2000-01-01T00:00:00Z"),       # the ESP32 epoch
    (951782400, "2000-02-29T00:00:00Z"),       # leap day of a /400 year
    (951868800, "2000-03-01T00:00:00Z"),
    (1709164800, "2024-02-29T00:00:00Z"),
    (1795262400, "2026-11-21T12:00:00Z"),
    (2147483647, "2038-01-19T03:14:07Z"),      # last 32-bit second
    (2147483648, "2038-01-19T03:14:08Z"),
    (4102444800, "2100-01-01T00:00:00Z"),
    (4107456000, "2100-02-28T00:00:00Z"),
    (4107542400, "2100-03-01T00:00:00Z"),      # 2100 is not a leap year
    (4294967296, "2106-02-07T06:28:16Z"),      # past 32-bit unsigned
    (253402300799, "9999-12-31T23:59:59Z"),
    (-2203891200, "1900-03-01T00:00:00Z"),
    (-62135596800, "0001-01-01T00:00:00Z"),
])
def test_iso_known_values(t, text):
    assert clock.iso(t) == text
    assert clock.parse_iso(text) == t


def test_iso_matches_datetime_over_centuries():
    # One probe every ~9.3 days with a drifting time of day, 1600..2500.
    start = clock.parse_iso("1600-01-01T00:00:00Z")
    stop = clock.parse_iso("2500-01-01T00:00:00Z")
    step = 9 * 86400 + 7 * 3600 + 13 * 60 + 17
    n = 0
    for t in range(start, stop, step):
        text = clock.iso(t)
        assert text == reference_iso(t)
        assert clock.parse_iso(text) == t
        n += 1
    assert n > 30000


@pytest.mark.parametrize("t, text", [
    (253402300799 + 4, "9999-12-31T23:59:59Z"),   # finding 5: not "10000-01-01T00:00:02Z"
    (10 ** 15, "9999-12-31T23:59:59Z"),
    (-62135596800 - 1, "0001-01-01T00:00:00Z"),
    (-10 ** 15, "0001-01-01T00:00:00Z"),
])
def test_iso_is_always_rfc3339(t, text):
    assert clock.iso(t) == text
    assert clock.parse_iso(clock.iso(t)) is not None


@pytest.mark.parametrize("text, ok", [
    ("2019-12-31T23:59:59Z", False),
    ("2020-01-01T00:00:00Z", True),
    ("2026-11-21T12:00:00Z", True),
    ("2099-12-31T23:59:59Z", True),
    ("2100-01-01T00:00:00Z", False),
    ("9999-12-31T23:59:58Z", False),
    ("2000-01-01T00:00:00Z", False),   # an ESP32 without a backup battery
    ("1970-01-01T00:00:00Z", False),
])
def test_plausible_window_is_2020_to_2099(text, ok):
    assert clock.plausible(clock.parse_iso(text)) is ok


def test_iso_takes_float_seconds():
    assert clock.iso(1795262400.9) == "2026-11-21T12:00:00Z"


def test_days_helpers_agree_with_date_ordinals():
    base = datetime.date(1970, 1, 1).toordinal()
    for d in (datetime.date(1, 1, 1), datetime.date(1600, 2, 29), datetime.date(1969, 12, 31),
              datetime.date(2000, 2, 29), datetime.date(2400, 2, 29), datetime.date(9999, 12, 31)):
        z = d.toordinal() - base
        assert clock.days_from_civil(d.year, d.month, d.day) == z
        assert clock.civil_from_days(z) == (d.year, d.month, d.day)


@pytest.mark.parametrize("y, leap", [(1900, False), (2000, True), (2023, False), (2024, True),
                                     (2100, False), (2400, True)])
def test_leap_years(y, leap):
    assert clock.is_leap(y) is leap
    text = "%04d-02-29T00:00:00Z" % y
    if leap:
        assert clock.iso(clock.parse_iso(text)) == text
    else:
        with pytest.raises(ValueError):
            clock.parse_iso(text)


@pytest.mark.parametrize("text, t", [
    ("2026-11-21T12:00:00Z", 1795262400),
    ("2026-11-21T13:00:00+01:00", 1795262400),
    ("2026-11-21T06:30:00-05:30", 1795262400),
    ("2026-11-22T11:59:00+23:59", 1795262400),
    ("2026-11-21T12:00:00+00:00", 1795262400),
    ("2026-11-21T12:00:00-00:00", 1795262400),
    ("2026-11-21T12:00:00.000Z", 1795262400),
    ("2026-11-21T12:00:00.999999999Z", 1795262400),   # fraction dropped, never rounded up
    ("2026-11-21T12:00:00.5+01:00", 1795262400 - 3600),
    ("2026-11-21t12:00:00z", 1795262400),              # RFC 3339 §5.6 allows lower case
    ("2026-11-21T11:59:60Z", 1795262400),              # leap second
    ("2000-02-29T23:59:59Z", 951868799),
    ("1970-01-01T01:00:00+01:00", 0),
    ("2038-01-19T03:14:08Z", 2 ** 31),
    ("2106-02-07T06:28:16Z", 2 ** 32),
    ("1969-12-31T23:59:59Z", -1),
])
def test_parse_iso_accepts(text, t):
    assert clock.parse_iso(text) == t


@pytest.mark.parametrize("text", [
    "", "garbage", "2026-11-21", "2026-11-21T12:00:00", "2026-11-21T12:00Z",
    "2026-11-21 12:00:00Z", " 2026-11-21T12:00:00Z", "2026-11-21T12:00:00Z ",
    "2026-11-21T12:00:00ZZ", "2026-11-21T12:00:00.Z", "2026-11-21T12:00:00,5Z",
    "2026-11-21T12:00:00+0100", "2026-11-21T12:00:00+01", "2026-11-21T12:00:00+1:00",
    "2026-11-21T12:00:00+24:00", "2026-11-21T12:00:00+01:60", "2026-11-21T12:00:00UTC",
    "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z",
    "2026-11-31T00:00:00Z", "2026-02-29T00:00:00Z", "2000-02-30T00:00:00Z",
    "2026-11-21T24:00:00Z", "2026-11-21T12:60:00Z", "2026-11-21T12:00:61Z",
    "2026-1-21T12:00:00Z", "26-11-21T12:00:00Z", "+2026-11-21T12:00:00Z", "-2026-11-21T12:00:00Z",
    "2026/11/21T12:00:00Z", "2026-11-21T12-00-00Z", "2O26-11-21T12:00:00Z",
    "\u0662\u0660\u0662\u0666-11-21T12:00:00Z",        # Arabic-Indic digits: int() would take them
    "\uff12\uff10\uff12\uff16-11-21T12:00:00Z",        # full-width digits
    "2026-11-21T12:00:00+01:00:00",
])
def test_parse_iso_rejects(text):
    with pytest.raises(ValueError):
        clock.parse_iso(text)


@pytest.mark.parametrize("value", [None, 1795262400, b"2026-11-21T12:00:00Z"])
def test_parse_iso_rejects_non_strings(value):
    with pytest.raises(ValueError):
        clock.parse_iso(value)


SAMPLES_T = [0, -1, 951782400, 2147483647, 2147483648, 4107542400, 4294967296, 253402300799,
             -62135596800, 1795262400, 253402300803, -62135596801, 1577836799, 1577836800,
             4102444799, 4102444800]
SAMPLES_TEXT = ["2026-11-21T13:00:00+01:00", "2026-11-21T12:00:00.123456Z", "2000-02-29T00:00:00Z",
                "2100-02-29T00:00:00Z", "2038-01-19T03:14:08Z", "2026-11-21T12:00:00", "x",
                "2026-11-21t06:30:00-05:30", "\u0662\u0660\u0662\u0666-11-21T12:00:00Z"]

MP_SCRIPT = """
import json, sys
from firmware import clock
out = []
for t in json.loads(sys.argv[1]):
    out.append(clock.iso(t))
    out.append(clock.plausible(t))
for s in json.loads(sys.argv[2]):
    try:
        out.append(clock.parse_iso(s))
    except ValueError:
        out.append("ValueError")
print(json.dumps(out))
"""


def expected_outputs():
    out = []
    for t in SAMPLES_T:
        out += [clock.iso(t), clock.plausible(t)]
    for s in SAMPLES_TEXT:
        try:
            out.append(clock.parse_iso(s))
        except ValueError:
            out.append("ValueError")
    return out


def test_micropython_gives_the_same_answers():
    # The unix port's gmtime counts from 1970 like CPython; the answers must
    # come from clock's own arithmetic on both, including big-int seconds.
    proc = run_mp(MP_SCRIPT, json.dumps(SAMPLES_T), json.dumps(SAMPLES_TEXT), timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == expected_outputs()


def test_iso_does_not_depend_on_the_ports_gmtime(monkeypatch):
    import time

    def broken(*a):
        raise AssertionError("gmtime used")
    monkeypatch.setattr(time, "gmtime", broken)
    monkeypatch.setattr(time, "localtime", broken)
    assert clock.iso(951782400) == "2000-02-29T00:00:00Z"
    assert clock.parse_iso("2000-02-29T00:00:00Z") == 951782400
