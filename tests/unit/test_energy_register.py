"""The energy register of meters without a register of their own (hal/base.py Meter.volatile:
an S0 impulse count on a fake pin, the estimated meter) across power cuts: after a cut the
register goes on from the highest value on flash, at most one sample's energy is lost, and no
value sent is ever lower than one sent before. The flash writes this costs are counted.

A "power cut" drops the charge point and builds a new board (its meter counts from zero) and
charge point on the same data folder. Runs under pytest, and as a script under the
MicroPython unix port (the last test starts it):
    micropython tests/unit/test_energy_register.py
"""
import json
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the packages live in cwd

from firmware import config, store  # noqa: E402
from firmware.chargepoint import ChargePoint  # noqa: E402
from hal import base  # noqa: E402
from hal.parts import EstimatedMeter  # noqa: E402
from hal.pilot import Pilot  # noqa: E402
from hal.relay import Relay  # noqa: E402
from hal.s0 import S0Meter  # noqa: E402
from tests.fakes import Clock, FakeAdc, FakePin, FakePwm, Log  # noqa: E402
from tests.mpunit import TempDirs  # noqa: E402

_CONFIG = "config.json"  # the repository's, read from the repository root


class Rig:
    """One data folder; boot() builds a board with a fresh meter and a charge point on it."""

    def __init__(self, folder, kind, sample_s=60):
        with open(_CONFIG) as f:
            cfg = json.load(f)
        cfg["ocpp"] = {"MeterValueSampleInterval": sample_s, "MinimumStatusDuration": 0}
        cfg["station"].update({"connectors": 1, "fixed_cable": True})
        store.makedirs(folder)
        self.path = folder + "/config.json"
        with open(self.path, "w") as f:
            json.dump(cfg, f)
        self.kind = kind
        self.clock = Clock()
        self.cp = None

    def boot(self):
        """Power on: a new board whose meter remembers nothing, and the charge point."""
        log = Log()
        cfg = config.load(self.path, log)
        clock = self.clock
        relay = Relay(FakePin(), clock=clock)
        pilot = Pilot(FakePwm(), FakeAdc(6.0), samples=32, clock=clock)  # EV in state C
        if self.kind == "s0":
            meter = S0Meter(1000, clock=clock)                  # one impulse: 1 Wh
        else:
            meter = EstimatedMeter(relay, pilot, clock=clock)   # 32 A x 230 V: 2.04 Wh/s
        board = base.Board([base.Connector(relay, meter, pilot)])
        self.cp = ChargePoint(cfg, board, log)
        self.conn = self.cp.connectors[0]
        self.meter = meter
        return self

    def charge(self, wh):
        """Let at least `wh` Wh flow."""
        if self.kind == "s0":
            for _ in range(wh):
                self.clock.advance(100)
                self.meter.irq()
        else:
            self.clock.advance(int(wh * 3600000 / (230 * 32)) + 1)
            self.meter.poll()                    # as the board's loop does every tick

    def start(self, tag):
        self.conn.finishing = False              # (after a cut: the cable was plugged again)
        self.conn.arm(tag, None, 60)
        self.cp.sessions.tick(self.conn)
        assert self.conn.tx is not None, self.cp.log.text()

    def pending(self, action):
        """Payloads of `action` waiting in the journal, oldest first."""
        return [rec["p"] for _, rec in self.cp.outbox.journal.pending() if rec["a"] == action]

    def sent_registers(self):
        """Every register value in the journal, in order (Start, MeterValues, Stop)."""
        out = []
        for _, rec in self.cp.outbox.journal.pending():
            p = rec["p"]
            if "meterStart" in p:
                out.append(p["meterStart"])
            for mv in p.get("meterValue", ()):
                for s in mv["sampledValue"]:
                    if s.get("measurand", "Energy.Active.Import.Register") == \
                            "Energy.Active.Import.Register":
                        out.append(int(s["value"]))
            if "meterStop" in p:
                out.append(p["meterStop"])
        return out


# -- the parts -----------------------------------------------------------------------------

def test_volatile_meters_resume_from_a_stored_reading_once():
    clock = Clock()
    s0 = S0Meter(1000, clock=clock)
    assert s0.volatile and s0.energy_wh() == 0
    s0.irq()                                     # an impulse before the firmware resumes
    s0.resume(500)
    assert s0.energy_wh() == 500                 # taken as part of the stored reading
    clock.advance(100)
    s0.irq()
    s0.resume(500)                               # again (an in-process restart): no change
    assert s0.energy_wh() == 501
    s0.resume(400)                               # never backwards
    assert s0.energy_wh() == 501
    relay = Relay(FakePin(), clock=clock)
    pilot = Pilot(FakePwm(), FakeAdc(6.0), samples=32, clock=clock)
    est = EstimatedMeter(relay, pilot, clock=clock)
    assert est.volatile
    est.resume(1234)
    est.resume(1000)
    assert est.energy_wh() == 1234
    assert not base.Meter.volatile and base.Meter().resume(5) is None


# -- across power cuts ---------------------------------------------------------------------

def _cut_during_charging(folder, kind):
    rig = Rig(folder, kind).boot()
    rig.start("T1")
    start = rig.pending("StartTransaction")[0]
    assert start["meterStart"] == 0
    w0 = rig.cp.sessions.writes
    rig.charge(50)
    rig.cp.sessions.sample(rig.conn, "Sample.Periodic")
    assert rig.cp.sessions.writes - w0 == 1      # the sample's mirror line, nothing more
    sampled = rig.sent_registers()[-1]
    assert sampled >= 50
    rig.charge(7)                                # counted after the last sample: lost
    rig.boot()                                   # power cut, power back
    stop = rig.pending("StopTransaction")[-1]
    assert stop["reason"] == "PowerLoss" and stop["meterStop"] == sampled, (stop, sampled)
    assert rig.meter.energy_wh() == sampled      # the register goes on from there
    # The next session starts no lower, and its clean stop is stored (meter.json).
    rig.start("T2")
    assert rig.pending("StartTransaction")[-1]["meterStart"] == sampled
    rig.charge(20)
    w0 = rig.cp.sessions.writes
    rig.cp.sessions.stop(rig.conn, "Local")
    stop2 = rig.pending("StopTransaction")[-1]["meterStop"]
    assert stop2 >= sampled + 20
    assert rig.cp.sessions.writes - w0 == 3      # meter.json (tmp + rename), the mirror gone
    rig.boot()
    assert rig.meter.energy_wh() == stop2
    values = rig.sent_registers()
    assert values == sorted(values), values


def test_s0_register_survives_a_power_cut_during_charging():
    _cut_during_charging(_tmpdir(), "s0")


def test_estimated_register_survives_a_power_cut_during_charging():
    _cut_during_charging(_tmpdir(), "estimated")


def test_a_reading_sent_outside_a_transaction_is_stored_first():
    rig = Rig(_tmpdir(), "s0").boot()
    rig.charge(30)                               # an S0 meter may count with no session
    w0 = rig.cp.sessions.writes
    rig.cp.sessions.sample(rig.conn, "Trigger")  # a TriggerMessage(MeterValues)
    assert rig.cp.sessions.writes - w0 == 2      # meter.json, before the value can leave
    rig.cp.sessions.sample(rig.conn, "Trigger")
    assert rig.cp.sessions.writes - w0 == 2      # not moved: no write
    rig.boot()
    assert rig.meter.energy_wh() == 30


def test_without_periodic_samples_the_register_is_still_checkpointed():
    rig = Rig(_tmpdir(), "s0", sample_s=0).boot()
    rig.start("T1")
    rig.charge(40)
    rig.conn.tx.next_sample = 0                  # the checkpoint is due (every 300 s)
    w0 = rig.cp.sessions.writes
    rig.cp.sessions.tick(rig.conn)
    assert rig.cp.sessions.writes - w0 == 1
    rig.boot()
    assert rig.pending("StopTransaction")[-1]["meterStop"] == 40


# -- running -------------------------------------------------------------------------------

_DIRS = TempDirs("register-")
_tmpdir, _cleanup = _DIRS.make, _DIRS.cleanup


try:
    import pytest

    @pytest.fixture(autouse=True, scope="module")
    def _data_folders():
        yield
        _cleanup()
except ImportError:  # MicroPython: tests/mpunit.run_tests() cleans up
    pass


def test_register_on_micropython():
    from tests.mp import run_mp
    proc = run_mp("tests/unit/test_energy_register.py")
    assert proc.returncode == 0 and "register-ok" in proc.stdout, proc.stdout + proc.stderr


if __name__ == "__main__":
    from tests.mpunit import run_tests
    run_tests(globals(), "register-ok")
