"""ESP32 driver logic on CPython, with fake pins, UARTs, ADCs and clocks."""
import struct
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from firmware.clock import civil_from_days, days_from_civil  # noqa: E402
from hal import base, boards, hwspec  # noqa: E402
from hal.boards import esp32_devkit  # noqa: E402
from hal.parts import (  # noqa: E402
    EstimatedMeter, Rtc, Watchdog, datetime_to_unix, unix_to_datetime)
from hal.led import Led, PATTERNS, level_at  # noqa: E402
from hal.lock import Lock  # noqa: E402
from hal.modbus import (  # noqa: E402
    ModbusError, ModbusMaster, crc16, float32, parse_response, read_request,
    with_crc)
from hal.pilot import Pilot, classify_pilot, duty_for_current  # noqa: E402
from hal.relay import Relay  # noqa: E402
from hal.rfid_mfrc522 import bcc_ok, crc_a  # noqa: E402
from hal.rfid_token import TokenReader, id_tag  # noqa: E402
from hal.s0 import S0Meter  # noqa: E402
from hal.sdm import SdmMeter  # noqa: E402
from tests.fakes import (  # noqa: E402
    Clock, FakeAdc, FakePin, FakePn532, FakePn532I2c, FakePn532Spi, FakePwm, FakeUart,
    input_reply, meter_model)


# -- Modbus framing ---------------------------------------------------------

def test_crc16_known_request_vector():
    assert read_request(1, 0x0000, 2) == bytes.fromhex("010400000002 71CB".replace(" ", ""))
    assert crc16(bytes.fromhex("010400000002")) == 0xCB71


def test_request_layout_is_big_endian_with_crc_low_byte_first():
    req = read_request(0x11, 0x0048, 2)
    assert req[:6] == bytes((0x11, 0x04, 0x00, 0x48, 0x00, 0x02))
    crc = crc16(req[:6])
    assert req[6] == crc & 0xFF and req[7] == crc >> 8


def test_parse_response_returns_register_bytes_and_float_decodes():
    frame = input_reply(1, [230.5])
    data = parse_response(frame, 1, 2)
    assert data == struct.pack(">f", 230.5)
    assert float32(data) == 230.5
    assert float32(bytes.fromhex("43480000")) == 200.0


@pytest.mark.parametrize("mutate,kind", [
    (lambda f: f[:-1] + bytes((f[-1] ^ 0xFF,)), "crc"),
    (lambda f: with_crc(bytes((2,)) + f[1:-2]), "frame"),       # other unit
    (lambda f: with_crc(f[:2] + bytes((2,)) + f[3:5]), "frame"),  # byte count
])
def test_parse_response_rejects_bad_frames(mutate, kind):
    frame = input_reply(1, [1.0])
    with pytest.raises(ModbusError) as e:
        parse_response(mutate(frame), 1, 2)
    assert e.value.kind == kind


def test_parse_exception_response_carries_code():
    with pytest.raises(ModbusError) as e:
        parse_response(with_crc(bytes((1, 0x84, 0x02))), 1, 2)
    assert e.value.kind == "exception" and e.value.code == 2


def test_master_reads_across_polls_without_blocking():
    clock = Clock()
    uart = FakeUart(meter_model({0x0000: 231.0}))
    bus = ModbusMaster(uart, timeout_ms=200, retries=0, clock=clock)
    # Response trickles in: hold it back and release one byte per poll.
    bus.start(1, 0x0000, 2)
    held = bytes(uart.rx)
    uart.rx.clear()
    assert uart.sent == [read_request(1, 0, 2)]
    result = None
    for b in held:
        assert result is None
        uart.rx.append(b)
        result = bus.poll()
    assert float32(result) == 231.0
    assert not bus.busy()


def test_master_retries_after_crc_error_then_succeeds():
    clock = Clock()
    good = meter_model({0x0048: 12.5})

    def respond(req, n):
        frame = good(req, n)
        return frame[:-1] + bytes((frame[-1] ^ 0x55,)) if n == 1 else frame

    uart = FakeUart(respond)
    bus = ModbusMaster(uart, timeout_ms=200, retries=1, clock=clock)
    bus.start(1, 0x0048, 2)
    assert bus.poll() is None          # bad CRC -> resent at once
    assert len(uart.sent) == 2 and uart.sent[0] == uart.sent[1]
    assert float32(bus.poll()) == 12.5


def test_master_times_out_after_retries():
    clock = Clock()
    uart = FakeUart(lambda req, n: b"")
    bus = ModbusMaster(uart, timeout_ms=100, retries=2, clock=clock)
    bus.start(1, 0, 2)
    assert bus.poll() is None
    clock.advance(99)
    assert bus.poll() is None and len(uart.sent) == 1
    clock.advance(1)
    assert bus.poll() is None and len(uart.sent) == 2   # retry 1
    clock.advance(100)
    assert bus.poll() is None and len(uart.sent) == 3   # retry 2
    clock.advance(100)
    with pytest.raises(ModbusError) as e:
        bus.poll()
    assert e.value.kind == "timeout" and not bus.busy()


def test_master_exception_response_is_not_retried():
    uart = FakeUart(meter_model({}))
    bus = ModbusMaster(uart, timeout_ms=100, retries=3, clock=Clock())
    bus.start(1, 0x0100, 2)
    with pytest.raises(ModbusError) as e:
        bus.poll()
    assert e.value.kind == "exception" and e.value.code == 2
    assert len(uart.sent) == 1


def test_master_drains_stale_bytes_before_sending():
    uart = FakeUart(meter_model({0: 1.5}))
    uart.rx.extend(b"\x01\x04\x04garbage")
    bus = ModbusMaster(uart, clock=Clock())
    bus.start(1, 0, 2)
    assert float32(bus.poll()) == 1.5


def test_master_drives_de_pin_around_the_write():
    levels = []
    de = FakePin()

    class Uart(FakeUart):
        def write(self, buf):
            levels.append(de.level)
            return super().write(buf)

        def flush(self):
            levels.append(("flush", de.level))

    uart = Uart(meter_model({0: 1.0}))
    bus = ModbusMaster(uart, de=de, clock=Clock())
    bus.start(1, 0, 2)
    assert levels == [1, ("flush", 1)] and de.level == 0


# -- SDM meters ---------------------------------------------------------------

def run_polls(meter, n):
    for _ in range(n):
        meter.poll()


def test_sdm120_round_robin_fills_all_readings():
    regs = {0x0000: 229.5, 0x0006: 15.25, 0x000C: 3500.0, 0x0048: 1234.567}
    uart = FakeUart(meter_model(regs))
    m = SdmMeter(ModbusMaster(uart, clock=Clock()), 1, "sdm120")
    run_polls(m, 5)
    assert m.energy_wh() == 1234567
    assert m.voltage_v() == 229.5 and m.current_a() == 15.25 and m.power_w() == 3500.0
    assert m.phases() is None          # one phase: voltage_v() and current_a() say it all
    # one request per poll, each for one float
    assert all(len(r) == 8 and r[5] == 2 for r in uart.sent)


def test_sdm630_reads_phase_block_and_keeps_energy_monotone():
    regs = {a: 0.0 for a in range(0, 18, 2)}
    regs.update({0x0000: 230.0, 0x0002: 231.0, 0x0004: 232.0,
                 0x0006: 10.0, 0x0008: 16.0, 0x000A: 12.0,
                 0x000C: 2300.0, 0x000E: 3696.0, 0x0010: 2784.0,
                 0x0034: 11000.0, 0x0048: 50.0})
    uart = FakeUart(meter_model(regs))
    m = SdmMeter(ModbusMaster(uart, clock=Clock()), 1, "sdm630")
    run_polls(m, 4)
    assert m.phases() == ((230.0, 10.0, 2300.0), (231.0, 16.0, 3696.0), (232.0, 12.0, 2784.0))
    assert m.current_a() == 16.0 and m.power_w() == 11000.0
    assert m.energy_wh() == 50000
    # Answers are fixed when the request goes out: a full cycle (3 requests)
    # plus one poll brings a changed register in.
    regs[0x0048] = 49.0     # a glitch must not run the register backwards
    run_polls(m, 4)
    assert m.energy_wh() == 50000
    regs[0x0048] = 50.25
    run_polls(m, 4)
    assert m.energy_wh() == 50250


def test_sdm_silent_meter_becomes_stale_and_reports_fault():
    clock = Clock()
    m = SdmMeter(ModbusMaster(FakeUart(lambda r, n: b""), timeout_ms=50, retries=0,
                              clock=clock), 1, "sdm120")
    assert m.fault() is None
    for _ in range(40):
        m.poll()
        clock.advance(60)
    assert m.last_error == "timeout"
    assert m.stale() and m.fault() == "PowerMeterFailure"


# -- S0 -----------------------------------------------------------------------

def test_s0_counts_energy_and_estimates_power():
    clock = Clock(0)
    m = S0Meter(1000, voltage=230, phases=1, clock=clock)
    assert m.power_w() == 0.0
    for _ in range(10):         # 1000 imp/kWh, one impulse per 1.8 s = 2 kW
        m.irq()
        clock.advance(1800)
    assert m.energy_wh() == 10
    clock.t -= 1800             # just after the last impulse
    assert m.power_w() == pytest.approx(2000.0)
    assert m.current_a() == pytest.approx(2000.0 / 230)
    clock.advance(3600)         # twice the interval without impulse: at most half
    assert m.power_w() == pytest.approx(1000.0)
    clock.advance(600001)
    assert m.power_w() == 0.0


def test_s0_ignores_bounce_and_scales_impulse_rate():
    clock = Clock(0)
    m = S0Meter(800, clock=clock, base_wh=5000)
    m.irq()
    clock.advance(5)
    m.irq()                      # bounce
    assert m.impulses() == 1
    for _ in range(799):
        clock.advance(100)
        m.irq()
    assert m.impulses() == 800 and m.energy_wh() == 6000


# -- pilot --------------------------------------------------------------------

@pytest.mark.parametrize("amps,duty", [
    (6, 10.0), (10, 16.667), (16, 26.667), (32, 53.333), (51, 85.0),
    (63, 89.2), (80, 96.0), (100, 96.0)])
def test_duty_for_current_annex_a(amps, duty):
    assert duty_for_current(amps) == pytest.approx(duty, abs=0.001)


@pytest.mark.parametrize("amps", [None, 0, 5.9])
def test_no_charging_below_6a_is_steady_high(amps):
    assert duty_for_current(amps) == 100.0


@pytest.mark.parametrize("volts,state", [
    (12.0, "A"), (10.5, "A"), (10.4, "B"), (9.0, "B"), (7.5, "B"), (7.4, "C"),
    (6.0, "C"), (4.4, "D"), (3.0, "D"), (1.4, "E"), (0.0, "E"), (-5.9, "E"),
    (-6.1, "F"), (-12.0, "F")])
def test_classify_pilot_midpoints(volts, state):
    assert classify_pilot(volts) == state


def make_pilot(adc, invert=False):
    clock = Clock()
    pwm = FakePwm()
    return Pilot(pwm, adc, invert=invert, samples=32, clock=clock), pwm, clock


def test_pilot_pwm_duty_and_inversion():
    p, pwm, _ = make_pilot(FakeAdc(12.0))
    assert pwm.duty == 65535 and p.limit is None
    p.set_current_limit(16)
    assert pwm.duty == round(65535 * 16 / 0.6 / 100) and p.limit == 16
    p.set_current_limit(3)
    assert pwm.duty == 65535 and p.limit == 3
    p2, pwm2, _ = make_pilot(FakeAdc(12.0), invert=True)
    p2.set_current_limit(6)
    assert pwm2.duty == round(65535 * 0.9)


def test_pilot_state_from_high_level_and_cache():
    adc = FakeAdc(9.0)
    p, _, clock = make_pilot(adc)
    p.set_current_limit(16)
    assert p.state() == "B"
    adc.set(6.0)
    assert p.state() == "B"          # cached reading (< 50 ms old)
    clock.advance(50)
    assert p.state() == "C"
    assert p.fault() is None


def test_pilot_diode_failure_confirmed_over_readings():
    adc = FakeAdc(6.0, low=-6.0)     # negative half pulled up: no diode
    p, _, clock = make_pilot(adc)
    p.set_current_limit(16)
    assert p.state() == "C"
    clock.advance(50)
    assert p.state() == "C"
    clock.advance(50)
    assert p.state() == "F" and p.fault() == "EVCommunicationError"
    adc.set(6.0, -12.0)              # diode back: recovers at once
    clock.advance(50)
    assert p.state() == "C" and p.fault() is None


def test_pilot_without_pwm_reads_level_directly():
    adc = FakeAdc(6.0, 6.0)
    p, _, clock = make_pilot(adc)
    assert p.state() == "C" and p.fault() is None   # 100 %: flat is normal
    adc.set(0.0, 0.0)
    clock.advance(60)
    assert p.state() == "E" and p.fault() == "EVCommunicationError"


def test_pilot_flat_burst_with_pwm_is_believed_only_when_repeated():
    adc = FakeAdc(9.0)
    p, _, clock = make_pilot(adc)
    p.set_current_limit(10)
    assert p.state() == "B"
    adc.set(-12.0, -12.0)            # burst missed the 167 us high phase
    clock.advance(50)
    assert p.state() == "B"
    assert p.state() == "B"          # resampled at once, still unsure
    assert p.state() == "F"          # third flat burst: pilot really stuck
    adc.set(0.0, 0.0)
    clock.advance(50)
    assert p.state() == "E"          # still flat: followed directly
    adc.set(6.0)
    clock.advance(50)
    assert p.state() == "C"          # both levels seen again


def test_connector_fault_reports_relay_lock_meter_then_pilot():
    class Part:
        code = None

        def fault(self):
            return self.code

    relay, lock, meter = Part(), Part(), Part()
    p, _, _ = make_pilot(FakeAdc(0.0, 0.0))
    conn = base.Connector(relay, meter, p, lock)
    assert conn.fault() == "EVCommunicationError"
    meter.code = "PowerMeterFailure"
    assert conn.fault() == "PowerMeterFailure"
    lock.code = "ConnectorLockFailure"
    assert conn.fault() == "ConnectorLockFailure"
    relay.code = "PowerSwitchFailure"
    assert conn.fault() == "PowerSwitchFailure"


# -- relay ---------------------------------------------------------------------

def test_relay_output_polarity():
    out = FakePin()
    r = Relay(out, active_low=True, clock=Clock())
    assert out.level == 1 and not r.is_on()
    r.set(True)
    assert out.level == 0 and r.is_on()
    assert not r.welded()        # no feedback: never welded


def test_relay_weld_detection_waits_for_settle():
    clock = Clock()
    fb = FakePin(level=1)        # active low aux contact: 1 = open
    out = FakePin(on_change=lambda v: setattr(fb, "level", 0 if v else 1))
    r = Relay(out, fb, settle_ms=300, clock=clock)
    r.set(True)
    clock.advance(1000)
    assert not r.welded() and r.feedback_closed()
    out.on_change = None         # contacts stick from now on
    r.set(False)
    clock.advance(299)
    assert not r.welded()
    clock.advance(1)
    assert r.welded() and r.fault() == "PowerSwitchFailure"
    fb.level = 1
    assert not r.welded() and r.fault() is None


# -- lock ---------------------------------------------------------------------

def test_lock_two_pin_pulses_and_confirms():
    clock = Clock()
    sense = FakePin(0)
    drive = FakePin(on_change=lambda v: v and setattr(sense, "level", 1))
    release = FakePin(on_change=lambda v: v and setattr(sense, "level", 0))
    lk = Lock(drive, sense, release, pulse_ms=250, sleep=clock.sleep)
    t0 = clock.t
    assert lk.lock() is True and lk.is_locked()
    assert clock.t - t0 == 250
    assert drive.history[-2:] == [1, 0] and drive.level == 0
    assert lk.unlock() is True and not lk.is_locked()
    assert release.history[-2:] == [1, 0] and lk.fault() is None


def test_lock_fails_without_confirmation():
    clock = Clock()
    sense = FakePin(0)           # switch never moves (jammed or not fitted)
    lk = Lock(FakePin(), sense, FakePin(), pulse_ms=100, sleep=clock.sleep)
    assert lk.lock() is False
    assert lk.fault() == "ConnectorLockFailure"
    assert lk.unlock() is True   # it is indeed open
    assert lk.fault() is None


def test_lock_single_pin_holds_level_and_active_low_sense():
    clock = Clock()
    sense = FakePin(1)
    drive = FakePin(on_change=lambda v: setattr(sense, "level", 0 if v else 1))
    lk = Lock(drive, sense, None, sense_active_low=True, sleep=clock.sleep)
    assert lk.lock() is True and drive.level == 1
    assert lk.unlock() is True and drive.level == 0


# -- LED ----------------------------------------------------------------------

def test_level_at_steps_through_pattern():
    pat = (100, 100, 100, 700)
    assert [level_at(pat, t) for t in (0, 99, 100, 199, 200, 299, 300, 999, 1000)] == \
        [True, True, False, False, True, True, False, False, True]
    assert level_at((1, 0), 12345) is True
    assert level_at((0, 1), 5) is False


def test_led_poll_follows_pattern_and_polarity():
    clock = Clock()
    pin = FakePin()
    led = Led(pin, active_low=True, clock=clock)
    led.show("connecting")           # 250 on / 250 off
    assert led.lit() and pin.level == 0
    clock.advance(250)
    led.poll()
    assert not led.lit() and pin.level == 1
    clock.advance(250)
    led.poll()
    assert led.lit()
    clock.advance(10 * 500 + 260)    # late poll skips ahead
    led.poll()
    assert not led.lit()
    led.show("ready")
    clock.advance(123456)
    led.poll()
    assert led.lit()
    led.show("no-such-pattern")      # falls back to "error"
    assert led.pattern == "no-such-pattern" and led.lit()
    clock.advance(130)
    led.poll()
    assert not led.lit()


def test_every_indicator_pattern_exists():
    names = {n for n, _ in PATTERNS}
    assert names == {"idle", "connecting", "ready", "charging", "error", "fault"}


# -- RFID ---------------------------------------------------------------------

def test_crc_a_and_bcc_known_vectors():
    assert crc_a(b"\x00\x00") == b"\xa0\x1e"      # ISO/IEC 14443-3 annex
    assert crc_a(b"\x12\x34") == b"\x26\xcf"
    assert crc_a(b"\x50\x00") == b"\x57\xcd"      # HLTA frame
    assert bcc_ok(b"\x04\xa2\x1b\x7f" + bytes((0x04 ^ 0xA2 ^ 0x1B ^ 0x7F,)))
    assert not bcc_ok(b"\x04\xa2\x1b\x7f\x00")


class FakeMfrc522Spi:
    """Register-level MFRC522 with an ISO 14443 A card model behind it."""

    def __init__(self, uid=None):
        self.uid = uid
        self.regs = {0x37: 0x92, 0x14: 0x80}
        self.fifo = []
        self.pending = None
        self.frames = []
        self.halted = False

    def write(self, buf):
        if len(buf) == 1:
            self.pending = (buf[0] >> 1) & 0x3F
            return
        reg, val = (buf[0] >> 1) & 0x3F, buf[1]
        if reg == 0x09:
            self.fifo.append(val)
        elif reg == 0x0A and val & 0x80:
            self.fifo = []
        elif reg == 0x04:
            self.regs[0x04] = 0       # clear flags
        else:
            self.regs[reg] = val
        if reg == 0x0D and val & 0x80 and self.regs.get(0x01) == 0x0C:
            self._exchange(bytes(self.fifo), val & 0x07)

    def readinto(self, buf):
        reg = self.pending
        if reg == 0x09:
            buf[0] = self.fifo.pop(0)
        elif reg == 0x0A:
            buf[0] = len(self.fifo)
        else:
            buf[0] = self.regs.get(reg, 0)

    def _answer(self, frame, bits):
        if self.uid is None:
            return None
        u = self.uid
        if frame == b"\x52" and bits == 7:
            self.halted = False
            return b"\x44\x00"
        if self.halted:
            return None
        levels = [u] if len(u) == 4 else [b"\x88" + u[:3], u[3:]]
        for i, sel in enumerate((0x93, 0x95)[:len(levels)]):
            cl = levels[i] + bytes((levels[i][0] ^ levels[i][1] ^ levels[i][2] ^ levels[i][3],))
            if frame == bytes((sel, 0x20)):
                return cl
            if (frame[:2] == bytes((sel, 0x70)) and frame[2:7] == cl
                    and crc_a(frame[:7]) == frame[7:]):
                sak = b"\x04" if i + 1 < len(levels) else b"\x08"
                return sak + crc_a(sak)
        if frame == b"\x50\x00" + crc_a(b"\x50\x00"):
            self.halted = True
        return None

    def _exchange(self, frame, bits):
        self.frames.append(frame)
        reply = self._answer(frame, bits)
        self.fifo = []
        if reply is None:
            self.regs[0x04] = 0x01    # TimerIRq
        else:
            self.fifo = list(reply)
            self.regs[0x04] = 0x20    # RxIRq


@pytest.mark.parametrize("uid", [b"\xde\xad\xbe\xef", bytes.fromhex("04a21b7f2c5d80")],
                         ids=["4-byte", "7-byte"])
def test_mfrc522_reads_single_and_double_size_uids(uid):
    from hal.rfid_mfrc522 import Mfrc522
    spi = FakeMfrc522Spi()
    chip = Mfrc522(spi, FakePin(), FakePin(), sleep=lambda ms: None)
    assert chip.version == 0x92 and spi.regs[0x14] & 0x03 == 0x03   # antenna on
    assert chip.read_uid() is None
    spi.uid = uid
    assert chip.read_uid() == uid
    assert spi.halted and spi.frames[-1] == b"\x50\x00\x57\xcd"
    assert chip.read_uid() == uid          # WUPA wakes the halted card
    tr = TokenReader(chip, clock=Clock())
    assert tr.poll() == uid.hex().upper()


def test_mfrc522_absent_chip_raises():
    from hal.rfid_mfrc522 import Mfrc522
    spi = FakeMfrc522Spi()
    spi.regs[0x37] = 0xFF
    with pytest.raises(OSError):
        Mfrc522(spi, FakePin(), sleep=lambda ms: None)


def test_id_tag_uppercase_hex():
    assert id_tag(b"\x04\xa2\x1b\x7f") == "04A21B7F"
    assert id_tag(bytes(range(1, 8))) == "01020304050607"


class FakeUidReader:
    def __init__(self):
        self.uid = None

    def read_uid(self):
        if isinstance(self.uid, Exception):
            raise self.uid
        return self.uid


def test_token_reader_reports_each_card_once():
    clock = Clock()
    low = FakeUidReader()
    tr = TokenReader(low, absent_ms=1000, clock=clock)
    assert tr.poll() is None
    low.uid = b"\xde\xad\xbe\xef"
    assert tr.poll() == "DEADBEEF"
    for _ in range(30):              # held on the reader for 6 s
        clock.advance(200)
        assert tr.poll() is None
    low.uid = None                   # taken away briefly
    clock.advance(500)
    assert tr.poll() is None
    low.uid = b"\xde\xad\xbe\xef"
    clock.advance(400)
    assert tr.poll() is None          # absent < 1 s: same swipe
    low.uid = None
    clock.advance(1000)
    assert tr.poll() is None
    low.uid = b"\xde\xad\xbe\xef"
    assert tr.poll() == "DEADBEEF"    # absent >= 1 s: new swipe
    low.uid = b"\x01\x02\x03\x04\x05\x06\x07"
    clock.advance(100)
    assert tr.poll() == "01020304050607"  # another card at once
    low.uid = OSError("spi")
    assert tr.poll() is None


# -- RTC, watchdog, estimated meter ------------------------------------------------

@pytest.mark.parametrize("t", [0, 951782400, 946684800, 1700000000, 1709164800,
                               4102444799, 2147483648, 86399])
def test_civil_conversions_match_gmtime(t):
    dt = unix_to_datetime(t)
    g = time.gmtime(t)
    assert dt[:3] == (g.tm_year, g.tm_mon, g.tm_mday)
    assert dt[3] == g.tm_wday and dt[4:7] == (g.tm_hour, g.tm_min, g.tm_sec)
    assert datetime_to_unix(dt) == t


def test_days_round_trip_over_leap_years():
    for z in range(-800, 60000, 7):
        assert days_from_civil(*civil_from_days(z)) == z
    assert days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28) == 2
    assert days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28) == 1


def test_rtc_wraps_machine_rtc():
    class FakeRtc:
        dt = (2000, 1, 1, 5, 0, 0, 0, 0)

        def datetime(self, dt=None):
            if dt is None:
                return self.dt
            self.dt = dt

    r = Rtc(FakeRtc())
    assert r.now() == 946684800
    r.set(1700000000)
    assert r._rtc.dt == (2023, 11, 14, 1, 22, 13, 20, 0)
    assert r.now() == 1700000000


def test_watchdog_feeds_only_when_enabled():
    class Wdt:
        fed = 0

        def feed(self):
            self.fed += 1

    w = Wdt()
    dog = Watchdog(w)
    dog.feed()
    dog.feed()
    assert dog.enabled and w.fed == 2
    off = Watchdog()
    off.feed()
    assert not off.enabled


def test_estimated_meter_integrates_while_charging():
    clock = Clock(0)
    relay = Relay(FakePin(), clock=clock)
    adc = FakeAdc(6.0)
    pilot = Pilot(FakePwm(), adc, samples=32, clock=clock)
    m = EstimatedMeter(relay, pilot, voltage=230, phases=1, clock=clock)
    pilot.set_current_limit(16)
    relay.set(True)
    for _ in range(3600):            # one hour at 16 A x 230 V, polled every second
        clock.advance(1000)
        m.poll()
    assert m.energy_wh() == 3680
    assert m.power_w() == 3680.0
    relay.set(False)
    clock.advance(60000)
    assert m.energy_wh() == 3680 and m.power_w() == 0.0


# -- hwspec ----------------------------------------------------------------------

def test_hwspec_rows_are_well_formed():
    seen = set()
    for path, typ, default, rule, help_ in hwspec.SPEC:
        assert path not in seen
        seen.add(path)
        assert path.split(".")[0] in ("hardware", "wifi")
        assert typ in ("int", "float", "bool", "str", "pin") and help_
        if typ == "pin":
            assert rule is None             # the board's PINS apply
            lo, hi = esp32_devkit.PINS
            assert default is None or lo <= default <= hi
        elif typ == "bool":
            assert isinstance(default, bool)
        elif typ == "str":
            assert isinstance(default, str)
            assert rule is None or default in rule
        else:
            assert isinstance(default, (int, float)) and not isinstance(default, bool)
            if rule is not None:
                assert rule[0] <= default <= rule[1]


def test_hwspec_outputs_avoid_input_only_pins():
    for path, typ, default, _, _ in hwspec.SPEC:
        if typ == "pin" and default in esp32_devkit.INPUT_ONLY:
            assert "sense" in path or "feedback" in path or "adc" in path, path


def test_hwspec_default_pins_do_not_collide():
    pins = [d for _, typ, d, _, _ in hwspec.SPEC if typ == "pin" and d is not None]
    assert len(pins) == len(set(pins))


def test_hwspec_defaults_pass_the_config_validator():
    from firmware import config
    cfg = {"csms": {"url": "ws://127.0.0.1:9000/ocpp", "id": "CP_1"},
           "station": {"vendor": "v", "model": "m"},
           "hardware": hwspec.section("hardware"), "wifi": hwspec.section("wifi")}
    assert config.validate(cfg) == []
    cfg["hardware"]["relay"]["pin"] = 40
    cfg["hardware"]["meter"]["type"] = "sdm999"
    problems = config.validate(cfg)
    assert any("hardware.relay.pin" in p for p in problems)
    assert any("hardware.meter.type" in p for p in problems)


def test_hwspec_get_falls_back_to_default():
    cfg = {"hardware": {"relay": {"pin": 13}}}
    assert hwspec.get(cfg, "hardware.relay.pin") == 13
    assert hwspec.get(cfg, "hardware.relay.settle_ms") == 500
    assert hwspec.get({}, "wifi.static.netmask") == "255.255.255.0"
    with pytest.raises(KeyError):
        hwspec.get(cfg, "hardware.nope")
    assert hwspec.section("hardware")["meter"]["type"] == "sim"


# -- make_board with a stand-in `machine` module -------------------------------------

class _Machine:
    """Records what make_board asks of `machine`."""

    def __init__(self, low_pins=(), spi_version=0x92, meters=None, pn532=None):
        """meters: {Modbus address: registers} answering on the UART; pn532: a FakePn532 on
        the SPI and I2C buses."""
        import types
        m = types.ModuleType("machine")
        made = m.made = {"pins": {}, "pwm": [], "adc": [], "uart": [], "spi": [], "wdt": [],
                         "resets": [], "i2c": []}
        bus = made["modbus"] = FakeUart(_meters(meters or {}))

        class Pin:
            OUT, IN, PULL_UP, PULL_DOWN, IRQ_FALLING = 1, 0, 2, 1, 2

            def __init__(self, n, mode=-1, pull=-1, value=None):
                self.n, self.mode, self.pull = n, mode, pull
                self.level = 0 if n in low_pins else 1
                if value is not None:
                    self.level = value
                self.irq_handler = None
                made["pins"][n] = self

            def value(self, v=None):
                if v is None:
                    return self.level
                self.level = v

            def irq(self, handler=None, trigger=0):
                self.irq_handler = (handler, trigger)

        class PWM:
            def __init__(self, pin, freq=0, duty_u16=0):
                self.pin, self.freq, self.duty = pin, freq, duty_u16
                made["pwm"].append(self)

            def duty_u16(self, v):
                self.duty = v

        class ADC:
            ATTN_11DB = 3

            def __init__(self, pin, atten=None):
                self.pin, self.atten = pin, atten
                made["adc"].append(self)

            def read_uv(self):
                return 3000000  # 3.0 V -> +12 V pilot: state A

        class UART:
            def __init__(self, uid, **kw):
                self.uid, self.kw = uid, kw
                made["uart"].append(self)

            def any(self):
                return bus.any()

            def read(self, n):
                return bus.read(n)

            def write(self, b):
                return bus.write(b)

        class SPI:
            MSB, LSB = 0, 1

            def __init__(self, sid, **kw):
                self.sid, self.kw = sid, kw
                self.chip = FakePn532Spi(pn532) if pn532 else None
                made["spi"].append(self)

            def write(self, b):
                if self.chip:
                    self.chip.write(b)

            def readinto(self, buf):
                if self.chip:
                    self.chip.readinto(buf)
                else:
                    buf[0] = spi_version

        class I2C(FakePn532I2c):
            def __init__(self, iid, **kw):
                FakePn532I2c.__init__(self, pn532)
                self.iid, self.kw = iid, kw
                made["i2c"].append(self)

        class RTC:
            def datetime(self, dt=None):
                return (2024, 1, 1, 0, 0, 0, 0, 0)

        class WDT:
            def __init__(self, timeout=0):
                made["wdt"].append(timeout)

            def feed(self):
                pass

        def reset():
            made["resets"].append("hard")

        def soft_reset():
            made["resets"].append("soft")

        for name, v in list(locals().items()):
            if name in ("Pin", "PWM", "ADC", "UART", "SPI", "I2C", "RTC", "WDT", "reset",
                        "soft_reset"):
                setattr(m, name, v)
        self.module = m


def _meters(by_address):
    """FakeUart's responder for Modbus meters at several addresses on one bus."""
    models = [meter_model(regs, unit) for unit, regs in by_address.items()]

    def respond(req, n):
        for model in models:
            reply = model(req, n)
            if reply:
                return reply
        return b""
    return respond


def _board_cfg(**hardware):
    cfg = {"station": {"connectors": 1, "fixed_cable": False, "voltage": 230, "phases": 1},
           "hardware": {}}
    for path, v in hardware.items():
        node = cfg["hardware"]
        parts = path.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return cfg


def _build(monkeypatch, cfg, **kw):
    fake = _Machine(**kw).module
    monkeypatch.setitem(sys.modules, "machine", fake)
    return boards.load(boards.name(cfg)).make_board(cfg), fake.made


def test_make_board_defaults(monkeypatch):
    board, made = _build(monkeypatch, _board_cfg())
    (conn,) = board.connectors
    assert made["pins"][26].mode == 1 and made["pins"][26].level == 0  # contactor open
    assert isinstance(conn.lock, Lock) and isinstance(conn.meter, EstimatedMeter)
    assert conn.meter.volatile
    (pwm,) = made["pwm"]
    assert pwm.freq == 1000 and pwm.pin.n == 27 and pwm.duty == 65535
    assert made["adc"][0].pin.n == 36 and made["adc"][0].atten == 3
    assert conn.pilot.state() == "A" and conn.pilot.fault() is None
    assert made["wdt"] == [30000] and board.watchdog.enabled
    assert board.reader.poll() is None
    assert board.rtc.now() == 1704067200
    board.indicator.show("charging")
    assert made["pins"][2].level == 1
    board.poll()
    board.reset(False)
    board.reset(True)
    assert made["resets"] == ["soft", "hard", "hard"]


def test_make_board_maintenance_pin_disables_watchdog(monkeypatch):
    board, made = _build(monkeypatch, _board_cfg(), low_pins=(0,))
    assert made["wdt"] == [] and not board.watchdog.enabled
    board, made = _build(monkeypatch, _board_cfg(watchdog=False))
    assert made["wdt"] == [] and not board.watchdog.enabled


def test_make_board_tamper_switch_reads_open_when_high(monkeypatch):
    board, made = _build(monkeypatch, _board_cfg())
    assert not board.tamper.opened()                     # none fitted: never open
    board, made = _build(monkeypatch, _board_cfg(tamper__pin=35))
    pin = made["pins"][35]
    pin.level = 0                                        # switch closed to GND: shut
    assert not board.tamper.opened()
    pin.level = 1                                        # switch open (or wire cut)
    assert board.tamper.opened()


def test_make_board_modbus_meter(monkeypatch):
    cfg = _board_cfg(meter__type="sdm630", meter__baudrate=2400, meter__parity="even",
                     meter__address=7, meter__de_pin=25)
    board, made = _build(monkeypatch, cfg)
    (uart,) = made["uart"]
    assert uart.uid == 2 and uart.kw["baudrate"] == 2400 and uart.kw["parity"] == 0
    assert uart.kw["tx"] == 17 and uart.kw["rx"] == 16 and uart.kw["timeout"] == 0
    meter = board.connectors[0].meter
    assert isinstance(meter, SdmMeter) and meter._unit == 7
    assert made["pins"][25].level == 0      # RS485 driver off until a request
    assert not meter.volatile               # the meter keeps its own register


def test_make_board_s0_meter_counts_on_falling_edges(monkeypatch):
    board, made = _build(monkeypatch, _board_cfg(meter__type="s0", meter__s0_pin=13))
    handler, trigger = made["pins"][13].irq_handler
    assert trigger == 2 and made["pins"][13].pull == 2
    handler(made["pins"][13])
    meter = board.connectors[0].meter
    assert meter.impulses() == 1
    # It counts from zero at every boot: the firmware resumes it from its stored reading.
    assert meter.volatile
    meter.resume(4200)
    assert meter.energy_wh() == 4200


def test_make_board_fixed_cable_has_no_lock(monkeypatch):
    cfg = _board_cfg()
    cfg["station"]["fixed_cable"] = True
    board, _ = _build(monkeypatch, cfg)
    assert board.connectors[0].lock is None


def test_make_board_rejects_bad_wiring(monkeypatch):
    with pytest.raises(ValueError, match="hardware.relay.pin.*input-only"):
        _build(monkeypatch, _board_cfg(relay__pin=35))
    with pytest.raises(ValueError, match="hardware.pilot.adc_pin"):
        _build(monkeypatch, _board_cfg(pilot__adc_pin=4))
    with pytest.raises(ValueError, match="hardware.relay.pin.*required"):
        _build(monkeypatch, _board_cfg(relay__pin=None))
    cfg = _board_cfg()
    cfg["station"]["connectors"] = 3
    with pytest.raises(ValueError, match="one or two connectors"):
        _build(monkeypatch, cfg)
    cfg["station"]["connectors"] = 2              # connector 2's pins are not set
    with pytest.raises(ValueError, match="hardware.connector2.relay.pin.*required"):
        _build(monkeypatch, cfg)


def test_make_board_rfid_missing_reader_does_not_stop_boot(monkeypatch, capsys):
    board, made = _build(monkeypatch, _board_cfg(rfid__type="mfrc522"), spi_version=0x00)
    assert made["spi"] and board.reader.poll() is None
    assert "reader not available" in capsys.readouterr().out
    board, _ = _build(monkeypatch, _board_cfg(rfid__type="mfrc522"), spi_version=0x92)
    assert isinstance(board.reader, TokenReader)


# -- two connectors, a three-phase meter on the board's path, the PN532 ------------------------

SDM630 = {0x0000: 231.0, 0x0002: 232.0, 0x0004: 233.0, 0x0006: 10.5, 0x0008: 11.5,
          0x000A: 12.5, 0x000C: 2400.0, 0x000E: 2600.0, 0x0010: 2900.0, 0x0034: 7900.0,
          0x0048: 12.345}
TWO = dict(connector2__relay__pin=25, connector2__pilot__pwm_pin=13,
           connector2__pilot__adc_pin=39, connector2__lock__pin=21,
           connector2__lock__unlock_pin=22, connector2__lock__sense_pin=35)


def _two(**hardware):
    cfg = _board_cfg(**dict(TWO, **hardware))
    cfg["station"]["connectors"] = 2
    return cfg


def test_make_board_two_connectors_with_their_own_pins(monkeypatch):
    board, made = _build(monkeypatch, _two())
    one, two = board.connectors
    assert one.relay._out is made["pins"][26] and two.relay._out is made["pins"][25]
    assert [p.pin.n for p in made["pwm"]] == [27, 13]
    assert [a.pin.n for a in made["adc"]] == [36, 39]
    assert two.lock._drive is made["pins"][21] and two.lock._sense is made["pins"][35]
    two.relay.set(True)
    assert made["pins"][25].level == 1 and made["pins"][26].level == 0
    assert one.pilot is not two.pilot and one.meter is not two.meter
    cfg = _two(connector2__lock__pin=None)          # connector 2 without a lock
    assert _build(monkeypatch, cfg)[0].connectors[1].lock is None
    with pytest.raises(ValueError, match="connector2.relay.pin.*input-only"):
        _build(monkeypatch, _two(connector2__relay__pin=34))
    with pytest.raises(ValueError, match="connector2.pilot.adc_pin"):
        _build(monkeypatch, _two(connector2__pilot__adc_pin=4))


def _poll(board, n):
    for _ in range(n):
        board.poll()


def test_two_sdm630_on_one_bus_take_turns_and_give_per_phase_values(monkeypatch):
    other = dict(SDM630)
    other.update({0x0000: 229.0, 0x0048: 1.5})
    cfg = _two(meter__type="sdm630", meter__address=1, connector2__meter__address=2)
    board, made = _build(monkeypatch, cfg, meters={1: SDM630, 2: other})
    m1, m2 = (c.meter for c in board.connectors)
    assert isinstance(m1, SdmMeter) and (m1._unit, m2._unit) == (1, 2)
    assert m1._bus is m2._bus and m1._bus.shared
    _poll(board, 12)                                 # three blocks each, one request a poll
    assert m1.energy_wh() == 12345 and m2.energy_wh() == 1500
    assert m1.phases() == ((231.0, 10.5, 2400.0), (232.0, 11.5, 2600.0), (233.0, 12.5, 2900.0))
    assert m2.phases()[0] == (229.0, 10.5, 2400.0)
    units = [frame[0] for frame in made["modbus"].sent]
    assert units[:6] == [1, 2, 1, 2, 1, 2], units     # the meters take turns on the bus
    # ... and the per-phase values reach MeterValues on this board.
    from firmware.connector import Connector as FwConnector
    from firmware.metering import meter_value
    conn = FwConnector(1, board.connectors[0], 32)
    mv = meter_value(conn, ("Current.Import", "Voltage", "Power.Active.Import"),
                     "Sample.Periodic", 1700000000)
    got = [(s["measurand"], s["phase"], s["value"]) for s in mv["sampledValue"]]
    assert got == [("Current.Import", "L1", "10.5"), ("Current.Import", "L2", "11.5"),
                   ("Current.Import", "L3", "12.5"), ("Voltage", "L1", "231"),
                   ("Voltage", "L2", "232"), ("Voltage", "L3", "233"),
                   ("Power.Active.Import", "L1", "2400"), ("Power.Active.Import", "L2", "2600"),
                   ("Power.Active.Import", "L3", "2900")], got


def test_pn532_reader_from_config_on_spi_and_i2c(monkeypatch):
    chip = FakePn532(b"\x04\xa2\x1b\x7f")
    board, made = _build(monkeypatch, _board_cfg(rfid__type="pn532"), pn532=chip)
    (spi,) = made["spi"]
    assert spi.kw["firstbit"] == 1                   # LSB first, as the PN532 talks
    assert board.reader.poll() == "04A21B7F"
    chip = FakePn532(b"\x04\xa2\x1b\x7f")
    board, made = _build(monkeypatch, _board_cfg(rfid__type="pn532_i2c"), pn532=chip)
    (i2c,) = made["i2c"]
    assert i2c.kw["sda"].n == 21 and i2c.kw["scl"].n == 22
    assert board.reader.poll() == "04A21B7F"
    chip = FakePn532()
    chip.deaf = True                                 # not fitted, or wired wrong
    board, _ = _build(monkeypatch, _board_cfg(rfid__type="pn532_i2c"), pn532=chip)
    assert board.reader.poll() is None


def test_watchdog_covers_the_longest_blocking_call(monkeypatch, capsys):
    _, made = _build(monkeypatch, _board_cfg(watchdog_ms=10000))
    assert made["wdt"] == [25000]                    # 21 s of DNS lookups and a margin
    assert "longest blocking call" in capsys.readouterr().out
    _, made = _build(monkeypatch, _board_cfg(watchdog_ms=60000))
    assert made["wdt"] == [60000]
