"""What a technician and an operator see: log lines, console answers, stopping. Each test
runs the firmware as a real process on MicroPython and CPython against tools/csms.py."""
import re
import signal
import time

from ocpp.v16 import call

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_log_lines_carry_the_utc_date_and_the_start_line_names_what_runs(csms, charger):
    cp = charger()
    csms.wait_for("BootNotification")
    line = cp.wait_log("I main: uCharge ")
    # (a long data_dir path may be cut: a log message keeps 200 characters)
    assert re.match(ISO + r" I main: uCharge 0\.1\.0 on (micropython|cpython) \d+\.\d+\.\d+"
                    r" starting as CP_1 \(1 connector\(s\)\); config \S+config.json, data_dir ",
                    line), line
    assert re.match(ISO + " I boot: BootNotification Accepted", cp.wait_log("BootNotification"))


def test_events_typed_in_order_are_handled_in_order(csms, charger):
    cp = charger()
    csms.wait_for_status(1, "Available")
    cp.console("plug 1")
    cp.console("swipe ORDER-1")
    plugged = cp.wait_log("I hw: connector 1 ")
    card = cp.wait_log("card ORDER-1")
    out = cp.output()
    assert out.index(plugged) < out.index(card), cp.tail()


def test_console_rejects_unknown_fault_codes_and_explains_data_and_mem(csms, charger,
                                                                        interpreter):
    cp = charger()
    csms.wait_for("BootNotification")
    cp.console("fault 1 Bogus")
    line = cp.wait_log("fault: unknown error code")
    assert "'Bogus'; one of: ConnectorLockFailure, EVCommunicationError" in line
    cp.console("data")
    cp.wait_log("usage: data VENDOR [MESSAGE [DATA]]")
    cp.console("mem")
    line = cp.wait_log("mem: ")
    if interpreter.endswith("micropython"):
        assert re.match(r"mem: alloc=\d+ free=\d+", line), line
    else:
        assert line == "mem: MicroPython only (CPython does not report its heap)"
    cp.console("help")
    assert cp.wait_log("commands: ").startswith("commands: plug N | unplug N")


def test_a_rejected_boot_is_a_warning_and_status_and_cards_say_so(csms, charger):
    csms.default_boot_status = "Rejected"
    cp = charger()
    line = cp.wait_log("BootNotification Rejected")
    assert " W boot: BootNotification Rejected" in line
    assert "does not accept csms.id CP_1" in line
    cp.console("status")
    assert cp.wait_log("boot ").startswith("boot rejected, link up")
    cp.console("swipe NOT-REG")
    line = cp.wait_log("card NOT-REG refused")
    assert ("W auth: card NOT-REG refused: the charger is not registered with the Central"
            " System (BootNotification Rejected)") in line


def test_central_system_commands_are_logged_with_who_asked(csms, charger):
    cp = charger()
    csms.wait_for_status(1, "Available")

    csms.call(call.RemoteStartTransaction(id_tag="OP-1", connector_id=1))
    line = cp.wait_log("RemoteStartTransaction for OP-1")
    assert re.match(ISO + " I cp: RemoteStartTransaction for OP-1 on connector 1, asked by"
                    " the Central System", line), line


def test_ctrl_c_closes_the_link_with_1001_logs_a_stop_line_and_exits_130(csms, charger):
    cp = charger()
    csms.wait_for("BootNotification")
    cp.wait_log("BootNotification Accepted")
    cp.fw.proc.send_signal(signal.SIGINT)
    assert cp.wait(15) == 130, cp.tail()
    assert any("W main: stopped: interrupted (Ctrl-C); contactors open" in line
               for line in cp.output()), cp.tail()
    deadline = time.monotonic() + 5
    while not csms.closes and time.monotonic() < deadline:
        time.sleep(0.1)
    # MicroPython stops where the signal found it: in a frame's write (often, right after the
    # boot, while statuses go out) the frame may be cut, and the socket is only dropped.
    cut = any("W ws: Ctrl-C came while a frame was being written: the link is dropped without"
              " a close frame" in line for line in cp.output())
    assert csms.closes and csms.closes[-1] == ("CP_1", 1006 if cut else 1001), csms.closes


def test_ctrl_c_on_a_quiet_link_always_closes_it_with_1001(csms, charger):
    cp = charger()
    csms.wait_for_status(1, "Available")
    time.sleep(0.5)                                   # nothing on its way: the loop waits
    cp.fw.proc.send_signal(signal.SIGINT)
    assert cp.wait(15) == 130, cp.tail()
    deadline = time.monotonic() + 5
    while not csms.closes and time.monotonic() < deadline:
        time.sleep(0.1)
    assert csms.closes == [("CP_1", 1001)], (csms.closes, cp.tail())
    assert not any("Ctrl-C came while a frame" in line for line in cp.output())


def test_quit_during_a_transaction_says_what_happens_to_it(csms, charger):
    cp = charger()
    csms.wait_for_status(1, "Available")
    cp.console("plug 1")
    cp.console("swipe QUIT-1")
    csms.wait_for("StartTransaction")
    cp.console("quit")
    line = cp.wait_log("quit: the transaction on connector 1 stays open")
    assert "next start stops it (StopTransaction, reason PowerLoss" in line


def test_a_wrong_password_hints_at_csms_id_and_password(csms, charger):
    csms.password = "right-one"
    cp = charger(csms_config={"password": "wrong-one", "reconnect_min": 5,
                              "reconnect_max": 10, "allow_plain_basic_auth": True})
    line = cp.wait_log("W ws: cannot connect: HTTP 401")
    assert line.endswith("- the Central System refused our credentials: check csms.id (the"
                         " Basic auth user name) and csms.password"), line
    assert "wrong-one" not in "\n".join(cp.output())  # the secret never reaches a line


def test_a_refused_connection_reads_the_same_and_is_no_link_down(charger):
    cp = charger(csms_config={"url": "ws://127.0.0.1:9/ocpp", "reconnect_min": 5,
                              "reconnect_max": 10})
    line = cp.wait_log("W ws: ")
    assert line.endswith(" W ws: cannot connect: cannot connect to 127.0.0.1:9: ECONNREFUSED")
    assert not any("link down" in x for x in cp.output())


def test_tls_unverified_is_a_warning_at_every_connection(charger):
    cp = charger(csms_config={"url": "wss://127.0.0.1:9/ocpp", "verify_tls": False,
                              "reconnect_min": 0.2, "reconnect_max": 1})
    for _ in range(2):
        line = cp.wait_log("TLS certificate NOT verified")
        assert " W ws: TLS certificate NOT verified (csms.verify_tls false)" in line
