"""Messages waiting for the Central System.

Transaction messages (Start/Stop/MeterValues) go to the flash journal *before* they are
sent and leave it only when their CALLRESULT arrives, strictly in order; they are retried
per TransactionMessageAttempts / TransactionMessageRetryInterval (interval x attempt).
Everything else (statuses, heartbeats, triggered replies) waits in RAM, goes first, and is
dropped after one failed attempt or a link drop: a stale StatusNotification helps nobody,
and statuses are re-derived after a reconnect anyway.

Journal records are {"a": action, "r": ref, "p": payload}: `ref` names the transaction
locally, because its transactionId exists only once StartTransaction.conf has arrived.
The ref -> transactionId map lives in the journal's meta ("tx"), so queued MeterValues and
StopTransaction of an offline transaction carry the real id, also after a reboot.
"""
from firmware.compat import const, ticks_ms, ticks_diff, ticks_add

_CAP = const(32)
_DROPPED = const(-1)  # map value of a transaction whose StartTransaction was given up


class Entry:
    def __init__(self, action, payload, on_reply=None, key=None):
        self.action = action
        self.payload = payload
        self.on_reply = on_reply  # called with the reply payload
        self.key = key            # entries with the same key replace each other (statuses)
        self.seq = None           # journal sequence number of a transaction message
        self.ref = None


class Outbox:
    def __init__(self, log, journal):
        self._log = log
        self.journal = journal
        self._items = []
        self._head = None        # seq of the journal head being retried
        self._attempts = 0
        self._not_before = 0

    def __len__(self):
        return len(self._items) + len(self.journal)

    # -- RAM messages ----------------------------------------------------------------------
    def put(self, entry):
        if entry.key is not None:
            for i, old in enumerate(self._items):
                if old.key == entry.key:
                    self._items[i] = entry
                    return
        if len(self._items) >= _CAP:
            del self._items[0]
        self._items.append(entry)

    def drop_volatile(self):
        """After a link drop: forget RAM messages; the journal keeps its own."""
        self._items = []

    # -- transaction messages --------------------------------------------------------------
    def put_tx(self, action, ref, payload):
        self.journal.append({"a": action, "r": ref, "p": payload})

    def tx_map(self):
        # A copy: set_meta() compares with what it holds and skips unchanged values.
        return dict(self.journal.meta("tx", {}))

    def _map(self, ref, tx_id):
        m = self.tx_map()
        if tx_id is None:
            m.pop(ref, None)
        else:
            m[ref] = tx_id
        self.journal.set_meta("tx", m)

    def has_tx(self):
        return len(self.journal) > 0

    def pending_refs(self, action):
        """Refs of the pending journal records of `action` (a streaming scan)."""
        refs = []
        for _, rec in self.journal.pending():
            if rec.get("a") == action:
                refs.append(rec.get("r"))
        return refs

    # -- sending ---------------------------------------------------------------------------
    def next(self):
        """The entry to send now, or None."""
        if self._items:
            return self._items[0]
        head = self.journal.first()
        while head is not None:
            seq, rec = head
            if seq != self._head:
                self._head, self._attempts = seq, 0
            elif ticks_diff(ticks_ms(), self._not_before) < 0:
                return None
            action, ref, payload = rec["a"], rec["r"], rec["p"]
            known = self.tx_map().get(ref)
            if action == "StartTransaction" and known is not None:
                # Confirmed before a power cut, but not yet removed: never send it twice.
                self.journal.ack(seq)
            elif action != "StartTransaction" and (known is None or known == _DROPPED):
                self._log.warn("outbox", "%s dropped: its StartTransaction was never confirmed"
                               % action)
                self.journal.ack(seq)
                if action == "StopTransaction":
                    self._map(ref, None)
            else:
                if action != "StartTransaction":
                    payload["transactionId"] = known
                e = Entry(action, payload)
                e.seq, e.ref = seq, ref
                return e
            head = self.journal.first()
        return None

    def done(self, entry, reply):
        """A CALLRESULT arrived for `entry`."""
        if entry.seq is None:
            if entry in self._items:
                self._items.remove(entry)
            return
        if entry.action == "StartTransaction":
            # Map first, then ack: a cut in between leaves a Start that next() skips.
            self._map(entry.ref, reply["transactionId"])
        self.journal.ack(entry.seq)
        if entry.action == "StopTransaction":
            self._map(entry.ref, None)

    def failed(self, entry, attempts, interval_s):
        """A CALLERROR or a timeout: retry a transaction message later, drop anything else.
        Returns True when the entry stays queued."""
        if entry.seq is None:
            if entry in self._items:
                self._items.remove(entry)
            self._log.warn("outbox", "%s dropped" % entry.action)
            return False
        self._attempts += 1
        if self._attempts >= attempts:
            self._log.warn("outbox", "%s dropped after %d attempts"
                           % (entry.action, self._attempts))
            if entry.action == "StartTransaction":
                self._map(entry.ref, _DROPPED)
            self.journal.ack(entry.seq)
            if entry.action == "StopTransaction":
                self._map(entry.ref, None)
            return False
        self._not_before = ticks_add(ticks_ms(), interval_s * self._attempts * 1000)
        return True
