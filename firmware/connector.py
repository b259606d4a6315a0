"""One connector: its facts (plug, fault, availability, authorization, transaction) and the
OCPP ChargePointStatus derived from them.

The status is computed from the facts on every tick instead of being moved by events, so
no sequence of plugs, swipes and faults can leave it stale. guard() is the safety rule
(README, "Faults and safety"), applied on every tick before anything else.
"""
from firmware.compat import ticks_ms, ticks_diff, ticks_add


def severity(code):
    """What an OCPP ChargePointErrorCode does to charging: 0 nothing (NoError, or a code that
    is only reported), 1 suspends the session until it clears, 2 ends it. A code not named
    here suspends: trouble we cannot judge is not trusted with the current."""
    if not code or code in ("NoError", "ReaderFailure", "WeakSignal", "LocalListConflict",
                            "ResetFailure"):
        return 0
    if code in ("GroundFailure", "OverCurrentFailure", "PowerSwitchFailure",
                "ConnectorLockFailure", "EVCommunicationError"):
        return 2
    return 1  # HighTemperature, OverVoltage, UnderVoltage, PowerMeterFailure, InternalError...


class Transaction:
    def __init__(self, connector_id, id_tag, meter_start, start_time):
        self.connector_id = connector_id
        self.id_tag = id_tag
        self.meter_start = meter_start
        self.start_time = start_time
        self.tx_id = None         # given by StartTransaction.conf
        self.rejected = False     # StartTransaction.conf said the idTag is not valid
        self.parent = None        # parentIdTag (Authorize.conf, local list, Start.conf)
        self.ref = None           # local name in the journal until the transactionId is known
        self.begin = None         # MeterValue at start (Transaction.Begin), for transactionData
        self.samples = []         # a few periodic StopTxnSampledData values
        self.next_sample = 0


class Connector:
    def __init__(self, cid, hw, max_current):
        self.id = cid
        self.hw = hw
        self.max_current = max_current
        self.operative = True
        self.scheduled = None     # availability to apply when the running transaction ends
        self.tx = None
        self.auth_tag = None      # authorized, waiting for the plug
        self.auth_parent = None
        self.auth_until = 0
        self.finishing = False    # a transaction ended while the cable stayed in
        self.lock_failed = False  # the lock did not confirm; cleared by unplugging
        self.limit = None         # smart-charging limit in A (None: none; 0: pause)
        self.profile = None       # RemoteStartTransaction's TxProfile, set once the id is known
        self.reserved = None      # the reservation holding this connector (set every tick)
        self.phase_labels = ("L1", "L2", "L3")  # from ConnectorPhaseRotation, read at boot
        self.was_plugged = False
        self.queued = None        # (status, errorCode) last queued for the CSMS
        self.seen = None          # (status, errorCode) derived at the last tick, and since when
        self.seen_ms = 0
        self.reported = None      # (status, errorCode) the CSMS has confirmed
        self.before = None        # status the CSMS sees before the pending StatusNotification
        self.fault = None         # the errorCode guard() acted on (None: not run yet)
        self.halted = False       # a fault opened the contactor under a session to resume
        self.stored_wh = 0        # the highest register value on flash (firmware/sessions.py)

    def plugged(self):
        return self.hw.pilot.state() in ("B", "C", "D")

    def error_code(self):
        code = self.hw.fault()  # the board's parts: relay, lock, meter, pilot (hal/base.py)
        if code:
            return code
        if self.lock_failed:
            return "ConnectorLockFailure"
        return "NoError"

    def offered_a(self):
        """The current the EVSE offers the EV now (pilot duty), in A."""
        if self.tx is None or self.tx.rejected or severity(self.fault):
            return 0.0
        return float(self.max_current if self.limit is None else min(self.limit, self.max_current))

    def arm(self, tag, parent, timeout_s):
        self.auth_tag = tag
        self.auth_parent = parent
        self.auth_until = ticks_add(ticks_ms(), timeout_s * 1000)

    def auth_expired(self):
        return self.auth_tag is not None and ticks_diff(ticks_ms(), self.auth_until) >= 0

    def free(self):
        """Can take a new session now."""
        return self.operative and self.tx is None and not severity(self.error_code())

    def guard(self, log):
        """The safety rule, every tick (README "Faults and safety"). An unsafe fault opens the
        contactor at once and takes the pilot to state F (EVSE not available), or turns its
        PWM off (steady +12 V) when the fault clears only once the line is seen again (pilot
        E/F, a lock that let go: cleared by unplugging). When no unsafe fault is left, the
        pilot is released, and a session the fault suspended resumes once the EV is seen
        plugged in. True when the fault ends the running session (severity 2)."""
        hw = self.hw
        pilot = hw.pilot
        code = self.error_code()
        level = severity(code)
        if level and hw.relay.is_on():
            hw.relay.set(False)  # also if anything closed it since: never under a fault
            self.halted = self.tx is not None
        before, self.fault = self.fault, code
        ends = False
        if code != before and level:
            if code == "ConnectorLockFailure":
                self.lock_failed = True  # reported until the cable is out, as at the start
            watch = code == "EVCommunicationError" or code == "ConnectorLockFailure"
            pilot.set_state_f(not watch)
            if watch:
                pilot.set_current_limit(None)
            ends = level == 2 and self.tx is not None
            log.error("safety", "connector %d: %s, contactor open, pilot %s%s" % (
                self.id, code, "PWM off" if watch else "state F",
                ", transaction ends" if ends else ""))
        elif code != before:
            pilot.set_state_f(False)  # the next state() reads the line afresh
            pilot.set_current_limit(self.offered_a() if hw.relay.is_on() else None)
            if severity(before):
                log.warn("safety", "connector %d: %s cleared" % (self.id, before))
            if code != "NoError":
                log.warn("safety", "connector %d: %s (reported, charging goes on)"
                         % (self.id, code))
        if self.halted and not level and (self.tx is None or self.plugged()):
            self.halted = False
            if self.tx is not None:
                hw.relay.set(True)
                pilot.set_current_limit(self.offered_a())
                log.warn("safety", "connector %d: charging resumes" % self.id)
        return ends

    def status(self):
        err = self.error_code()
        if severity(err):
            return "Faulted", err
        if self.tx is not None:
            if self.tx.rejected or not self.hw.relay.is_on() or self.limit == 0:
                return "SuspendedEVSE", err
            if self.hw.pilot.state() != "C" and self.hw.pilot.state() != "D":
                return "SuspendedEV", err
            return "Charging", err
        if not self.operative:
            return "Unavailable", err
        if self.finishing:
            return "Finishing", err
        if self.plugged() or self.auth_tag is not None:
            return "Preparing", err
        if self.reserved is not None:
            return "Reserved", err
        return "Available", err
