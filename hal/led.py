"""Status LED blink patterns on one GPIO, advanced from the loop's poll().

A pattern is a tuple of durations in ms that alternate on, off, on, off...
and repeat; (1, 0) is steady on. The level follows the time since the
pattern was chosen, so a late poll() skips ahead instead of stretching it.
"""
from firmware.compat import ticks_ms, ticks_diff, ticks_add
from hal import base

PATTERNS = (
    ("idle", (60, 2940)),           # short blink every 3 s
    ("connecting", (250, 250)),     # 2 Hz
    ("ready", (1, 0)),              # steady on
    ("charging", (1000, 1000)),     # slow
    ("error", (120, 120, 120, 640)),  # double blink
    ("fault", (80, 80)),            # fast flicker
)
_FALLBACK = "error"


def durations(name):
    for n, d in PATTERNS:
        if n == name:
            return d
    return durations(_FALLBACK)


def level_at(pattern, elapsed_ms):
    """True when the LED is lit `elapsed_ms` into a pattern."""
    period = 0
    for d in pattern:
        period += d
    if period <= 0:
        return False
    pos = elapsed_ms % period
    on = True
    for d in pattern:
        if pos < d:
            return on
        pos -= d
        on = not on
    return False


class Led(base.Indicator):
    def __init__(self, pin, active_low=False, clock=ticks_ms):
        self._pin = pin
        self._active_low = bool(active_low)
        self._clock = clock
        self.pattern = None
        self._durations = (0, 1)
        self._start = clock()
        self._lit = None
        self.show("idle")

    def show(self, pattern):
        """Select a pattern by name; unknown names show "error"."""
        if pattern == self.pattern:
            return
        self.pattern = pattern
        self._durations = durations(pattern)
        self._start = self._clock()
        self.poll()

    def lit(self):
        return bool(self._lit)

    def poll(self):
        elapsed = ticks_diff(self._clock(), self._start)
        period = sum(self._durations)
        if period > 0 and elapsed >= period:
            # Keep the reference point recent: ticks_diff only spans ~6 days.
            self._start = ticks_add(self._start, elapsed - elapsed % period)
            elapsed %= period
        lit = level_at(self._durations, elapsed)
        if lit != self._lit:
            self._lit = lit
            self._pin.value(1 if lit != self._active_low else 0)
