"""Billing data is never dropped (issue 10, finding 4 and the delivery half of finding 2).

A Central System that answers StartTransaction without a transactionId, with "abc" as the
id, or with CALLERRORs, or refuses every StopTransaction, or does not answer at all, must
not make the charger erase a transaction: the message is held (kept on flash, reported)
and delivered once the Central System behaves — after the next reconnect or boot — with
nothing lost and nothing counted twice. The rule: README "Never losing a transaction".
"""
import json
import time

import pytest

from tests.scenarios.steps import booted, tx_id_of
from tools import deploy, logs

# Shipped attempts (3); a short retry interval and samples every second, so MeterValues
# pile up behind a held StartTransaction.
KEYS = {"MeterValueSampleInterval": 1, "MinimumStatusDuration": 0,
        "TransactionMessageRetryInterval": 1}


class BadStart:
    """Until stop(): every StartTransaction.req is answered with `reply` — a CALLRESULT
    payload sent as it is (the strict Central System would never send it), or a CALLERROR
    code — and opens no transaction."""

    def __init__(self, csms, reply):
        self.cs = cs = csms.cs
        self.normal = cs._on_call

        async def on_call(session, uid, action, payload, strict):
            if action != "StartTransaction":
                return await self.normal(session, uid, action, payload, strict)
            session.inbound[uid] = action
            if isinstance(reply, str):
                frame = [4, uid, reply, "answered with an error by test policy", {}]
            else:
                frame = [3, uid, reply]
            await cs._transmit(session, json.dumps(frame))
        cs._on_call = on_call

    def stop(self):
        self.cs._on_call = self.normal


def status(cp, expect):
    """The console `status` line that holds `expect`."""
    cp.console("status")
    return cp.wait_log(expect)


def kept(cp):
    """Transaction messages on flash (console `flash`)."""
    cp.console("flash")
    return int(cp.wait_log("flash: journal").split("pending=")[1].split(",")[0])


def drained(cp, timeout=5):
    """Whether the journal empties within `timeout` s (the last reply may still be on its
    way to the charger when the Central System has logged the request)."""
    deadline = time.monotonic() + timeout
    while kept(cp):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def logged(cp, text):
    return [line for line in cp.output() if text in line]


def energy(mv):
    return float(mv["meterValue"][0]["sampledValue"][0]["value"])


def check_delivered_once(csms, start, stop):
    """The Central System's ledger: one transaction, its Stop and every sample, none twice."""
    tx_id = tx_id_of(csms, start)
    assert list(csms.transactions) == [tx_id]
    tx = csms.transactions[tx_id]
    assert stop["transactionId"] == tx_id and tx["stop"] == stop
    values = tx["meter_values"]
    stamps = [mv["meterValue"][0]["timestamp"] for mv in values]
    assert values and stamps == sorted(set(stamps)), stamps
    # One sample a second from start to stop: no gap means none was lost.
    times = [start["timestamp"]] + stamps + [stop["timestamp"]]
    secs = [int(t[11:13]) * 3600 + int(t[14:16]) * 60 + int(t[17:19]) for t in times]
    assert all(0 <= b - a <= 2 for a, b in zip(secs, secs[1:])), times
    assert stop["meterStop"] >= energy(values[-1])


def held_on_the_board(cp, action):
    text = logs.read(deploy.Folder(str(cp.config_path).rsplit("/", 1)[0]))
    assert "HELD %s #" % action in text, text


@pytest.mark.parametrize("bad", [
    {"idTagInfo": {"status": "Accepted"}},
    {"transactionId": "abc", "idTagInfo": {"status": "Accepted"}},
    "InternalError",
], ids=["no_transaction_id", "abc", "three_callerrors"])
def test_finding_4_an_unconfirmed_start_keeps_its_transaction(csms, charger, link, bad):
    cp = charger(ocpp=KEYS, csms_config=link.config)
    booted(csms)
    policy = BadStart(csms, bad)
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe BILL1")
    for _ in range(3):
        csms.wait_for("StartTransaction", {"idTag": "BILL1"})
    csms.wait_for_status(1, "Charging")            # energy flows as before
    csms.expect_none("StartTransaction", 2.5)      # held: samples queue behind it
    assert kept(cp) >= 3                           # the Start and its MeterValues
    # The journal's first record is the boot's StartupOfTheDevice security event: the Start is #2.
    assert logged(cp, "E outbox: StartTransaction #2 held after 3 attempts")
    assert "1 held: StartTransaction #2" in status(cp, "outbox")
    held_on_the_board(cp, "StartTransaction")
    cp.console("swipe BILL1")
    cp.wait_log("tx: stop on connector 1")
    assert csms.messages("MeterValues") == [] and csms.messages("StopTransaction") == []
    policy.stop()                                  # the Central System is fixed...
    link.cut()                                     # ... and the link comes back
    cp.wait_log("link down")
    link.restore()
    start = csms.wait_for("StartTransaction", {"idTag": "BILL1"}, timeout=15)
    stop = csms.wait_for("StopTransaction", timeout=15)
    check_delivered_once(csms, start, stop)
    assert stop["reason"] == "Local" and len(csms.messages("StopTransaction")) == 1
    assert drained(cp)
    assert "held" not in status(cp, "outbox")
    assert not logged(cp, "dropped")


def test_finding_4_callerror_for_every_stop_is_held_and_sent_after_a_reboot(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    csms.callerror_actions = {"StopTransaction": "InternalError"}
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe BILL1")
    start = csms.wait_for("StartTransaction", {"idTag": "BILL1"})
    csms.wait_for("MeterValues", timeout=5)
    csms.wait_for("MeterValues", timeout=5)
    cp.console("swipe BILL1")
    for _ in range(3):
        csms.wait_for("StopTransaction")
    csms.expect_none("StopTransaction", 1.5)
    assert kept(cp) == 1
    assert logged(cp, "E outbox: StopTransaction #")
    assert "1 held: StopTransaction #" in status(cp, "outbox")
    cp.kill()                                      # the power goes ...
    held_on_the_board(cp, "StopTransaction")
    csms.callerror_actions = {}                    # ... the Central System is fixed ...
    cp.start()                                     # ... and the power comes back
    stop = csms.wait_for("StopTransaction", timeout=15)
    check_delivered_once(csms, start, stop)
    assert stop["reason"] == "Local" and len(csms.messages("StopTransaction")) == 4
    assert drained(cp)
    assert not logged(cp, "dropped")


def test_finding_2_timeouts_are_no_delivery_attempts(csms, charger):
    # No answer at all: the link is taken for dead, not the message. More timeouts than
    # TransactionMessageAttempts, then the Central System answers again.
    cp = charger(ocpp=KEYS, csms_config={"call_timeout": 1, "reconnect_min": 0.2,
                                         "reconnect_max": 1.0})
    booted(csms)
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe BILL1")
    start = csms.wait_for("StartTransaction", {"idTag": "BILL1"})
    csms.wait_for("MeterValues", timeout=5)
    csms.no_reply_actions = {"StopTransaction"}
    cp.console("swipe BILL1")
    for _ in range(5):
        csms.wait_for("StopTransaction", timeout=10)
    csms.no_reply_actions = set()
    stop = csms.wait_for("StopTransaction", timeout=15)
    check_delivered_once(csms, start, stop)
    assert drained(cp)
    assert not logged(cp, "dropped") and not logged(cp, "held")
