"""Security events (OCPP 1.6 security whitepaper, edition 3): the security log and
SecurityEventNotification.

    from firmware import secevents
    secevents.record(cp, "SettingSystemTime", "set from BootNotification, +3600 s")

Every event becomes a line of the security log: a bounded ring in data_dir (`sec.0`, `sec.1`,
`Ring` below, as the diagnostics log's), apart from the diagnostics log, read by GetLog
SecurityLog (firmware/getlog.py).
Critical events (the whitepaper's table: CRITICAL below) are also queued for the Central
System in the outbox journal (firmware/outbox.py), the flash queue that carries transaction
messages: written to flash before they are sent, removed at their CALLRESULT, delivered in
order after reconnects and reboots and never twice. Reusing it costs one branch in the outbox
and no second queue on flash; a separate queue would repeat the journal's crash-safety work.
They travel under their own ref ("sec"), so a held transaction never holds them back, nor
they a transaction. A Central System without the security extension answers NotImplemented
or NotSupported: the event is then dropped from the queue (it stays in the security log).
Other events are sent once from RAM while the charger is online (one per type waiting).

RAM: the module and its state are dropped after an event unless a repeat count must be kept
(a non-critical event seen in the last _QUIET_S), so a charger without such events keeps
nothing of it resident.

Budgets: at most _QUEUED_MAX critical events wait on flash (more are logged only); a
non-critical event (and MemoryExhaustion) of a type seen less than _QUIET_S ago is counted,
not logged, and the count goes into the next one's techInfo: a Central System sending
garbage in a loop costs one flash line per _QUIET_S.
"""
from firmware import clock
from firmware.compat import const, ticks_ms, ticks_diff

ACTION = "SecurityEventNotification"
REF = "sec"  # the outbox ref of queued events (transactions have numeric refs)
TYPES = ("FirmwareUpdated FailedToAuthenticateAtCentralSystem CentralSystemFailedToAuthenticate"
         " SettingSystemTime StartupOfTheDevice ResetOrReboot SecurityLogWasCleared"
         " ReconfigurationOfSecurityParameters MemoryExhaustion InvalidMessages"
         " AttemptedReplayAttacks TamperDetectionActivated InvalidFirmwareSignature"
         " InvalidFirmwareSigningCertificate InvalidCentralSystemCertificate"
         " InvalidChargePointCertificate InvalidTLSVersion InvalidTLSCipherSuite")
CRITICAL = ("FirmwareUpdated SettingSystemTime StartupOfTheDevice ResetOrReboot"
            " SecurityLogWasCleared MemoryExhaustion TamperDetectionActivated"
            " InvalidFirmwareSignature InvalidFirmwareSigningCertificate"
            " InvalidCentralSystemCertificate InvalidChargePointCertificate InvalidTLSVersion"
            " InvalidTLSCipherSuite")
_RING_BYTES = const(8192)  # the security log on flash, both halves
_QUEUED_MAX = const(24)    # critical events waiting in the journal
_QUIET_S = const(10)       # a repeated non-critical event is counted, not logged, meanwhile
_TECH_MAX = const(255)     # techInfo: CiString255
_LIMITED = "MemoryExhaustion"  # critical, but able to repeat in a loop


def _word(words, word):
    return (" " + word + " ") in (" " + words + " ")


def is_critical(event_type):
    return _word(CRITICAL, event_type)


def load(cp):
    return SecLog(cp)


class Ring:
    """Lines "<unix time> <text>" in `<folder>/<name>.0` (newest) and `<name>.1` (the half
    before): when .0 would pass `ring_bytes` / 2 it becomes .1, replacing the older half."""

    def __init__(self, folder, name, ring_bytes):
        self._path0 = folder + "/" + name + ".0"
        self._path1 = folder + "/" + name + ".1"
        self._half = ring_bytes // 2

    def append(self, line):
        """Append one line ("<t> <text>"): one flash write, maybe a rename before it."""
        import os
        try:
            size = os.stat(self._path0)[6]
        except OSError:
            size = 0
        if size and size + len(line) + 1 > self._half:
            os.rename(self._path0, self._path1)  # replaces the older half
        with open(self._path0, "a") as f:
            f.write(line)
            f.write("\n")

    def clear(self):
        """Delete both halves."""
        import os
        for path in (self._path1, self._path0):
            try:
                os.remove(path)
            except OSError:
                pass

    def lines(self, since=None, until=None):
        """(unix time, text) of every line, oldest first, read as they go; since/until
        (unix times, None: open) keep a window."""
        for path in (self._path1, self._path0):
            try:
                f = open(path)
            except OSError:
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


class SecLog:
    """The security log of one charger and what record() remembers between events."""

    def __init__(self, cp):
        self.ring = Ring(cp.cfg["_data"], "sec", _RING_BYTES)
        self.queued = None   # critical events in the journal (counted on first need)
        self._last = {}      # type -> (ticks_ms of the last logged one, repeats since)


def record(cp, event_type, tech_info=None):
    """Log a security event and, if critical, queue a SecurityEventNotification on flash.
    Never raises: a security event must not break what raised it."""
    try:
        _record(cp, event_type, tech_info)
        state = cp.loaded("secevents")
        if state is not None:
            now = ticks_ms()  # windows that ended with nothing counted need no memory
            for kind in [k for k, v in state._last.items()
                         if not v[1] and ticks_diff(now, v[0]) >= _QUIET_S * 1000]:
                del state._last[kind]
        if state is not None and not state._last:
            # Nothing to remember (no repeats to count): give the RAM back until the next one.
            cp.drop("secevents")
    except Exception as e:  # also MemoryError or a full flash: the event is lost, not the caller
        cp.log.error("sec", "security event %s not recorded: %r" % (event_type, e))


def _record(cp, event_type, tech_info):
    if not _word(TYPES, event_type):
        raise ValueError("unknown security event " + event_type)
    state = cp.feature("secevents")
    critical = is_critical(event_type)
    tech = "" if tech_info is None else str(tech_info)
    if not critical or event_type == _LIMITED:
        last = state._last.get(event_type)
        now = ticks_ms()
        if last is not None and ticks_diff(now, last[0]) < _QUIET_S * 1000:
            state._last[event_type] = (last[0], last[1] + 1)
            return
        if last is not None and last[1]:
            tech = ("%s (+%d before)" % (tech, last[1])).strip()
        state._last[event_type] = (now, 0)
    tech = tech[:_TECH_MAX]
    t = cp.now()
    ts = clock.iso(t)
    state.ring.append("%d %s %s%s" % (t, ts, event_type, " " + tech if tech else ""))
    (cp.log.warn if critical else cp.log.info)(
        "sec", "security event %s%s" % (event_type, ": " + tech if tech else ""))
    payload = {"type": event_type, "timestamp": ts}
    if tech:
        payload["techInfo"] = tech
    if critical:
        _queue(cp, state, payload)
    elif cp.online():
        from firmware.outbox import Entry
        cp.outbox.put(Entry(ACTION, payload, key="sec:" + event_type))
        cp.kick()


def _queue(cp, state, payload):
    if state.queued is None or state.queued >= _QUEUED_MAX:
        # A streaming scan of the journal, needed only when it could hold that many.
        n = len(cp.outbox.journal)
        state.queued = len(cp.outbox.pending_refs(ACTION)) if n >= _QUEUED_MAX else n
    if state.queued >= _QUEUED_MAX:
        cp.log.warn("sec", "%d security events wait already: %s kept in the security log only"
                    % (state.queued, payload["type"]))
        return
    cp.outbox.put_tx(ACTION, REF, payload)
    state.queued += 1
    cp.kick()


def clear(cp):
    """Empty the security log; its first line is then SecurityLogWasCleared."""
    state = cp.feature("secevents")
    state.ring.clear()
    record(cp, "SecurityLogWasCleared")
