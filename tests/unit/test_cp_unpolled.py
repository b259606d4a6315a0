"""A board that is not polled (hal/base.py Board.polled False, the simulator of a fleet): the
charger ticks on its inputs and deadlines only. Every in-process case of tests/unit/cp_cases.py
runs again with the simulator unpolled (UCHARGE_SIM_EVENTS), on CPython and on the unix port;
and an idle unpolled charger does not tick, a fault still opens the contactor at once, and
periodic samples keep their interval."""
import asyncio

import pytest

from firmware.compat import ticks_ms
from tests.mp import run_mp
from tests.unit import cp_cases


# Cases that time the 100 ms tick itself, not the charger's behaviour:
TICK_TIMED = {
    # It moves the sender's clock back behind its back and expects the 0.5 s look to see it;
    # unpolled, the sender sleeps until the heartbeat deadline it computed (kept, see below).
    "case_liveness_with_pings_off_a_heartbeat_at_least_every_300_s":
        "the sender's half-second look",
    # ReserveNow right behind the boot: unpolled, the Reserved status is queued at once and
    # replaces the boot's Available still waiting in the outbox (statuses of one connector
    # replace each other), so the second Available the case counts never exists.
    "case_tc_046_reservation_loads_on_request_and_unloads_when_cancelled":
        "a status queued within the first tick",
}
CASES = [c for c in cp_cases.CASES if c.__name__ not in TICK_TIMED]


@pytest.fixture
def unpolled(monkeypatch):
    monkeypatch.setenv("UCHARGE_SIM_EVENTS", "1")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[5:])
def test_case_on_an_unpolled_board_on_cpython(case, tmp_path, unpolled):
    asyncio.run(cp_cases.run(case, str(tmp_path)))


def test_every_case_on_an_unpolled_board_on_micropython(tmp_path, unpolled):
    proc = run_mp("tests/unit/cp_cases.py", tmp_path, *sorted(TICK_TIMED), timeout=300)
    out = proc.stdout + proc.stderr
    assert "%d passed, 0 failed" % len(CASES) in out, out


def test_the_heartbeat_still_probes_a_quiet_link_every_300_s_unpolled(tmp_path, unpolled):
    """What the first excluded case checks, by the sender's own deadline."""
    async def run():
        rig = await _rig(str(tmp_path))
        keys = rig.cp.keys
        keys.override("HeartbeatInterval", 86400)
        waits = []
        for pings in (60, 0):
            keys.override("WebSocketPingInterval", pings)
            waits.append(rig.cp._sender_wait())
        await rig.stop()
        return waits
    pings_on, pings_off = asyncio.run(run())
    assert 86000 <= pings_on <= 86400
    assert 299 <= pings_off <= 300


async def _rig(folder, ocpp=None, polled=False):
    rig = cp_cases.Rig(folder, ocpp)
    await rig.start()
    assert rig.board.polled == polled
    await rig.peer.wait_status(1, "Available")
    return rig


def _count_ticks(cp):
    ticks = []
    tick = cp._tick

    def counted():
        ticks.append(ticks_ms())
        tick()
    cp._tick = counted
    return ticks


def test_an_idle_unpolled_charger_does_not_tick(tmp_path, unpolled):
    async def run():
        rig = await _rig(str(tmp_path))
        await asyncio.sleep(0.5)  # the ticks that follow boot and its replies
        ticks = _count_ticks(rig.cp)
        await asyncio.sleep(1.5)
        idle = len(ticks)
        rig.hw("plug 1")          # an input: a tick at once
        await rig.peer.wait_status(1, "Preparing")
        await rig.stop()
        return idle, len(ticks)
    idle, after = asyncio.run(run())
    assert idle == 0
    assert after >= 1


def test_a_polled_board_still_ticks_every_100_ms(tmp_path):
    async def run():
        rig = await _rig(str(tmp_path), polled=True)
        ticks = _count_ticks(rig.cp)
        await asyncio.sleep(1.0)
        await rig.stop()
        return len(ticks)
    assert 4 <= asyncio.run(run()) <= 11  # 10 on an idle machine


def test_a_fault_on_an_unpolled_board_opens_the_contactor_within_a_tick(tmp_path, unpolled):
    async def run():
        rig = await _rig(str(tmp_path))
        rig.hw("plug 1")
        rig.hw("swipe TAG1")
        await rig.peer.wait_status(1, "Charging")
        relay = rig.cp.connector(1).hw.relay
        assert relay.is_on()
        await asyncio.sleep(1)  # idle: no tick is waiting to catch the fault by chance
        t0 = ticks_ms()
        rig.hw("fault 1 GroundFailure")
        while relay.is_on() and ticks_ms() - t0 < 1000:
            await asyncio.sleep(0.005)
        opened = ticks_ms() - t0
        stop = await rig.peer.wait_for("StopTransaction")
        await rig.stop()
        return opened, stop
    opened, stop = asyncio.run(run())
    assert opened < 100
    assert stop["reason"] == "Other"


def test_periodic_samples_keep_their_interval_on_an_unpolled_board(tmp_path, unpolled):
    async def run():
        rig = await _rig(str(tmp_path), {"MeterValueSampleInterval": 1})
        rig.hw("plug 1")
        rig.hw("swipe TAG1")
        await rig.peer.wait_for("StartTransaction")
        await asyncio.sleep(3.5)
        n = len(rig.peer.calls("MeterValues"))
        await rig.stop()
        return n
    assert 3 <= asyncio.run(run()) <= 4
