"""Authorization Cache and Local Authorization List (Local Auth List Management profile)."""
from ocpp.v16 import call

from tests.scenarios.steps import FAST, booted


def _entry(tag, status="Accepted"):
    return {"id_tag": tag, "id_tag_info": {"status": status}}


def test_tc_007_start_with_cached_id(csms, charger):
    cp = charger(ocpp=dict(FAST, AuthorizationCacheEnabled=True, LocalPreAuthorize=True))
    booted(csms)
    cp.console("swipe CACHED1")                       # first time: asked, answer cached
    csms.wait_for("Authorize", {"idTag": "CACHED1"})
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe CACHED1")                       # withdrawn before plugging in
    csms.wait_for_status(1, "Available")
    cp.console("swipe CACHED1")                       # now from the cache: no Authorize
    csms.wait_for_status(1, "Preparing")
    cp.console("plug 1")
    csms.wait_for("StartTransaction", {"idTag": "CACHED1"})
    csms.wait_for_status(1, "Charging")
    assert len(csms.messages("Authorize")) == 1


def test_tc_061_clear_authorization_cache(csms, charger):
    cp = charger(ocpp=dict(FAST, AuthorizationCacheEnabled=True, LocalPreAuthorize=True,
                           ConnectionTimeOut=2))
    booted(csms)
    cp.console("swipe CACHED2")
    csms.wait_for("Authorize", {"idTag": "CACHED2"})
    csms.wait_for_status(1, "Preparing")
    csms.wait_for_status(1, "Available", timeout=6)   # the session lapsed
    assert csms.call(call.ClearCache()).status == "Accepted"
    cp.console("swipe CACHED2")
    csms.wait_for("Authorize", {"idTag": "CACHED2"})  # asked again: the cache is empty


def test_tc_008_start_with_id_in_local_list(csms, charger):
    cp = charger(ocpp=dict(FAST, LocalPreAuthorize=True, LocalAuthListEnabled=True,
                           AuthorizationCacheEnabled=False))
    booted(csms)
    assert csms.call(call.GetLocalListVersion()).list_version == 0
    reply = csms.call(call.SendLocalList(list_version=1, update_type="Full",
                                         local_authorization_list=[_entry("LISTED1")]))
    assert reply.status == "Accepted"
    cp.console("swipe LISTED1")
    csms.wait_for_status(1, "Preparing")
    cp.console("plug 1")
    csms.wait_for("StartTransaction", {"idTag": "LISTED1"})
    assert csms.messages("Authorize") == []


def test_tc_042_1_local_list_disabled_version_minus_one(csms, charger):
    charger(ocpp={"LocalAuthListEnabled": False})
    booted(csms)
    assert csms.call(call.GetLocalListVersion()).list_version == -1
    reply = csms.call(call.SendLocalList(list_version=1, update_type="Full",
                                         local_authorization_list=[]))
    assert reply.status == "NotSupported"


def test_tc_042_2_local_list_empty_version_zero(csms, charger):
    charger()
    booted(csms)
    assert csms.call(call.SendLocalList(list_version=1, update_type="Full",
                                        local_authorization_list=[])).status == "Accepted"
    assert csms.call(call.GetLocalListVersion()).list_version == 0


def test_tc_043_send_local_list_full_then_differential_survives_reboot(csms, charger):
    cp = charger(ocpp=dict(FAST, LocalPreAuthorize=True, AuthorizationCacheEnabled=False))
    booted(csms)
    full = [_entry("L%03d" % i) for i in range(50)]
    assert csms.call(call.SendLocalList(list_version=2, update_type="Full",
                                        local_authorization_list=full)).status == "Accepted"
    assert csms.call(call.GetLocalListVersion()).list_version == 2
    diff = [_entry("NEWTAG"), {"id_tag": "L000"}, _entry("L001", "Blocked")]
    assert csms.call(call.SendLocalList(list_version=5, update_type="Differential",
                                        local_authorization_list=diff)).status == "Accepted"
    assert csms.call(call.GetLocalListVersion()).list_version == 5
    # TC_043_2: a differential that does not advance the version.
    late = [_entry("LATE")]
    assert csms.call(call.SendLocalList(list_version=4, update_type="Differential",
                                        local_authorization_list=late)).status == "VersionMismatch"
    # TC_043_3: more entries than SendLocalListMaxLength -> Failed.
    many = [_entry("M%04d" % i) for i in range(101)]
    assert csms.call(call.SendLocalList(list_version=9, update_type="Full",
                                        local_authorization_list=many)).status == "Failed"
    cp.stop()
    cp.start()
    booted(csms)
    assert csms.call(call.GetLocalListVersion()).list_version == 5
    cp.console("swipe NEWTAG")                    # listed: no Authorize
    csms.wait_for_status(1, "Preparing")
    cp.console("swipe NEWTAG")
    csms.wait_for_status(1, "Available")
    cp.console("swipe L001")                      # Blocked in the list: the CSMS is asked
    csms.wait_for("Authorize", {"idTag": "L001"})
    assert [m["idTag"] for m in csms.messages("Authorize")] == ["L001"]
