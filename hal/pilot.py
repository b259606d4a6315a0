"""IEC 61851-1 control pilot: 1 kHz PWM out, pilot voltage in.

The EVSE advertises the current limit through the PWM duty (Annex A); the EV
answers by loading the +12 V level down to 9 V (B, connected), 6 V (C, asks
for energy), 3 V (D, asks for energy with ventilation). 0 V (E) is a short,
-12 V (F) means no usable pilot. The EV's diode leaves the negative half at
-12 V; a negative level well above that while PWM runs means the diode is
missing or shorted, which is treated as state F.

The ADC samples a burst and keeps the highest (pilot level) and lowest
(negative half) value, so the burst must span a full 1 ms PWM period.
"""
from firmware.compat import ticks_ms, ticks_diff
from hal import base

FREQ_HZ = 1000
_MIN_A = 6.0
_MAX_A = 80.0
# Readings younger than this are reused: state() and fault() are called
# back-to-back from the loop and a sample burst takes a few ms.
_CACHE_MS = 50
# A negative half above this (volts) while PWM runs: diode missing.
_DIODE_MAX_V = -10.5
# With PWM running, a burst whose levels differ by less than this is "flat".
_MIN_SWING_V = 3.0
# Readings in a row needed before a flat burst or a bad diode is believed:
# a burst can miss a short phase (10 % duty: 100 us high; 96 %: 40 us low).
_CONFIRM = 3


def duty_for_current(amps):
    """PWM duty in percent for a current limit in amps (IEC 61851-1 Annex A).

    6..51 A: duty = A / 0.6; 51..80 A: duty = A / 2.5 + 64; above 80 A the
    limit is clamped to 80 A. None or below 6 A means no charging is offered:
    100 % (steady +12 V, no PWM, state x1).
    """
    if amps is None or amps < _MIN_A:
        return 100.0
    if amps > _MAX_A:
        amps = _MAX_A
    if amps <= 51:
        return amps / 0.6
    return amps / 2.5 + 64


def classify_pilot(volts):
    """State letter for the pilot's positive level, thresholds at the midpoints."""
    if volts >= 10.5:
        return "A"
    if volts >= 7.5:
        return "B"
    if volts >= 4.5:
        return "C"
    if volts >= 1.5:
        return "D"
    if volts >= -6.0:
        return "E"
    return "F"


class Pilot(base.Pilot):
    """pwm: object with duty_u16(int); adc: object with read_uv() (microvolts).
    fault() (from base.Pilot): EVCommunicationError in states E and F.
    In state F (set_state_f) the output stays at -12 V whatever the limit, and state()
    returns the last reading: the line shows our own -12 V, not the EV."""

    def __init__(self, pwm, adc, scale=8.0, offset=-12.0, invert=False,
                 samples=64, clock=ticks_ms):
        self._pwm = pwm
        self._adc = adc
        self._scale = scale
        self._offset = offset
        self._invert = bool(invert)
        self._samples = samples
        self._clock = clock
        self._at = None
        self._state = "F"
        self._flat = 0
        self._diode = 0
        self.limit = None
        self.set_current_limit(None)

    def set_current_limit(self, amps):
        self.limit = amps  # as asked; the duty says whether it can be offered
        self.duty = duty_for_current(amps)
        self._output()

    def set_state_f(self, on):
        self.state_f = bool(on)
        self._output()

    def _output(self):
        d = 0.0 if self.state_f else self.duty  # 0 %: the driver's -12 V rail, state F
        if self._invert:
            d = 100.0 - d
        self._pwm.duty_u16(int(d * 65535 / 100 + 0.5))
        self._at = None  # the next reading must see the new output

    def sample(self):
        """(high, low) pilot volts over one burst of ADC readings."""
        hi = lo = None
        adc = self._adc
        for _ in range(self._samples):
            v = adc.read_uv()
            if hi is None or v > hi:
                hi = v
            if lo is None or v < lo:
                lo = v
        if hi is None or lo is None:
            return (0.0, 0.0)
        k = self._scale / 1000000
        return (hi * k + self._offset, lo * k + self._offset)

    def state(self):
        if self.state_f:
            return self._state
        now = self._clock()
        if self._at is not None and ticks_diff(now, self._at) < _CACHE_MS:
            return self._state
        high, low = self.sample()
        pwm_on = 0.0 < self.duty < 100.0
        if pwm_on and high - low < _MIN_SWING_V:
            # Either the burst missed a short phase or the pilot is stuck
            # (shorted: E, pulled negative: F). Believe it once it repeats;
            # until then keep the last state and sample again next call.
            self._flat += 1
            if self._flat < _CONFIRM:
                return self._state
        else:
            self._flat = 0
        s = classify_pilot(high)
        if pwm_on and not self._flat and s in ("B", "C", "D") and low > _DIODE_MAX_V:
            self._diode += 1
        else:
            self._diode = 0
        self._state = "F" if self._diode >= _CONFIRM else s
        self._at = now
        return self._state
