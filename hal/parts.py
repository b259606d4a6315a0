"""Parts not tied to one chip: the RTC and watchdog of `machine` (any MicroPython port),
and a meter estimated from the other parts when none is fitted.

`machine` objects are passed in, so this module imports and tests on CPython.
"""
from firmware.clock import civil_from_days, days_from_civil
from firmware.compat import ticks_ms, ticks_diff
from hal import base

_DAY = 86400
_WMS_PER_WH = 3600000.0


# -- civil dates (proleptic Gregorian, UTC). Independent of the port's epoch:
# the RTC holds a calendar date, firmware works in unix seconds.
def datetime_to_unix(dt):
    """machine.RTC().datetime() tuple (y, m, d, weekday, h, min, s, subsec) -> unix s."""
    return days_from_civil(dt[0], dt[1], dt[2]) * _DAY + dt[4] * 3600 + dt[5] * 60 + dt[6]


def unix_to_datetime(t):
    """unix s -> RTC datetime tuple; weekday 0 = Monday (1970-01-01 was a Thursday)."""
    days = t // _DAY
    rem = t - days * _DAY
    y, m, d = civil_from_days(days)
    return (y, m, d, (days + 3) % 7, rem // 3600, rem // 60 % 60, rem % 60, 0)


class Rtc(base.Rtc):
    """machine.RTC: keeps the calendar across soft resets (and power cuts with a battery)."""

    def __init__(self, rtc):
        self._rtc = rtc

    def now(self):
        return datetime_to_unix(self._rtc.datetime())

    def set(self, unix_seconds):
        self._rtc.datetime(unix_to_datetime(int(unix_seconds)))


class Watchdog(base.Watchdog):
    """machine.WDT when enabled; once started the ESP32 cannot stop it."""

    def __init__(self, wdt=None):
        self._wdt = wdt
        self.enabled = wdt is not None

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()


class EstimatedMeter(base.Meter):
    """Meter "sim" on real hardware (no meter fitted): energy estimated from
    the contactor state and the current offered on the pilot. For bench use
    only; the figures are not measurements. The estimate starts at zero at every boot
    (volatile): resume() continues from the firmware's stored reading."""

    volatile = True

    def __init__(self, relay, pilot, voltage=230.0, phases=1, clock=ticks_ms):
        self._relay = relay
        self._pilot = pilot
        self._voltage = float(voltage)
        self._phases = phases
        self._clock = clock
        self._at = clock()
        self._wh = 0
        self._wms = 0.0  # part of a Wh, in watt-milliseconds (float32 on the ESP32)

    def power_w(self):
        amps = self._pilot.limit
        if amps is None or amps < 6 or not self._relay.is_on():
            return 0.0
        if self._pilot.state() not in ("C", "D"):
            return 0.0
        return self._voltage * amps * self._phases

    def poll(self):
        now = self._clock()
        self._wms += self.power_w() * ticks_diff(now, self._at)
        self._at = now
        if self._wms >= _WMS_PER_WH:
            whole = int(self._wms // _WMS_PER_WH)
            self._wh += whole
            self._wms -= whole * _WMS_PER_WH

    def energy_wh(self):
        self.poll()
        return self._wh

    def resume(self, wh):
        if wh > self._wh:
            self._wh = int(wh)

    def current_a(self):
        return self.power_w() / (self._voltage * self._phases)

    def voltage_v(self):
        return self._voltage


class PinTamper(base.Tamper):
    """A tamper switch between the GPIO and GND, closed while the enclosure is shut: the pin
    (pulled up) reads 1 when the enclosure is open or the wire is cut."""

    def __init__(self, pin):
        self.pin = pin

    def opened(self):
        return self.pin.value() == 1
