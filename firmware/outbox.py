"""Messages waiting for the Central System.

Transaction messages (Start/Stop/MeterValues) go to the flash journal *before* they are
sent and leave it only when their CALLRESULT arrives, in order within each transaction.
Everything else (statuses, heartbeats, triggered replies) waits in RAM, goes first, and is
dropped after one failed attempt or a link drop: a stale StatusNotification helps nobody,
and statuses are re-derived after a reconnect anyway.

Delivery rule for transaction messages (README "Never losing a transaction"):
- A timeout or a lost link is not a delivery attempt (the link is dead, not the message):
  the message stays and goes again, on this link or the next.
- A CALLERROR, or a CALLRESULT that fails validation (no or a non-integer transactionId),
  is an attempt: the Central System answered. Attempt n is followed by a wait of
  TransactionMessageRetryInterval x n s, at most _WAIT_CAP_S (an interval set above it is
  kept as it is).
- After TransactionMessageAttempts attempts the message is *held*: it stays in the journal,
  is logged at ERROR and listed in the journal meta ("held": [seq, action, last error]);
  its transaction's later messages wait behind it, other transactions go on. Held messages
  are tried again (with fresh attempts) after the next reconnect or boot, and leave the list
  once delivered. At most _HELD_MAX are listed; one more that runs out of attempts holds
  every transaction message until the next reconnect: the oldest are kept, none dropped.
- A StartTransaction that is not confirmed (no or an invalid reply) never takes its
  transaction's MeterValues and StopTransaction with it: they wait for its transactionId.

Other records of the journal (security events, firmware/secevents.py) carry no
transactionId and have their own ref: they follow the same delivery rule, except that
a NotImplemented or NotSupported CALLERROR (a Central System without that message)
removes them at once.

Journal records are {"a": action, "r": ref, "p": payload}: `ref` names the transaction
locally, because its transactionId exists only once StartTransaction.conf has arrived.
The ref -> transactionId map lives in the journal's meta ("tx"), so queued MeterValues and
StopTransaction of an offline transaction carry the real id, also after a reboot. An ended
transaction leaves the map with the next map write (or at boot): its own removal would
cost two flash writes per transaction.
"""
from firmware.compat import const, ticks_ms, ticks_diff, ticks_add

_CAP = const(32)
_HELD_MAX = const(8)      # held messages listed (and transactions set aside) at a time
_WAIT_CAP_S = const(600)  # longest wait between two attempts of a transaction message
_ENDED_MAX = const(8)     # ended refs kept in RAM before the map is rewritten without them
_DROPPED = const(-1)      # map value left by firmware that gave StartTransactions up
_START = "StartTransaction"
_TX = ("StartTransaction", "StopTransaction", "MeterValues")


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
        self._cur = None          # seq of the transaction message being tried
        self._attempts = 0        # its attempts (CALLERRORs, invalid replies) so far
        self._not_before = 0
        self._parked = []         # refs of transactions held until the next reconnect
        self._blocked = False     # every transaction message held until the next reconnect
        self._ended = []          # refs whose StopTransaction was delivered (still mapped)
        self._scan = None         # (journal.changes, candidate) while refs are parked
        self._pruned = False

    def __len__(self):
        return len(self._items) + len(self.journal)

    # -- RAM messages ----------------------------------------------------------------------
    def put(self, entry, replace=True):
        """Queue a RAM message. With a key and `replace`, it takes the place of the last one
        with the same key; without `replace` it comes after it."""
        if entry.key is not None and replace:
            for i in range(len(self._items) - 1, -1, -1):
                if self._items[i].key == entry.key:
                    self._items[i] = entry
                    return
        if len(self._items) >= _CAP:
            del self._items[0]
        self._items.append(entry)

    def keyed(self, key):
        """Whether a RAM message with this key waits (or is being sent)."""
        for e in self._items:
            if e.key == key:
                return True
        return False

    def drop_volatile(self):
        """After a link drop: forget RAM messages (the journal keeps its own); held
        transaction messages get a fresh set of attempts on the next link."""
        self._items = []
        self._parked = []
        self._blocked = False
        self._scan = None

    # -- transaction messages --------------------------------------------------------------
    def put_tx(self, action, ref, payload):
        self.journal.append({"a": action, "r": ref, "p": payload})

    def tx_map(self):
        # A copy: set_meta() compares with what it holds and skips unchanged values.
        return dict(self.journal.meta("tx", {}))

    def _map(self, ref, tx_id):
        m = self.tx_map()
        m[ref] = tx_id
        self._write_map(m)

    def _write_map(self, m):
        for r in self._ended:
            m.pop(r, None)
        self._ended = []
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

    def held(self):
        """[seq, action, last error] of each message that ran out of attempts, undelivered."""
        return self.journal.meta("held", [])

    def report(self):
        """One line on the held messages for status, logs and diagnostics ("" if none)."""
        held = self.held()
        if not held:
            return ""
        return "%d held: %s" % (len(held), ", ".join(["%s #%s (%s)" % (h[1], h[0], h[2])
                                                      for h in held]))

    # -- sending ---------------------------------------------------------------------------
    def next(self):
        """The entry to send now, or None."""
        if self._items:
            return self._items[0]
        if not self._pruned:
            self._prune()
        while not self._blocked:
            head = self._candidate()
            if head is None:
                return None
            seq, rec = head
            action, ref = rec["a"], rec["r"]
            tx = action in _TX  # else no transactionId to look up or fill in
            known = self.tx_map().get(ref) if tx else None
            if tx and action == _START and known is not None and known != _DROPPED:
                # Confirmed before a power cut, but not yet removed: never send it twice.
                self.journal.ack(seq)
                continue
            if tx and action != _START and (known is None or known == _DROPPED):
                # Its StartTransaction is neither pending (it would come first) nor mapped:
                # given up by older firmware, or the map is lost. No id can ever be sent.
                self._log.error("outbox", "%s #%d removed: its transactionId is unknown"
                                % (action, seq))
                self.journal.ack(seq)
                continue
            if seq != self._cur:
                self._cur, self._attempts = seq, 0
            elif ticks_diff(ticks_ms(), self._not_before) < 0:
                return None
            payload = rec["p"]
            if tx and action != _START:
                payload = dict(payload)  # the journal's copy of its head stays untouched
                payload["transactionId"] = known
            e = Entry(action, payload)
            e.seq, e.ref = seq, ref
            return e
        return None

    def wait_ms(self):
        """Milliseconds until the transaction message waiting out its retry interval may go,
        or None when none waits (the sender sleeps until then, or until kicked)."""
        if self._cur is None or not self._attempts:
            return None
        left = ticks_diff(self._not_before, ticks_ms())
        return left if left > 0 else None

    def _candidate(self):
        """The oldest pending record whose transaction is not held: (seq, record) or None."""
        if not self._parked:
            return self.journal.first()
        stamp = self.journal.changes
        if self._scan is not None and self._scan[0] == stamp:
            return self._scan[1]
        found = None
        records = self.journal.pending()
        for seq, rec in records:
            if rec.get("r") not in self._parked:
                found = (seq, rec)
                break
        records.close()  # closes the segment file now
        self._scan = (stamp, found)
        return found

    def _prune(self):
        """Once, after boot (sessions.recover() has queued its PowerLoss stops): forget
        mapped refs and held entries that no pending record needs any more."""
        self._pruned = True
        m, held = self.tx_map(), self.held()
        if not m and not held:
            return
        refs, seqs = [], []
        for seq, rec in self.journal.pending():
            if rec.get("r") not in refs:
                refs.append(rec.get("r"))
            seqs.append(seq)
        keep = {r: v for r, v in m.items() if r in refs}
        if len(keep) != len(m):
            self.journal.set_meta("tx", keep)
        keep = [h for h in held if h[0] in seqs]
        if len(keep) != len(held):
            self.journal.set_meta("held", keep or None)

    def done(self, entry, reply):
        """A CALLRESULT arrived for `entry`."""
        if entry.seq is None:
            if entry in self._items:
                self._items.remove(entry)
            return
        if entry.action == _START:
            # Map first, then ack: a cut in between leaves a Start that next() skips.
            self._map(entry.ref, reply["transactionId"])
        self.journal.ack(entry.seq)
        if entry.action == "StopTransaction":
            self._ended.append(entry.ref)
            if len(self._ended) > _ENDED_MAX:
                self._write_map(self.tx_map())
        held = self.held()
        if held:
            keep = [h for h in held if h[0] != entry.seq]
            if len(keep) != len(held):
                self._log.info("outbox", "%s #%d delivered after being held"
                               % (entry.action, entry.seq))
                self.journal.set_meta("held", keep or None)

    def failed(self, entry, code, attempts, interval_s):
        """No CALLRESULT for `entry`: `code` is the CALLERROR code (or the validation error
        of an invalid reply), "Timeout" when nothing came. Returns True when the entry stays
        queued and may go again on this link."""
        if entry.seq is None:
            if entry in self._items:
                self._items.remove(entry)
            self._log.warn("outbox", "%s dropped" % entry.action)
            return False
        if code == "Timeout":
            return True  # the link, not the message: not an attempt
        if entry.action not in _TX and code in ("NotImplemented", "NotSupported"):
            self._log.warn("outbox", "%s #%d removed: the Central System has no %s"
                           % (entry.action, entry.seq, entry.action))
            self.journal.ack(entry.seq)
            self._cur = None
            return False
        self._attempts += 1
        if self._attempts < attempts:
            wait = min(interval_s * self._attempts, max(interval_s, _WAIT_CAP_S))
            self._not_before = ticks_add(ticks_ms(), wait * 1000)
            return True
        self._hold(entry, code)
        return False

    def _hold(self, entry, code):
        held = self.held()
        listed = False
        for h in held:
            listed = listed or h[0] == entry.seq
        if not listed and len(held) < _HELD_MAX:
            self.journal.set_meta("held", held + [[entry.seq, entry.action, str(code)[:40]]])
            listed = True
        if listed and len(self._parked) < _HELD_MAX:
            self._parked.append(entry.ref)
            what = "its transaction's later messages wait behind it"
        else:
            self._blocked = True
            what = "every transaction message waits behind it"
        self._scan = None
        self._cur = None
        self._log.error("outbox", "%s #%d held after %d attempts (%s): kept on flash, sent "
                        "again after the next reconnect; %s"
                        % (entry.action, entry.seq, self._attempts, code, what))
