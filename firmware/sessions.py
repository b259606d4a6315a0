"""Authorization and the transaction lifecycle: who may charge, start, sample, stop."""
from firmware.compat import asyncio, ticks_ms, ticks_diff, ticks_add
from firmware.connector import Transaction
from firmware.metering import meter_value
from firmware.outbox import Entry

_KEEP_SAMPLES = 4  # periodic values carried in StopTransaction.transactionData (RAM bound)


class Sessions:
    def __init__(self, cp):
        self.cp = cp

    # -- identification -------------------------------------------------------------------
    def present_tag(self, tag):
        """A card was presented at the reader."""
        cp = self.cp
        for c in cp.connectors:
            if c.tx is not None and c.tx.id_tag == tag:
                cp.log.info("tx", "card %s ends its transaction on connector %d" % (tag, c.id))
                self.stop(c, "Local", tag)
                return
        for c in cp.connectors:
            if c.auth_tag == tag:
                c.auth_tag = None  # presented again before plugging in: cancel
                cp.log.info("auth", "card %s withdrawn from connector %d" % (tag, c.id))
                return
        target = None
        for c in cp.connectors:
            if c.free() and c.auth_tag is None and c.plugged() and not c.finishing:
                target = c
                break
        if target is None:
            for c in cp.connectors:
                if c.free() and c.auth_tag is None and not c.plugged():
                    target = c
                    break
        if target is None:
            cp.log.info("auth", "card %s: no connector free" % tag)
            cp.board.indicator.show("error")
            return
        asyncio.create_task(self._authorize(target, tag))

    async def _authorize(self, conn, tag):
        cp = self.cp
        status, parent = await self.authorize(tag)
        if status != "Accepted":
            cp.log.info("auth", "card %s %s" % (tag, status))
            cp.board.indicator.show("error")
            return
        if not conn.free():
            return
        conn.arm(tag, parent, cp.keys["ConnectionTimeOut"])
        conn.finishing = False
        cp.log.info("auth", "card %s accepted for connector %d" % (tag, conn.id))

    async def authorize(self, tag):
        """(status, parentIdTag) for `tag`: see firmware/auth.py."""
        return await self.cp.auth.authorize(tag)

    # -- transactions ----------------------------------------------------------------------
    def start(self, conn):
        cp = self.cp
        tag = conn.auth_tag
        conn.auth_tag = None
        now = cp.now()
        meter = conn.hw.meter.energy_wh()
        if conn.hw.lock is not None and not conn.hw.lock.lock():
            # Never energise an unlocked socket: report the fault, start nothing.
            conn.lock_failed = True
            cp.log.warn("tx", "connector %d: lock failed, no transaction" % conn.id)
            return
        tx = Transaction(conn.id, tag, meter, now)
        conn.tx = tx
        conn.finishing = False
        conn.hw.pilot.set_current_limit(conn.max_current)
        conn.hw.relay.set(True)
        if cp.keys.measurands("StopTxnSampledData"):
            tx.begin = meter_value(conn, cp.keys.measurands("StopTxnSampledData"), "Transaction.Begin", now)
        tx.next_sample = ticks_add(ticks_ms(), cp.keys["MeterValueSampleInterval"] * 1000)
        payload = {"connectorId": conn.id, "idTag": tag, "meterStart": meter, "timestamp": cp.iso(now)}
        cp.log.info("tx", "start on connector %d for %s at %d Wh" % (conn.id, tag, meter))
        cp.outbox.put(Entry("StartTransaction", payload, tx, lambda r: self._started(conn, tx, r)))
        cp.board.indicator.show("charging")

    def _started(self, conn, tx, reply):
        tx.tx_id = reply["transactionId"]
        self.cp.auth.remember(tx.id_tag, reply["idTagInfo"])
        status = reply["idTagInfo"]["status"]
        self.cp.log.info("tx", "transaction %d on connector %d: %s" % (tx.tx_id, conn.id, status))
        if status == "Accepted" or conn.tx is not tx:
            return
        tx.rejected = True
        if self.cp.keys["StopTransactionOnInvalidId"]:
            self.stop(conn, "DeAuthorized")
        else:
            conn.hw.relay.set(False)  # keep the transaction, stop the energy
            conn.hw.pilot.set_current_limit(None)

    def stop(self, conn, reason, tag=None):
        """End the running transaction on `conn` and queue its StopTransaction."""
        cp = self.cp
        tx = conn.tx
        if tx is None:
            return
        conn.hw.relay.set(False)
        conn.hw.pilot.set_current_limit(None)
        now = cp.now()
        meter = max(conn.hw.meter.energy_wh(), tx.meter_start)
        payload = {"meterStop": meter, "timestamp": cp.iso(now), "reason": reason}
        if tag:
            payload["idTag"] = tag
        data = []
        measurands = cp.keys.measurands("StopTxnSampledData")
        if measurands:
            if tx.begin:
                data.append(tx.begin)
            data.extend(tx.samples)
            data.append(meter_value(conn, measurands, "Transaction.End", now))
        if data:
            payload["transactionData"] = data
        conn.tx = None
        conn.finishing = conn.plugged()
        if conn.hw.lock is not None and (reason != "EVDisconnected" or cp.keys["UnlockConnectorOnEVSideDisconnect"]):
            conn.hw.lock.unlock()
        cp.log.info("tx", "stop on connector %d (%s) at %d Wh" % (conn.id, reason, meter))
        cp.outbox.put(Entry("StopTransaction", payload, tx))
        if conn.scheduled is not None:
            conn.operative = conn.scheduled
            conn.scheduled = None
            cp.save_state()
        cp.board.indicator.show("ready")

    # -- per tick --------------------------------------------------------------------------
    def tick(self, conn):
        cp = self.cp
        plugged = conn.plugged()
        if plugged != conn.was_plugged:
            conn.was_plugged = plugged
            cp.log.info("hw", "connector %d %s" % (conn.id, "plugged in" if plugged else "unplugged"))
            if not plugged:
                conn.finishing = False
                conn.lock_failed = False
                if conn.tx is not None and cp.keys["StopTransactionOnEVSideDisconnect"]:
                    self.stop(conn, "EVDisconnected")
                    conn.finishing = False
        if conn.auth_tag is not None:
            if plugged and conn.free() and not conn.finishing:
                self.start(conn)
            elif conn.auth_expired():
                cp.log.info("auth", "connector %d: no cable within ConnectionTimeOut" % conn.id)
                conn.auth_tag = None
        tx = conn.tx
        interval = cp.keys["MeterValueSampleInterval"]
        if tx is not None and interval > 0 and ticks_diff(ticks_ms(), tx.next_sample) >= 0:
            tx.next_sample = ticks_add(tx.next_sample, interval * 1000)
            if ticks_diff(ticks_ms(), tx.next_sample) > 0:  # we fell behind (e.g. interval shortened)
                tx.next_sample = ticks_add(ticks_ms(), interval * 1000)
            self.sample(conn, "Sample.Periodic")

    def sample(self, conn, context):
        cp = self.cp
        now = cp.now()
        tx = conn.tx
        mv = meter_value(conn, cp.keys.measurands("MeterValuesSampledData"), context, now)
        if tx is not None and context == "Sample.Periodic":
            stm = cp.keys.measurands("StopTxnSampledData")
            if stm:
                tx.samples.append(meter_value(conn, stm, context, now))
                if len(tx.samples) > _KEEP_SAMPLES:
                    tx.samples.pop(0)
        cp.outbox.put(Entry("MeterValues", {"connectorId": conn.id, "meterValue": [mv]}, tx))
