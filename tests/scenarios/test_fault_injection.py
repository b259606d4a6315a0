"""Fault injection: the power is cut (SIGKILL) at random instants, also during journal writes,
and the link to the Central System drops at random; the CSMS ledger must then show every
session exactly once, complete and with monotone meter values.

50 sessions per interpreter in `make test`; `make test-long` (pytest --long) runs 200.
"""
import os
import random
import re
import threading
import time


from tests.conftest import report_figure

KEYS = {"MeterValueSampleInterval": 1, "HeartbeatInterval": 600, "StopTxnSampledData": "",
        "LocalAuthorizeOffline": True, "AllowOfflineTxForUnknownId": True,
        "TransactionMessageRetryInterval": 1, "TransactionMessageAttempts": 10}
ENERGY = "Energy.Active.Import.Register"  # the measurand when none is named


class Rig:
    """Drives one charger through sessions while faults strike at random."""

    def __init__(self, cp, link, rng):
        self.cp = cp
        self.link = link
        self.rng = rng
        self.kills = 0
        self.cuts = 0
        self._lock = threading.Lock()

    def send(self, line):
        try:
            self.cp.console(line)
        except (RuntimeError, OSError):
            pass  # the power is out: the command is lost, as a button press would be

    def ensure_running(self):
        with self._lock:
            if not self.cp.running:
                self.cp.start()

    def kill(self):
        with self._lock:
            if self.cp.running:
                self.cp.kill()
                self.kills += 1

    def cut(self, seconds):
        self.link.cut()
        self.cuts += 1
        threading.Timer(seconds, self.link.restore).start()

    def settle(self):
        """Charger up, cable out, connector Available, before the next session."""
        self.ensure_running()
        self.send("unplug 1")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.ensure_running()
            mark = len(self.cp.output())
            self.send("unplug 1")
            self.send("status")
            time.sleep(0.15)
            if any("connector 1: Available" in line for line in self.cp.output()[mark:]):
                return
        raise AssertionError("charger did not settle:\n" + self.cp.tail(30))

    def session(self, tag):
        rng = self.rng
        self.settle()
        timers = []
        if rng.random() < 0.5:
            timers.append(threading.Timer(rng.uniform(0.0, 1.2), self.kill))
        if rng.random() < 0.3:
            outage = rng.uniform(0.2, 1.5)
            timers.append(threading.Timer(rng.uniform(0.0, 1.2), self.cut, (outage,)))
        for t in timers:
            t.start()
        self.send("plug 1")
        self.send("swipe " + tag)
        time.sleep(rng.uniform(0.3, 1.0))
        self.send("swipe " + tag)
        time.sleep(rng.uniform(0.0, 0.3))
        for t in timers:
            t.join()


def audit(csms, started_tags):
    """(sessions audited, lost, duplicated, problems)."""
    problems = []
    starts = {}
    for tx_id, tx in csms.transactions.items():
        if tx["start"] is None:
            problems.append("transaction %s has no StartTransaction" % tx_id)
            continue
        starts.setdefault(tx["start"]["idTag"], []).append(tx_id)
        stop = tx["stop"]
        if stop is None:
            problems.append("transaction %s (%s) has no StopTransaction"
                            % (tx_id, tx["start"]["idTag"]))
            continue
        if stop["meterStop"] < tx["start"]["meterStart"]:
            problems.append("transaction %s: meterStop %d < meterStart %d" % (
                tx_id, stop["meterStop"], tx["start"]["meterStart"]))
        energies = [tx["start"]["meterStart"]]
        for mv in tx["meter_values"]:
            for v in mv["meterValue"]:
                for s in v["sampledValue"]:
                    if s.get("measurand", ENERGY) == ENERGY:
                        energies.append(float(s["value"]))
        energies.append(stop["meterStop"])
        if energies != sorted(energies):
            problems.append("transaction %s: meter values not monotone %s" % (tx_id, energies))
    stops = {}
    for m in csms.messages("StopTransaction"):
        stops.setdefault(m["transactionId"], set()).add(repr(sorted(m.items())))
    duplicated = sum(len(ids) - 1 for ids in starts.values() if len(ids) > 1)
    duplicated += sum(len(v) - 1 for v in stops.values() if len(v) > 1)
    lost = len([t for t in started_tags if t not in starts])
    return len(csms.transactions), lost, duplicated, problems


def test_fault_injection_no_transaction_lost_or_doubled(csms, charger, link, request):
    n = 200 if request.config.getoption("--long") else 50
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    cp = charger(ocpp=KEYS, csms_config=link.config)
    rig = Rig(cp, link, rng)
    tags = ["FI%03d" % i for i in range(n)]
    for tag in tags:
        rig.session(tag)
    link.restore()
    rig.settle()
    out = "\n".join(cp.output())
    started = [t for t in tags if re.search(r"tx: start on connector 1 for %s " % t, out)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [tx for tx in csms.transactions.values() if tx["start"] and tx["stop"]]
        if len(done) == len(csms.transactions) and len(done) >= len(started):
            break
        time.sleep(0.5)
    time.sleep(1)
    audited, lost, duplicated, problems = audit(csms, started)
    report_figure("fault injection on %s (seed %d): %d sessions, %d kills survived, "
                  "%d link drops, %d transactions audited, %d lost, %d duplicated"
                  % (os.path.basename(cp.interpreter), seed, n, rig.kills, rig.cuts, audited,
                     lost, duplicated))
    assert problems == [], problems
    assert lost == 0 and duplicated == 0
    assert audited >= len(started) and rig.kills >= n // 5
    # Every transaction the charger logged as started reached the CSMS once.
    for tag in started:
        txs = [tx for tx in csms.transactions.values() if tx["start"]["idTag"] == tag]
        assert len(txs) == 1, tag
