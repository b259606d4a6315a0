"""Host stand-in for a board: a simulated EV, meter, reader and clock, driven by console lines.

Console: `plug N`, `unplug N`, `swipe TAG`, `power N W`, `fault N CODE`, `clear N`, `lockfail N`.
The physical world outlives the charger: cables, EV draw and meter registers are kept in
`<data_dir>/sim.json`, so a killed and restarted process finds the cable still plugged in
and the meter where it was, as a board does after a power cut.
"""
import json

from firmware import store
from firmware.compat import getenv, ticks_ms, ticks_diff, unix_time

_SAVE_MS = 2000


class SimRelay:
    def __init__(self):
        self.on = False

    def set(self, on):
        self.on = bool(on)

    def is_on(self):
        return self.on

    def welded(self):
        return False


class SimMeter:
    """Integrates the EV's power draw over time while the relay is closed."""

    def __init__(self, relay, pilot, voltage, phases):
        self._relay = relay
        self._pilot = pilot
        self.voltage = voltage
        self.phases = phases
        self.draw_w = 7400.0
        self._mwh = 0.0  # milli-Wh keeps integration exact enough at 100 ms steps
        self._t = ticks_ms()

    def _advance(self):
        now = ticks_ms()
        dt = ticks_diff(now, self._t)
        self._t = now
        self._mwh += self.power_w() * dt / 3600.0

    def power_w(self):
        if not self._relay.on or self._pilot.plug != "C":
            return 0.0
        limit = self._pilot.limit
        p = self.draw_w
        if limit is not None:
            p = min(p, limit * self.voltage * self.phases)
        return float(p)

    def energy_wh(self):
        self._advance()
        return int(self._mwh // 1000)

    def current_a(self):
        return round(self.power_w() / self.voltage / self.phases, 2)

    def voltage_v(self):
        return float(self.voltage)

    def soc(self):
        return None

    def phase_values(self):
        """(volts, amps) per phase on a three-phase station; None on one phase."""
        if self.phases != 3:
            return None
        amps = self.current_a()
        return ((float(self.voltage), amps), (float(self.voltage), amps), (float(self.voltage), amps))


class SimPilot:
    def __init__(self):
        self.plug = "A"
        self.limit = None
        self.error = None

    def state(self):
        return self.plug

    def set_current_limit(self, amps):
        self.limit = amps

    def fault(self):
        return self.error


class SimLock:
    def __init__(self):
        self.locked = False
        self.broken = False

    def lock(self):
        self.locked = not self.broken
        return self.locked

    def unlock(self):
        if self.broken:
            return False
        self.locked = False
        return True


class SimRtc:
    """The host clock plus an offset set from the Central System's time. With the environment
    variable UCHARGE_SIM_RTC_LOST set it starts at 2000-01-01, like a board without an RTC battery."""

    def __init__(self):
        self.offset = 0
        if getenv("UCHARGE_SIM_RTC_LOST"):
            self.offset = 946684800 - unix_time()

    def now(self):
        return unix_time() + self.offset

    def set(self, t):
        self.offset = int(t) - unix_time()


class SimReader:
    def __init__(self):
        self.queue = []

    def poll(self):
        return self.queue.pop(0) if self.queue else None


class SimIndicator:
    def __init__(self):
        self.pattern = None

    def show(self, pattern):
        self.pattern = pattern


class SimWatchdog:
    enabled = False

    def feed(self):
        pass


class SimConnector:
    def __init__(self, voltage, phases, fixed_cable):
        self.relay = SimRelay()
        self.pilot = SimPilot()
        self.meter = SimMeter(self.relay, self.pilot, voltage, phases)
        self.lock = None if fixed_cable else SimLock()


class SimBoard:
    """What `main.py` runs on the host. `reset()` asks main.py to restart the charger in-process."""

    def __init__(self, cfg):
        st = cfg["station"]
        self.connectors = [SimConnector(st["voltage"], st["phases"], st["fixed_cable"])
                           for _ in range(st["connectors"])]
        self._path = store.join(cfg["_data"], "sim.json")
        self._saved = ticks_ms()
        world = store.read_json(self._path, [])
        for c, w in zip(self.connectors, world if isinstance(world, list) else []):
            c.pilot.plug, c.meter.draw_w, c.meter._mwh = w[0], w[1], w[2]
        self.rtc = SimRtc()
        self.reader = SimReader()
        self.indicator = SimIndicator()
        self.watchdog = SimWatchdog()
        self.reset_requested = None

    def reset(self, hard):
        self.reset_requested = "hard" if hard else "soft"

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
            self.reader.queue.append(words[1][:20])
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
            c.pilot.error = words[2]
        elif cmd == "clear":
            c.pilot.error = None
        elif cmd == "lockfail" and c.lock:
            c.lock.broken = True
        else:
            return "usage: plug N | unplug N | power N W | fault N CODE | clear N | lockfail N"
        self._save()
        return "ok"


def make_board(cfg):
    return SimBoard(cfg)
