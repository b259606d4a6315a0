"""The HAL contract as base classes: every part of a board subclasses one of these.

The firmware calls only the methods defined here, so it never asks a part what it can do:
a part without a feature inherits the safe answer (no per-phase values, no SoC, no fault,
no console). Each base is also a working stand-in for a part that is not fitted.
`tests/unit/test_hal_contract.py` runs every driver and the simulator through this contract.
"""
from firmware.compat import unix_time


# Shared answers: one function object each instead of one per method (RAM).
def _none(*_):
    return None


def _true(*_):
    return True


def _false(*_):
    return False


def _zero(*_):
    return 0.0


class Relay:
    """The contactor. set(on: bool); is_on() -> bool; welded() -> bool."""

    _on = False

    def set(self, on):
        self._on = bool(on)

    def is_on(self):
        return self._on

    welded = _false  # commanded open, yet still closed (False without a feedback input)

    def fault(self):
        return "PowerSwitchFailure" if self.welded() else None


class Meter:
    """Energy meter. Readings are numbers: energy_wh() int (import register, monotone),
    power_w(), current_a(), voltage_v() float.

    `volatile`: the register does not survive a power cut (an S0 impulse count, an estimate):
    the firmware then keeps the last value it sent on flash and calls resume(wh) at boot,
    after which energy_wh() is never below wh. A meter with its own register ignores it."""

    volatile = False

    def energy_wh(self):
        return 0

    resume = _none
    power_w = current_a = voltage_v = _zero
    # ((voltage_v, current_a, power_w) of phases 1-3) on a three-phase meter, else None
    phases = _none
    soc = _none     # the EV's state of charge in percent (int), or None when unknown
    fault = _none
    poll = _none


class Pilot:
    """IEC 61851 control pilot. state() -> "A" (no EV) | "B" (connected) | "C"/"D" (EV asks
    for energy) | "E"/"F" (error); set_current_limit(amps or None: no charging offered).
    set_state_f(True) drives state F (steady -12 V: EVSE not available) over any limit until
    set_state_f(False); the EV cannot be seen meanwhile, so state() keeps the last reading."""

    limit = None
    state_f = False

    def state(self):
        return "A"

    def set_current_limit(self, amps):
        self.limit = amps

    def set_state_f(self, on):
        self.state_f = bool(on)

    def fault(self):
        return "EVCommunicationError" if self.state() in ("E", "F") else None


class Lock:
    """Connector lock: lock() / unlock() -> True when the position is confirmed."""

    failed = False  # the last move was not confirmed

    lock = unlock = _true

    def fault(self):
        return "ConnectorLockFailure" if self.failed else None


class TokenReader:
    """poll() -> idTag (max 20 chars) of a card just presented, each swipe once; else None."""

    poll = _none


class Indicator:
    """show(pattern): "idle" "connecting" "ready" "charging" "error" "fault"."""

    pattern = None

    def show(self, pattern):
        self.pattern = pattern

    poll = _none


class Rtc:
    """now() -> unix seconds (UTC); set(unix_seconds). Here: the port's clock plus an offset."""

    offset = 0

    def now(self):
        return unix_time() + self.offset

    def set(self, t):
        self.offset = int(t) - unix_time()


class Watchdog:
    """feed() from the loop; enabled tells whether a missed feed resets the board."""

    enabled = False
    feed = _none


class Tamper:
    """opened() -> True while the enclosure is open (a tamper switch). Here: never."""

    opened = _false


class Network:
    """The IP link under the websocket (WiFi on the ESP32). The link supervisor
    (firmware/link.py) calls start() to begin a join attempt (never blocking), watches up()
    -> bool and shows info() -> (IP text or None, RSSI in dBm (int) or None). This base is a
    network that is always up: a host, a wired board."""

    up = _true
    start = _none

    def info(self):
        return (None, None)


class Connector:
    """One outlet: relay, meter, pilot, and lock (None with a fixed cable)."""

    def __init__(self, relay, meter, pilot, lock=None):
        self.relay = relay
        self.meter = meter
        self.pilot = pilot
        self.lock = lock

    def fault(self):
        """The OCPP ChargePointErrorCode of the first part in trouble, or None.
        The order is the report's priority: relay, lock, meter, pilot."""
        lock = self.lock
        return (self.relay.fault() or (lock is not None and lock.fault())
                or self.meter.fault() or self.pilot.fault() or None)


class Board:
    """connectors (index 0 is OCPP connectorId 1), rtc, reader, indicator, watchdog, network,
    tamper.
    `polled` parts get poll() from the firmware's loop (every ~100 ms).

    `polled`: True (every real board) when the firmware must look at the parts every tick.
    False when the board itself calls changed() as soon as any input changes (the simulator
    in a fleet, tools/fleet): the firmware then ticks only when told or at its own deadlines,
    so an idle charger costs nothing. The firmware sets changed() to its wake-up."""

    polled = True
    changed = _none

    def __init__(self, connectors, rtc=None, reader=None, indicator=None, watchdog=None,
                 network=None, polled=(), tamper=None):
        self.connectors = connectors
        self.rtc = rtc or Rtc()
        self.reader = reader or TokenReader()
        self.indicator = indicator or Indicator()
        self.watchdog = watchdog or Watchdog()
        self.network = network or Network()
        self.tamper = tamper or Tamper()
        self._polled = tuple(polled)

    def poll(self):
        for part in self._polled:
            part.poll()

    # reset(hard): restart the charger. Here nothing: on a host the application restarts
    # in-process once the charger stops (firmware/app.py); a board resets its chip.
    reset = _none
    # command(words): a console line for the board (host console) -> a reply, or None: not ours.
    command = _none
