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

    def waiting(self):
        return 0  # nothing batched: every line is in `lines` at once

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


def pn532_frame(data):
    """A PN532 normal information frame around `data` (TFI first), written out here rather
    than taken from the driver, so the tests check the driver against the manual."""
    n = len(data)
    return (bytes((0x00, 0x00, 0xFF, n, (0x100 - n) & 0xFF)) + bytes(data)
            + bytes(((0x100 - sum(data)) & 0xFF, 0x00)))


PN532_ACK = b"\x00\x00\xff\x00\xff\x00"


class FakePn532:
    """A PN532 as the host sees it through the bus: each host frame is checked (start code,
    LEN/LCS, TFI D4, DCS), acknowledged with the ACK frame, then answered. `card`: UID bytes
    of the card in the field (None: no card); `mute`: commands it acknowledges but never
    answers (the host must abort them with an ACK); `deaf`: no answer at all."""

    def __init__(self, card=None):
        self.card = card
        self.mute = ()
        self.deaf = False
        self.frames = []     # host frames, as sent
        self.aborts = 0
        self._queue = []

    def host_write(self, data):
        data = bytes(data)
        if data == PN532_ACK:
            self.aborts += 1
            self._queue = []
            return
        assert data[:3] == b"\x00\x00\xff", data
        n = data[3]
        assert (n + data[4]) & 0xFF == 0, data
        body = data[5:5 + n]
        assert len(body) == n and body[0] == 0xD4, data
        assert (sum(body) + data[5 + n]) & 0xFF == 0 and data[6 + n] == 0x00, data
        self.frames.append(data)
        if self.deaf:
            return
        cmd = body[1]
        self._queue = [PN532_ACK]
        if cmd in self.mute:
            return
        if cmd == 0x02:      # GetFirmwareVersion: PN532 (IC 0x32) v1.6, supports 7
            answer = b"\xd5\x03\x32\x01\x06\x07"
        elif cmd == 0x4A:    # InListPassiveTarget: NbTg, Tg 1, SENS_RES, SEL_RES, NFCID1
            uid = self.card
            answer = b"\xd5\x4b\x00" if not uid else (
                b"\xd5\x4b\x01\x01\x00\x44\x00" + bytes((len(uid),)) + bytes(uid))
        else:                # SAMConfiguration, RFConfiguration: no data
            answer = bytes((0xD5, cmd + 1))
        self._queue.append(pn532_frame(answer))

    def ready(self):
        return bool(self._queue)

    def read(self, n):
        """The next queued frame, cut or padded with zeros to n bytes, as the bus gives it."""
        data = self._queue.pop(0) if self._queue else b""
        return (data + bytes(n))[:n]


class FakePn532I2c:
    """machine.I2C with a PN532 at 0x24: a read begins with the status byte."""

    def __init__(self, chip):
        self.chip = chip

    def writeto(self, addr, buf):
        assert addr == 0x24
        self.chip.host_write(buf)

    def readfrom_into(self, addr, buf):
        buf[0] = 1 if self.chip.ready() else 0

    def readfrom(self, addr, n):
        return bytes((1,)) + self.chip.read(n - 1)


class FakePn532Spi:
    """machine.SPI with a PN532: the first byte written says data write (1), status read (2)
    or data read (3); readinto() answers the last of the two reads."""

    def __init__(self, chip):
        self.chip = chip
        self._op = None

    def write(self, buf):
        op = buf[0]
        assert op in (1, 2, 3), buf
        if op == 1:
            self.chip.host_write(buf[1:])
        self._op = op

    def readinto(self, buf):
        if self._op == 2:
            buf[0] = 1 if self.chip.ready() else 0
        else:
            data = self.chip.read(len(buf))
            for i in range(len(buf)):
                buf[i] = data[i]


class FakeNetworkModule:
    """MicroPython's `network` module with one station and an access point the test switches
    (`ap`): connect() joins when the AP is on; losing the AP drops the station, which then
    keeps reconnecting by itself (as the esp32 port's driver does) until disconnect()."""

    STA_IF = 0
    STAT_IDLE, STAT_CONNECTING, STAT_NO_AP_FOUND, STAT_GOT_IP = 1000, 1001, 201, 1010

    def __init__(self, ap=True):
        self.ap = ap
        self.calls = []
        self.name = None
        self.sta = None

    def hostname(self, name):
        self.name = name

    def WLAN(self, interface):
        if self.sta is None:
            self.sta = _FakeStation(self)
        return self.sta


class _FakeStation:
    def __init__(self, net):
        self._net = net
        self.wanted = False  # connect() called, no disconnect() since
        self.config = None

    def active(self, on):
        self._net.calls.append(("active", on))

    def ifconfig(self, cfg=None):
        if cfg is not None:
            self._net.calls.append(("ifconfig", cfg))
            self.config = cfg
            return None
        return self.config or ("10.0.0.2", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def connect(self, ssid, password):
        self._net.calls.append(("connect", ssid, password))
        self.wanted = True

    def disconnect(self):
        self._net.calls.append(("disconnect",))
        self.wanted = False

    def isconnected(self):
        return self.wanted and self._net.ap

    def status(self, param=None):
        if param == "rssi":
            if not self.isconnected():
                raise OSError("not connected")
            return -61
        net = self._net
        if not self.wanted:
            return net.STAT_IDLE
        return net.STAT_GOT_IP if net.ap else net.STAT_NO_AP_FOUND


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
    keys (a dict), outbox, now(), connectors, the status attributes TriggerMessage reports, and
    feature/loaded/drop. Plain attributes: a test sets `t` (unix seconds) or `online_`."""

    def __init__(self, data, cp_id="CP_1", t=1714564800):
        self.cfg = {"_data": data, "_dir": data,
                    "csms": {"id": cp_id, "ca_file": None, "verify_tls": True},
                    "station": {"vendor": "V", "model": "M", "firmware_version": "0.1.0"}}
        self.keys = {"SecurityProfile": 0}  # the OCPP keys the modules under test read
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
