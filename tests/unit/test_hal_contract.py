"""The HAL contract (hal/base.py): the simulator's parts and the ESP32 drivers on fake pins
answer the same methods with the documented types, the bases' defaults are safe, and faults
are aggregated in one place (the connector) for both.

Runs under pytest, and as a script under the MicroPython unix port (the last test starts it):
    micropython tests/unit/test_hal_contract.py
so nothing here needs pytest or a CPython-only feature.
"""
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the packages live in cwd

from firmware.connector import Connector as FwConnector, Transaction, severity  # noqa: E402
from firmware.metering import meter_value  # noqa: E402
from hal import base  # noqa: E402
from hal.led import Led  # noqa: E402
from hal.lock import Lock  # noqa: E402
from hal.modbus import ModbusMaster  # noqa: E402
from hal.parts import EstimatedMeter, Rtc, Watchdog  # noqa: E402
from hal.pilot import Pilot  # noqa: E402
from hal.relay import Relay  # noqa: E402
from hal.rfid_token import TokenReader  # noqa: E402
from hal.s0 import S0Meter  # noqa: E402
from hal.sdm import SdmMeter  # noqa: E402
from hal.rfid_pn532 import I2cBus, Pn532  # noqa: E402
from hal.wlan import Wlan  # noqa: E402
from tests.fakes import (  # noqa: E402
    Clock, FakeAdc, FakeNetworkModule, FakePin, FakePn532, FakePn532I2c, FakePwm, FakeUart, Log,
    meter_model)
from tests.mpunit import TempDirs  # noqa: E402

# OCPP 1.6 ChargePointErrorCode, without NoError: a part without a fault answers None.
ERROR_CODES = ("ConnectorLockFailure", "EVCommunicationError", "GroundFailure",
               "HighTemperature", "InternalError", "LocalListConflict", "OtherError",
               "OverCurrentFailure", "OverVoltage", "PowerMeterFailure", "PowerSwitchFailure",
               "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal")


# -- what each answer may be ---------------------------------------------------------------

def _none(v):
    return v is None


def _bool(v):
    return v is True or v is False


def _int(v):
    return isinstance(v, int) and not _bool(v)


def _float(v):
    return isinstance(v, float)


def _code(v):
    return v is None or v in ERROR_CODES


def _state(v):
    return v in ("A", "B", "C", "D", "E", "F")


def _tag(v):
    return v is None or isinstance(v, str) and 0 < len(v) <= 20


def _phases(v):
    if v is None:
        return True
    return (isinstance(v, tuple) and len(v) == 3
            and all(isinstance(p, tuple) and len(p) == 3 and _float(p[0]) and _float(p[1])
                    and _float(p[2]) for p in v))


def _soc(v):
    return v is None or _int(v) and 0 <= v <= 100


def _net_info(v):
    return (isinstance(v, tuple) and len(v) == 2 and (v[0] is None or isinstance(v[0], str))
            and (v[1] is None or _int(v[1])))


def _started(network):
    network.start()
    return network


def _reply(v):
    return v is None or isinstance(v, str)


# (method, arguments, check of the answer), per part; the order is the order of the calls.
CONTRACT = (
    (base.Relay, (("set", (True,), _none), ("is_on", (), _bool), ("set", (False,), _none),
                  ("is_on", (), _bool), ("welded", (), _bool), ("fault", (), _code))),
    (base.Meter, (("energy_wh", (), _int), ("power_w", (), _float), ("current_a", (), _float),
                  ("voltage_v", (), _float), ("phases", (), _phases), ("soc", (), _soc),
                  ("fault", (), _code), ("poll", (), _none), ("resume", (0,), _none))),
    (base.Pilot, (("set_current_limit", (16,), _none), ("state", (), _state),
                  ("set_state_f", (True,), _none), ("state", (), _state),
                  ("set_state_f", (False,), _none),
                  ("set_current_limit", (None,), _none), ("fault", (), _code))),
    (base.Lock, (("lock", (), _bool), ("unlock", (), _bool), ("fault", (), _code))),
    (base.TokenReader, (("poll", (), _tag),)),
    (base.Indicator, (("show", ("charging",), _none), ("poll", (), _none))),
    (base.Rtc, (("set", (1700000000,), _none), ("now", (), _int))),
    (base.Watchdog, (("feed", (), _none),)),
    (base.Network, (("start", (), _none), ("up", (), _bool), ("info", (), _net_info))),
    (base.Connector, (("fault", (), _code),)),
    (base.Board, (("poll", (), _none), ("command", (["nonsense", "1"],), _reply))),
)


def check_part(name, part):
    """Every method of the part's base, called in order; a list of what went wrong."""
    wrong = []
    for cls, methods in CONTRACT:
        if not isinstance(part, cls):
            continue
        for method, args, ok in methods:
            answer = getattr(part, method)(*args)
            if not ok(answer):
                wrong.append("%s.%s%r -> %r" % (name, method, tuple(args), answer))
        return wrong
    return ["%s: %r subclasses no part of hal/base.py" % (name, part)]


def check_attributes(name, part):
    """The attributes the contract names, with their types."""
    wrong = []
    if isinstance(part, base.Pilot):
        if not (part.limit is None or isinstance(part.limit, (int, float))):
            wrong.append("%s.limit = %r" % (name, part.limit))
        if not _bool(part.state_f):
            wrong.append("%s.state_f = %r" % (name, part.state_f))
    if isinstance(part, base.Meter) and not _bool(part.volatile):
        wrong.append("%s.volatile = %r" % (name, part.volatile))
    if isinstance(part, base.Watchdog) and not _bool(part.enabled):
        wrong.append("%s.enabled = %r" % (name, part.enabled))
    if isinstance(part, base.Connector):
        for attr, cls in (("relay", base.Relay), ("meter", base.Meter), ("pilot", base.Pilot)):
            if not isinstance(getattr(part, attr), cls):
                wrong.append("%s.%s is not a %s" % (name, attr, cls.__name__))
        if part.lock is not None and not isinstance(part.lock, base.Lock):
            wrong.append("%s.lock is neither None nor a Lock" % name)
    if isinstance(part, base.Board):
        if not part.connectors:
            wrong.append("%s has no connectors" % name)
        for attr, cls in (("rtc", base.Rtc), ("reader", base.TokenReader),
                          ("indicator", base.Indicator), ("watchdog", base.Watchdog),
                          ("network", base.Network)):
            if not isinstance(getattr(part, attr), cls):
                wrong.append("%s.%s is not a %s" % (name, attr, cls.__name__))
        for i, c in enumerate(part.connectors):
            wrong += check_attributes("%s.connectors[%d]" % (name, i), c)
    return wrong


# -- the parts -----------------------------------------------------------------------------

_DIRS = TempDirs("hal-contract-")  # data folders of the simulated boards
_tmpdir, _cleanup = _DIRS.make, _DIRS.cleanup


try:
    import pytest

    @pytest.fixture(autouse=True, scope="module")
    def _data_folders():
        yield
        _cleanup()
except ImportError:  # MicroPython: tests/mpunit.run_tests() cleans up
    pass


def sim_board(phases=1, fixed_cable=False):
    from hal.boards import sim
    return sim.make_board({"station": {"connectors": 1, "voltage": 230, "phases": phases,
                                       "fixed_cable": fixed_cable}, "_data": _tmpdir()})


def sdm(model, regs=None, unit=1):
    """An SDM meter on a fake RS485 bus, with `regs` (addr: float) behind it, polled full."""
    clock = Clock()
    meter = SdmMeter(ModbusMaster(FakeUart(meter_model(regs or {}, unit)), clock=clock),
                     unit, model)
    for _ in range(40):
        meter.poll()
        clock.advance(250)  # a silent meter times out, a present one has answered
    return meter


SDM630 = {0x0000: 231.0, 0x0002: 232.0, 0x0004: 233.0,        # V per phase
          0x0006: 10.5, 0x0008: 11.5, 0x000A: 12.5,           # A per phase
          0x000C: 2400.0, 0x000E: 2600.0, 0x0010: 2900.0,     # W per phase
          0x0034: 7900.0, 0x0048: 12.345}                     # W total, kWh import


def esp32_connector(clock, meter=None, feedback=None, sense_level=0):
    relay = Relay(FakePin(), feedback, clock=clock)
    pilot = Pilot(FakePwm(), FakeAdc(12.0), samples=32, clock=clock)
    sense = FakePin(sense_level)
    drive = FakePin(on_change=lambda v: setattr(sense, "level", v))
    lock = Lock(drive, sense, sleep=clock.sleep, pulse_ms=10, clock=clock)
    meter = meter or EstimatedMeter(relay, pilot, clock=clock)
    return base.Connector(relay, meter, pilot, lock)


class _FakeRtc:
    dt = (2024, 1, 1, 0, 0, 0, 0, 0)

    def datetime(self, dt=None):
        if dt is None:
            return self.dt
        self.dt = dt


class _Uid:
    def read_uid(self):
        return b"\x04\xa2\x1b\x7f"


def parts():
    """(name, part) for every part of the simulator and every ESP32 driver."""
    from hal import esp32
    clock = Clock()
    board = sim_board()
    conn = board.connectors[0]
    out = [("sim.board", board), ("sim.connector", conn), ("sim.relay", conn.relay),
           ("sim.meter", conn.meter), ("sim.pilot", conn.pilot), ("sim.lock", conn.lock),
           ("sim.rtc", board.rtc), ("sim.reader", board.reader),
           ("sim.indicator", board.indicator), ("sim.watchdog", board.watchdog),
           ("sim.network", board.network),
           ("sim.meter(3 phases)", sim_board(phases=3).connectors[0].meter)]
    econn = esp32_connector(clock)
    out += [("esp32.relay", econn.relay), ("esp32.pilot", econn.pilot),
            ("esp32.lock", econn.lock), ("esp32.connector", econn),
            ("parts.EstimatedMeter", econn.meter),
            ("s0", S0Meter(1000, clock=clock)),
            ("sdm120", sdm("sdm120", {0x0000: 229.5, 0x0006: 15.25, 0x000C: 3500.0,
                                      0x0048: 1.5})),
            ("sdm630", sdm("sdm630", SDM630)),
            ("sdm630(silent)", sdm("sdm630", {}, unit=9)),
            ("led", Led(FakePin(), clock=clock)),
            ("parts.Rtc", Rtc(_FakeRtc())), ("parts.Watchdog", Watchdog()),
            ("rfid_token", TokenReader(_Uid(), clock=clock)),
            ("rfid_token(pn532)", TokenReader(Pn532(I2cBus(FakePn532I2c(FakePn532(
                b"\x04\xa2\x1b\x7f"))), sleep=clock.sleep, clock=clock), clock=clock)),
            ("esp32.board(2 connectors)", esp32.Board([econn, esp32_connector(clock)],
                                                      Rtc(_FakeRtc()))),
            ("esp32.board", esp32.Board([econn], Rtc(_FakeRtc()), polled=(econn.meter,))),
            ("esp32.network", Wlan({"ssid": "site"}, FakeNetworkModule())),
            ("esp32.network(no AP)", _started(Wlan({"ssid": "x"}, FakeNetworkModule(False))))]
    # The bases are the stand-ins for parts that are not fitted.
    out += [("base." + cls.__name__, cls()) for cls in
            (base.Relay, base.Meter, base.Pilot, base.Lock, base.TokenReader, base.Indicator,
             base.Rtc, base.Watchdog, base.Network)]
    out += [("base.Connector", base.Connector(base.Relay(), base.Meter(), base.Pilot())),
            ("base.Board", base.Board([base.Connector(base.Relay(), base.Meter(),
                                                      base.Pilot())]))]
    return out


# -- tests ---------------------------------------------------------------------------------

def test_every_part_answers_the_contract_with_the_documented_types():
    wrong = []
    for name, part in parts():
        wrong += check_part(name, part) + check_attributes(name, part)
    assert not wrong, "\n".join(wrong)


def test_the_bases_answer_safely():
    m = base.Meter()
    assert (m.energy_wh(), m.power_w(), m.phases(), m.soc(), m.fault()) == (0, 0.0, None, None,
                                                                             None)
    board = base.Board([base.Connector(base.Relay(), m, base.Pilot())])
    assert board.command(["plug", "1"]) is None
    assert board.poll() is None and board.reset(True) is None
    assert not board.watchdog.enabled and board.network.up()
    assert board.reader.poll() is None
    r = base.Relay()
    r.set(1)
    assert r.is_on() is True and not r.welded() and r.fault() is None
    p = base.Pilot()
    p.set_current_limit(10)
    assert p.limit == 10 and p.state() == "A" and p.fault() is None
    assert board.connectors[0].fault() is None
    rtc = base.Rtc()
    rtc.set(1700000000)
    assert abs(rtc.now() - 1700000000) <= 1


def test_meters_without_phases_or_soc_say_none():
    single = sdm("sdm120", {0x0000: 229.5, 0x0006: 15.25, 0x000C: 1.0, 0x0048: 1.0})
    assert single.phases() is None and single.voltage_v() == 229.5
    assert sim_board(phases=1).connectors[0].meter.phases() is None
    assert S0Meter(1000).soc() is None and S0Meter(1000).phases() is None


def test_simulated_fault_goes_through_the_connectors_aggregation():
    board = sim_board()
    hw = board.connectors[0]
    conn = FwConnector(1, hw, 32)
    assert hw.fault() is None and conn.status() == ("Available", "NoError")
    assert board.command(["fault", "1", "GroundFailure"]) == "ok"
    assert hw.fault() == "GroundFailure"
    assert conn.status() == ("Faulted", "GroundFailure")
    hw.pilot.plug = "E"                      # the injected fault still comes first
    assert hw.fault() == "GroundFailure"
    assert board.command(["clear", "1"]) == "ok"
    assert hw.fault() == "EVCommunicationError"   # the base pilot's check, on the sim too
    hw.pilot.plug = "A"
    assert conn.status() == ("Available", "NoError")


def test_simulated_lock_failure_is_the_firmwares_until_unplugged():
    board = sim_board()
    hw = board.connectors[0]
    conn = FwConnector(1, hw, 32)
    board.command(["lockfail", "1"])
    assert hw.lock.lock() is False and hw.fault() is None   # as before: no fault from the part
    conn.lock_failed = True
    assert conn.status() == ("Faulted", "ConnectorLockFailure")


def test_simulated_lock_that_lets_go_is_a_fault_until_released():
    board = sim_board()
    hw = board.connectors[0]
    assert hw.lock.lock() is True and hw.fault() is None
    board.command(["lockfail", "1"])             # the latch gives way under a session
    assert hw.fault() == "ConnectorLockFailure"
    assert hw.lock.unlock() is False and hw.fault() is None   # released: nothing to hold
    board.command(["clear", "1"])                # mended
    assert hw.lock.lock() is True and hw.fault() is None


def test_pilot_in_state_f_holds_its_last_reading():
    clock = Clock()
    pwm = FakePwm()
    adc = FakeAdc(6.0)
    pilot = Pilot(pwm, adc, samples=32, clock=clock)
    pilot.set_current_limit(16)
    assert pilot.state() == "C" and pwm.duty not in (0, 65535)
    pilot.set_state_f(True)
    assert pwm.duty == 0                          # steady -12 V
    pilot.set_current_limit(32)                   # a limit does not lift state F
    assert pwm.duty == 0 and pilot.limit == 32
    adc.set(-12.0)                                # the line shows our own -12 V ...
    clock.advance(100)
    assert pilot.state() == "C" and pilot.fault() is None   # ... not a fault of the EV
    adc.set(9.0)
    pilot.set_state_f(False)                      # released: the line is read afresh
    assert pwm.duty not in (0, 65535) and pilot.state() == "B"
    inverted = Pilot(FakePwm(), FakeAdc(9.0), samples=32, invert=True, clock=clock)
    inverted.set_state_f(True)
    assert inverted._pwm.duty == 65535
    sim = sim_board().connectors[0].pilot
    sim.plug = "C"
    assert sim.state() == "C"
    sim.set_state_f(True)
    sim.plug = "A"                                # unplugged meanwhile: not seen in state F
    assert sim.state() == "C"
    sim.set_state_f(False)
    assert sim.state() == "A"


def test_esp32_lock_that_lets_go_while_held_is_a_fault():
    clock = Clock()
    conn = esp32_connector(clock)
    lock = conn.lock
    assert lock.lock() is True and lock.fault() is None
    lock._sense.level = 0                         # the position switch opens ...
    assert lock.fault() is None                   # ... a bounce is not believed at once
    clock.advance(30)
    lock._sense.level = 1
    assert lock.fault() is None
    lock._sense.level = 0
    assert lock.fault() is None
    clock.advance(100)
    assert lock.fault() == "ConnectorLockFailure" and conn.fault() == "ConnectorLockFailure"
    assert lock.unlock() is True and lock.fault() is None     # released: not watched


# -- the safety rule (firmware/connector.py guard(), README "Faults and safety") ----------

def _charging(board):
    hw = board.connectors[0]
    conn = FwConnector(1, hw, 32)
    log = Log()
    conn.guard(log)                               # the first tick
    hw.pilot.plug = "C"
    conn.tx = Transaction(1, "T", 0, 0)
    hw.relay.set(True)
    hw.pilot.set_current_limit(conn.offered_a())
    return hw, conn, log


def test_every_error_code_is_informational_or_opens_the_contactor():
    stop = ("GroundFailure", "OverCurrentFailure", "PowerSwitchFailure",
            "ConnectorLockFailure", "EVCommunicationError")
    info = ("ReaderFailure", "WeakSignal", "LocalListConflict", "ResetFailure")
    for code in ERROR_CODES:
        board = sim_board()
        hw, conn, log = _charging(board)
        board.command(["fault", "1", code])
        ends = conn.guard(log)
        if code in info:
            assert severity(code) == 0 and not ends and hw.relay.is_on(), code
            assert conn.status() == ("Charging", code) and conn.offered_a() == 32.0
            assert log.levels("warn") and not log.levels("error"), code
            continue
        assert severity(code) == (2 if code in stop else 1), code
        assert ends == (code in stop) and not hw.relay.is_on(), code
        assert conn.status() == ("Faulted", code) and conn.offered_a() == 0.0, code
        assert code in log.levels("error")[0], code
        watch = code in ("EVCommunicationError", "ConnectorLockFailure")
        assert hw.pilot.state_f == (not watch), code
        assert watch == (hw.pilot.limit is None), code
    assert severity("SomethingNew") == 1 and severity("NoError") == 0


def test_clearing_resumes_a_suspended_session_only():
    board = sim_board()
    hw, conn, log = _charging(board)
    board.command(["fault", "1", "HighTemperature"])
    assert conn.guard(log) is False and not hw.relay.is_on()
    hw.relay.set(True)                            # something closed it meanwhile
    conn.guard(log)
    assert not hw.relay.is_on()                   # opened again on the next tick
    board.command(["clear", "1"])
    conn.guard(log)
    assert hw.relay.is_on() and not hw.pilot.state_f and hw.pilot.limit == 32.0
    assert conn.status() == ("Charging", "NoError")
    assert log.levels("warn")[-1] == "connector 1: charging resumes"
    # Ended by the fault (the session layer stops it): clearing leaves the contactor open.
    board.command(["fault", "1", "GroundFailure"])
    assert conn.guard(log) is True
    conn.tx = None                                # what Sessions.stop() does
    board.command(["clear", "1"])
    conn.guard(log)
    assert not hw.relay.is_on() and not hw.pilot.state_f and hw.pilot.limit is None
    # Suspended, and the EV left during the fault: no resuming into an empty socket.
    hw, conn, log = _charging(sim_board())
    hw.pilot.plug = "A"
    conn.hw.relay.set(False)
    conn.halted = True
    conn.guard(log)
    assert not hw.relay.is_on() and conn.halted


def test_esp32_connector_aggregates_relay_lock_meter_then_pilot():
    clock = Clock()
    fb = FakePin(level=1)                    # active-low aux contact: 1 = open
    meter = sdm("sdm630", {}, unit=9)        # never answers: stale
    conn = esp32_connector(clock, meter, fb)
    fw = FwConnector(1, conn, 32)
    pilot = conn.pilot
    assert conn.fault() == "PowerMeterFailure"
    conn.lock.lock()                         # the position switch follows: confirmed
    assert conn.lock.failed is False
    conn.lock._sense = FakePin(0)            # switch stuck open: the next move fails
    conn.lock.lock()
    assert conn.fault() == "ConnectorLockFailure"
    fb.level = 0                             # contactor open, aux contact closed: welded
    clock.advance(1000)
    assert conn.fault() == "PowerSwitchFailure"
    assert fw.error_code() == "PowerSwitchFailure" and fw.status()[0] == "Faulted"
    fb.level = 1
    conn.lock._sense = FakePin(1)
    conn.lock.lock()
    conn.meter = esp32_connector(clock).meter
    pilot._adc.set(0.0, 0.0)                 # pilot shorted: state E
    clock.advance(100)
    assert conn.fault() == "EVCommunicationError"
    pilot._adc.set(12.0)
    clock.advance(100)
    assert conn.fault() is None and fw.error_code() == "NoError"


def test_sdm630_per_phase_values_reach_the_meter_value():
    meter = sdm("sdm630", SDM630)
    assert meter.phases() == ((231.0, 10.5, 2400.0), (232.0, 11.5, 2600.0),
                              (233.0, 12.5, 2900.0))
    clock = Clock()
    hw = base.Connector(Relay(FakePin(), clock=clock), meter,
                        Pilot(FakePwm(), FakeAdc(6.0), samples=32, clock=clock))
    conn = FwConnector(1, hw, 32)
    conn.phase_labels = ("L2", "L3", "L1")   # ConnectorPhaseRotation 1.STR
    mv = meter_value(conn, ("Energy.Active.Import.Register", "Voltage", "Current.Import",
                            "Power.Active.Import", "Current.Offered"),
                     "Sample.Periodic", 1700000000)
    got = [(s["measurand"], s.get("phase"), s["value"]) for s in mv["sampledValue"]]
    assert got == [("Energy.Active.Import.Register", None, "12345"),
                   ("Voltage", "L2", "231"), ("Voltage", "L3", "232"), ("Voltage", "L1", "233"),
                   ("Current.Import", "L2", "10.5"), ("Current.Import", "L3", "11.5"),
                   ("Current.Import", "L1", "12.5"),
                   ("Power.Active.Import", "L2", "2400"), ("Power.Active.Import", "L3", "2600"),
                   ("Power.Active.Import", "L1", "2900"),
                   ("Current.Offered", None, "0")], got


def test_board_registry_names_a_file_per_board():
    from hal import boards
    assert boards.name({}) == "esp32_devkit"
    assert boards.name({"hardware": {"board": "sim"}}) == "sim"
    for name in ("esp32_devkit", "sim"):
        b = boards.load(name)
        assert b.PINS is None or len(b.PINS) == 2
        assert isinstance(b.DEFAULTS, tuple)
    for bad in ("nope", "", "..", "sim.x", "../hal"):
        try:
            boards.load(bad)
        except ImportError:
            continue
        raise AssertionError("board %r loaded" % bad)


def test_contract_holds_on_micropython():
    from tests.mp import run_mp
    proc = run_mp("tests/unit/test_hal_contract.py")
    assert proc.returncode == 0 and "hal-contract-ok" in proc.stdout, proc.stdout + proc.stderr


if __name__ == "__main__":
    from tests.mpunit import run_tests
    run_tests(globals(), "hal-contract-ok")
