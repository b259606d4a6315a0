"""Levelled console logger with a log ring on flash.

Lines look like `12:00:01 I cp: BootNotification Accepted`; the time comes from the RTC
(set by the CSMS), so logs of several chargers line up with the CSMS's.

With a folder given, lines are also kept in `<folder>/log.0` (newest) and `log.1` (the
half before): when log.0 passes `ring_bytes` / 2 it becomes log.1. Lines are batched in
RAM and appended by flush() (the charger calls it every few seconds, and at once for
warnings and errors), so logging costs a flash write per batch, not per line.
"""
from firmware.compat import print_exception, const

_LEVELS = ("debug", "info", "warn", "error")
_BATCH = const(16)  # lines held in RAM before a flush is forced


class Log:
    def __init__(self, level="info", now=None, folder=None, ring_bytes=16384):
        self.level = _LEVELS.index(level) if level in _LEVELS else 1
        self._now = now
        self._pending = []
        self._folder = folder
        self._half = ring_bytes // 2
        self._size = -1  # size of log.0, read at the first flush

    def _emit(self, lvl, tag, msg):
        if lvl < self.level:
            return
        t = self._now() if self._now else 0
        line = "%02d:%02d:%02d %s %s: %s" % (
            t // 3600 % 24, t // 60 % 60, t % 60, "DIWE"[lvl], tag, msg)
        print(line)
        if self._folder is not None:
            self._pending.append("%d %s" % (t, line))
            if lvl >= 2 or len(self._pending) >= _BATCH:
                self.flush()

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

    def flush(self):
        """Append the batched lines to the ring on flash."""
        if not self._pending or self._folder is None:
            return
        import os
        path0 = self._folder + "/log.0"
        if self._size < 0:
            try:
                self._size = os.stat(path0)[6]
            except OSError:
                self._size = 0
        lines, self._pending = self._pending, []
        size = sum(len(line) for line in lines) + len(lines)
        try:
            if self._size + size > self._half and self._size > 0:
                os.rename(path0, self._folder + "/log.1")  # replaces the older half
                self._size = 0
            with open(path0, "a") as f:
                for line in lines:  # line by line: no batch-sized block to find in the heap
                    f.write(line)
                    f.write("\n")
            self._size += size
        except OSError as e:
            print("log: cannot write %s: %r" % (path0, e))

    def lines(self, since=None, until=None):
        """The ring's lines on flash, oldest first, as (unix time, text) — read as they go."""
        for name in ("log.1", "log.0"):
            try:
                f = open(self._folder + "/" + name)
            except (OSError, TypeError):
                continue
            with f:
                for raw in f:
                    sp = raw.find(" ")
                    try:
                        t = int(raw[:sp])
                    except ValueError:
                        continue
                    if (since is None or t >= since) and (until is None or t <= until):
                        yield t, raw[sp + 1:].rstrip("\n")
