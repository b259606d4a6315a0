"""Fakes shared by the unit tests: a log, a clock, pins and a UART.

Plain Python that both interpreters import (tests run some of these under the MicroPython unix
port too), so: no typing, no dataclasses, no f-string-only tricks.
"""


class Log:
    """Collects (level, tag, message); `level` 1 (info) keeps debug lines out, as the real one."""

    def __init__(self, level=1):
        self.level = level
        self.lines = []

    def _add(self, level, tag, msg):
        self.lines.append((level, tag, msg))

    def debug(self, tag, msg):
        self._add("debug", tag, msg)

    def info(self, tag, msg):
        self._add("info", tag, msg)

    def warn(self, tag, msg):
        self._add("warn", tag, msg)

    def error(self, tag, msg):
        self._add("error", tag, msg)

    def exc(self, tag, msg, e):
        self._add("error", tag, "%s: %r" % (msg, e))

    def flush(self):
        pass

    def levels(self, level):
        """The messages logged at `level`."""
        return [m for lvl, _, m in self.lines if lvl == level]

    def text(self):
        return "\n".join("%s %s: %s" % line for line in self.lines)


class Clock:
    """A millisecond clock the test moves: call it for the time, advance() or sleep() to move."""

    def __init__(self, t=1000):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t += ms

    sleep = advance
