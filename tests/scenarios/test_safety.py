"""Faults and safety (README, "Faults and safety"), and the energy register across power cuts.

Every unsafe fault opens the contactor within one tick, takes the pilot to state F (PWM off
for a pilot or lock fault), logs at ERROR and reports Faulted; the energy register stops.
The faults that end a session stop the transaction (reason Other) and clearing them leaves
the contactor open; the others suspend it, and it resumes when they clear. Informational
codes are reported and charging goes on. Each test runs a list of codes through one charger,
one session per code.
"""
import random
import re
import time

from tests.conftest import report_figure
from tests.scenarios.steps import FAST, booted, start_session

KEYS = dict(FAST, MeterValueSampleInterval=1, StopTransactionOnEVSideDisconnect=True)
STOPPING = ("GroundFailure", "OverCurrentFailure", "PowerSwitchFailure",
            "ConnectorLockFailure", "EVCommunicationError")
SUSPENDING = ("HighTemperature", "OverVoltage", "UnderVoltage")
# The sim prints the latency of every contactor opening that follows an injected fault.
LATENCY = re.compile(r"contactor opened (\d+) ms after")


def reading(cp):
    """(status text, register Wh, power W, the rest) from the console's `status` line."""
    cp.console("status")
    line = cp.wait_log(" Wh, ")
    m = re.search(r"^connector 1: ([^,]+),.* (\d+) Wh, (\d+) W(.*)$", line)
    assert m, line
    return m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)


def assert_energy_stopped(cp, pilot):
    _, wh, watts, rest = reading(cp)
    assert watts == 0 and "contactor open" in rest and "pilot " + pilot in rest, rest
    time.sleep(0.6)                              # 7.4 kW: more than 1 Wh if it still flowed
    assert reading(cp)[1] == wh
    return wh


def fault(cp, csms, code, how=None):
    """Inject `code` (or run console line `how`) and check the immediate reaction."""
    time.sleep(random.random() * 0.1)            # anywhere within the charger's 100 ms tick
    cp.console(how or "fault 1 " + code)
    latency = int(LATENCY.search(cp.wait_log("contactor opened", timeout=3)).group(1))
    assert csms.wait_for_status(1, "Faulted", timeout=3)["errorCode"] == code
    assert code in cp.wait_log(" E safety: ", timeout=3)
    # State F; PWM off for the faults that clear only once the line is seen (pilot, lock).
    watch = code in ("EVCommunicationError", "ConnectorLockFailure")
    return latency, assert_energy_stopped(cp, "off" if watch else "F")


def report(cp, what, latencies):
    report_figure("fault -> contactor open on %s (%s): %s ms, max %d ms"
                  % (cp.interpreter.rsplit("/", 1)[-1], what,
                     " ".join(str(n) for n in latencies), max(latencies)))


def test_faults_that_end_the_session_stop_the_transaction(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    latencies = []
    for n, code in enumerate(STOPPING):
        tag = "S%d" % n
        tx_id = start_session(csms, cp, tag)
        latency, wh = fault(cp, csms, code)
        latencies.append(latency)
        stop = csms.wait_for("StopTransaction", {"transactionId": tx_id}, timeout=3)
        assert stop["reason"] == "Other" and stop["meterStop"] == wh, (code, stop, wh)
        cp.console("clear 1")                    # cleared: the session does not come back
        if code != "ConnectorLockFailure":       # (that one is reported until unplugged)
            csms.wait_for_status(1, "Finishing", timeout=3)
        time.sleep(0.2)
        status, _, watts, rest = reading(cp)
        assert watts == 0 and "contactor open" in rest, (code, rest)
        cp.console("unplug 1")
        csms.wait_for_status(1, "Available", timeout=3)
    report(cp, "stopping faults", latencies)
    assert max(latencies) <= 150, latencies      # one 100 ms tick, plus a loaded host's jitter


def test_faults_that_suspend_the_session_resume_when_cleared(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    tx_id = start_session(csms, cp)
    latencies = []
    for code in SUSPENDING:
        latency, wh = fault(cp, csms, code)
        latencies.append(latency)
        csms.expect_none("StopTransaction", 0.5)
        cp.console("clear 1")
        assert code + " cleared" in cp.wait_log(" W safety: ", timeout=3)
        assert "charging resumes" in cp.wait_log(" W safety: ", timeout=3)
        csms.wait_for_status(1, "Charging", timeout=3)
        status, _, watts, rest = reading(cp)
        assert watts > 0 and "contactor closed" in rest, (code, rest)
        # The register went on from where it stood: no MeterValues below the stopped value.
        values = [float(s["value"]) for m in csms.messages("MeterValues")
                  if m.get("transactionId") == tx_id
                  for v in m["meterValue"] for s in v["sampledValue"]
                  if s.get("measurand", "Energy.Active.Import.Register")
                  == "Energy.Active.Import.Register"]  # the register, not the power
        assert values == sorted(values), values
    cp.console("swipe TAG1")
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id}, timeout=3)
    assert stop["reason"] == "Local"
    report(cp, "suspending faults", latencies)
    assert max(latencies) <= 150, latencies


def test_hardware_faults_pilot_short_and_lock_lost_while_charging(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    for n, (code, how) in enumerate((("EVCommunicationError", "pilot 1 E"),
                                     ("ConnectorLockFailure", "lockfail 1"))):
        tx_id = start_session(csms, cp, "H%d" % n)
        fault(cp, csms, code, how)
        stop = csms.wait_for("StopTransaction", {"transactionId": tx_id}, timeout=3)
        assert stop["reason"] == "Other"
        cp.console("clear 1")
        cp.console("unplug 1")
        csms.wait_for_status(1, "Available", timeout=3)


def test_informational_fault_keeps_charging(csms, charger):
    cp = charger(ocpp=KEYS)
    booted(csms)
    tx_id = start_session(csms, cp)
    cp.console("fault 1 ReaderFailure")
    status = csms.wait_for_status(1, "Charging", timeout=3)
    assert status["errorCode"] == "ReaderFailure"
    assert "ReaderFailure" in cp.wait_log(" W safety: ", timeout=3)
    _, wh, watts, rest = reading(cp)
    assert watts > 0 and "contactor closed" in rest, rest
    time.sleep(0.6)
    assert reading(cp)[1] > wh
    cp.console("clear 1")
    assert csms.wait_for_status(1, "Charging", timeout=3)["errorCode"] == "NoError"
    csms.expect_none("StopTransaction", 0.3)
    assert tx_id in csms.transactions


def test_register_without_nv_memory_continues_after_a_power_cut(csms, charger, monkeypatch):
    # The sim's meter counts from zero at every start, like an S0 or estimated meter.
    monkeypatch.setenv("UCHARGE_SIM_METER_VOLATILE", "1")
    cp = charger(ocpp=KEYS)
    booted(csms)
    tx_id = start_session(csms, cp)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    csms.wait_for("MeterValues", {"transactionId": tx_id}, timeout=5)
    cp.kill()                                    # the power goes during charging
    cp.start()
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id}, timeout=15)
    assert stop["reason"] == "PowerLoss" and stop["meterStop"] > 0
    cp.console("unplug 1")
    csms.wait_for_status(1, "Available", timeout=5)
    tx2 = start_session(csms, cp, "TAG2")
    start = csms.transactions[tx2]["start"]
    assert start["meterStart"] >= stop["meterStop"], (start, stop)
    cp.console("swipe TAG2")                     # and a clean stop is stored too
    stop2 = csms.wait_for("StopTransaction", {"transactionId": tx2}, timeout=5)
    cp.stop()
    cp.start()
    tx3 = start_session(csms, cp, "TAG3")
    assert csms.transactions[tx3]["start"]["meterStart"] >= stop2["meterStop"]
