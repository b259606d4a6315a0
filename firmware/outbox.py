"""Messages waiting for the Central System, oldest first.

Transaction messages (Start/Stop/MeterValues of a transaction) keep their order among
themselves and are retried per TransactionMessageAttempts / TransactionMessageRetryInterval;
other messages may overtake a transaction message that waits for its retry, and are dropped
after one failed attempt: a stale StatusNotification or Heartbeat helps nobody.
"""
from firmware.compat import const, ticks_ms, ticks_diff, ticks_add

_CAP = const(64)


class Entry:
    def __init__(self, action, payload, tx=None, on_reply=None, key=None):
        self.action = action
        self.payload = payload
        self.tx = tx              # Transaction whose id goes into the payload when sent
        self.on_reply = on_reply  # called with the reply payload
        self.key = key            # entries with the same key replace each other (statuses)
        self.attempts = 0
        self.not_before = ticks_ms()


class Outbox:
    def __init__(self, log):
        self._log = log
        self._items = []

    def __len__(self):
        return len(self._items)

    def put(self, entry):
        if entry.key is not None:
            for i, old in enumerate(self._items):
                if old.key == entry.key and old.attempts == 0:
                    self._items[i] = entry
                    return
        if len(self._items) >= _CAP:
            self._make_room()
        self._items.append(entry)

    def _make_room(self):
        # Periodic samples are the least valuable: never drop a Start or a Stop.
        for i, e in enumerate(self._items):
            if e.action == "MeterValues":
                self._log.warn("outbox", "full: dropping a MeterValues sample")
                del self._items[i]
                return
        for i, e in enumerate(self._items):
            if e.tx is None:
                del self._items[i]
                return

    def next(self):
        """The entry to send now, or None."""
        now = ticks_ms()
        tx_blocked = False
        for e in self._items:
            if e.tx is not None:
                if tx_blocked:
                    continue
                tx_blocked = True  # later transaction messages wait for this one
            if ticks_diff(now, e.not_before) >= 0:
                return e
        return None

    def done(self, entry):
        if entry in self._items:
            self._items.remove(entry)

    def failed(self, entry, attempts, interval_s):
        """A CALLERROR or a timeout: retry a transaction message later, drop anything else."""
        entry.attempts += 1
        if entry.tx is None or entry.attempts >= attempts:
            self._log.warn("outbox", "%s dropped after %d attempt(s)" % (entry.action, entry.attempts))
            self.done(entry)
            return False
        entry.not_before = ticks_add(ticks_ms(), interval_s * entry.attempts * 1000)
        return True

    def drop_untransacted(self):
        """After a link drop: forget what is not transaction data; statuses are re-derived."""
        self._items = [e for e in self._items if e.tx is not None]

    def has_tx(self):
        for e in self._items:
            if e.tx is not None:
                return True
        return False
