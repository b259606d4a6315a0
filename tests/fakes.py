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


# -- a charge point for feature modules (firmware/profiles.py) ---------------------------------

class Outbox:
    """Keeps what is put; deliver() plays the Central System answering every message."""

    def __init__(self):
        self.entries = []

    def put(self, entry):
        self.entries.append(entry)

    def has_tx(self):
        return False

    def sent(self, action=None):
        """The payloads put so far (of `action` only, when given)."""
        return [e.payload for e in self.entries if action in (None, e.action)]

    def deliver(self, reply=None):
        entries, self.entries = self.entries, []
        for e in entries:
            if e.on_reply:
                e.on_reply(reply or {})
        return entries


class ChargePoint:
    """What a feature module sees of firmware/chargepoint.py: cfg (data_dir `data`), log,
    outbox, now(), connectors, the status attributes TriggerMessage reports, and
    feature/loaded/drop. Plain attributes: a test sets `t` (unix seconds) or `online_`."""

    def __init__(self, data, cp_id="CP_1", t=1714564800):
        self.cfg = {"_data": data, "_dir": data,
                    "csms": {"id": cp_id, "ca_file": None, "verify_tls": True},
                    "station": {"vendor": "V", "model": "M", "firmware_version": "0.1.0"}}
        self.log = Log()
        self.outbox = Outbox()
        self.t = t
        self.connectors = []
        self.firmware_version = "0.1.0"
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self.online_ = True
        self.kicks = 0
        self._features = {}

    def now(self):
        return self.t

    def kick(self):
        self.kicks += 1

    def online(self):
        return self.online_

    def feature(self, name):
        state = self._features.get(name)
        if state is None:
            import sys
            __import__("firmware." + name)
            state = self._features[name] = sys.modules["firmware." + name].load(self)
        return state

    def loaded(self, name):
        return self._features.get(name)

    def drop(self, name):
        self._features.pop(name, None)
