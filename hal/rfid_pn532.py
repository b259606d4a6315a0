"""NXP PN532 over I2C or SPI: read the UID of an ISO/IEC 14443 A card (the common red and
blue PN532 breakout modules; their switches pick I2C or SPI).

Frames (PN532 user manual 6.2): PREAMBLE 00, START CODE 00 FF, LEN, LCS (LEN + LCS = 0),
TFI (D4 host to PN532, D5 back), the command and its data, DCS (TFI + data + DCS = 0),
POSTAMBLE 00. The PN532 acknowledges each command with the ACK frame 00 00 FF 00 FF 00 before
it answers; an ACK from the host aborts the command under way.

read_uid() sends InListPassiveTarget (one target, 106 kbps type A). The passive activation
retries are set to one at start (RFConfiguration), so without a card the answer comes within
a few ms; each wait is bounded (_ACK_MS, _LIST_MS) and a command not answered in time is
aborted, so one poll blocks the loop for at most about 60 ms.

The bus objects (I2cBus, SpiBus) give write(frame), ready() -> bool and read(n); they take
machine.I2C / machine.SPI objects, so the driver runs on CPython with fakes.
"""
from firmware.compat import const, sleep_ms, ticks_ms, ticks_diff

_HOST = const(0xD4)
_PN532 = const(0xD5)
_GET_FIRMWARE_VERSION = const(0x02)
_SAM_CONFIGURATION = const(0x14)
_RF_CONFIGURATION = const(0x32)
_IN_LIST_PASSIVE_TARGET = const(0x4A)
_IC_PN532 = const(0x32)
_I2C_ADDRESS = const(0x24)
# SPI: the first byte of every exchange says what it is.
_SPI_DATA_WRITE = const(0x01)
_SPI_STATUS_READ = const(0x02)
_SPI_DATA_READ = const(0x03)
_ACK_MS = const(10)
_REPLY_MS = const(50)    # GetFirmwareVersion, SAMConfiguration, RFConfiguration
_LIST_MS = const(50)     # InListPassiveTarget with one activation retry
# Largest answer read: InListPassiveTarget with a 10-byte UID and a 20-byte ATS fits.
_MAX_READ = const(48)

ACK = b"\x00\x00\xff\x00\xff\x00"


def frame(data):
    """The normal information frame carrying `data` (TFI first)."""
    n = len(data)
    dcs = (-sum(data)) & 0xFF
    return bytes((0x00, 0x00, 0xFF, n, (-n) & 0xFF)) + bytes(data) + bytes((dcs, 0x00))


def command(cmd, params=b""):
    """The frame of a host command."""
    return frame(bytes((_HOST, cmd)) + bytes(params))


def parse(buf):
    """The data of the PN532's frame in `buf` (after TFI: the answer code first). Leading
    zero bytes are skipped. ValueError for a frame that is not whole and valid."""
    i = 0
    n = len(buf)
    while i < n and buf[i] == 0x00:
        i += 1
    if i == 0 or i >= n or buf[i] != 0xFF:
        raise ValueError("no start code")
    i += 1
    if i + 2 > n:
        raise ValueError("short frame")
    length, lcs = buf[i], buf[i + 1]
    if (length + lcs) & 0xFF or length < 2:
        raise ValueError("bad length checksum")
    body = buf[i + 2:i + 2 + length]
    if len(body) != length or i + 2 + length >= n:
        raise ValueError("short frame")
    if (sum(body) + buf[i + 2 + length]) & 0xFF:
        raise ValueError("bad data checksum")
    if body[0] != _PN532:
        raise ValueError("not from the PN532")
    return bytes(body[1:])


def target_uid(answer):
    """The UID in an InListPassiveTarget answer (4B NbTg Tg SENS_RES(2) SEL_RES NFCIDLength
    NFCID1...), or None when no card answered."""
    if len(answer) < 2 or answer[0] != _IN_LIST_PASSIVE_TARGET + 1 or answer[1] < 1:
        return None
    if len(answer) < 7:
        raise ValueError("short target data")
    n = answer[6]
    if n not in (4, 7, 10) or len(answer) < 7 + n:
        raise ValueError("bad UID length %d" % n)
    return bytes(answer[7:7 + n])


class I2cBus:
    """machine.I2C at 100-400 kHz. A read starts with the status byte (bit 0: ready)."""

    def __init__(self, i2c, address=_I2C_ADDRESS):
        self._i2c = i2c
        self._addr = address
        self._status = bytearray(1)

    def write(self, data):
        self._i2c.writeto(self._addr, data)

    def ready(self):
        self._i2c.readfrom_into(self._addr, self._status)
        return bool(self._status[0] & 1)

    def read(self, n):
        return self._i2c.readfrom(self._addr, n + 1)[1:]


class SpiBus:
    """machine.SPI in mode 0, LSB first, <= 5 MHz; cs: output pin (active low)."""

    def __init__(self, spi, cs):
        self._spi = spi
        self._cs = cs
        self._status = bytearray(1)
        cs.value(1)

    def _op(self, first, data=None, into=None):
        self._cs.value(0)
        try:
            self._spi.write(bytes((first,)) + (data or b""))
            if into is not None:
                self._spi.readinto(into)
        finally:
            self._cs.value(1)

    def write(self, data):
        self._op(_SPI_DATA_WRITE, data)

    def ready(self):
        self._op(_SPI_STATUS_READ, into=self._status)
        return bool(self._status[0] & 1)

    def read(self, n):
        buf = bytearray(n)
        self._op(_SPI_DATA_READ, into=buf)
        return bytes(buf)


class Pn532:
    """bus: I2cBus or SpiBus. OSError when no PN532 answers at start."""

    def __init__(self, bus, sleep=sleep_ms, clock=ticks_ms):
        self._bus = bus
        self._sleep = sleep
        self._clock = clock
        # The first frame wakes a PN532 in low-power mode and may go unanswered: try twice.
        answer = self._call(_GET_FIRMWARE_VERSION) or self._call(_GET_FIRMWARE_VERSION)
        if answer is None or len(answer) < 5 or answer[1] != _IC_PN532:
            raise OSError("PN532 not answering")
        self.version = "%d.%d" % (answer[2], answer[3])
        if self._call(_SAM_CONFIGURATION, b"\x01\x14\x01") is None:  # normal mode, no SAM
            raise OSError("PN532 refused SAMConfiguration")
        # MaxRetries: ATR 0xFF, PSL 1, passive activation 1 (the default 0xFF waits for ever).
        self._call(_RF_CONFIGURATION, b"\x05\xff\x01\x01")

    def _wait(self, ms):
        t0 = self._clock()
        while not self._bus.ready():
            if ticks_diff(self._clock(), t0) >= ms:
                return False
            self._sleep(1)
        return True

    def _call(self, cmd, params=b"", ms=_REPLY_MS):
        """The answer's data (the answer code first), or None when none came in time."""
        bus = self._bus
        try:
            bus.write(command(cmd, params))
            if not self._wait(_ACK_MS) or bus.read(len(ACK)) != ACK:
                return None
            if not self._wait(ms):
                bus.write(ACK)  # abort, so the next command starts clean
                return None
            answer = parse(bus.read(_MAX_READ))
        except ValueError:
            return None
        if not answer or answer[0] != cmd + 1:
            return None
        return answer

    def read_uid(self):
        """UID bytes of the card in the field, or None."""
        answer = self._call(_IN_LIST_PASSIVE_TARGET, b"\x01\x00", _LIST_MS)
        if answer is None:
            return None
        try:
            return target_uid(answer)
        except ValueError:
            return None
