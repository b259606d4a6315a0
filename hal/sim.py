"""Host stand-in for a board: a simulated EV, meter, reader and clock, driven by console lines.

Console: `plug N`, `unplug N`, `swipe TAG`, `power N W`, `fault N CODE`, `clear N`, `lockfail N`.
The physical world outlives the charger: cables, EV draw and meter registers are kept in
`<data_dir>/sim.json`, so a killed and restarted process finds the cable still plugged in
and the meter where it was, as a board does after a power cut.
"""
import json

from firmware import store
from firmware.compat import getenv, ticks_ms, ticks_diff, unix_time
from hal.base import Board, Connector, Lock, Meter, Pilot, Relay, Rtc, TokenReader

_SAVE_MS = 2000


class SimMeter(Meter):
    """Integrates the EV's power draw over time while the relay is closed."""

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

    def current_a(self):
        return round(self.power_w() / self.voltage / self.n_phases, 2)

    def voltage_v(self):
        return float(self.voltage)

    def phases(self):
        if self.n_phases != 3:
            return None
        v = float(self.voltage)
        amps = self.current_a()
        return ((v, amps), (v, amps), (v, amps))


class SimPilot(Pilot):
    """The EV: `plug` is the pilot state the console sets."""

    plug = "A"

    def state(self):
        return self.plug


class SimLock(Lock):
    """`lockfail` breaks it. A refused move is reported by the firmware (its connector's
    lock_failed, cleared by unplugging), so fault() keeps the base answer."""

    locked = False
    broken = False

    def lock(self):
        self.locked = not self.broken
        return self.locked

    def unlock(self):
        if self.broken:
            return False
        self.locked = False
        return True


class SimRtc(Rtc):
    """The host clock plus an offset set from the Central System's time. With the environment
    variable UCHARGE_SIM_RTC_LOST set it starts at 2000-01-01, like a board without an RTC
    battery."""

    def __init__(self):
        if getenv("UCHARGE_SIM_RTC_LOST"):
            self.offset = 946684800 - unix_time()


class SimReader(TokenReader):
    def __init__(self):
        self.queue = []

    def poll(self):
        return self.queue.pop(0) if self.queue else None


class SimConnector(Connector):
    """`error`: the fault the console injected (`fault N CODE`), reported before the parts'."""

    def __init__(self, voltage, phases, fixed_cable):
        relay = Relay()
        pilot = SimPilot()
        Connector.__init__(self, relay, SimMeter(relay, pilot, voltage, phases), pilot,
                           None if fixed_cable else SimLock())
        self.error = None

    def fault(self):
        return self.error or Connector.fault(self)


class SimBoard(Board):
    """What `main.py` runs on the host; reset() is the base's: the application restarts
    the charger in-process."""

    def __init__(self, cfg):
        st = cfg["station"]
        self._cards = SimReader()
        Board.__init__(self, [SimConnector(st["voltage"], st["phases"], st["fixed_cable"])
                              for _ in range(st["connectors"])], SimRtc(), self._cards)
        self._path = store.join(cfg["_data"], "sim.json")
        self._saved = ticks_ms()
        world = store.read_json(self._path, [])
        for c, w in zip(self.connectors, world if isinstance(world, list) else []):
            c.pilot.plug, c.meter.draw_w, c.meter._mwh = w[0], w[1], w[2]

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
            return "card %s presented" % words[1]
        if cmd not in ("plug", "unplug", "power", "fault", "clear", "lockfail"):
            return None
        try:
            c = self.connectors[int(words[1]) - 1]
            if int(words[1]) < 1:
                raise IndexError
        except (IndexError, ValueError):
            return "usage: %s N ... (N = 1..%d)" % (cmd, len(self.connectors))
        if cmd == "plug":
            c.pilot.plug = "C"
        elif cmd == "unplug":
            c.pilot.plug = "A"
        elif cmd == "power" and len(words) == 3:
            c.meter.energy_wh()  # integrate up to now at the old power
            c.meter.draw_w = float(words[2])
            c.pilot.plug = "B" if c.meter.draw_w == 0 and c.pilot.plug != "A" else c.pilot.plug
            if c.meter.draw_w > 0 and c.pilot.plug == "B":
                c.pilot.plug = "C"
        elif cmd == "fault" and len(words) == 3:
            c.error = words[2]
        elif cmd == "clear":
            c.error = None
        elif cmd == "lockfail" and c.lock:
            c.lock.broken = True
        else:
            return "usage: plug N | unplug N | power N W | fault N CODE | clear N | lockfail N"
        self._save()
        return "ok"


def make_board(cfg):
    return SimBoard(cfg)
