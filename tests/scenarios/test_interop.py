"""Interoperability with third-party Central Systems and compliance suites: parentIdTag
groups, reservations held for a group, the status sequence of the 1.6 transition table, a
RemoteStopTransaction overtaking its own StartTransaction.conf, and a SteVe-style URL."""
import asyncio
import time

from ocpp.v16 import call

from tests.scenarios.steps import FAST, booted, change_availability, remote_start
from tests.scenarios.test_reservation import reserve

GROUP = {"CARD_A": ("Accepted", "GROUP_P"), "CARD_B": ("Accepted", "GROUP_P"),
         "CARD_C": ("Accepted", "GROUP_Q")}


def statuses(csms, connector):
    """The statuses the charger reported for `connector`, in order."""
    return [r.payload["status"] for r in csms.status_notifications
            if r.payload["connectorId"] == connector]


def _listed(tag, parent):
    return {"id_tag": tag, "id_tag_info": {"status": "Accepted", "parent_id_tag": parent}}


def charging(csms, tag, connector=1):
    start = csms.wait_for("StartTransaction", {"idTag": tag, "connectorId": connector})
    csms.wait_for_status(connector, "Charging")
    for tx_id, tx in csms.transactions.items():
        if tx["start"] == start:
            return tx_id
    raise AssertionError("no transaction for %r" % start)


def stopped_by(csms, tx_id, tag):
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "Local" and stop["idTag"] == tag, stop
    csms.wait_for_status(1, "Finishing")


# ---- parentIdTag groups (TC_068, TC_069) ---------------------------------------------------

def test_tc_069_stop_by_card_of_the_same_group_parent_from_authorize(csms, charger):
    csms.id_tags = dict(GROUP)
    cp = charger(ocpp=FAST)
    booted(csms)
    cp.console("swipe CARD_A")
    csms.wait_for("Authorize", {"idTag": "CARD_A"})
    csms.wait_for_status(1, "Preparing")
    csms.id_tags["CARD_A"] = "Accepted"      # StartTransaction.conf names no parent
    cp.console("plug 1")
    tx_id = charging(csms, "CARD_A")
    cp.console("swipe CARD_B")
    csms.wait_for("Authorize", {"idTag": "CARD_B"})
    stopped_by(csms, tx_id, "CARD_B")


def test_tc_069_stop_by_card_of_the_same_group_parent_from_start_conf(csms, charger):
    csms.id_tags = dict(GROUP)
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(csms)
    assert remote_start(csms, "CARD_A", 1) == "Accepted"
    cp.console("plug 1")
    tx_id = charging(csms, "CARD_A")
    assert csms.messages("Authorize") == []  # the parent came with StartTransaction.conf only
    cp.console("swipe CARD_B")
    csms.wait_for("Authorize", {"idTag": "CARD_B"})
    stopped_by(csms, tx_id, "CARD_B")


def test_tc_069_stop_by_card_of_the_same_group_from_the_local_list(csms, charger):
    cp = charger(ocpp=dict(FAST, LocalPreAuthorize=True, LocalAuthListEnabled=True,
                           AuthorizationCacheEnabled=False))
    booted(csms)
    reply = csms.call(call.SendLocalList(list_version=1, update_type="Full",
                                         local_authorization_list=[
                                             _listed("CARD_A", "GROUP_P"),
                                             _listed("CARD_B", "GROUP_P")]))
    assert reply.status == "Accepted"
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe CARD_A")
    tx_id = charging(csms, "CARD_A")
    cp.console("swipe CARD_B")
    stopped_by(csms, tx_id, "CARD_B")
    assert csms.messages("Authorize") == []  # the Central System never named the group


def test_tc_068_card_of_another_group_or_none_does_not_stop(csms, charger):
    csms.id_tags = dict(GROUP, CARD_D="Accepted")
    cp = charger(ocpp=FAST)
    booted(csms)
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe CARD_A")
    tx_id = charging(csms, "CARD_A")
    cp.console("swipe CARD_C")                      # group Q: asked, but no stop
    csms.wait_for("Authorize", {"idTag": "CARD_C"})
    cp.console("swipe CARD_D")                      # no group at all: no stop either
    csms.wait_for("Authorize", {"idTag": "CARD_D"})
    csms.expect_none("StopTransaction", 1.5)
    cp.console("swipe CARD_A")                      # the starting card stops it
    stopped_by(csms, tx_id, "CARD_A")


def test_tc_068_other_card_is_not_authorized_when_the_transaction_has_no_group(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe PLAIN1")
    tx_id = charging(csms, "PLAIN1")
    cp.console("swipe PLAIN2")     # no group to match and no free connector: nothing to ask
    csms.expect_none("Authorize", 1.5, match={"idTag": "PLAIN2"})
    csms.expect_none("StopTransaction", 0.1)
    cp.console("swipe PLAIN1")
    stopped_by(csms, tx_id, "PLAIN1")


# ---- reservations held for a group (TC_053) ------------------------------------------------

def test_tc_053_remote_start_for_a_group_member_of_the_reservation(csms, charger):
    csms.id_tags = {"MEMBER2": ("Accepted", "GROUP1"), "STRANGER": ("Accepted", "GROUP9")}
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(csms)
    assert reserve(csms, 61, "MEMBER1", parent="GROUP1") == "Accepted"
    csms.wait_for_status(1, "Reserved")
    # Its group is known only once asked: authorized although AuthorizeRemoteTxRequests is off.
    assert remote_start(csms, "STRANGER", 1) == "Rejected"
    csms.wait_for("Authorize", {"idTag": "STRANGER"})
    assert remote_start(csms, "MEMBER2", 1) == "Accepted"
    csms.wait_for("Authorize", {"idTag": "MEMBER2"})
    cp.console("plug 1")
    start = csms.wait_for("StartTransaction", {"idTag": "MEMBER2"})
    assert start["reservationId"] == 61
    csms.wait_for_status(1, "Charging")
    assert statuses(csms, 1)[-3:] == ["Reserved", "Preparing", "Charging"]


def test_tc_053_remote_start_for_a_group_member_authorize_remote_tx_requests(csms, charger):
    csms.id_tags = {"MEMBER3": ("Accepted", "GROUP1")}
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=True))
    booted(csms)
    assert reserve(csms, 62, "MEMBER1", connector=0, parent="GROUP1") == "Accepted"
    csms.wait_for_status(1, "Reserved")
    assert csms.call(call.RemoteStartTransaction(id_tag="MEMBER3")).status == "Accepted"
    assert len(csms.messages("Authorize")) == 1
    cp.console("plug 1")
    start = csms.wait_for("StartTransaction", {"idTag": "MEMBER3"})
    assert start["reservationId"] == 62


def test_tc_050_3_reservation_of_the_charge_point_unavailable(csms, charger):
    charger(ocpp=FAST)
    booted(csms)
    assert change_availability(csms, 0, "Inoperative") == "Accepted"
    csms.wait_for_status(1, "Unavailable")
    assert reserve(csms, 63, "R", connector=0) == "Unavailable"
    assert change_availability(csms, 0, "Operative") == "Accepted"
    csms.wait_for_status(1, "Available")
    assert reserve(csms, 64, "R", connector=0) == "Accepted"
    csms.wait_for_status(1, "Reserved")


def test_tc_046_1_reserve_connector_with_the_other_connector_unavailable(csms, charger):
    """TC_046_1 as the suite runs it: the other connector Unavailable, a foreign card is not
    given the reserved one, the reserved card starts with the reservationId."""
    cp = charger(ocpp=FAST, station={"connectors": 2})
    booted(csms, connectors=2)
    assert change_availability(csms, 2, "Inoperative") == "Accepted"
    csms.wait_for_status(2, "Unavailable")
    assert reserve(csms, 67, "RESV7", connector=1) == "Accepted"
    csms.wait_for_status(1, "Reserved")
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe STRANGER")
    csms.wait_for("Authorize", {"idTag": "STRANGER"})
    csms.expect_none("StartTransaction", 1.5)
    cp.console("swipe RESV7")
    start = csms.wait_for("StartTransaction", {"idTag": "RESV7", "connectorId": 1})
    assert start["reservationId"] == 67
    csms.wait_for_status(1, "Charging")
    assert statuses(csms, 1) == ["Available", "Reserved", "Preparing", "Charging"]
    assert statuses(csms, 2) == ["Available", "Unavailable"]


def test_tc_049_reservation_of_the_charge_point_two_connectors(csms, charger):
    """Connector 0 reserved: the other card still gets a connector while two are free, never
    the last one; the reserved card may use any."""
    cp = charger(ocpp=FAST, station={"connectors": 2})
    booted(csms, connectors=2)
    assert reserve(csms, 65, "WHOLE", connector=0) == "Accepted"
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe OTHER1")
    charging(csms, "OTHER1", connector=1)
    csms.wait_for_status(2, "Reserved")              # the last free one is held back
    cp.console("plug 2")
    csms.wait_for_status(2, "Preparing")
    cp.console("swipe OTHER2")
    csms.wait_for("Authorize", {"idTag": "OTHER2"})
    csms.expect_none("StartTransaction", 1.5, match={"idTag": "OTHER2"})
    cp.console("swipe WHOLE")
    start = csms.wait_for("StartTransaction", {"idTag": "WHOLE", "connectorId": 2})
    assert start["reservationId"] == 65


# ---- status sequences (1.6 section 4.9) ----------------------------------------------------

def test_preparing_before_charging_when_a_finishing_connector_is_started_again(csms, charger):
    """F2 then B3: Finishing -> Preparing -> Charging, never Finishing -> Charging."""
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(csms)
    assert remote_start(csms, "REMOTE1", 1) == "Accepted"
    cp.console("plug 1")
    tx_id = charging(csms, "REMOTE1")
    assert csms.call(call.RemoteStopTransaction(transaction_id=tx_id)).status == "Accepted"
    csms.wait_for_status(1, "Finishing")
    assert remote_start(csms, "REMOTE2", 1) == "Accepted"
    charging(csms, "REMOTE2")
    assert statuses(csms, 1) == ["Available", "Preparing", "Charging", "Finishing",
                                 "Preparing", "Charging"]


def test_preparing_kept_when_plug_and_remote_start_come_within_minimum_status_duration(
        csms, charger):
    """MinimumStatusDuration 2: a Preparing shorter than that is still reported before the
    Charging it led to (A2, B3), not skipped (A3 is for chargers without authorization)."""
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False, MinimumStatusDuration=2))
    booted(csms)
    assert remote_start(csms, "REMOTE1", 1) == "Accepted"
    cp.console("plug 1")
    charging(csms, "REMOTE1")
    assert statuses(csms, 1) == ["Available", "Preparing", "Charging"]


def test_preparing_kept_when_plug_and_swipe_come_within_minimum_status_duration(csms, charger):
    cp = charger(ocpp=dict(FAST, MinimumStatusDuration=2))
    booted(csms)
    cp.console("swipe QUICK1")
    cp.console("plug 1")
    charging(csms, "QUICK1")
    assert statuses(csms, 1) == ["Available", "Preparing", "Charging"]


def test_reserved_preparing_suspended_ev(csms, charger):
    """G2 then B4: a reserved connector whose EV does not draw yet (pilot B) goes Reserved ->
    Preparing -> SuspendedEV, also within MinimumStatusDuration."""
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False, MinimumStatusDuration=2))
    booted(csms)
    assert reserve(csms, 66, "RESV1") == "Accepted"
    csms.wait_for_status(1, "Reserved", timeout=5)
    assert remote_start(csms, "RESV1", 1) == "Accepted"
    cp.console("pilot 1 B")
    start = csms.wait_for("StartTransaction", {"idTag": "RESV1"})
    assert start["reservationId"] == 66
    csms.wait_for_status(1, "SuspendedEV", timeout=5)
    cp.console("pilot 1 C")
    csms.wait_for_status(1, "Charging", timeout=5)
    assert statuses(csms, 1) == ["Available", "Reserved", "Preparing", "SuspendedEV",
                                 "Charging"]


def test_preparing_then_suspended_evse_when_a_profile_allows_nothing(csms, charger):
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(csms)
    profile = {"charging_profile_id": 1, "stack_level": 0,
               "charging_profile_purpose": "TxDefaultProfile",
               "charging_profile_kind": "Relative",
               "charging_schedule": {"charging_rate_unit": "A",
                                     "charging_schedule_period": [
                                         {"start_period": 0, "limit": 0}]}}
    req = call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile)
    assert csms.call(req).status == "Accepted"
    assert remote_start(csms, "REMOTE1", 1) == "Accepted"
    cp.console("plug 1")
    csms.wait_for("StartTransaction", {"idTag": "REMOTE1"})
    csms.wait_for_status(1, "SuspendedEVSE")
    assert statuses(csms, 1) == ["Available", "Preparing", "SuspendedEVSE"]


def test_tc_003_full_status_sequence(csms, charger):
    """TC_003 then TC_005_1: plug, swipe, stop with the card, unplug."""
    cp = charger(ocpp=FAST)
    booted(csms)
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe SEQ1")
    tx_id = charging(csms, "SEQ1")
    cp.console("swipe SEQ1")
    stopped_by(csms, tx_id, "SEQ1")
    cp.console("unplug 1")
    csms.wait_for_status(1, "Available")
    assert statuses(csms, 1) == ["Available", "Preparing", "Charging", "Finishing",
                                 "Available"]


def test_tc_023_invalid_card_with_minimum_status_duration_10(csms, charger):
    """TC_023 sets MinimumStatusDuration=10: an invalid card starts nothing, and the Preparing
    of the plug comes once it lasted 10 s."""
    csms.id_tags = {"BADTAG": "Invalid"}
    cp = charger(ocpp=dict(FAST, MinimumStatusDuration=10))
    booted(csms)
    cp.console("swipe BADTAG")
    csms.wait_for("Authorize", {"idTag": "BADTAG"})
    t0 = time.monotonic()
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing", timeout=15)
    assert time.monotonic() - t0 >= 9
    assert csms.messages("StartTransaction") == []
    assert statuses(csms, 1) == ["Available", "Preparing"]


# ---- a RemoteStopTransaction overtaking its StartTransaction.conf --------------------------

def _remote_stop_ahead_of_start_conf(csms, offset=0):
    """Make the CSMS send RemoteStopTransaction(transactionId + offset) before it answers
    the next StartTransaction; returns a dict that gets the RemoteStop's task."""
    sent = {}

    async def hook(session, tx_id):
        session.cs.before_start_reply = None
        req = call.RemoteStopTransaction(transaction_id=tx_id + offset)
        sent["task"] = asyncio.ensure_future(session.cs.call(session.id, req, timeout=20))
        await asyncio.sleep(1.0)  # the RemoteStop is on the charger before this conf
    csms.before_start_reply = hook
    return sent


def _answer(sent, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = sent.get("task")
        if task is not None and task.done():
            return task.result().status
        time.sleep(0.05)
    raise AssertionError("RemoteStopTransaction never answered")


def _frame_index(csms, predicate):
    for i, frame in enumerate(csms.ledger):
        if predicate(frame):
            return i
    raise AssertionError("frame not found")


def test_remote_stop_overtaking_its_start_transaction_conf(csms, charger):
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(csms)
    sent = _remote_stop_ahead_of_start_conf(csms)
    assert remote_start(csms, "EARLY1", 1) == "Accepted"
    cp.console("plug 1")
    start = csms.wait_for("StartTransaction", {"idTag": "EARLY1"})
    assert _answer(sent) == "Accepted"
    stop = csms.wait_for("StopTransaction")
    assert stop["reason"] == "Remote"
    assert csms.transactions[stop["transactionId"]]["start"] == start
    # The answer left after the StartTransaction.conf arrived.
    conf = _frame_index(csms, lambda f: f.direction == "out" and f.parsed[0] == 3
                        and "transactionId" in f.parsed[2])
    ask = csms.ledger[_frame_index(csms, lambda f: f.direction == "out" and f.parsed[0] == 2
                                   and f.parsed[2] == "RemoteStopTransaction")]
    answer = _frame_index(csms, lambda f: f.direction == "in" and f.parsed[0] == 3
                          and f.parsed[1] == ask.parsed[1])
    assert csms.ledger.index(ask) < conf < answer
    csms.wait_for_status(1, "Finishing")


def test_remote_stop_of_another_id_while_start_in_flight_is_rejected(csms, charger):
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False))
    booted(csms)
    sent = _remote_stop_ahead_of_start_conf(csms, offset=100)
    assert remote_start(csms, "EARLY2", 1) == "Accepted"
    cp.console("plug 1")
    charging(csms, "EARLY2")
    assert _answer(sent) == "Rejected"
    csms.expect_none("StopTransaction", 1)


def test_remote_stop_held_at_most_the_bound_when_no_conf_comes(csms, charger):
    """No StartTransaction.conf at all: the held answer goes out as Rejected after the bound,
    min(csms.call_timeout / 2, 10 s) (here 1.5 s), before the charger's own call times out."""
    csms.no_reply_actions = {"StartTransaction"}
    cp = charger(ocpp=dict(FAST, AuthorizeRemoteTxRequests=False),
                 csms_config={"call_timeout": 3})
    booted(csms)
    assert remote_start(csms, "EARLY3", 1) == "Accepted"
    cp.console("plug 1")
    csms.wait_for("StartTransaction", {"idTag": "EARLY3"})
    t0 = time.monotonic()
    reply = csms.call(call.RemoteStopTransaction(transaction_id=4242), timeout=10)
    waited = time.monotonic() - t0
    assert reply.status == "Rejected"
    assert 1.2 <= waited <= 5, waited


# ---- a SteVe-style Central System URL --------------------------------------------------------

def test_steve_style_url(csms, charger):
    """SteVe serves /steve/websocket/CentralSystemService/<chargeBoxId>: csms.url may end
    before the id (the charger appends it) or with it (not appended twice)."""
    csms.path_prefix = "/steve/websocket/CentralSystemService"
    base = "ws://127.0.0.1:%d/steve/websocket/CentralSystemService" % csms.port
    cp1 = charger(ocpp=FAST, csms_config={"url": base})
    csms.wait_for("BootNotification", cp_id="CP_1")
    cp2 = charger(ocpp=FAST, csms_config={"url": base + "/CP_2"})
    csms.wait_for("BootNotification", cp_id="CP_2")
    csms.wait_for_status(1, "Available", cp_id="CP_2")
    assert csms.refused == []
    assert cp1.running and cp2.running
