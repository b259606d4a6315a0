"""Connector lock: an actuator pulsed on GPIOs, confirmed by a position input.

Two wirings:
- two drive pins (motor through an H-bridge, or a bistable solenoid with two
  coils): `drive` is pulsed to lock, `release` is pulsed to unlock;
- one drive pin (release=None): the pin is held high while locked and low
  while unlocked (monostable solenoid).
The pulse blocks the caller for pulse_ms; it happens once per session, so the
short stall of the event loop is accepted (the watchdog timeout is far longer).
While the lock is meant to hold, fault() watches the position input: a lock that lets go
under a charging session is a ConnectorLockFailure (the firmware then opens the contactor).
"""
from firmware.compat import sleep_ms, ticks_ms, ticks_diff
from hal import base

# The position input must read "open" this long before a holding lock counts as lost:
# a switch bounces for a few ms, and one bad read must not end a session.
_LOST_MS = 60


class Lock(base.Lock):
    def __init__(self, drive, sense, release=None, sense_active_low=False,
                 pulse_ms=300, sleep=sleep_ms, clock=ticks_ms):
        self._drive = drive
        self._release = release
        self._sense = sense
        self._sense_active_low = bool(sense_active_low)
        self._pulse = pulse_ms
        self._sleep = sleep
        self._clock = clock
        self.failed = False  # the last move was not confirmed
        self._held = False   # locked and confirmed: the position is watched
        self._lost = None    # since when a held lock reads open
        drive.value(0)
        if release is not None:
            release.value(0)

    def is_locked(self):
        return bool(self._sense.value()) != self._sense_active_low

    def lock(self):
        return self._move(True)

    def unlock(self):
        return self._move(False)

    def _move(self, locked):
        if self._release is None:
            self._drive.value(1 if locked else 0)
            self._sleep(self._pulse)
        else:
            pin = self._drive if locked else self._release
            pin.value(1)
            try:
                self._sleep(self._pulse)
            finally:
                # Never leave a motor powered, even if the sleep is interrupted.
                pin.value(0)
        ok = self.is_locked() == locked
        self.failed = not ok
        self._held = locked and ok
        self._lost = None
        return ok

    def fault(self):
        if self.failed:
            return "ConnectorLockFailure"
        if not self._held or self.is_locked():
            self._lost = None
            return None
        now = self._clock()
        if self._lost is None:
            self._lost = now
        return "ConnectorLockFailure" if ticks_diff(now, self._lost) >= _LOST_MS else None
