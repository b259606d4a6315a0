"""ESP32 DevKit (ESP32-WROOM-32, classic ESP32): the reference wiring (README, Wiring).

The chip's pin rules: GPIO 0-39; 34-39 are input-only, without internal pulls; the pilot
needs an ADC1 pin (GPIO 32-39), since ADC2 belongs to the WiFi driver; 6-11 are the SPI
flash's. hal/hwspec.py dangers() checks a config against these rules. The defaults in
hal/hwspec.py are this board's wiring.
"""
PINS = (0, 39)
INPUT_ONLY = (34, 35, 36, 37, 38, 39)
ADC = (32, 39)
FLASH_PINS = (6, 7, 8, 9, 10, 11)  # wired to the module's SPI flash
ADC2 = (0, 2, 4, 12, 13, 14, 15, 25, 26, 27)  # taken over by the WiFi driver
DEFAULTS = ()


def make_board(cfg):
    from hal import esp32  # only now: the config check reads the rules above without it
    return esp32.make_board(cfg, INPUT_ONLY, ADC)
