"""The "hardware" and "wifi" config keys as data.

Each SPEC row is (dotted_path, type, default, rule, help):
    dotted_path  full path from the config root, e.g. "hardware.relay.pin"
    type         "int" | "float" | "bool" | "str" | "pin"
                 ("pin": a GPIO number, or None when not fitted;
                  "float" also accepts an int)
    default      used when the key is absent
    rule         None, (lo, hi) inclusive bounds for numbers, or a tuple of
                 allowed strings. Pins have none here: the board's PINS rule
                 applies (hal/boards/<hardware.board>.py)
    help         short phrase naming the key in error messages

The config validator reads SPEC; the board builder reads values via get(),
which falls back to the default so a partial section still builds a board.
Defaults describe the reference wiring on an ESP32 DevKit (see README); a
board file lists where its wiring differs (DEFAULTS).
"""

SPEC = (
    # -- board-wide --
    ("hardware.board", "str", "esp32_devkit", None,
     "board type: a file in hal/boards/, e.g. \"esp32_devkit\" or \"sim\""),
    ("hardware.watchdog", "bool", True, None,
     "hardware watchdog enabled"),
    ("hardware.watchdog_ms", "int", 30000, (2000, 600000),
     "watchdog timeout in ms"),
    ("hardware.maintenance_pin", "pin", 0, None,
     "GPIO held low at start to skip the watchdog (BOOT button)"),
    # -- contactor --
    ("hardware.relay.pin", "pin", 26, None,
     "GPIO driving the contactor relay"),
    ("hardware.relay.active_low", "bool", False, None,
     "contactor relay closes on a low output"),
    ("hardware.relay.feedback_pin", "pin", None, None,
     "GPIO reading the contactor auxiliary contact"),
    ("hardware.relay.feedback_active_low", "bool", True, None,
     "auxiliary contact pulls its input low when closed"),
    ("hardware.relay.settle_ms", "int", 500, (0, 10000),
     "time the contactor needs before its feedback is trusted"),
    # -- connector lock (ignored with station.fixed_cable) --
    ("hardware.lock.pin", "pin", 32, None,
     "GPIO pulsed to drive the lock closed"),
    ("hardware.lock.unlock_pin", "pin", 33, None,
     "GPIO pulsed to drive the lock open (null: one-pin actuator held high while locked)"),
    ("hardware.lock.sense_pin", "pin", 34, None,
     "GPIO reading the lock position switch"),
    ("hardware.lock.sense_active_low", "bool", False, None,
     "lock position switch reads low when locked"),
    ("hardware.lock.pulse_ms", "int", 300, (20, 3000),
     "lock actuator pulse length in ms"),
    # -- control pilot --
    ("hardware.pilot.pwm_pin", "pin", 27, None,
     "GPIO driving the control pilot PWM"),
    ("hardware.pilot.adc_pin", "pin", 36, None,
     "ADC GPIO sampling the control pilot (ESP32: ADC1, GPIO 32-39)"),
    ("hardware.pilot.invert", "bool", False, None,
     "pilot driver inverts the PWM output"),
    ("hardware.pilot.adc_scale", "float", 8.0, (0.1, 100.0),
     "pilot volts per ADC volt"),
    ("hardware.pilot.adc_offset", "float", -12.0, (-30.0, 30.0),
     "pilot volts at 0 V on the ADC"),
    ("hardware.pilot.samples", "int", 64, (8, 1024),
     "ADC samples per pilot reading (must span one 1 ms PWM period)"),
    # -- energy meter --
    ("hardware.meter.type", "str", "sim", ("sim", "s0", "sdm120", "sdm630"),
     "energy meter kind"),
    ("hardware.meter.s0_pin", "pin", 14, None,
     "GPIO counting S0 meter impulses"),
    ("hardware.meter.impulses_per_kwh", "int", 1000, (1, 100000),
     "S0 impulses per kWh"),
    ("hardware.meter.uart", "int", 2, (1, 2),
     "UART number of the Modbus meter"),
    ("hardware.meter.tx_pin", "pin", 17, None,
     "GPIO sending to the RS485 transceiver"),
    ("hardware.meter.rx_pin", "pin", 16, None,
     "GPIO receiving from the RS485 transceiver"),
    ("hardware.meter.de_pin", "pin", None, None,
     "GPIO enabling the RS485 driver (null: auto-direction transceiver)"),
    ("hardware.meter.baudrate", "int", 9600, (1200, 115200),
     "Modbus baud rate (as set on the meter)"),
    ("hardware.meter.parity", "str", "none", ("none", "even", "odd"),
     "Modbus parity (as set on the meter)"),
    ("hardware.meter.address", "int", 1, (1, 247),
     "Modbus address of the meter"),
    ("hardware.meter.timeout_ms", "int", 200, (20, 2000),
     "Modbus response timeout in ms"),
    ("hardware.meter.retries", "int", 2, (0, 5),
     "Modbus retries after a timeout or CRC error"),
    # -- RFID reader --
    ("hardware.rfid.type", "str", "none", ("none", "mfrc522", "pn532", "pn532_i2c"),
     "RFID reader kind (pn532: SPI on the pins below; pn532_i2c: I2C on sda/scl)"),
    ("hardware.rfid.spi", "int", 2, (1, 2),
     "SPI bus of the RFID reader"),
    ("hardware.rfid.sck_pin", "pin", 18, None,
     "GPIO for the RFID SPI clock"),
    ("hardware.rfid.mosi_pin", "pin", 23, None,
     "GPIO for the RFID SPI MOSI"),
    ("hardware.rfid.miso_pin", "pin", 19, None,
     "GPIO for the RFID SPI MISO"),
    ("hardware.rfid.cs_pin", "pin", 5, None,
     "GPIO for the RFID chip select"),
    ("hardware.rfid.rst_pin", "pin", 4, None,
     "GPIO for the RFID reset"),
    ("hardware.rfid.sda_pin", "pin", 21, None,
     "GPIO for the PN532 I2C data (rfid.type pn532_i2c)"),
    ("hardware.rfid.scl_pin", "pin", 22, None,
     "GPIO for the PN532 I2C clock (rfid.type pn532_i2c)"),
    # -- status LED --
    ("hardware.led.pin", "pin", 2, None,
     "GPIO of the status LED"),
    ("hardware.led.active_low", "bool", False, None,
     "status LED lights on a low output"),
    # -- tamper switch --
    ("hardware.tamper.pin", "pin", None, None,
     "GPIO of the enclosure's tamper switch to GND, reads high when opened (null: none)"),
    # -- connector 2 (station.connectors 2): its own pins, wired like connector 1 --
    ("hardware.connector2.relay.pin", "pin", None, None,
     "GPIO driving connector 2's contactor relay"),
    ("hardware.connector2.relay.feedback_pin", "pin", None, None,
     "GPIO reading connector 2's contactor auxiliary contact"),
    ("hardware.connector2.lock.pin", "pin", None, None,
     "GPIO pulsed to drive connector 2's lock closed (null: no lock)"),
    ("hardware.connector2.lock.unlock_pin", "pin", None, None,
     "GPIO pulsed to drive connector 2's lock open"),
    ("hardware.connector2.lock.sense_pin", "pin", None, None,
     "GPIO reading connector 2's lock position switch"),
    ("hardware.connector2.pilot.pwm_pin", "pin", None, None,
     "GPIO driving connector 2's control pilot PWM"),
    ("hardware.connector2.pilot.adc_pin", "pin", None, None,
     "ADC GPIO sampling connector 2's control pilot (ESP32: ADC1, GPIO 32-39)"),
    ("hardware.connector2.meter.s0_pin", "pin", None, None,
     "GPIO counting connector 2's S0 meter impulses"),
    ("hardware.connector2.meter.address", "int", 2, (1, 247),
     "Modbus address of connector 2's meter (same RS485 bus)"),
    # -- WiFi (read by boot.py) --
    ("wifi.ssid", "str", "", None,
     "WiFi network name (empty: no WiFi)"),
    ("wifi.password", "str", "", None,
     "WiFi password"),
    ("wifi.hostname", "str", "", None,
     "DHCP host name (empty: port default)"),
    ("wifi.timeout_s", "int", 60, (5, 600),
     "not read any more (the link supervisor joins); kept so older configs stay valid"),
    ("wifi.static.ip", "str", "", None,
     "static IPv4 address (empty: DHCP)"),
    ("wifi.static.netmask", "str", "255.255.255.0", None,
     "static IPv4 netmask"),
    ("wifi.static.gateway", "str", "", None,
     "static IPv4 gateway"),
    ("wifi.static.dns", "str", "", None,
     "static DNS server (empty: the gateway)"),
)


def row(path):
    """The SPEC row for a dotted path; KeyError when the key is unknown."""
    for r in SPEC:
        if r[0] == path:
            return r
    raise KeyError(path)


def get(cfg, path):
    """The config value at a dotted path, or its SPEC default when absent."""
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return row(path)[2]
        node = node[part]
    return node


def section(prefix):
    """The defaults under a prefix ("hardware"/"wifi") as a nested dict."""
    out = {}  # type: dict
    for r in SPEC:
        parts = r[0].split(".")
        if parts[0] != prefix:
            continue
        node = out
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = r[2]
    return out


# -- wiring that cannot work (checked by firmware/config.py for the firmware and tools.config) --
# What each pin key does with its GPIO, by the end of its path (so a pin group per connector,
# "hardware.<group>.relay.pin", gets the same rule): "out" drives it, "in" reads it, "adc"
# samples it. And when the part is fitted: (path whose value says so, values meaning fitted);
# None: always. Pins of parts that are not fitted may share a GPIO with anything.
_ROLES = (
    ("relay.pin", "out", None), ("relay.feedback_pin", "in", None),
    ("lock.pin", "out", "lock"), ("lock.unlock_pin", "out", "lock"),
    ("lock.sense_pin", "in", "lock"), ("pilot.pwm_pin", "out", None),
    ("pilot.adc_pin", "adc", None), ("meter.s0_pin", "in", ("meter.type", ("s0",))),
    ("meter.tx_pin", "out", ("meter.type", ("sdm120", "sdm630"))),
    ("meter.rx_pin", "in", ("meter.type", ("sdm120", "sdm630"))),
    ("meter.de_pin", "out", ("meter.type", ("sdm120", "sdm630"))),
    ("rfid.sck_pin", "out", ("rfid.type", ("mfrc522", "pn532"))),
    ("rfid.mosi_pin", "out", ("rfid.type", ("mfrc522", "pn532"))),
    ("rfid.miso_pin", "in", ("rfid.type", ("mfrc522", "pn532"))),
    ("rfid.cs_pin", "out", ("rfid.type", ("mfrc522", "pn532"))),
    ("rfid.rst_pin", "out", ("rfid.type", ("mfrc522", "pn532", "pn532_i2c"))),
    ("rfid.sda_pin", "out", ("rfid.type", ("pn532_i2c",))),
    ("rfid.scl_pin", "out", ("rfid.type", ("pn532_i2c",))),
    ("led.pin", "out", None), ("maintenance_pin", "in", None), ("tamper.pin", "in", None),
)


def _role(path):
    for end, role, fitted in _ROLES:
        if path == "hardware." + end or path.endswith("." + end):
            return role, fitted
    return None, None


def _fitted(cfg, path, fitted):
    group = path[:path.rfind(".", 0, path.rfind("."))]  # "hardware" or "hardware.<group>"
    station = cfg.get("station")
    if group.startswith("hardware.connector"):  # connector n's pins count when it is there
        n = station.get("connectors") if isinstance(station, dict) else 1
        if not (isinstance(n, int) and group[18:].isdigit() and int(group[18:]) <= n):
            return False
    if fitted is None:
        return True
    if fitted == "lock":  # a fixed cable has no lock
        return not (isinstance(station, dict) and station.get("fixed_cable") is True)
    key, values = fitted
    # The meter and reader kinds are the board's, shared by every connector's group.
    return get_at(cfg, "hardware." + key) in values


def get_at(cfg, path):
    """The value at a dotted path, the SPEC default of its last two parts when absent."""
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            tail = path.split(".")
            for r in SPEC:
                if r[0].endswith("." + ".".join(tail[-2:])):
                    return r[2]
            return None
        node = node[part]
    return node


def dangers(cfg, board):
    """Problems of wiring the board cannot do safely, each with its fix: an output on an
    input-only pin, a pin of the SPI flash, a pilot ADC pin that cannot be read (ADC2 while
    WiFi is on), one GPIO for two parts. `board` is the hal/boards module (its INPUT_ONLY,
    FLASH_PINS, ADC, ADC2 rules; a board without pins has no dangers); `cfg` has its
    defaults filled in."""
    if board is None or getattr(board, "PINS", None) is None:
        return []
    input_only = getattr(board, "INPUT_ONLY", ())
    flash = getattr(board, "FLASH_PINS", ())
    adc = getattr(board, "ADC", None)
    adc2 = getattr(board, "ADC2", ())
    wifi = cfg.get("wifi")
    wifi_on = isinstance(wifi, dict) and bool(wifi.get("ssid"))
    problems = []
    used = {}  # type: dict  # GPIO -> first key using it
    for path in _pin_paths(cfg):
        pin = get_at(cfg, path)
        role, fitted = _role(path)
        if not isinstance(pin, int) or isinstance(pin, bool) or role is None:
            continue
        if not _fitted(cfg, path, fitted):
            continue
        where = "%s = %d - " % (path, pin)
        if pin in flash:
            problems.append(where + "GPIO %d-%d belong to the SPI flash: using one stops the"
                            " chip; pick another GPIO" % (min(flash), max(flash)))
        elif role == "out" and pin in input_only:
            problems.append(where + "GPIO %d is input-only and cannot drive an output; pick an"
                            " output-capable GPIO (not %d-%d)"
                            % (pin, min(input_only), max(input_only)))
        elif role == "adc" and adc and not adc[0] <= pin <= adc[1]:
            if pin in adc2:
                why = ("is on ADC2, which cannot be read while WiFi is on" if wifi_on else
                       "is on ADC2, which the WiFi driver takes over")
            else:
                why = "has no ADC"
            problems.append(where + "GPIO %d %s; use an ADC1 GPIO (%d-%d)"
                            % (pin, why, adc[0], adc[1]))
        if pin in used:
            problems.append(where + "GPIO %d is already used by %s; give each part its own GPIO"
                            % (pin, used[pin]))
        else:
            used[pin] = path
    return problems


def _pin_paths(cfg):
    """Every pin key: SPEC's, and those of groups in cfg["hardware"] that SPEC has no row for."""
    out = [r[0] for r in SPEC if r[1] == "pin"]
    hw = cfg.get("hardware")
    if isinstance(hw, dict):
        _walk(hw, "hardware", out)
    return out


def _walk(node, path, out):
    for name in node:
        sub = path + "." + name
        if isinstance(node[name], dict):
            _walk(node[name], sub, out)
        elif sub not in out and _role(sub)[0] is not None:
            out.append(sub)
