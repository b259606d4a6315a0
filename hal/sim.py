"""Host stand-in for a board: a simulated EV, meter, reader and clock, driven by console lines.

Console: `plug N`, `unplug N`, `pilot N A-F`, `swipe TAG`, `power N W`, `fault N CODE`,
`clear N` (the fault, and a broken lock), `lockfail N`, `ap off` / `ap on` (the WiFi access
point goes away / comes back; with the environment variable UCHARGE_SIM_AP_OFF set it is
off when the charger starts).
Every command calls the board's changed(): with `polled` False (a fleet, or the environment
variable UCHARGE_SIM_EVENTS set) the firmware ticks only then and at its own deadlines.
The physical world outlives the charger: cables, EV draw and meter registers are kept in
`<data_dir>/sim.json`, so a killed and restarted process finds the cable still plugged in
and the meter where it was, as a board does after a power cut. With the environment
variable UCHARGE_SIM_METER_VOLATILE set, the meter starts from zero at every start instead,
like an S0 or estimated meter (hal/base.py, Meter.volatile).
A contactor opened under an injected fault prints how long after the command it opened.
"""
import json

from firmware import store
from firmware.compat import const, getenv, ticks_ms, ticks_diff, unix_time
from hal.base import (Board, Connector, Lock, Meter, Network, Pilot, Relay, Rtc, Tamper,
                      TokenReader)

_SAVE_MS = 2000
_ASSOC_MS = const(500)  # association + DHCP once the access point is there


class SimMeter(Meter):
    """Integrates the EV's power draw over time while the relay is closed. Volatile either
    way: sim.json is written every 2 s at most, so after a kill the register can be behind
    what the charger sent; resume() brings it up to the firmware's stored reading."""

    volatile = True

    def __init__(self, relay, pilot, voltage, phases):
        self._relay = relay
        self._pilot = pilot
        self.voltage = voltage
        self.n_phases = phases
        self.draw_w = 7400.0
        self._mwh = 0.0  # milli-Wh keeps integration exact enough at 100 ms steps
        self._t = ticks_ms()

    def _advance(self):
        now = ticks_ms()
        dt = ticks_diff(now, self._t)
        self._t = now
        self._mwh += self.power_w() * dt / 3600.0

    def power_w(self):
        if not self._relay.is_on() or self._pilot.plug != "C":
            return 0.0
        limit = self._pilot.limit
        p = self.draw_w
        if limit is not None:
            p = min(p, limit * self.voltage * self.n_phases)
        return float(p)

    def energy_wh(self):
        self._advance()
        return int(self._mwh // 1000)

    def resume(self, wh):
        self._advance()
        if wh * 1000 > self._mwh:
            self._mwh = wh * 1000.0

    def current_a(self):
        return round(self.power_w() / self.voltage / self.n_phases, 2)

    def voltage_v(self):
        return float(self.voltage)

    def phases(self):
        if self.n_phases != 3:
            return None
        v = float(self.voltage)
        amps = self.current_a()
        watts = round(v * amps, 1)
        return ((v, amps, watts), (v, amps, watts), (v, amps, watts))


class SimPilot(Pilot):
    """The EV: `plug` is the pilot state the console sets. While the charger drives state F
    it cannot see the EV: state() keeps the last reading, as on a board."""

    plug = "A"
    _seen = "A"

    def state(self):
        if not self.state_f:
            self._seen = self.plug
        return self._seen


class SimLock(Lock):
    """`lockfail` breaks it: a lock that holds lets go (fault(): ConnectorLockFailure until it
    is released), and every later move is refused; a refused move is reported by the firmware
    (its connector's lock_failed, cleared by unplugging). `clear` mends it."""

    locked = False
    broken = False
    held = False  # locked by lock() and not released since

    def lock(self):
        self.locked = self.held = not self.broken
        return self.locked

    def unlock(self):
        self.held = False
        if self.broken:
            return False
        self.locked = False
        return True

    def fault(self):
        return "ConnectorLockFailure" if self.held and not self.locked else None


class SimRelay(Relay):
    """`fault_at`: when the console injected a fault under a closed contactor (ticks_ms); the
    opening that follows prints its latency."""

    fault_at = None
    meter = None

    def __init__(self, n):
        self.n = n

    def set(self, on):
        if self.meter is not None:
            self.meter.energy_wh()  # the energy up to this instant counts at the old state
        if not on and self._on and self.fault_at is not None:
            print("sim: connector %d contactor opened %d ms after the fault"
                  % (self.n, ticks_diff(ticks_ms(), self.fault_at)))
        if not on:
            self.fault_at = None
        self._on = bool(on)


class SimRtc(Rtc):
    """The host clock plus an offset set from the Central System's time. With the environment
    variable UCHARGE_SIM_RTC_LOST set it starts at 2000-01-01, like a board without an RTC
    battery."""

    def __init__(self):
        if getenv("UCHARGE_SIM_RTC_LOST"):
            self.offset = 946684800 - unix_time()


class SimNetwork(Network):
    """WiFi behind an access point the console switches. Like the ESP32's station
    (hal/wlan.py): start() begins a join, up _ASSOC_MS later when the AP is on; a lost AP
    drops the station, which keeps reconnecting by itself and is up again _ASSOC_MS after
    the AP is back. Nothing joins before the first start()."""

    def __init__(self):
        self.ap = not getenv("UCHARGE_SIM_AP_OFF")
        self._wanted = False
        self._since = None  # ticks_ms when the current association began

    def set_ap(self, on):
        self.ap = on
        self._since = ticks_ms() if on and self._wanted else None

    def start(self):
        if not self.up():
            self._wanted = True
            self._since = ticks_ms() if self.ap else None

    def up(self):
        return self._since is not None and ticks_diff(ticks_ms(), self._since) >= _ASSOC_MS

    def info(self):
        return ("192.0.2.10", -55) if self.up() else (None, None)


class SimTamper(Tamper):
    state = False

    def opened(self):
        return self.state


class SimReader(TokenReader):
    def __init__(self):
        self.queue = []

    def poll(self):
        return self.queue.pop(0) if self.queue else None


class SimConnector(Connector):
    """`error`: the fault the console injected (`fault N CODE`), reported before the parts'."""

    def __init__(self, n, voltage, phases, fixed_cable):
        relay = SimRelay(n)
        pilot = SimPilot()
        Connector.__init__(self, relay, SimMeter(relay, pilot, voltage, phases), pilot,
                           None if fixed_cable else SimLock())
        relay.meter = self.meter
        self.error = None

    def fault(self):
        return self.error or Connector.fault(self)


class SimBoard(Board):
    """What `main.py` runs on the host; reset() is the base's: the application restarts
    the charger in-process."""

    def __init__(self, cfg):
        st = cfg["station"]
        self._cards = SimReader()
        self._ap = SimNetwork()
        self._lid = SimTamper()
        Board.__init__(self, [SimConnector(i + 1, st["voltage"], st["phases"],
                                           st["fixed_cable"])
                              for i in range(st["connectors"])], SimRtc(), self._cards,
                       network=self._ap, tamper=self._lid)
        self.polled = not getenv("UCHARGE_SIM_EVENTS")
        self._path = store.join(cfg["_data"], "sim.json")
        self._saved = ticks_ms()
        world = store.read_json(self._path, [])
        forget = getenv("UCHARGE_SIM_METER_VOLATILE")
        for c, w in zip(self.connectors, world if isinstance(world, list) else []):
            c.pilot.plug, c.meter.draw_w = w[0], w[1]
            if not forget:
                c.meter._mwh = w[2]

    def poll(self):
        if ticks_diff(ticks_ms(), self._saved) > _SAVE_MS:
            self._save()

    def _save(self):
        self._saved = ticks_ms()
        world = []
        for c in self.connectors:
            c.meter.energy_wh()
            world.append([c.pilot.plug, c.meter.draw_w, c.meter._mwh])
        store.write_atomic(self._path, json.dumps(world))

    def command(self, words):
        """Apply a console command; returns a reply line, or None when the command is not ours."""
        cmd = words[0]
        if cmd == "swipe" and len(words) == 2:
            self._cards.queue.append(words[1][:20])
            self.changed()
            return "card %s presented" % words[1]
        if cmd == "tamper":
            if len(words) != 2 or words[1] not in ("open", "close"):
                return "usage: tamper open | tamper close"
            self._lid.state = words[1] == "open"
            self.changed()
            return "enclosure " + ("opened" if self._lid.state else "closed")
        if cmd == "ap":
            if len(words) != 2 or words[1] not in ("on", "off"):
                return "usage: ap on | ap off"
            self._ap.set_ap(words[1] == "on")
            return "access point " + words[1]
        if cmd not in ("plug", "unplug", "pilot", "power", "fault", "clear", "lockfail"):
            return None
        try:
            c = self.connectors[int(words[1]) - 1]
            if int(words[1]) < 1:
                raise IndexError
        except (IndexError, ValueError):
            return "usage: %s N ... (N = 1..%d)" % (cmd, len(self.connectors))
        c.meter.energy_wh()  # integrate up to now, before the world changes
        if cmd == "plug":
            c.pilot.plug = "C"
        elif cmd == "unplug":
            c.pilot.plug = "A"
        elif cmd == "power" and len(words) == 3:
            c.meter.draw_w = float(words[2])
            c.pilot.plug = "B" if c.meter.draw_w == 0 and c.pilot.plug != "A" else c.pilot.plug
            if c.meter.draw_w > 0 and c.pilot.plug == "B":
                c.pilot.plug = "C"
        elif cmd == "pilot" and len(words) == 3 and words[2] in ("A", "B", "C", "D", "E", "F"):
            c.pilot.plug = words[2]
            if words[2] in ("E", "F"):
                self._stamp(c)
        elif cmd == "fault" and len(words) == 3:
            c.error = words[2]
            self._stamp(c)
        elif cmd == "clear":
            c.error = None
            c.relay.fault_at = None
            if c.lock:
                c.lock.broken = False
        elif cmd == "lockfail" and c.lock:
            c.lock.broken = True
            c.lock.locked = False  # a lock that held lets go
            self._stamp(c)
        else:
            return ("usage: plug N | unplug N | pilot N A-F | power N W | fault N CODE | clear N"
                    " | lockfail N")
        self._save()
        self.changed()
        return "ok"

    def _stamp(self, c):
        """A fault was injected: time the contactor's opening, if it is closed."""
        c.relay.fault_at = ticks_ms() if c.relay.is_on() else None


def make_board(cfg):
    return SimBoard(cfg)
