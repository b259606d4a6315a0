"""Fakes shared by the unit tests: a log, a clock, pins and a UART.

Plain Python that both interpreters import (tests run some of these under the MicroPython unix
port too), so: no typing, no dataclasses, no f-string-only tricks.
"""


class Log:
    """Collects every (level, tag, message); `level` is what firmware code reads (0: debug)."""

    def __init__(self, level=1):
        self.level = level
        self.lines = []

    def _add(self, level, tag, msg):
        self.lines.append((level, tag, msg))

    def debug(self, tag, msg):
        self._add("debug", tag, msg)

    def info(self, tag, msg):
        self._add("info", tag, msg)

    def warn(self, tag, msg):
        self._add("warn", tag, msg)

    def error(self, tag, msg):
        self._add("error", tag, msg)

    def exc(self, tag, msg, e):
        self._add("error", tag, "%s: %r" % (msg, e))

    def flush(self):
        pass

    def levels(self, level):
        """The messages logged at `level`."""
        return [m for lvl, _, m in self.lines if lvl == level]

    def text(self):
        return "\n".join("%s %s: %s" % line for line in self.lines)


class Clock:
    """A millisecond clock the test moves: call it for the time, advance() or sleep() to move."""

    def __init__(self, t=1000):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t += ms

    sleep = advance


# -- hardware: pins, PWM, ADC and a UART with a Modbus meter behind it ---------------------------

class FakePin:
    """machine.Pin's value(): the level, the history of written levels, and an optional
    on_change(level) hook that plays the wiring (a lock switch following its drive pin...)."""

    def __init__(self, level=0, on_change=None):
        self.level = level
        self.history = []
        self.on_change = on_change

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        self.history.append(self.level)
        if self.on_change:
            self.on_change(self.level)
        return None


class FakePwm:
    def __init__(self):
        self.duty = None

    def duty_u16(self, v):
        self.duty = v


class FakeAdc:
    """The control pilot as a square wave: `high`/`low` pilot volts mapped back to ADC
    microvolts with scale 8, offset -12 (pilot = adc_v * 8 - 12); every `high_every`th
    reading is the high level."""

    def __init__(self, high, low=-12.0, high_every=4):
        self.set(high, low)
        self.n = 0
        self.high_every = high_every

    def set(self, high, low=-12.0):
        self.hi = int((high + 12) / 8 * 1e6)
        self.lo = int((low + 12) / 8 * 1e6)

    def read_uv(self):
        self.n += 1
        return self.hi if self.n % self.high_every == 0 else self.lo


class FakeUart:
    """Half-duplex bus: write() hands the request to `respond(request, n)`, whose bytes
    become readable."""

    def __init__(self, respond):
        self.respond = respond
        self.rx = bytearray()
        self.sent = []

    def write(self, buf):
        self.sent.append(bytes(buf))
        reply = self.respond(bytes(buf), len(self.sent))
        if reply:
            self.rx.extend(reply)
        return len(buf)

    def any(self):
        return len(self.rx)

    def read(self, n):
        out = bytes(self.rx[:n])
        self.rx = self.rx[n:]  # (MicroPython's bytearray has no slice deletion)
        return out or None


def input_reply(unit, values):
    """Modbus function 0x04 response carrying big-endian float32 values."""
    import struct
    from hal.modbus import with_crc
    data = b"".join(struct.pack(">f", v) for v in values)
    return with_crc(bytes((unit, 4, len(data))) + data)


def meter_model(regs, unit=1):
    """A Modbus meter for FakeUart: answers 0x04 from a register dict {addr: float}
    (an exception 2 for a register it lacks, silence for a bad CRC or another unit)."""
    import struct
    from hal.modbus import crc16, with_crc

    def respond(req, n):
        if crc16(req[:-2]) != req[-2] | req[-1] << 8:
            return b""
        u, fn, addr, count = struct.unpack(">BBHH", req[:6])
        if u != unit or fn != 4:
            return b""
        vals = []
        for a in range(addr, addr + count, 2):
            if a not in regs:
                return with_crc(bytes((unit, 0x84, 2)))
            vals.append(regs[a])
        return input_reply(unit, vals)
    return respond


# -- a charge point for feature modules (firmware/profiles.py) ---------------------------------

class Outbox:
    """Keeps what is put; deliver() plays the Central System answering every message."""

    def __init__(self):
        self.entries = []

    def put(self, entry):
        self.entries.append(entry)

    def has_tx(self):
        return False

    def report(self):
        return ""  # nothing held (firmware/outbox.py)

    def sent(self, action=None):
        """The payloads put so far (of `action` only, when given)."""
        return [e.payload for e in self.entries if action in (None, e.action)]

    def deliver(self, reply=None):
        entries, self.entries = self.entries, []
        for e in entries:
            if e.on_reply:
                e.on_reply(reply or {})
        return entries


class ChargePoint:
    """What a feature module sees of firmware/chargepoint.py: cfg (data_dir `data`), log,
    outbox, now(), connectors, the status attributes TriggerMessage reports, and
    feature/loaded/drop. Plain attributes: a test sets `t` (unix seconds) or `online_`."""

    def __init__(self, data, cp_id="CP_1", t=1714564800):
        self.cfg = {"_data": data, "_dir": data,
                    "csms": {"id": cp_id, "ca_file": None, "verify_tls": True},
                    "station": {"vendor": "V", "model": "M", "firmware_version": "0.1.0"}}
        self.log = Log()
        self.outbox = Outbox()
        self.t = t
        self.connectors = []
        self.firmware_version = "0.1.0"
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self.online_ = True
        self.kicks = 0
        self._features = {}
        self.keys = {"SecurityProfile": 0}  # transfer.settings() reads it

    def now(self):
        return self.t

    def kick(self):
        self.kicks += 1

    def online(self):
        return self.online_

    def feature(self, name):
        state = self._features.get(name)
        if state is None:
            import sys
            __import__("firmware." + name)
            state = self._features[name] = sys.modules["firmware." + name].load(self)
        return state

    def loaded(self, name):
        return self._features.get(name)

    def drop(self, name):
        self._features.pop(name, None)
