"""Reservation profile: ReserveNow, CancelReservation, expiry, use of a reserved connector."""
import time

from ocpp.v16 import call

from firmware.clock import iso
from tests.scenarios.steps import (FAST, booted, change_availability, remote_start,
                                   start_session)


def reserve(csms, rid, tag, connector=1, seconds=60, parent=None):
    expiry = iso(int(time.time()) + seconds)
    req = call.ReserveNow(connector_id=connector, expiry_date=expiry, id_tag=tag,
                          reservation_id=rid)
    if parent:
        req = call.ReserveNow(connector_id=connector, expiry_date=expiry, id_tag=tag,
                              reservation_id=rid, parent_id_tag=parent)
    return csms.call(req).status


def test_tc_046_1_reserve_connector_local_start(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    assert reserve(csms, 11, "RESV1") == "Accepted"
    csms.wait_for_status(1, "Reserved")
    cp.console("swipe STRANGER")                    # a foreign card does not get the connector
    csms.wait_for("Authorize", {"idTag": "STRANGER"})
    cp.console("plug 1")
    csms.expect_none("StartTransaction", 1.5)
    cp.console("swipe RESV1")
    start = csms.wait_for("StartTransaction", {"idTag": "RESV1"})
    assert start["reservationId"] == 11
    csms.wait_for_status(1, "Charging")


def test_tc_046_2_reserve_connector_remote_start(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    assert reserve(csms, 12, "RESV2") == "Accepted"
    csms.wait_for_status(1, "Reserved")
    assert remote_start(csms, "OTHER", 1) == "Rejected"
    assert remote_start(csms, "RESV2", 1) == "Accepted"
    cp.console("plug 1")
    start = csms.wait_for("StartTransaction", {"idTag": "RESV2"})
    assert start["reservationId"] == 12


def test_tc_047_reservation_expires(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    assert reserve(csms, 13, "RESV3", seconds=3) == "Accepted"
    csms.wait_for_status(1, "Reserved")
    csms.wait_for_status(1, "Available", timeout=8)
    tx = start_session(csms, cp, tag="ANYONE")
    assert "reservationId" not in csms.transactions[tx]["start"]


def test_tc_048_reserve_now_faulted_occupied_unavailable_rejected(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    cp.console("fault 1 GroundFailure")
    csms.wait_for_status(1, "Faulted")
    assert reserve(csms, 21, "R") == "Faulted"                       # TC_048_1
    cp.console("clear 1")
    csms.wait_for_status(1, "Available")
    start_session(csms, cp)
    assert reserve(csms, 22, "R") == "Occupied"                      # TC_048_2
    cp.console("swipe TAG1")
    csms.wait_for("StopTransaction")
    cp.console("unplug 1")
    csms.wait_for_status(1, "Available")
    assert change_availability(csms, 1, "Inoperative") == "Accepted"
    assert reserve(csms, 23, "R") == "Unavailable"                   # TC_048_3
    assert change_availability(csms, 1, "Operative") == "Accepted"
    assert reserve(csms, 24, "R", connector=7) == "Rejected"         # TC_048_4: no such connector


def test_reserve_connector_zero_supported_is_read_only(csms, charger):
    charger(ocpp=FAST)
    booted(csms)
    conf = csms.call(call.GetConfiguration(key=["ReserveConnectorZeroSupported"]))
    assert conf.configuration_key[0]["readonly"] is True


def test_tc_049_reservation_of_the_charge_point(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    assert reserve(csms, 31, "WHOLE", connector=0) == "Accepted"
    csms.wait_for_status(1, "Reserved")                   # one connector: it is the one held back
    cp.console("plug 1")
    cp.console("swipe WHOLE")
    start = csms.wait_for("StartTransaction", {"idTag": "WHOLE"})
    assert start["reservationId"] == 31


def test_tc_051_cancel_reservation(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    assert reserve(csms, 41, "RESV4") == "Accepted"
    csms.wait_for_status(1, "Reserved")
    assert csms.call(call.CancelReservation(reservation_id=41)).status == "Accepted"
    csms.wait_for_status(1, "Available")
    tx = start_session(csms, cp, tag="RESV4")
    assert "reservationId" not in csms.transactions[tx]["start"]


def test_tc_052_cancel_reservation_rejected(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    assert reserve(csms, 42, "RESV5") == "Accepted"
    assert csms.call(call.CancelReservation(reservation_id=4242)).status == "Rejected"
    cp.stop()
    cp.start()                                          # the reservation survives a reboot
    booted_status = csms.wait_for_status(1, "Reserved", timeout=10)
    assert booted_status["connectorId"] == 1


def test_tc_053_use_reserved_connector_with_parent_id_tag(csms, charger):
    csms.id_tags = {"MEMBER2": ("Accepted", "GROUP1")}
    cp = charger(ocpp=FAST)
    booted(csms)
    assert reserve(csms, 51, "MEMBER1", parent="GROUP1") == "Accepted"
    csms.wait_for_status(1, "Reserved")
    cp.console("plug 1")
    cp.console("swipe MEMBER2")
    start = csms.wait_for("StartTransaction", {"idTag": "MEMBER2"})
    assert start["reservationId"] == 51
    csms.wait_for_status(1, "Charging")
