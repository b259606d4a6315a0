"""Modbus RTU master for "read input registers" (function 0x04) over a UART.

Frames: [address][function][payload...][CRC16 low][CRC16 high], CRC16 with
polynomial 0xA001 (reflected 0x8005) and initial value 0xFFFF.

A blocking request/response on the ESP32 would stall the asyncio loop for the
whole turnaround (tens of ms at 9600 baud, up to the timeout when the meter is
silent). So the master is polled: start() writes one request, poll() picks up
whatever bytes have arrived without waiting and returns the registers once the
frame is complete. Only the write waits, and only with a DE pin (the driver
must stay enabled until the last stop bit: 8 bytes, ~8 ms at 9600 baud).
"""
import struct

from firmware.compat import const, ticks_ms, ticks_diff

_FN_READ_INPUT = const(0x04)
_EXC_FLAG = const(0x80)
# Largest frame we accept: 125 registers is the protocol maximum for 0x03/0x04.
_MAX_FRAME = const(5 + 2 * 125)


class ModbusError(Exception):
    """kind: "timeout" | "crc" | "frame" | "exception" (code: the exception code)."""

    def __init__(self, kind, code=0):
        super().__init__(kind, code)
        self.kind = kind
        self.code = code


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


def with_crc(body):
    crc = crc16(body)
    return bytes(body) + bytes((crc & 0xFF, crc >> 8))


def read_request(unit, addr, count, fn=_FN_READ_INPUT):
    """Request frame for `count` registers from `addr` (0-based protocol address)."""
    return with_crc(struct.pack(">BBHH", unit, fn, addr, count))


def expected_length(buf, count):
    """Frame length once enough header bytes are in, else 0."""
    if len(buf) < 2:
        return 0
    if buf[1] & _EXC_FLAG:
        return 5
    return 5 + 2 * count


def parse_response(frame, unit, count, fn=_FN_READ_INPUT):
    """Register bytes (2 * count) from a complete response frame; raises ModbusError."""
    if len(frame) < 5:
        raise ModbusError("frame")
    body = frame[:-2]
    crc = crc16(body)
    if frame[-2] != crc & 0xFF or frame[-1] != crc >> 8:
        raise ModbusError("crc")
    if frame[0] != unit:
        raise ModbusError("frame")
    if frame[1] == fn | _EXC_FLAG:
        raise ModbusError("exception", frame[2])
    if frame[1] != fn or frame[2] != 2 * count or len(frame) != 5 + 2 * count:
        raise ModbusError("frame")
    return bytes(frame[3:3 + 2 * count])


def float32(data, offset=0):
    """IEEE 754 single precision, big-endian (high word first), as Eastron sends."""
    return struct.unpack_from(">f", data, offset)[0]


class ModbusMaster:
    """One outstanding request at a time; see the module doc for why it polls.

    uart: object with write(buf), any() -> int, read(n) -> bytes or None.
    de: optional driver-enable pin (value(0/1)) of a half-duplex RS485 transceiver.
    """

    # Meters sharing the bus (two connectors on one RS485 line, by address): `owner` is the
    # meter whose request is out; with `shared` each meter lets the other have the next turn.
    owner = None
    shared = False

    def __init__(self, uart, timeout_ms=200, retries=2, de=None, clock=ticks_ms):
        self._uart = uart
        self._timeout = timeout_ms
        self._retries = retries
        self._de = de
        self._clock = clock
        self._req = None
        self._unit = 0
        self._count = 0
        self._tries = 0
        self._sent = 0
        self._buf = bytearray()
        if de is not None:
            de.value(0)

    def busy(self):
        return self._req is not None

    def start(self, unit, addr, count):
        self._unit = unit
        self._count = count
        self._req = read_request(unit, addr, count)
        self._tries = 0
        self._send()

    def _drain(self):
        # Stale bytes (a late answer to a timed-out request) would misalign
        # the next frame; the loop is bounded by the UART's own buffer.
        uart = self._uart
        for _ in range(8):
            n = uart.any()
            if not n:
                break
            uart.read(n)

    def _send(self):
        req = self._req
        if req is None:
            return
        self._drain()
        self._buf = bytearray()
        de = self._de
        if de is not None:
            de.value(1)
        self._uart.write(req)
        if de is not None:
            flush = getattr(self._uart, "flush", None)
            if flush is not None:
                flush()  # waits for the last bit to leave the shift register
            de.value(0)
        self._tries += 1
        self._sent = self._clock()

    def poll(self):
        """None while waiting (or idle); the register bytes when done.

        Raises ModbusError when the meter answers with an exception (no retry:
        it would answer the same) or after the retries ran out.
        """
        if self._req is None:
            return None
        uart = self._uart
        n = uart.any()
        room = _MAX_FRAME - len(self._buf)
        if n and room > 0:
            chunk = uart.read(n if n < room else room)
            if chunk:
                self._buf.extend(chunk)
        need = expected_length(self._buf, self._count)
        if need and len(self._buf) >= need:
            try:
                data = parse_response(self._buf[:need], self._unit, self._count)
            except ModbusError as e:
                if e.kind == "exception":
                    self._req = None
                    raise
                return self._retry(e)
            self._req = None
            return data
        if ticks_diff(self._clock(), self._sent) >= self._timeout:
            return self._retry(ModbusError("timeout"))
        return None

    def _retry(self, err):
        if self._tries <= self._retries:
            self._send()
            return None
        self._req = None
        raise err
