"""firmware.secevents, the security log ring, the outbox's handling of queued security events,
and the log's screening of secrets. Runs under pytest and, without it, on the MicroPython
unix port (test_security_events_on_micropython)."""
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the packages live in cwd

from firmware import secevents  # noqa: E402
from firmware.journal import Journal  # noqa: E402
from firmware.log import Log  # noqa: E402
from firmware.redact import hide_credentials  # noqa: E402
from firmware.outbox import Outbox  # noqa: E402
from tests.fakes import ChargePoint  # noqa: E402
from tests.fakes import Log as QuietLog  # noqa: E402
from tests.mpunit import TempDirs  # noqa: E402

_DIRS = TempDirs("secev-")
SEC = "SecurityEventNotification"
QUEUED_MAX, RING_BYTES = 24, 8192  # secevents' _QUEUED_MAX, _RING_BYTES (const: no attributes)


def charger():
    """A fake charge point with a real outbox journal and a data folder of its own."""
    data = _DIRS.make()
    cp = ChargePoint(data)
    cp.outbox = Outbox(QuietLog(), Journal(data + "/journal", QuietLog()))
    return cp


def ring(cp):
    return [text for _, text in cp.feature("secevents").ring.lines()]


def test_a_critical_event_is_logged_and_queued_on_flash():
    cp = charger()
    secevents.record(cp, "StartupOfTheDevice", "firmware 0.1.0")
    assert ring(cp) == ["2024-05-01T12:00:00Z StartupOfTheDevice firmware 0.1.0"]
    assert len(cp.outbox.journal) == 1
    e = cp.outbox.next()
    assert e.action == SEC and e.ref == secevents.REF
    assert e.payload == {"type": "StartupOfTheDevice", "timestamp": "2024-05-01T12:00:00Z",
                         "techInfo": "firmware 0.1.0"}
    cp.outbox.done(e, {})
    assert len(cp.outbox.journal) == 0 and cp.outbox.next() is None


def test_queued_events_survive_a_restart_in_order():
    cp = charger()
    for kind in ("StartupOfTheDevice", "SettingSystemTime", "ResetOrReboot"):
        secevents.record(cp, kind)
    again = Outbox(QuietLog(), Journal(cp.cfg["_data"] + "/journal", QuietLog()))
    got = []
    while True:
        e = again.next()
        if e is None:
            break
        got.append(e.payload["type"])
        again.done(e, {})
    assert got == ["StartupOfTheDevice", "SettingSystemTime", "ResetOrReboot"]


def test_security_events_and_transactions_keep_their_own_order():
    cp = charger()
    ob = cp.outbox
    ob.put_tx("StartTransaction", "a", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                        "timestamp": "2026-01-01T00:00:00Z"})
    secevents.record(cp, "TamperDetectionActivated")
    e = ob.next()
    assert e.action == "StartTransaction"
    ob.done(e, {"transactionId": 5, "idTagInfo": {"status": "Accepted"}})
    e = ob.next()
    assert e.action == SEC and "transactionId" not in e.payload


def test_a_central_system_without_the_message_drops_it_from_the_queue():
    cp = charger()
    secevents.record(cp, "FirmwareUpdated", "9.9.9")
    e = cp.outbox.next()
    assert cp.outbox.failed(e, "NotImplemented", 3, 10) is False
    assert len(cp.outbox.journal) == 0
    assert ring(cp) == ["2024-05-01T12:00:00Z FirmwareUpdated 9.9.9"]  # still in the log


def test_other_callerrors_are_attempts_as_for_transaction_messages():
    cp = charger()
    secevents.record(cp, "FirmwareUpdated")
    e = cp.outbox.next()
    assert cp.outbox.failed(e, "InternalError", 3, 10) is True
    assert len(cp.outbox.journal) == 1


def test_non_critical_events_go_from_ram_while_online_and_repeats_are_counted():
    cp = charger()
    secevents.record(cp, "InvalidMessages", "FormationViolation x")
    secevents.record(cp, "InvalidMessages", "FormationViolation y")  # within 10 s: counted
    assert len(cp.outbox.journal) == 0
    assert [(e.action, e.payload["type"]) for e in cp.outbox._items] == [
        (SEC, "InvalidMessages")]
    assert ring(cp) == ["2024-05-01T12:00:00Z InvalidMessages FormationViolation x"]
    state = cp.feature("secevents")
    state._last["InvalidMessages"] = (state._last["InvalidMessages"][0] - 11000, 1)
    cp.online_ = False
    secevents.record(cp, "InvalidMessages", "FormationViolation z")
    assert ring(cp)[-1] == "2024-05-01T12:00:00Z InvalidMessages FormationViolation z (+1 before)"
    assert len(cp.outbox._items) == 1  # offline: logged only


def test_the_queue_on_flash_is_capped():
    cp = charger()
    for i in range(QUEUED_MAX + 5):
        secevents.record(cp, "SettingSystemTime", "change %d" % i)
    assert len(cp.outbox.journal) == QUEUED_MAX
    assert len(ring(cp)) == QUEUED_MAX + 5  # every one is in the security log


def test_an_unknown_type_is_refused_without_raising():
    cp = charger()
    secevents.record(cp, "CoffeeSpilled")
    assert ring(cp) == [] and len(cp.outbox.journal) == 0


def test_clearing_the_security_log_leaves_the_event_that_says_so():
    cp = charger()
    secevents.record(cp, "StartupOfTheDevice")
    secevents.clear(cp)
    assert ring(cp) == ["2024-05-01T12:00:00Z SecurityLogWasCleared"]
    assert len(cp.outbox.journal) == 2


def test_the_security_log_ring_is_bounded():
    cp = charger()
    state = cp.feature("secevents")
    for i in range(400):
        state.ring.append("%d 2024-05-01T12:00:00Z SettingSystemTime %s" % (i, "x" * 40))
    import os
    total = sum(os.stat(cp.cfg["_data"] + "/" + n)[6] for n in ("sec.0", "sec.1"))
    assert total <= RING_BYTES
    assert ring(cp)[-1].endswith("x" * 40)


def test_log_lines_never_show_hidden_values_or_url_passwords():
    folder = _DIRS.make()
    log = Log("debug", lambda: 1714564800, folder)
    log.hide("s3cret-pass")
    log.hide("abc")  # too short to hide: would mangle ordinary words
    log.info("t", "password s3cret-pass for ftp://user:pw1@host/x and ws://h/a@b")
    log.flush()
    lines = [text for _, text in log.lines()]
    assert lines == ["2024-05-01T12:00:00Z I t: password *** for ftp://user:***@host/x and ws://h/a@b"]
    assert hide_credentials("http://u:p@h:1/?q=a@b") == "http://u:***@h:1/?q=a@b"
    assert hide_credentials("ftp://anonymous@h/") == "ftp://anonymous@h/"


def test_a_memory_error_given_to_the_log_is_a_security_event_once():
    log = Log()
    seen = []

    def hook(kind, where):
        seen.append((kind, where))
        log.exc("sec", "again", MemoryError())  # no recursion if the hook runs out too
    log.on_event = hook
    log.exc("rpc", "GetConfiguration handler failed", MemoryError())
    log.exc("rpc", "other failure", ValueError("x"))
    assert seen == [("MemoryExhaustion", "rpc: GetConfiguration handler failed")]
    assert log.on_event is hook


def test_the_exception_that_ended_a_task_is_found_on_both_interpreters():
    from firmware.compat import asyncio, task_error

    async def bad():
        raise MemoryError("x")

    async def ok():
        return 1
    got = []

    async def main():
        a, b = asyncio.create_task(bad()), asyncio.create_task(ok())
        await asyncio.sleep(0.01)
        got.extend([task_error(a), task_error(b)])
    asyncio.run(main())
    assert isinstance(got[0], MemoryError) and got[1] is None


def _cleanup():
    _DIRS.cleanup()


try:
    import pytest

    @pytest.fixture(autouse=True, scope="module")
    def _folders():
        yield
        _cleanup()
except ImportError:  # MicroPython: tests/mpunit.run_tests() cleans up
    pass


def test_security_events_on_micropython():
    from tests.mp import run_mp
    proc = run_mp("tests/unit/test_secevents.py")
    assert proc.returncode == 0 and "secevents-ok" in proc.stdout, proc.stdout + proc.stderr


if __name__ == "__main__":
    from tests.mpunit import run_tests
    run_tests(globals(), "secevents-ok")
