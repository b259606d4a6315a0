"""NXP MFRC522 over SPI: read the UID of an ISO/IEC 14443 A card.

read_uid() runs WUPA, then anticollision + SELECT for each cascade level
(4-, 7- or 10-byte UIDs), then HLTA. WUPA rather than REQA because it also
wakes a card we halted on the previous poll, so a card left on the reader is
seen on every poll (the debounce in hal.rfid_token relies on that).
Each exchange is bounded by the chip's timer (~10 ms without a card).
"""
from firmware.compat import const, sleep_ms

# Registers (datasheet section 9).
_COMMAND = const(0x01)
_COM_IRQ = const(0x04)
_ERROR = const(0x06)
_FIFO_DATA = const(0x09)
_FIFO_LEVEL = const(0x0A)
_CONTROL = const(0x0C)
_BIT_FRAMING = const(0x0D)
_COLL = const(0x0E)
_MODE = const(0x11)
_TX_CONTROL = const(0x14)
_TX_ASK = const(0x15)
_T_MODE = const(0x2A)
_T_PRESCALER = const(0x2B)
_T_RELOAD_H = const(0x2C)
_T_RELOAD_L = const(0x2D)
_VERSION = const(0x37)
# Commands.
_CMD_IDLE = const(0x00)
_CMD_TRANSCEIVE = const(0x0C)
_CMD_SOFT_RESET = const(0x0F)
# ISO/IEC 14443-3 type A.
_WUPA = const(0x52)
_SEL_CL = (0x93, 0x95, 0x97)
_CASCADE_TAG = const(0x88)
_SAK_UID_INCOMPLETE = const(0x04)
# ComIrqReg bits: RxIRq | IdleIRq mean done, TimerIRq means nobody answered.
_IRQ_DONE = const(0x30)
_IRQ_TIMER = const(0x01)
# ErrorReg bits: BufferOvfl | CollErr | ParityErr | ProtocolErr.
_ERR_MASK = const(0x1B)
# Bound on ComIrqReg polls per exchange, in case the timer never fires.
_MAX_WAIT_POLLS = const(2000)


def crc_a(data):
    """ISO/IEC 14443-3 CRC_A (init 0x6363, reflected poly 0x8408), sent low byte first."""
    crc = 0x6363
    for b in data:
        crc ^= b
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0x8408
            else:
                crc >>= 1
    return bytes((crc & 0xFF, crc >> 8))


def bcc_ok(uid_cl):
    """Five anticollision bytes: four UID bytes and their XOR check byte."""
    x = 0
    for b in uid_cl[:4]:
        x ^= b
    return x == uid_cl[4]


class Mfrc522:
    """spi: machine.SPI (mode 0, <= 10 MHz); cs, rst: output pins (rst may be None)."""

    def __init__(self, spi, cs, rst=None, sleep=sleep_ms):
        self._spi = spi
        self._cs = cs
        self._buf1 = bytearray(1)
        cs.value(1)
        if rst is not None:
            rst.value(0)
            sleep(1)
            rst.value(1)
            sleep(50)  # oscillator start-up
        self._write(_COMMAND, _CMD_SOFT_RESET)
        sleep(50)
        version = self._read(_VERSION)
        if version in (0x00, 0xFF):
            raise OSError("MFRC522 not answering on SPI")
        self.version = version
        # Timer: 13.56 MHz / (2 * 169 + 1) = 40 kHz, 400 ticks = 10 ms timeout.
        self._write(_T_MODE, 0x80)
        self._write(_T_PRESCALER, 0xA9)
        self._write(_T_RELOAD_H, 0x01)
        self._write(_T_RELOAD_L, 0x90)
        self._write(_TX_ASK, 0x40)  # 100 % ASK modulation
        self._write(_MODE, 0x3D)  # CRC preset 0x6363
        self._write(_TX_CONTROL, self._read(_TX_CONTROL) | 0x03)  # antenna on

    # -- SPI register access: address byte is 0aaaaaa0 to write, 1aaaaaa0 to read.
    def _write(self, reg, value):
        self._cs.value(0)
        try:
            self._spi.write(bytes(((reg << 1) & 0x7E, value)))
        finally:
            self._cs.value(1)

    def _read(self, reg):
        self._cs.value(0)
        try:
            self._spi.write(bytes((((reg << 1) & 0x7E) | 0x80,)))
            self._spi.readinto(self._buf1)
        finally:
            self._cs.value(1)
        return self._buf1[0]

    def _transceive(self, data, tx_last_bits=0):
        """Send a frame, return the answer bytes or None (timeout/error/collision)."""
        self._write(_COMMAND, _CMD_IDLE)
        self._write(_COM_IRQ, 0x7F)  # clear all interrupt flags
        self._write(_FIFO_LEVEL, 0x80)  # flush the FIFO
        for b in data:
            self._write(_FIFO_DATA, b)
        self._write(_BIT_FRAMING, tx_last_bits & 0x07)
        self._write(_COMMAND, _CMD_TRANSCEIVE)
        self._write(_BIT_FRAMING, 0x80 | (tx_last_bits & 0x07))  # StartSend
        irq = 0
        for _ in range(_MAX_WAIT_POLLS):
            irq = self._read(_COM_IRQ)
            if irq & (_IRQ_DONE | _IRQ_TIMER):
                break
        self._write(_BIT_FRAMING, 0)
        if not irq & _IRQ_DONE or irq & _IRQ_TIMER:
            return None
        if self._read(_ERROR) & _ERR_MASK:
            return None
        n = self._read(_FIFO_LEVEL) & 0x7F
        return bytes(self._read(_FIFO_DATA) for _ in range(n))

    def read_uid(self):
        """UID bytes of the card in the field, or None."""
        atqa = self._transceive(bytes((_WUPA,)), 7)
        if atqa is None or len(atqa) != 2:
            return None
        self._write(_COLL, 0x80)  # bits after a collision read as zero
        uid = bytearray()
        for sel in _SEL_CL:
            cl = self._transceive(bytes((sel, 0x20)))
            if cl is None or len(cl) != 5 or not bcc_ok(cl):
                return None
            frame = bytes((sel, 0x70)) + cl
            sak = self._transceive(frame + crc_a(frame))
            if sak is None or len(sak) != 3 or crc_a(sak[:1]) != sak[1:]:
                return None
            if sak[0] & _SAK_UID_INCOMPLETE:
                if cl[0] != _CASCADE_TAG:
                    return None
                uid.extend(cl[1:4])
                continue
            uid.extend(cl[:4])
            self._halt()
            return bytes(uid)
        return None

    def _halt(self):
        # HLTA is never answered; the timeout is the expected outcome.
        frame = bytes((0x50, 0x00))
        self._transceive(frame + crc_a(frame))
