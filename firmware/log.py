"""Levelled console logger with a log ring on flash.

Lines look like `2026-12-03T12:00:01Z I cp: BootNotification Accepted`: ISO 8601 UTC from
the RTC (set by the CSMS), so logs of several chargers line up with the CSMS's. Before the
clock was set (a board wakes up in 2000) the time is marked: `unset:2000-01-01T00:00:07Z`.

With a folder given, lines are also kept in `<folder>/log.0` (newest) and `log.1` (the
half before): when log.0 passes `ring_bytes` / 2 it becomes log.1. Lines are batched in
RAM and appended by flush() (the charger calls it every 5 s), so logging costs a flash
write per batch, not per line.

Flash budget (README "Flash and log budgets"): a WARN line or a full batch also flushes at
once, but at most once a second; an ERROR line flushes at once unless two flushes were
already forced in that second. Past the budget, lines wait in RAM for the next flush; a
batch that fills up meanwhile drops the newest lines below ERROR (an ERROR line pushes out
the oldest instead) and the next flush notes how many were dropped. So a flood of lines,
however fast, costs at most 2 forced flushes a second besides the periodic one (each may
also rotate the ring: one rename). A message is cut at _MSG_MAX characters.

Secrets (README "Security"): values given to hide() (the Basic auth password, the WiFi key,
the AuthorizationKey) become "***" in every line and traceback before it is printed or kept,
and so does the password of any URL (firmware/redact.py): a last line of defence behind
the callers, which never put a secret in a message.
"""
from firmware.clock import iso, plausible
from firmware.compat import print_exception, const, ticks_ms, ticks_diff

_LEVELS = ("debug", "info", "warn", "error")
_BATCH = const(16)     # lines held in RAM before a flush is forced
_MSG_MAX = const(200)  # characters of a message kept (an echoed 6 KB name is not news)
_WARN_PER_S = const(1)   # flushes a WARN line or a full batch may force in a second
_ERROR_PER_S = const(2)  # ... an ERROR line (one more: it is never kept waiting by warnings)


def _line(t, lvl, tag, msg):
    return "%s%s %s %s: %s" % ("" if plausible(t) else "unset:", iso(t), "DIWE"[lvl], tag, msg)


class Log:
    def __init__(self, level="info", now=None, folder=None, ring_bytes=16384):
        self.level = _LEVELS.index(level) if level in _LEVELS else 1
        self._now = now
        self._pending = []
        self._folder = folder
        self._half = ring_bytes // 2
        self._size = -1  # size of log.0, read at the first flush
        self.writes = 0     # flash writes: appends and ring rotations (wear figure)
        self._secrets = ()  # values never shown (hide())
        self.on_event = None  # on_event(type, info): a security event (MemoryExhaustion)
        self.dropped = 0    # lines the budget kept off flash since the last flush
        self._urgent = 0    # highest level waiting in RAM (2: a WARN, 3: an ERROR)
        self._second = ticks_ms()  # start of the second the forced flushes count in
        self._forced = 0

    def _emit(self, lvl, tag, msg):
        if lvl < self.level:
            return
        for secret in self._secrets:
            if secret in msg:
                msg = msg.replace(secret, "***")
        if "@" in msg and "://" in msg:  # a URL with credentials, perhaps
            from firmware.redact import hide_credentials
            msg = hide_credentials(msg)
        if len(msg) > _MSG_MAX:
            msg = msg[:_MSG_MAX] + "..."
        t = self._now() if self._now else 0
        line = _line(t, lvl, tag, msg)
        print(line)
        if self._folder is None:
            return
        pending = self._pending
        entry = "%d %s" % (t, line)
        urgent = max(lvl, self._urgent)
        if ((urgent >= 2 or len(pending) + 1 >= _BATCH)
                and self._may_force(_ERROR_PER_S if urgent == 3 else _WARN_PER_S)):
            pending.append(entry)
            self.flush()
            return
        if len(pending) >= _BATCH:  # full, and no flush allowed: keep RAM bounded
            self.dropped += 1
            if lvl < 3:
                return
            del pending[0]  # an error is worth more than the oldest line waiting
        pending.append(entry)
        self._urgent = urgent

    def hide(self, secret):
        """Never show `secret` (a str of 4 characters or more) in a line from now on."""
        if isinstance(secret, str) and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = self._secrets + (secret,)

    def _may_force(self, limit):
        """Whether a flush may be forced now: fewer than `limit` in this second (counted)."""
        now = ticks_ms()
        if ticks_diff(now, self._second) >= 1000:
            self._second = now
            self._forced = 0
        if self._forced >= limit:
            return False
        self._forced += 1
        return True

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
        hook = self.on_event
        if isinstance(e, MemoryError) and hook is not None:
            self.on_event = None  # no recursion should recording it run out of memory too
            try:
                hook("MemoryExhaustion", "%s: %s" % (tag, msg))
            except Exception:
                pass
            self.on_event = hook
        if self._secrets:  # an exception may quote a secret: its traceback is screened
            from firmware.redact import print_screened
            print_screened(e, self._secrets)
        else:
            print_exception(e)

    def waiting(self):
        """Lines batched in RAM for the next flush."""
        return len(self._pending)

    def flush(self):
        """Append the batched lines to the ring on flash (no budget: the caller's call)."""
        if not self._pending or self._folder is None:
            return
        import os
        self._urgent = 0
        if self.dropped:
            t = self._now() if self._now else 0
            note = "lines dropped (flash budget): %d" % self.dropped
            self._pending.append("%d %s" % (t, _line(t, 2, "log", note)))
            self.dropped = 0
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
                self.writes += 1
            with open(path0, "a") as f:
                for line in lines:  # line by line: no batch-sized block to find in the heap
                    f.write(line)
                    f.write("\n")
            self._size += size
            self.writes += 1
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
