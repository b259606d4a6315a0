"""S0 impulse meter (EN 62053-31): count impulses on a GPIO interrupt.

Energy is the impulse count; power is estimated from the interval between the
last two impulses, and decays while no impulse arrives (the next impulse can
only be later than the interval already waited). The count starts at zero on
every boot (the meter keeps no register we can read): the firmware stores the last
value it sent and resume(wh) continues from there, so energy_wh() is monotone across
power cuts too.
"""
from firmware.compat import ticks_ms, ticks_diff
from hal import base

# S0 impulses are at least 30 ms long; edges closer than this are bounce.
_DEBOUNCE_MS = 20
# No impulse for this long: report zero power instead of a tiny estimate.
_IDLE_MS = 600000
# 1 impulse = 3.6e6 / ipk joules; power W = 3.6e9 / (ipk * interval_ms).
_WMS_PER_KWH = 3600000000.0


class S0Meter(base.Meter):
    volatile = True

    def __init__(self, impulses_per_kwh, voltage=230.0, phases=1, base_wh=0,
                 clock=ticks_ms):
        self._ipk = impulses_per_kwh
        self._voltage = float(voltage)
        self._phases = phases
        self._base = base_wh
        self._clock = clock
        self._count = 0
        self._last = None
        self._interval = None

    def irq(self, pin=None):
        """Pin.irq handler: one impulse (soft IRQ, so it may allocate)."""
        t = self._clock()
        if self._last is not None:
            dt = ticks_diff(t, self._last)
            if dt < _DEBOUNCE_MS:
                return
            self._interval = dt
        self._last = t
        self._count += 1

    def impulses(self):
        return self._count

    def energy_wh(self):
        return self._base + self._count * 1000 // self._ipk

    def resume(self, wh):
        """Never below `wh` from now on: impulses counted before this call are taken as part of
        it (the contactor is open at boot), so resuming twice counts nothing twice."""
        short = wh - self.energy_wh()
        if short > 0:
            self._base += short

    def power_w(self):
        if self._interval is None or self._last is None:
            return 0.0
        since = ticks_diff(self._clock(), self._last)
        if since > _IDLE_MS:
            return 0.0
        period = self._interval if self._interval > since else since
        return _WMS_PER_KWH / (self._ipk * period)

    def current_a(self):
        return self.power_w() / (self._voltage * self._phases)

    def voltage_v(self):
        # An S0 meter reports energy only: this is the nominal supply voltage.
        return self._voltage
