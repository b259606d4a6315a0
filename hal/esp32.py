"""The ESP32 board: builds the hal objects on `machine` from config["hardware"].

`machine` is imported inside the functions that need it, so the pure parts
(date arithmetic, the estimating meter) import and test on CPython.
"""
from firmware.clock import civil_from_days, days_from_civil
from firmware.compat import ticks_ms, ticks_diff
from hal import hwspec
from hal.led import Led
from hal.lock import Lock
from hal.pilot import Pilot, FREQ_HZ
from hal.relay import Relay
from hal.rfid_token import TokenReader, NoReader

_DAY = 86400
_WMS_PER_WH = 3600000.0


# -- civil dates (proleptic Gregorian, UTC). Independent of the port's epoch:
# the RTC holds a calendar date, firmware works in unix seconds.
def datetime_to_unix(dt):
    """machine.RTC().datetime() tuple (y, m, d, weekday, h, min, s, subsec) -> unix s."""
    return days_from_civil(dt[0], dt[1], dt[2]) * _DAY + dt[4] * 3600 + dt[5] * 60 + dt[6]


def unix_to_datetime(t):
    """unix s -> RTC datetime tuple; weekday 0 = Monday (1970-01-01 was a Thursday)."""
    days = t // _DAY
    rem = t - days * _DAY
    y, m, d = civil_from_days(days)
    return (y, m, d, (days + 3) % 7, rem // 3600, rem // 60 % 60, rem % 60, 0)


class Rtc:
    def __init__(self, rtc):
        self._rtc = rtc

    def now(self):
        return datetime_to_unix(self._rtc.datetime())

    def set(self, unix_seconds):
        self._rtc.datetime(unix_to_datetime(int(unix_seconds)))


class Watchdog:
    """machine.WDT when enabled; once started the ESP32 cannot stop it."""

    def __init__(self, wdt=None):
        self._wdt = wdt
        self.enabled = wdt is not None

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()


class EstimatedMeter:
    """Meter "sim" on real hardware (no meter fitted): energy estimated from
    the contactor state and the current offered on the pilot. For bench use
    only; the figures are not measurements."""

    def __init__(self, relay, pilot, voltage=230.0, phases=1, clock=ticks_ms):
        self._relay = relay
        self._pilot = pilot
        self._voltage = float(voltage)
        self._phases = phases
        self._clock = clock
        self._at = clock()
        self._wh = 0
        self._wms = 0.0  # part of a Wh, in watt-milliseconds (float32 on the ESP32)

    def power_w(self):
        amps = self._pilot.limit
        if amps is None or amps < 6 or not self._relay.is_on():
            return 0.0
        if self._pilot.state() not in ("C", "D"):
            return 0.0
        return self._voltage * amps * self._phases

    def poll(self):
        now = self._clock()
        self._wms += self.power_w() * ticks_diff(now, self._at)
        self._at = now
        if self._wms >= _WMS_PER_WH:
            whole = int(self._wms // _WMS_PER_WH)
            self._wh += whole
            self._wms -= whole * _WMS_PER_WH

    def energy_wh(self):
        self.poll()
        return self._wh

    def current_a(self):
        return self.power_w() / (self._voltage * self._phases)

    def voltage_v(self):
        return self._voltage

    def fault(self):
        return None


class Connector:
    def __init__(self, relay, meter, pilot, lock):
        self.relay = relay
        self.meter = meter
        self.pilot = pilot
        self.lock = lock


class Board:
    def __init__(self, connectors, rtc, reader, indicator, watchdog, polled=()):
        self.connectors = connectors
        self.rtc = rtc
        self.reader = reader
        self.indicator = indicator
        self.watchdog = watchdog
        self._polled = tuple(polled)

    def reset(self, hard=True):
        import machine
        if not hard and hasattr(machine, "soft_reset"):
            machine.soft_reset()
        machine.reset()

    def poll(self):
        """Advance the Modbus meter, the LED pattern and the estimating meter."""
        for part in self._polled:
            part.poll()


# -- building from config ------------------------------------------------

def _pin_no(cfg, path, required=True, output=False):
    n = hwspec.get(cfg, path)
    help_ = hwspec.row(path)[4]
    if n is None:
        if required:
            raise ValueError(path + ": " + help_ + " is required")
        return None
    if output and n in hwspec.INPUT_ONLY:
        raise ValueError(path + ": " + help_ + ": GPIO %d is input-only" % n)
    return n


def _out(cfg, path, required=True, value=0):
    from machine import Pin
    n = _pin_no(cfg, path, required, output=True)
    return None if n is None else Pin(n, Pin.OUT, value=value)


def _inp(cfg, path, active_low, required=True):
    from machine import Pin
    n = _pin_no(cfg, path, required)
    if n is None:
        return None
    if n in hwspec.INPUT_ONLY:
        return Pin(n, Pin.IN)  # no internal pulls: the board must bias it
    return Pin(n, Pin.IN, Pin.PULL_UP if active_low else Pin.PULL_DOWN)


def _make_relay(cfg):
    active_low = hwspec.get(cfg, "hardware.relay.active_low")
    # Start with the output at the "open" level before Relay takes over.
    out = _out(cfg, "hardware.relay.pin", value=1 if active_low else 0)
    fb_low = hwspec.get(cfg, "hardware.relay.feedback_active_low")
    fb = _inp(cfg, "hardware.relay.feedback_pin", fb_low, required=False)
    return Relay(out, fb, active_low, fb_low, hwspec.get(cfg, "hardware.relay.settle_ms"))


def _make_lock(cfg):
    station = cfg.get("station") or {}
    if station.get("fixed_cable") or hwspec.get(cfg, "hardware.lock.pin") is None:
        return None
    drive = _out(cfg, "hardware.lock.pin")
    release = _out(cfg, "hardware.lock.unlock_pin", required=False)
    low = hwspec.get(cfg, "hardware.lock.sense_active_low")
    sense = _inp(cfg, "hardware.lock.sense_pin", low)
    return Lock(drive, sense, release, low, hwspec.get(cfg, "hardware.lock.pulse_ms"))


def _make_pilot(cfg, checks):
    from machine import Pin, PWM, ADC
    pwm_pin = _pin_no(cfg, "hardware.pilot.pwm_pin", output=True)
    adc_pin = _pin_no(cfg, "hardware.pilot.adc_pin")
    if adc_pin < 32:
        # ADC2 (GPIO 0-27) is taken by the WiFi driver.
        raise ValueError("hardware.pilot.adc_pin: must be " + hwspec.row("hardware.pilot.adc_pin")[4])
    invert = hwspec.get(cfg, "hardware.pilot.invert")
    pwm = PWM(Pin(pwm_pin), freq=FREQ_HZ, duty_u16=0 if invert else 65535)
    adc = ADC(Pin(adc_pin), atten=ADC.ATTN_11DB)  # 0..~3.1 V range
    return Pilot(pwm, adc,
                 scale=hwspec.get(cfg, "hardware.pilot.adc_scale"),
                 offset=hwspec.get(cfg, "hardware.pilot.adc_offset"),
                 invert=invert,
                 samples=hwspec.get(cfg, "hardware.pilot.samples"),
                 checks=checks)


def _make_meter(cfg, kind):
    station = cfg.get("station") or {}
    voltage = station.get("voltage", 230)
    phases = station.get("phases", 1)
    if kind == "s0":
        from machine import Pin
        from hal.s0 import S0Meter
        meter = S0Meter(hwspec.get(cfg, "hardware.meter.impulses_per_kwh"), voltage, phases)
        # S0 outputs are open collector: pulled up, the impulse pulls low.
        pin = _inp(cfg, "hardware.meter.s0_pin", True)
        pin.irq(handler=meter.irq, trigger=Pin.IRQ_FALLING)
        return meter
    from machine import UART
    from hal.modbus import ModbusMaster
    from hal.sdm import SdmMeter
    parity = {"none": None, "even": 0, "odd": 1}[hwspec.get(cfg, "hardware.meter.parity")]
    uart = UART(hwspec.get(cfg, "hardware.meter.uart"),
                baudrate=hwspec.get(cfg, "hardware.meter.baudrate"),
                bits=8, parity=parity, stop=1,
                tx=_pin_no(cfg, "hardware.meter.tx_pin", output=True),
                rx=_pin_no(cfg, "hardware.meter.rx_pin"),
                timeout=0, rxbuf=512)
    de = _out(cfg, "hardware.meter.de_pin", required=False)
    bus = ModbusMaster(uart, hwspec.get(cfg, "hardware.meter.timeout_ms"),
                       hwspec.get(cfg, "hardware.meter.retries"), de)
    return SdmMeter(bus, hwspec.get(cfg, "hardware.meter.address"), kind)


def _make_reader(cfg):
    if hwspec.get(cfg, "hardware.rfid.type") != "mfrc522":
        return NoReader()
    from machine import Pin, SPI
    from hal.rfid_mfrc522 import Mfrc522
    spi = SPI(hwspec.get(cfg, "hardware.rfid.spi"), baudrate=1000000, polarity=0, phase=0,
              sck=Pin(_pin_no(cfg, "hardware.rfid.sck_pin", output=True)),
              mosi=Pin(_pin_no(cfg, "hardware.rfid.mosi_pin", output=True)),
              miso=Pin(_pin_no(cfg, "hardware.rfid.miso_pin")))
    cs = _out(cfg, "hardware.rfid.cs_pin", value=1)
    rst = _out(cfg, "hardware.rfid.rst_pin", required=False, value=1)
    try:
        return TokenReader(Mfrc522(spi, cs, rst))
    except OSError as e:
        # A missing reader must not keep the charger from booting.
        print("rfid: reader not available:", e)
        return NoReader()


def _make_watchdog(cfg):
    if not hwspec.get(cfg, "hardware.watchdog"):
        return Watchdog()
    from machine import Pin, WDT
    n = hwspec.get(cfg, "hardware.maintenance_pin")
    if n is not None and Pin(n, Pin.IN, Pin.PULL_UP).value() == 0:
        print("maintenance pin held low: watchdog off, REPL stays usable")
        return Watchdog()
    return Watchdog(WDT(timeout=hwspec.get(cfg, "hardware.watchdog_ms")))


def make_board(cfg):
    """The Board for a validated config (missing hardware keys take SPEC defaults)."""
    from machine import RTC
    station = cfg.get("station") or {}
    if station.get("connectors", 1) != 1:
        raise ValueError("station.connectors: this board wires one connector")
    watchdog = _make_watchdog(cfg)  # first: decided while the pin is still held
    relay = _make_relay(cfg)
    lock = _make_lock(cfg)
    kind = hwspec.get(cfg, "hardware.meter.type")
    meter = None
    if kind != "sim":
        meter = _make_meter(cfg, kind)
    checks = [relay]
    if lock is not None:
        checks.append(lock)
    if meter is not None:
        checks.append(meter)
    pilot = _make_pilot(cfg, checks)
    if meter is None:
        meter = EstimatedMeter(relay, pilot, station.get("voltage", 230), station.get("phases", 1))
    led_pin = _out(cfg, "hardware.led.pin", required=False)
    led = _NoLed() if led_pin is None else Led(led_pin, hwspec.get(cfg, "hardware.led.active_low"))
    return Board([Connector(relay, meter, pilot, lock)], Rtc(RTC()), _make_reader(cfg),
                 led, watchdog, (led, meter))


class _NoLed:
    def show(self, pattern):
        pass

    def poll(self):
        pass
