"""The ESP32 family: builds the hal parts on `machine` from config["hardware"].

A board file in hal/boards/ calls make_board() with its chip's pin rules. `machine` is
imported inside the functions that need it, so this module imports on CPython.
"""
from hal import base, hwspec
from hal.led import Led
from hal.lock import Lock
from hal.parts import EstimatedMeter, PinTamper, Rtc, Watchdog
from hal.pilot import Pilot, FREQ_HZ
from hal.relay import Relay
from hal.rfid_token import TokenReader


class Board(base.Board):
    def reset(self, hard=True):
        import machine
        if not hard and hasattr(machine, "soft_reset"):
            machine.soft_reset()
        machine.reset()


# -- building from config: `io` is (input-only GPIOs, (lo, hi) GPIOs that can read the pilot).
# Pins per connector: connector 1's are hardware.relay.pin ..., connector 2's the same names
# under hardware.connector2 (the group `g`); the other settings are shared (README, Wiring).

def _pin_no(cfg, path, io, required=True, output=False):
    n = hwspec.get(cfg, path)
    help_ = hwspec.row(path)[4]
    if n is None:
        if required:
            raise ValueError(path + ": " + help_ + " is required")
        return None
    if output and n in io[0]:
        raise ValueError(path + ": " + help_ + ": GPIO %d is input-only" % n)
    return n


def _out(cfg, path, io, required=True, value=0):
    from machine import Pin
    n = _pin_no(cfg, path, io, required, output=True)
    return None if n is None else Pin(n, Pin.OUT, value=value)


def _inp(cfg, path, io, active_low, required=True):
    from machine import Pin
    n = _pin_no(cfg, path, io, required)
    if n is None:
        return None
    if n in io[0]:
        return Pin(n, Pin.IN)  # no internal pulls: the board must bias it
    return Pin(n, Pin.IN, Pin.PULL_UP if active_low else Pin.PULL_DOWN)


def _make_relay(cfg, io, g):
    active_low = hwspec.get(cfg, "hardware.relay.active_low")
    # Start with the output at the "open" level before Relay takes over.
    out = _out(cfg, g + "relay.pin", io, value=1 if active_low else 0)
    fb_low = hwspec.get(cfg, "hardware.relay.feedback_active_low")
    fb = _inp(cfg, g + "relay.feedback_pin", io, fb_low, required=False)
    return Relay(out, fb, active_low, fb_low, hwspec.get(cfg, "hardware.relay.settle_ms"))


def _make_lock(cfg, io, g):
    station = cfg.get("station") or {}
    if station.get("fixed_cable") or hwspec.get(cfg, g + "lock.pin") is None:
        return None
    drive = _out(cfg, g + "lock.pin", io)
    release = _out(cfg, g + "lock.unlock_pin", io, required=False)
    low = hwspec.get(cfg, "hardware.lock.sense_active_low")
    sense = _inp(cfg, g + "lock.sense_pin", io, low)
    return Lock(drive, sense, release, low, hwspec.get(cfg, "hardware.lock.pulse_ms"))


def _make_pilot(cfg, io, g):
    from machine import Pin, PWM, ADC
    pwm_pin = _pin_no(cfg, g + "pilot.pwm_pin", io, output=True)
    adc_pin = _pin_no(cfg, g + "pilot.adc_pin", io)
    lo, hi = io[1]
    if not lo <= adc_pin <= hi:
        raise ValueError("%spilot.adc_pin: GPIO %d cannot sample the pilot; use GPIO %d-%d"
                         % (g, adc_pin, lo, hi))
    invert = hwspec.get(cfg, "hardware.pilot.invert")
    pwm = PWM(Pin(pwm_pin), freq=FREQ_HZ, duty_u16=0 if invert else 65535)
    adc = ADC(Pin(adc_pin), atten=ADC.ATTN_11DB)  # 0..~3.1 V range
    return Pilot(pwm, adc,
                 scale=hwspec.get(cfg, "hardware.pilot.adc_scale"),
                 offset=hwspec.get(cfg, "hardware.pilot.adc_offset"),
                 invert=invert,
                 samples=hwspec.get(cfg, "hardware.pilot.samples"))


def _make_s0(cfg, io, g):
    from machine import Pin
    from hal.s0 import S0Meter
    station = cfg.get("station") or {}
    meter = S0Meter(hwspec.get(cfg, "hardware.meter.impulses_per_kwh"),
                    station.get("voltage", 230), station.get("phases", 1))
    # S0 outputs are open collector: pulled up, the impulse pulls low.
    pin = _inp(cfg, g + "meter.s0_pin", io, True)
    pin.irq(handler=meter.irq, trigger=Pin.IRQ_FALLING)
    return meter


def _make_modbus(cfg, io):
    """The RS485 bus of the Modbus meters (one for all connectors: one address each)."""
    from machine import UART
    from hal.modbus import ModbusMaster
    parity = {"none": None, "even": 0, "odd": 1}[hwspec.get(cfg, "hardware.meter.parity")]
    uart = UART(hwspec.get(cfg, "hardware.meter.uart"),
                baudrate=hwspec.get(cfg, "hardware.meter.baudrate"),
                bits=8, parity=parity, stop=1,
                tx=_pin_no(cfg, "hardware.meter.tx_pin", io, output=True),
                rx=_pin_no(cfg, "hardware.meter.rx_pin", io),
                timeout=0, rxbuf=512)
    de = _out(cfg, "hardware.meter.de_pin", io, required=False)
    return ModbusMaster(uart, hwspec.get(cfg, "hardware.meter.timeout_ms"),
                        hwspec.get(cfg, "hardware.meter.retries"), de)


def _spi(cfg, io, firstbit=None):
    from machine import Pin, SPI
    kw = {} if firstbit is None else {"firstbit": firstbit}
    return SPI(hwspec.get(cfg, "hardware.rfid.spi"), baudrate=1000000, polarity=0, phase=0,
               sck=Pin(_pin_no(cfg, "hardware.rfid.sck_pin", io, output=True)),
               mosi=Pin(_pin_no(cfg, "hardware.rfid.mosi_pin", io, output=True)),
               miso=Pin(_pin_no(cfg, "hardware.rfid.miso_pin", io)), **kw)


def _make_reader(cfg, io):
    kind = hwspec.get(cfg, "hardware.rfid.type")
    if kind == "none":
        return base.TokenReader()
    try:
        if kind == "mfrc522":
            from hal.rfid_mfrc522 import Mfrc522
            spi = _spi(cfg, io)
            cs = _out(cfg, "hardware.rfid.cs_pin", io, value=1)
            rst = _out(cfg, "hardware.rfid.rst_pin", io, required=False, value=1)
            return TokenReader(Mfrc522(spi, cs, rst))
        from hal import rfid_pn532
        # RSTPDN high: running (many breakouts tie it high themselves).
        _out(cfg, "hardware.rfid.rst_pin", io, required=False, value=1)
        if kind == "pn532_i2c":
            from machine import I2C, Pin
            i2c = I2C(0, scl=Pin(_pin_no(cfg, "hardware.rfid.scl_pin", io, output=True)),
                      sda=Pin(_pin_no(cfg, "hardware.rfid.sda_pin", io, output=True)),
                      freq=100000)
            return TokenReader(rfid_pn532.Pn532(rfid_pn532.I2cBus(i2c)))
        from machine import SPI
        spi = rfid_pn532.SpiBus(_spi(cfg, io, SPI.LSB),  # the PN532 talks LSB first
                                _out(cfg, "hardware.rfid.cs_pin", io, value=1))
        return TokenReader(rfid_pn532.Pn532(spi))
    except OSError as e:
        # A missing reader must not keep the charger from booting.
        print("rfid: reader not available:", e)
        return base.TokenReader()


def _make_network(cfg):
    """WiFi when wifi.ssid is set (joined by the link supervisor); else a network taken as
    up (a board wired another way)."""
    wifi = cfg.get("wifi") or {}
    if not wifi.get("ssid"):
        return base.Network()
    from hal.wlan import Wlan
    return Wlan(wifi)


# The longest call that blocks the loop: a DNS lookup (socket.getaddrinfo) in lwIP retries
# each DNS server for 7 s (README "WiFi"); with three servers 21 s. A watchdog shorter than
# that would reset the chip in the middle of a lookup.
_LONGEST_BLOCK_MS = 21000
_WATCHDOG_MIN_MS = _LONGEST_BLOCK_MS + 4000


def _make_watchdog(cfg):
    if not hwspec.get(cfg, "hardware.watchdog"):
        return Watchdog()
    from machine import Pin, WDT
    n = hwspec.get(cfg, "hardware.maintenance_pin")
    if n is not None and Pin(n, Pin.IN, Pin.PULL_UP).value() == 0:
        print("maintenance pin held low: watchdog off, REPL stays usable")
        return Watchdog()
    ms = hwspec.get(cfg, "hardware.watchdog_ms")
    if ms < _WATCHDOG_MIN_MS:
        print("watchdog: %d ms is shorter than the longest blocking call; using %d ms"
              % (ms, _WATCHDOG_MIN_MS))
        ms = _WATCHDOG_MIN_MS
    return Watchdog(WDT(timeout=ms))


_GROUPS = ("hardware.", "hardware.connector2.")


def make_board(cfg, input_only, adc):
    """The Board for a validated config (missing hardware keys take SPEC defaults).
    input_only: GPIOs that cannot drive an output; adc: (lo, hi) GPIOs that can read the pilot.
    One or two connectors (station.connectors); the second has its own pins, its own Modbus
    address on the same RS485 bus, or its own S0 input."""
    from machine import RTC
    station = cfg.get("station") or {}
    n = station.get("connectors", 1)
    if n not in (1, 2):
        raise ValueError("station.connectors: this board wires one or two connectors")
    io = (input_only, adc)
    watchdog = _make_watchdog(cfg)  # first: decided while the pin is still held
    kind = hwspec.get(cfg, "hardware.meter.type")
    bus = _make_modbus(cfg, io) if kind in ("sdm120", "sdm630") else None
    if bus is not None:
        bus.shared = n > 1
    connectors, polled = [], []
    for i in range(n):
        g = _GROUPS[i]
        relay = _make_relay(cfg, io, g)
        lock = _make_lock(cfg, io, g)
        if kind == "s0":
            meter = _make_s0(cfg, io, g)
        elif bus is not None:
            from hal.sdm import SdmMeter
            meter = SdmMeter(bus, hwspec.get(cfg, g + "meter.address"), kind)
        else:
            meter = None
        pilot = _make_pilot(cfg, io, g)
        if meter is None:
            meter = EstimatedMeter(relay, pilot, station.get("voltage", 230),
                                   station.get("phases", 1))
        connectors.append(base.Connector(relay, meter, pilot, lock))
        polled.append(meter)
    led_pin = _out(cfg, "hardware.led.pin", io, required=False)
    led = base.Indicator()
    if led_pin is not None:
        led = Led(led_pin, hwspec.get(cfg, "hardware.led.active_low"))
    tamper_pin = _inp(cfg, "hardware.tamper.pin", io, True, required=False)
    return Board(connectors, Rtc(RTC()), _make_reader(cfg, io), led, watchdog,
                 _make_network(cfg), [led] + polled,
                 None if tamper_pin is None else PinTamper(tamper_pin))
