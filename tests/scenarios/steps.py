"""Steps shared by the scenarios, phrased as a test operator would."""
from ocpp.v16 import call

FAST = {"MeterValueSampleInterval": 2, "MinimumStatusDuration": 0}


def booted(csms, connectors=1):
    """Wait for an accepted boot and the Available statuses that follow it."""
    csms.wait_for("BootNotification")
    csms.wait_for_status(0, "Available")
    for c in range(1, connectors + 1):
        csms.wait_for_status(c, "Available")


def change_configuration(csms, key, value):
    """ChangeConfiguration.req -> the status the charger answered."""
    return csms.call(call.ChangeConfiguration(key=key, value=value)).status


def remote_start(csms, tag, connector):
    """RemoteStartTransaction.req -> the status the charger answered."""
    return csms.call(call.RemoteStartTransaction(id_tag=tag, connector_id=connector)).status


def change_availability(csms, connector, kind):
    """ChangeAvailability.req (kind "Operative" / "Inoperative") -> the answered status."""
    return csms.call(call.ChangeAvailability(connector_id=connector, type=kind)).status


def tx_id_of(csms, start):
    for tx_id, tx in csms.transactions.items():
        if tx["start"] == start:
            return tx_id
    raise AssertionError("no transaction recorded for %r" % (start,))


def start_session(csms, cp, tag="TAG1", connector=1):
    """Plug in, present a card, and return the transactionId once Charging."""
    cp.console("plug %d" % connector)
    csms.wait_for_status(connector, "Preparing")
    cp.console("swipe " + tag)
    csms.wait_for("Authorize", {"idTag": tag})
    start = csms.wait_for("StartTransaction", {"idTag": tag, "connectorId": connector})
    csms.wait_for_status(connector, "Charging")
    return tx_id_of(csms, start)
