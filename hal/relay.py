"""Contactor relay on a GPIO, with an optional auxiliary-contact feedback input.

Pins are passed in already configured (objects with value()), so this module
runs anywhere; hal.esp32 builds them from machine.Pin.
"""
from firmware.compat import ticks_ms, ticks_diff
from hal import base


class Relay(base.Relay):
    """Drives the contactor and tells when it stayed closed against orders."""

    def __init__(self, out, feedback=None, active_low=False,
                 feedback_active_low=True, settle_ms=500, clock=ticks_ms):
        self._out = out
        self._fb = feedback
        self._active_low = bool(active_low)
        self._fb_active_low = bool(feedback_active_low)
        self._settle = settle_ms
        self._clock = clock
        self._on = True  # forces the first set() to record a change
        self.set(False)

    def set(self, on):
        on = bool(on)
        if on != self._on:
            # The contactor needs time to move; feedback before then is noise.
            self._changed = self._clock()
        self._on = on
        self._out.value(1 if on != self._active_low else 0)

    def is_on(self):
        return self._on

    def feedback_closed(self):
        """True when the auxiliary contact reports closed; None without feedback."""
        if self._fb is None:
            return None
        return bool(self._fb.value()) != self._fb_active_low

    def welded(self):
        """Commanded open, settled, yet the auxiliary contact says closed."""
        if self._fb is None or self._on:
            return False
        if ticks_diff(self._clock(), self._changed) < self._settle:
            return False
        return bool(self.feedback_closed())
