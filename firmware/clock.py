"""ISO 8601 / RFC 3339 timestamps <-> unix seconds, without the port's gmtime.

The ESP32's time.gmtime() counts from 2000 and the unix port's from 1970, so
the conversion is done here with plain day arithmetic (proleptic Gregorian
calendar, days counted from 1970-01-01) and gives the same answer everywhere.

Time from a Central System is taken only when plausible(): years 2020..2099.
"""

from firmware.compat import const

_DAYS_BEFORE_EPOCH = 719468  # days from 0000-03-01 to 1970-01-01
_DIGITS = "0123456789"
_FIRST_YEAR = const(2020)  # plausible(): the firmware did not exist before
_LAST_YEAR = const(2099)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of the date y-m-d (may be negative)."""
    # Count years from March so the leap day is the last day of a "year";
    # the calendar repeats every 400 years (146097 days).
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - _DAYS_BEFORE_EPOCH


def civil_from_days(z):
    """(year, month, day) of the day z days after 1970-01-01."""
    z += _DAYS_BEFORE_EPOCH
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400
    if m <= 2:
        y += 1
    return y, m, d


def is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def days_in_month(y, m):
    if m == 2:
        return 29 if is_leap(y) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def plausible(t):
    """Whether unix seconds t lie in 2020..2099: a clock outside that is broken (a board
    without a backup battery, a Central System with a bad clock), not a time to use."""
    return _FIRST_YEAR <= civil_from_days(int(t) // 86400)[0] <= _LAST_YEAR


def iso(t):
    """Unix seconds -> "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds).

    Always a valid RFC 3339 date-time: t is clamped to years 0001..9999 (a 5-digit or
    negative year would break every parser of our messages)."""
    t = int(t)
    if t > 253402300799:      # 9999-12-31T23:59:59Z
        t = 253402300799
    elif t < -62135596800:    # 0001-01-01T00:00:00Z
        t = -62135596800
    days = t // 86400  # floor division keeps times before 1970 right
    sec = t - days * 86400
    y, m, d = civil_from_days(days)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d, sec // 3600, sec // 60 % 60, sec % 60)


def _num(s, i, n):
    # n ASCII digits at s[i:]; int() alone would also take signs, spaces,
    # underscores and (on CPython) non-ASCII digits.
    v = 0
    for k in range(i, i + n):
        c = _DIGITS.find(s[k]) if k < len(s) else -1
        if c < 0:
            raise ValueError("bad date-time: digit expected at %d" % k)
        v = v * 10 + c
    return v


def _expect(s, i, chars):
    if i >= len(s) or s[i] not in chars:
        raise ValueError("bad date-time: %r expected at %d" % (chars, i))


def window_bound(text):
    """An optional date-time bound of a log window (GetDiagnostics, GetLog): unix seconds, or
    None when absent or unreadable (the window is then open on that side)."""
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        return None


def parse_iso(s):
    """RFC 3339 date-time -> unix seconds (int, fraction dropped).

    Accepts YYYY-MM-DDTHH:MM:SS[.f+](Z|+hh:mm|-hh:mm); "t"/"z" may be lower
    case (RFC 3339 §5.6). Second 60 (leap second) is accepted and counts as
    the first second of the next minute. Anything else raises ValueError.
    """
    if not isinstance(s, str):
        raise ValueError("bad date-time: not a string")
    y = _num(s, 0, 4)
    _expect(s, 4, "-")
    mo = _num(s, 5, 2)
    _expect(s, 7, "-")
    d = _num(s, 8, 2)
    _expect(s, 10, "Tt")
    h = _num(s, 11, 2)
    _expect(s, 13, ":")
    mi = _num(s, 14, 2)
    _expect(s, 16, ":")
    sec = _num(s, 17, 2)
    i = 19
    if i < len(s) and s[i] == ".":
        i += 1
        start = i
        while i < len(s) and s[i] in _DIGITS:
            i += 1
        if i == start:
            raise ValueError("bad date-time: empty fraction")
    _expect(s, i, "Zz+-")
    if s[i] in "Zz":
        off = 0
        i += 1
    else:
        oh = _num(s, i + 1, 2)
        _expect(s, i + 3, ":")
        om = _num(s, i + 4, 2)
        if oh > 23 or om > 59:
            raise ValueError("bad date-time: offset out of range")
        off = (oh * 60 + om) * 60
        if s[i] == "-":
            off = -off
        i += 6
    if i != len(s):
        raise ValueError("bad date-time: trailing characters")
    if not 1 <= mo <= 12 or not 1 <= d <= days_in_month(y, mo):
        raise ValueError("bad date-time: no such date")
    if h > 23 or mi > 59 or sec > 60:
        raise ValueError("bad date-time: no such time")
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off
