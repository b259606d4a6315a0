"""chargepoint.bridge against the OCPP 1.6 status transition table (section 4.9)."""
from firmware.chargepoint import bridge
from firmware.outbox import Entry, Outbox

S = ("Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing",
     "Reserved", "Unavailable", "Faulted")
# From -> the statuses the table lets it go to (A2-A9, B1-B9, ... I1-I8).
TABLE = {
    "Available": "Preparing Charging SuspendedEV SuspendedEVSE Reserved Unavailable Faulted",
    "Preparing": "Available Charging SuspendedEV SuspendedEVSE Finishing Faulted",
    "Charging": "Available SuspendedEV SuspendedEVSE Finishing Unavailable Faulted",
    "SuspendedEV": "Available Charging SuspendedEVSE Finishing Unavailable Faulted",
    "SuspendedEVSE": "Available Charging SuspendedEV Finishing Unavailable Faulted",
    "Finishing": "Available Preparing Unavailable Faulted",
    "Reserved": "Available Preparing Unavailable Faulted",
    "Unavailable": "Available Preparing Charging SuspendedEV SuspendedEVSE Faulted",
    "Faulted": "Available Preparing Charging SuspendedEV SuspendedEVSE Finishing Reserved"
               " Unavailable",
}


def valid(a, b):
    return a is None or a == b or b in TABLE[a].split()


def test_every_change_is_reported_as_steps_of_the_table():
    for a in (None,) + S:
        for b in S:
            mid = bridge(a, b)
            if mid is None:
                assert valid(a, b), (a, b)
                # A session never starts straight from Available, Reserved or Finishing.
                assert not (a in ("Available", "Reserved", "Finishing")
                            and b in ("Charging", "SuspendedEV", "SuspendedEVSE")), (a, b)
            else:
                assert valid(a, mid) and valid(mid, b), (a, mid, b)


def test_status_entries_replace_the_last_of_their_key_or_follow_it():
    class Log:
        def warn(self, *a):
            pass
    box = Outbox(Log(), journal=None)
    box.put(Entry("StatusNotification", {"status": "Preparing"}, key=1))
    assert box.keyed(1) and not box.keyed(2)
    box.put(Entry("StatusNotification", {"status": "Charging"}, key=1), replace=False)
    box.put(Entry("StatusNotification", {"status": "Finishing"}, key=1))
    assert [e.payload["status"] for e in box._items] == ["Preparing", "Finishing"]
