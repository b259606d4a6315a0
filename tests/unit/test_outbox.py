"""firmware.outbox: the delivery rule for transaction messages (README "Never losing a
transaction"), on a real journal in a temporary folder and a clock the test moves.

A timeout is no attempt; a CALLERROR or an invalid reply is, with a growing, capped wait;
a message out of attempts is held (kept, listed, retried after a reconnect or boot) and
only its own transaction waits behind it; nothing is ever dropped or sent twice."""
import json
import os

import pytest

from firmware import outbox as outbox_mod
from firmware.journal import Journal
from firmware.outbox import Entry, Outbox
from tests.fakes import Clock, Log

ATTEMPTS, INTERVAL = 3, 10


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(outbox_mod, "ticks_ms", c)
    return c


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "journal")


def make(folder, log=None):
    return Outbox(log or Log(), Journal(folder, Log()))


def start(ob, ref, tag="T"):
    ob.put_tx("StartTransaction", ref, {"connectorId": 1, "idTag": tag, "meterStart": 0,
                                        "timestamp": "2026-01-01T00:00:00Z"})


def mv(ob, ref, wh):
    ob.put_tx("MeterValues", ref, {"connectorId": 1, "meterValue": [{"v": wh}]})


def stop(ob, ref, wh=100):
    ob.put_tx("StopTransaction", ref, {"meterStop": wh, "reason": "Local",
                                       "timestamp": "2026-01-01T01:00:00Z"})


def deliver(ob, tx_ids=None):
    """Play a Central System that answers everything: [(action, payload)] in sent order."""
    sent = []
    tx_ids = tx_ids if tx_ids is not None else {}
    while True:
        e = ob.next()
        if e is None:
            return sent
        sent.append((e.action, e.payload))
        reply = {}
        if e.action == "StartTransaction":
            reply = {"transactionId": tx_ids.setdefault(e.ref, 100 + len(tx_ids)),
                     "idTagInfo": {"status": "Accepted"}}
        ob.done(e, reply)


def refuse(ob, code="InternalError", times=ATTEMPTS, clock=None):
    """The head message refused `times` times (the waits between them played out)."""
    e = None
    for _ in range(times):
        e = ob.next()
        assert e is not None
        ob.failed(e, code, ATTEMPTS, INTERVAL)
        if clock is not None:
            clock.advance(3600 * 1000)
    return e


def test_a_timeout_is_not_an_attempt(folder, clock):
    ob = make(folder)
    start(ob, "a")
    for _ in range(50):  # many more than TransactionMessageAttempts
        e = ob.next()
        assert e.action == "StartTransaction"
        assert ob.failed(e, "Timeout", ATTEMPTS, INTERVAL) is True
    assert ob.held() == [] and len(ob) == 1
    assert [a for a, _ in deliver(ob)] == ["StartTransaction"]


def test_a_callerror_is_an_attempt_and_the_wait_grows_by_the_interval(folder, clock):
    ob = make(folder)
    start(ob, "a")
    e = ob.next()
    ob.failed(e, "InternalError", ATTEMPTS, INTERVAL)
    clock.advance(INTERVAL * 1000 - 1)
    assert ob.next() is None                     # 1st wait: 1 x interval
    clock.advance(1)
    e = ob.next()
    ob.failed(e, "InternalError", ATTEMPTS, INTERVAL)
    clock.advance(2 * INTERVAL * 1000 - 1)
    assert ob.next() is None                     # 2nd wait: 2 x interval
    clock.advance(1)
    assert ob.next().action == "StartTransaction"


@pytest.mark.parametrize("interval, attempt, wait_s", [
    (10, 7, 70), (400, 1, 400), (400, 2, 600), (400, 5, 600), (3600, 3, 3600)])
def test_the_wait_is_capped_at_ten_minutes_or_the_interval(folder, clock, interval, attempt,
                                                            wait_s):
    ob = make(folder)
    start(ob, "a")
    for _ in range(attempt):
        e = ob.next()
        ob.failed(e, "GenericError", 100, interval)
        if _ < attempt - 1:
            clock.advance(3600 * 1000)
    clock.advance(wait_s * 1000 - 1)
    assert ob.next() is None
    clock.advance(1)
    assert ob.next() is not None


@pytest.mark.parametrize("code", ["InternalError", "FormationViolation",
                                  "TypeConstraintViolation"])
def test_an_unconfirmed_start_is_held_and_never_takes_its_transaction_with_it(folder, clock,
                                                                             code):
    # FormationViolation / TypeConstraintViolation: StartTransaction.conf without
    # transactionId or with "abc" (firmware.rpc turns the invalid reply into that code).
    log = Log()
    ob = make(folder, log)
    start(ob, "a")
    mv(ob, "a", 10)
    stop(ob, "a")
    refuse(ob, code, clock=clock)
    assert ob.next() is None                      # its MeterValues and Stop wait behind it
    assert len(ob) == 3
    assert ob.held() == [[1, "StartTransaction", code]]
    assert "1 held: StartTransaction #1 (%s)" % code == ob.report()
    assert any("StartTransaction #1 held after 3 attempts" in m for m in log.levels("error"))
    assert not [m for m in log.levels("warn") + log.levels("error") if "dropped" in m]
    ob.drop_volatile()                            # a reconnect: the Central System behaves
    sent = deliver(ob)
    assert [a for a, _ in sent] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert sent[2][1]["transactionId"] == 100
    assert len(ob) == 0 and ob.held() == [] and ob.report() == ""
    assert any("delivered after being held" in m for m in log.levels("info"))


def test_a_held_transaction_lets_the_others_go_on(folder, clock):
    ob = make(folder)
    start(ob, "a")
    deliver(ob)
    stop(ob, "a")                                 # refused every time
    start(ob, "b")
    mv(ob, "b", 5)
    stop(ob, "b")
    assert refuse(ob, clock=clock).action == "StopTransaction"
    sent = deliver(ob, {"a": 100})
    assert [a for a, _ in sent] == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert sent[2][1]["transactionId"] == 101
    start(ob, "c")                                # a later append is seen behind the held one
    assert [a for a, _ in deliver(ob, {"a": 100, "b": 101})] == ["StartTransaction"]
    assert len(ob) == 1 and ob.held() == [[2, "StopTransaction", "InternalError"]]
    ob.drop_volatile()
    assert deliver(ob) == [("StopTransaction", {
        "meterStop": 100, "reason": "Local", "timestamp": "2026-01-01T01:00:00Z",
        "transactionId": 100})]


def test_a_held_message_is_kept_over_a_reboot_and_sent_again(folder, clock):
    ob = make(folder)
    start(ob, "a")
    deliver(ob)
    mv(ob, "a", 5)
    stop(ob, "a")
    refuse(ob, "GenericError", clock=clock)
    assert ob.next() is None
    ob = make(folder)                             # the power goes and comes back
    assert ob.report() == "1 held: MeterValues #2 (GenericError)"
    sent = deliver(ob)
    assert [(a, p["transactionId"]) for a, p in sent] == [("MeterValues", 100),
                                                         ("StopTransaction", 100)]
    assert ob.held() == [] and len(ob) == 0


def test_after_a_reconnect_a_held_message_gets_a_fresh_set_of_attempts(folder, clock):
    ob = make(folder)
    start(ob, "a")
    refuse(ob, clock=clock)
    ob.drop_volatile()
    refuse(ob, times=ATTEMPTS - 1, clock=clock)
    assert ob.next() is not None                  # not held again yet
    refuse(ob, times=1, clock=clock)
    assert ob.next() is None
    assert ob.held() == [[1, "StartTransaction", "InternalError"]]  # listed once


def test_the_held_list_is_bounded_and_then_everything_waits(folder, clock):
    log = Log()
    ob = make(folder, log)
    n = outbox_mod._HELD_MAX
    for i in range(n + 2):
        start(ob, "r%d" % i)
    for i in range(n):
        refuse(ob, clock=clock)
    assert len(ob.held()) == n
    refuse(ob, clock=clock)                       # one more: nothing goes until a reconnect
    assert ob.next() is None and len(ob.held()) == n
    assert "every transaction message waits behind it" in log.levels("error")[-1]
    ob.put(Entry("StatusNotification", {"connectorId": 1}))
    assert ob.next().action == "StatusNotification"   # RAM messages still go
    ob.drop_volatile()
    assert len(deliver(ob)) == n + 2 and ob.held() == [] and len(ob) == 0


def test_a_start_confirmed_before_a_power_cut_is_not_sent_again(folder):
    ob = make(folder)
    start(ob, "a")
    stop(ob, "a")
    e = ob.next()
    ob._map(e.ref, 42)                           # the cut came between map and ack
    ob = make(folder)
    assert deliver(ob) == [("StopTransaction", {
        "meterStop": 100, "reason": "Local", "timestamp": "2026-01-01T01:00:00Z",
        "transactionId": 42})]


def test_messages_whose_start_an_older_firmware_gave_up_are_removed_with_an_error(folder):
    log = Log()
    ob = make(folder, log)
    ob.journal.set_meta("tx", {"old": outbox_mod._DROPPED})
    mv(ob, "old", 5)
    stop(ob, "old")
    start(ob, "new")
    assert [a for a, _ in deliver(ob)] == ["StartTransaction"]
    assert len(log.levels("error")) == 2 and "transactionId is unknown" in log.levels("error")[0]


def test_random_refusals_and_timeouts_lose_and_duplicate_nothing(folder, clock):
    import random
    rnd = random.Random(7)
    ob = make(folder)
    expected = []
    for t in range(12):
        ref = "t%d" % t
        start(ob, ref)
        expected.append(("StartTransaction", ref))
        for k in range(rnd.randrange(3)):
            mv(ob, ref, k)
            expected.append(("MeterValues", ref))
        stop(ob, ref)
        expected.append(("StopTransaction", ref))
    accepted, tx_ids = [], {}
    for step in range(2000):
        if step % 97 == 96:
            ob.drop_volatile()                    # a reconnect now and then
            if step % 3 == 0:
                ob = make(folder)                 # or a reboot
        e = ob.next()
        if e is None:
            clock.advance(60 * 1000)
            if not len(ob):
                break
            continue
        roll = rnd.random()
        if roll < 0.3:
            ob.failed(e, "Timeout", ATTEMPTS, INTERVAL)
        elif roll < 0.6:
            ob.failed(e, "InternalError", ATTEMPTS, INTERVAL)
        else:
            reply = {}
            if e.action == "StartTransaction":
                reply = {"transactionId": tx_ids.setdefault(e.ref, 100 + len(tx_ids))}
            accepted.append((e.action, e.ref))
            ob.done(e, reply)
    assert len(ob) == 0 and ob.held() == []
    assert sorted(accepted) == sorted(expected)  # each once
    for ref in {r for _, r in expected}:         # in order within each transaction
        assert [a for a, r in accepted if r == ref] == [a for a, r in expected if r == ref]


# -- flash writes ------------------------------------------------------------------------------
def test_one_transaction_online_costs_26_journal_writes(folder):
    # 12 messages: 12 appends + 12 acks (the last is the .end mark) + the map set (tmp +
    # rename). The map entry of an ended transaction goes with the next map write, free.
    ob = make(folder)
    ids = {}
    start(ob, "a")
    ob.journal.writes = 0
    deliver(ob, ids)
    for i in range(10):
        mv(ob, "a", i)
        deliver(ob, ids)
    stop(ob, "a")
    deliver(ob, ids)
    assert ob.journal.writes + 1 == 26            # + the Start's append, before the reset
    assert ob.tx_map() == {"a": 100}
    start(ob, "b")
    deliver(ob, ids)
    assert ob.tx_map() == {"b": 101}


def test_ended_refs_leave_the_map_at_boot(folder):
    ob = make(folder)
    ids = {}
    start(ob, "a")
    start(ob, "b")
    deliver(ob, ids)
    stop(ob, "a")
    deliver(ob, ids)
    mv(ob, "b", 1)                               # b still has a record to send
    assert ob.tx_map() == {"a": 100, "b": 101}   # a ended: no write just for that
    ob = make(folder)
    assert ob.next().payload["transactionId"] == 101
    assert ob.tx_map() == {"b": 101}


def test_held_entries_of_records_gone_are_forgotten_at_boot(folder, clock):
    ob = make(folder)
    start(ob, "a")
    deliver(ob)
    mv(ob, "a", 1)
    refuse(ob, clock=clock)
    assert ob.held() == [[2, "MeterValues", "InternalError"]]
    ob.journal.ack(2)                            # e.g. thinned away near the cap
    ob = make(folder)
    ob.next()
    assert ob.held() == []
    with open(os.path.join(folder, "meta.json")) as f:
        assert "held" not in json.load(f)


# -- reports -----------------------------------------------------------------------------------
class RingLog:
    """A log whose ring on flash holds one line (what GetDiagnostics uploads)."""
    level = 1

    def _say(self, *args):
        pass
    debug = info = warn = error = exc = flush = _say

    def lines(self, since, until):
        yield 1714564000, "11:46:40 I boot: up"


def test_the_held_report_reaches_the_console_and_the_diagnostics_header(folder, clock,
                                                                        tmp_path, monkeypatch):
    import asyncio

    from firmware import console, diagnostics, transfer
    from tests.fakes import ChargePoint

    ob = make(folder)
    start(ob, "a")
    refuse(ob, "TypeConstraintViolation", clock=clock)
    cp = ChargePoint(str(tmp_path / "data"))
    os.makedirs(cp.cfg["_data"])
    cp.outbox = ob
    cp.accepted = True
    cp.rpc = type("Rpc", (), {"connected": True})()
    line = console.describe(cp)
    assert line == ("boot accepted, link up, outbox 1, "
                    "1 held: StartTransaction #1 (TypeConstraintViolation)")
    sent = []

    async def upload(url, path, **kw):
        with open(path) as f:
            sent.append(f.read())
        return 1, ""
    monkeypatch.setattr(transfer, "upload", upload)
    cp.log = RingLog()
    _, after = diagnostics.GetDiagnostics(cp, {"location": "ftp://h/"})
    asyncio.run(after())
    assert sent[0].splitlines()[1] == (
        "# journal: 1 pending, 1 held: StartTransaction #1 (TypeConstraintViolation)")


def test_tools_logs_shows_the_held_messages(folder, clock, tmp_path):
    from tools import deploy, logs

    root = tmp_path / "board"
    os.makedirs(root)
    with open(root / "config.json", "w") as f:
        json.dump({"data_dir": "data"}, f)
    ob = make(str(root / "data" / "journal"))
    start(ob, "a")
    deliver(ob)
    stop(ob, "a")
    refuse(ob, clock=clock)
    text = logs.read(deploy.Folder(str(root)))
    assert "1 record pending" in text
    assert "HELD StopTransaction #2 (last error InternalError)" in text
