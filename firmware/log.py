"""Levelled console logger with a bounded in-RAM ring of recent lines.

Lines look like `12:00:01 I cp: BootNotification Accepted`; the time comes from the
RTC (set by the CSMS), so logs of several chargers line up with the CSMS's.
"""
from firmware.compat import print_exception

_LEVELS = ("debug", "info", "warn", "error")


class Log:
    def __init__(self, level="info", now=None, ring=24):
        self.level = _LEVELS.index(level) if level in _LEVELS else 1
        self._now = now
        self._ring = [None] * ring  # preallocated: the ring never grows
        self._pos = 0

    def _emit(self, lvl, tag, msg):
        if lvl < self.level:
            return
        t = self._now() if self._now else 0
        line = "%02d:%02d:%02d %s %s: %s" % (t // 3600 % 24, t // 60 % 60, t % 60, "DIWE"[lvl], tag, msg)
        print(line)
        self._ring[self._pos] = line
        self._pos = (self._pos + 1) % len(self._ring)

    def debug(self, tag, msg):
        self._emit(0, tag, msg)

    def info(self, tag, msg):
        self._emit(1, tag, msg)

    def warn(self, tag, msg):
        self._emit(2, tag, msg)

    def error(self, tag, msg):
        self._emit(3, tag, msg)

    def exc(self, tag, msg, e):
        self._emit(3, tag, "%s: %r" % (msg, e))
        print_exception(e)

    def recent(self):
        """The ring's lines, oldest first."""
        n = len(self._ring)
        return [self._ring[(self._pos + i) % n] for i in range(n) if self._ring[(self._pos + i) % n]]
