"""Pins per connector (hardware.connector2) and the PN532's pins through the shared pin checker
(hal/hwspec.py dangers(), run by firmware/config.py), on MicroPython and CPython: no GPIO used
twice across connectors or parts, pins of a connector or reader that is not fitted left alone.
(Connector 2's own contactor and pilot pins are required when the board is built: a host
config may name the ESP32 board with any number of simulated connectors.)"""

import pytest

from tests.mp import INTERPRETERS
from tests.unit.test_config_rules import _cfg, check_everywhere

TWO = dict(station__connectors=2, hardware__connector2__relay__pin=25,
           hardware__connector2__pilot__pwm_pin=13, hardware__connector2__pilot__adc_pin=39)


def _two(**changes):
    return _cfg(**dict(TWO, **changes))


# name -> (config text, the problems expected: each one starts a problem, in order)
CASES = {
    "two_connectors_wired_apart": (_two(), []),
    "connector2_relay_on_connector1_relay": (
        _two(hardware__connector2__relay__pin=26),
        ["hardware.connector2.relay.pin = 26 - GPIO 26 is already used by hardware.relay.pin;"
         " give each part its own GPIO"]),
    "connector2_pilot_on_connector1_lock": (
        _two(hardware__connector2__pilot__adc_pin=34),
        ["hardware.connector2.pilot.adc_pin = 34 - GPIO 34 is already used by"
         " hardware.lock.sense_pin"]),
    "tamper_switch_on_the_relay_pin": (
        _cfg(hardware__tamper__pin=26),
        ["hardware.tamper.pin = 26 - GPIO 26 is already used by hardware.relay.pin"]),
    "connector2_pins_unused_with_one_connector": (
        _cfg(hardware__connector2__relay__pin=26), []),
    "connector2_s0_on_connector1_s0": (
        _two(hardware__meter__type="s0", hardware__connector2__meter__s0_pin=14),
        ["hardware.connector2.meter.s0_pin = 14 - GPIO 14 is already used by"
         " hardware.meter.s0_pin"]),
    "connector2_s0_unused_with_a_modbus_meter": (
        _two(hardware__meter__type="sdm630", hardware__connector2__meter__s0_pin=14), []),
    "pn532_i2c_sda_on_connector2_lock": (
        _two(hardware__rfid__type="pn532_i2c", hardware__connector2__lock__pin=21,
             hardware__connector2__lock__sense_pin=35),
        ["hardware.connector2.lock.pin = 21 - GPIO 21 is already used by"
         " hardware.rfid.sda_pin"]),
    "pn532_spi_cs_on_relay": (
        _cfg(hardware__rfid__type="pn532", hardware__rfid__cs_pin=26),
        ["hardware.rfid.cs_pin = 26 - GPIO 26 is already used by hardware.relay.pin"]),
    "pn532_i2c_pins_unused_with_spi": (
        _cfg(hardware__rfid__type="pn532", hardware__rfid__sda_pin=26), []),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return check_everywhere(tmp_path_factory, "pins",
                            [(name, text, False) for name, (text, _) in CASES.items()])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_connector_pins(results, interpreter, name):
    found = results[interpreter][name]["problems"]
    expected = CASES[name][1]
    assert len(found) == len(expected), found
    for f, e in zip(found, expected):
        assert f.startswith(e), (f, e)
