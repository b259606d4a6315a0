"""The PN532 driver (hal/rfid_pn532.py) against a fake chip on a fake I2C and SPI bus, with the
frames of the PN532 user manual. Runs under pytest, and as a script on the MicroPython unix port
(the last test starts it):
    micropython tests/unit/test_pn532.py
"""
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the packages live in cwd

from hal import rfid_pn532  # noqa: E402
from hal.rfid_pn532 import I2cBus, Pn532, SpiBus, parse, target_uid  # noqa: E402
from hal.rfid_token import TokenReader  # noqa: E402
from tests.fakes import (  # noqa: E402
    PN532_ACK, Clock, FakePin, FakePn532, FakePn532I2c, FakePn532Spi, pn532_frame)

H = bytes.fromhex  # the frames below are written as the manual and a logic analyser show them

GET_FIRMWARE_VERSION = H("0000ff02fed4022a00")
SAM_CONFIGURATION = H("0000ff05fbd414011401" "0200")
IN_LIST_PASSIVE_TARGET = H("0000ff04fcd44a0100e100")
FIRMWARE_VERSION_ANSWER = H("0000ff06fad50332010607e800")


def _raises(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def _i2c(chip):
    clock = Clock()
    return Pn532(I2cBus(FakePn532I2c(chip)), sleep=clock.sleep, clock=clock)


def _spi(chip):
    clock = Clock()
    return Pn532(SpiBus(FakePn532Spi(chip), FakePin(1)), sleep=clock.sleep, clock=clock)


def test_frames_are_those_of_the_manual():
    assert rfid_pn532.command(0x02) == GET_FIRMWARE_VERSION
    assert rfid_pn532.command(0x14, b"\x01\x14\x01") == SAM_CONFIGURATION
    assert rfid_pn532.command(0x4A, b"\x01\x00") == IN_LIST_PASSIVE_TARGET
    assert rfid_pn532.ACK == PN532_ACK == H("0000ff00ff00")
    assert pn532_frame(b"\xd5\x03\x32\x01\x06\x07") == FIRMWARE_VERSION_ANSWER


def test_parse_checks_start_code_lengths_tfi_and_checksum():
    assert parse(FIRMWARE_VERSION_ANSWER) == H("0332010607")
    assert parse(b"\x00\x00" + FIRMWARE_VERSION_ANSWER + bytes(8)) == H("0332010607")
    bad_lcs = bytearray(FIRMWARE_VERSION_ANSWER)
    bad_lcs[4] ^= 1
    bad_dcs = bytearray(FIRMWARE_VERSION_ANSWER)
    bad_dcs[11] ^= 1
    from_host = pn532_frame(b"\xd4\x03\x32\x01\x06\x07")
    for bad in (bytes(bad_lcs), bytes(bad_dcs), from_host, FIRMWARE_VERSION_ANSWER[:9],
                b"\x00" * 12, b"\xff" + FIRMWARE_VERSION_ANSWER):
        assert _raises(parse, bad), bad


def test_target_uid_reads_4_7_and_10_byte_uids():
    assert target_uid(H("4b00")) is None                            # no card
    assert target_uid(H("4b0101004400" "04" "04a21b7f")) == H("04a21b7f")
    seven = H("04a21b7f5c2a80")
    assert target_uid(H("4b0101004400" "07") + seven) == seven
    assert target_uid(H("4b0101004400" "0a") + bytes(range(10))) == bytes(range(10))
    assert _raises(target_uid, H("4b0101004400" "05" "0102030405"))   # no such UID size
    assert _raises(target_uid, H("4b0101004400" "07" "0102"))         # cut short


def test_start_sends_firmware_version_sam_and_retry_configuration_i2c_and_spi():
    for make in (_i2c, _spi):
        chip = FakePn532()
        reader = make(chip)
        assert reader.version == "1.6"
        assert chip.frames[:2] == [GET_FIRMWARE_VERSION, SAM_CONFIGURATION]
        assert chip.frames[2] == H("0000ff06fad432" "05ff0101" "f400")   # RFConfiguration
        assert reader.read_uid() is None                               # no card
        assert chip.frames[-1] == IN_LIST_PASSIVE_TARGET
        chip.card = H("04a21b7f")
        assert reader.read_uid() == H("04a21b7f")
        chip.card = H("04a21b7f5c2a80")
        assert reader.read_uid() == H("04a21b7f5c2a80")


def test_a_reader_that_does_not_answer_raises_at_start():
    chip = FakePn532()
    chip.deaf = True
    for make in (_i2c, _spi):
        try:
            make(chip)
        except OSError as e:
            assert "PN532" in str(e)
        else:
            raise AssertionError("a deaf PN532 was accepted")


def test_an_unanswered_poll_is_aborted_within_its_bound():
    chip = FakePn532(H("04a21b7f"))
    clock = Clock()
    reader = Pn532(I2cBus(FakePn532I2c(chip)), sleep=clock.sleep, clock=clock)
    chip.mute = (0x4A,)                       # acknowledged, never answered
    t0 = clock.t
    assert reader.read_uid() is None
    assert chip.aborts == 1                   # the host's ACK ends the command
    assert clock.t - t0 <= 60                 # the loop is held about 50 ms at most
    chip.mute = ()
    assert reader.read_uid() == H("04a21b7f")  # the next poll starts clean


def test_token_reader_reports_a_pn532_swipe_once():
    chip = FakePn532()
    clock = Clock()
    tokens = TokenReader(_spi(chip), clock=clock)
    assert tokens.poll() is None
    chip.card = H("04a21b7f")
    assert tokens.poll() == "04A21B7F"
    clock.advance(100)
    assert tokens.poll() is None              # still on the reader: not again


def test_pn532_on_micropython():
    from tests.mp import run_mp
    proc = run_mp("tests/unit/test_pn532.py")
    assert proc.returncode == 0 and "pn532-ok" in proc.stdout, proc.stdout + proc.stderr


if __name__ == "__main__":
    from tests.mpunit import run_tests
    run_tests(globals(), "pn532-ok")
