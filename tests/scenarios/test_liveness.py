"""A link that never wedges (README "Link liveness"): findings 2 and 3 of issue 10.

The network between the charger and the Central System goes wrong the ways a field does
(tests/linkproxy.py): silent but open, a Central System that stops reading and keeps pinging,
half a frame and then nothing. The charger must find each within the stated bound, replace
the link, and deliver what it holds exactly once. Timings are short (call_timeout and
connect_timeout 2 s); the OCPP keys are the shipped defaults unless a test says otherwise.
"""
import os
import time

from ocpp.v16 import call

from tests.conftest import report_figure
from tests.scenarios.steps import booted, start_session

CALL_S = 2      # csms.call_timeout
NET_S = 2       # csms.connect_timeout: also the deadline of a frame sent or begun


def _fast(link):
    return dict(link.config, call_timeout=CALL_S, connect_timeout=NET_S)


def _link_down(cp, since, within):
    """The next "link down" line and the seconds from `since` to it."""
    line = cp.wait_log("link down", timeout=within)
    return line, time.monotonic() - since


def _stop_arrives_once(csms, tx_id):
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id}, timeout=15)
    assert stop["reason"] == "Local"
    csms.expect_none("StopTransaction", 1.5)           # 0 duplicated
    assert len(csms.messages("StopTransaction")) == 1


def test_silent_link_stop_transaction_arrives_once_the_link_is_back(csms, charger, link,
                                                                      interpreter):
    cp = charger(csms_config=_fast(link))
    booted(csms)
    tx_id = start_session(csms, cp)
    link.stall()                                       # TCP open, no replies, no pongs
    start = time.monotonic()
    cp.console("swipe TAG1")
    cp.wait_log("tx: stop on connector 1")
    line, took = _link_down(cp, start, CALL_S + 4)
    assert "no reply to" in line and "no other frame" in line, line
    time.sleep(NET_S + 1)                              # a reconnect runs into the silence too
    link.unstall()
    _stop_arrives_once(csms, tx_id)
    report_figure("silent link with a call in flight on %s: dropped %.1f s after the stop "
                  "(call_timeout %d s)" % (os.path.basename(str(interpreter)), took, CALL_S))


def test_stalled_read_ends_the_link_within_the_send_deadline(csms, charger, link, interpreter):
    cp = charger(csms_config=_fast(link))
    booted(csms)
    tx_id = start_session(csms, cp)
    start = time.monotonic()
    link.deafen()                  # the CSMS reads nothing more and pings: our pongs pile up
    cp.console("swipe TAG1")
    cp.wait_log("tx: stop on connector 1")
    line, took = _link_down(cp, start, 25)
    assert "send not done in %d ms" % (NET_S * 1000) in line, line
    link.unstall()
    _stop_arrives_once(csms, tx_id)
    report_figure("CSMS stops reading on %s: link dropped %.1f s after (%d pings to fill "
                  "the buffers, send deadline %d s)" % (os.path.basename(str(interpreter)), took,
                                                         link.pings_sent, NET_S))


def test_half_a_frame_before_the_boot_reply_gets_a_new_link(csms, charger, link, interpreter):
    link.half_frame(b'"interval"')                     # the BootNotification reply
    cp = charger(csms_config=_fast(link))
    csms.wait_for("BootNotification")
    start = time.monotonic()
    line, took = _link_down(cp, start, max(CALL_S, NET_S) + 3)
    assert "no reply to BootNotification" in line or "frame not complete" in line, line
    booted(csms)                                       # a second boot, on a new link
    assert link.connections == 2
    assert csms.call(call.ClearCache()).status == "Accepted"
    report_figure("half a frame before the boot reply on %s: new link %.1f s after the boot "
                  "went out" % (os.path.basename(str(interpreter)), took))


def test_pings_off_half_open_link_is_found_by_the_heartbeat(csms, charger, link, interpreter):
    csms.heartbeat_interval = 2                        # the boot reply sets HeartbeatInterval
    cp = charger(ocpp={"WebSocketPingInterval": 0}, csms_config=_fast(link))
    booted(csms)
    csms.wait_for("Heartbeat", timeout=5)
    link.stall()
    start = time.monotonic()
    line, took = _link_down(cp, start, 2 + CALL_S + 4)
    assert "no reply to Heartbeat" in line, line
    assert took <= 2 + CALL_S + 3              # HeartbeatInterval + call_timeout + slack
    link.unstall()
    cp.wait_log("connected", timeout=10)
    assert csms.call(call.ClearCache()).status == "Accepted"
    # Half a frame (of a Heartbeat reply) with pings off: found as well.
    link.half_frame(b'"currentTime"')
    start = time.monotonic()
    line, half = _link_down(cp, start, 2 + max(CALL_S, NET_S) + 4)
    assert "no reply to Heartbeat" in line or "frame not complete" in line, line
    cp.wait_log("connected", timeout=10)
    assert csms.call(call.ClearCache()).status == "Accepted"
    report_figure("pings off on %s: half-open link found %.1f s after it went silent, half a "
                  "frame %.1f s (HeartbeatInterval 2 s, call_timeout %d s)"
                  % (os.path.basename(str(interpreter)), took, half, CALL_S))
