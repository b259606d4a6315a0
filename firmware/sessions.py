"""Cards at the reader and the transaction lifecycle: which connector a card is for (whether
it may charge is firmware/auth.py's answer), start, sample, stop, and what survives a power cut.

A running transaction is mirrored in `<data_dir>/tx<N>.json`: a JSON line (ref, idTag,
meterStart, start time) written whole, then one appended "meter time" line per sample. The
file is written before StartTransaction enters the journal and removed after StopTransaction
did, so at boot a file means the power went during that transaction: it is then stopped with
reason PowerLoss at its last persisted meter value (see recover()).
"""
import json
import os

from firmware import store
from firmware.compat import asyncio, const, ticks_ms, ticks_diff, ticks_add, urandom
from firmware.connector import Transaction
from firmware.metering import meter_value, station_value
from firmware.outbox import Entry

# Periodic values carried in StopTransaction.transactionData (a RAM bound).
_KEEP_SAMPLES = const(4)
# Without periodic samples, a volatile register still reaches the mirror this often.
_CHECKPOINT_S = const(300)


class Sessions:
    def __init__(self, cp):
        self.cp = cp
        self.writes = 0  # flash writes of the transaction mirrors and meter.json (wear figure)
        # Registers of volatile meters stored outside the mirrors, per connector (_secure()).
        self._meter_path = store.join(cp.cfg["_data"], "meter.json")
        filed = store.read_json(self._meter_path)
        n = len(cp.connectors)
        self._filed = filed if isinstance(filed, list) and len(filed) == n else [0] * n

    def _tx_path(self, conn):
        return store.join(self.cp.cfg["_data"], "tx%d.json" % conn.id)

    def _secure(self, conn, now, stopping=False):
        """Before a register value can leave (MeterValues, StopTransaction), put one no lower
        on flash, if the meter forgets its register at a power cut (Meter.volatile): a mirror
        line during a transaction, else (and when it stops) meter.json; nothing when it did
        not move. At boot the meter resumes from the highest (_resume())."""
        meter = conn.hw.meter
        if not meter.volatile:
            return
        wh = meter.energy_wh()
        if conn.tx is not None and not stopping:
            if wh > conn.stored_wh:
                self._persist(conn, wh, now)
        elif wh > self._filed[conn.id - 1]:
            self._filed[conn.id - 1] = wh
            conn.stored_wh = max(conn.stored_wh, wh)
            self.writes += 2
            store.write_atomic(self._meter_path, json.dumps(self._filed))

    def _resume(self, conn, mirror):
        """At boot: the register goes on from the highest reading on flash (a meter with a
        register of its own ignores it)."""
        wh = self._filed[conn.id - 1]
        if mirror is not None and mirror[1] > wh:
            wh = mirror[1]
        conn.stored_wh = wh
        conn.hw.meter.resume(wh)

    def _mirror(self, conn, tx, meter, t):
        """Start the transaction's mirror: one JSON line, written whole (tmp + rename)."""
        self.writes += 2
        conn.stored_wh = max(conn.stored_wh, meter)
        head = {"r": tx.ref, "tag": tx.id_tag, "ms": tx.meter_start, "st": tx.start_time}
        store.write_atomic(self._tx_path(conn), json.dumps(head) + "\n%d %d\n" % (meter, t))

    def _persist(self, conn, meter, t):
        """Append the latest meter reading to the mirror: one small write per sample. A line
        torn by a power cut is skipped when the mirror is read back."""
        self.writes += 1
        conn.stored_wh = max(conn.stored_wh, meter)
        with open(self._tx_path(conn), "a") as f:
            f.write("%d %d\n" % (meter, t))

    def _read_mirror(self, path):
        """(header dict, last meter, its time) of a mirror, or None."""
        try:
            with open(path) as f:
                head = store.loads(f.readline())
                meter, t = head["ms"], head["st"]
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and line.endswith("\n"):
                        try:
                            meter, t = int(parts[0]), int(parts[1])
                        except ValueError:
                            pass
            return head, meter, t
        except (OSError, ValueError, KeyError):
            return None

    # -- identification -------------------------------------------------------------------
    def present_tag(self, tag):
        """A card was presented at the reader: it ends its own transaction, withdraws its
        authorization, ends a transaction of its group (same parentIdTag, known once the card
        is authorized), or is authorized for a free connector."""
        cp = self.cp
        grouped = False
        for c in cp.connectors:
            if c.tx is not None and c.tx.id_tag == tag:
                cp.log.info("tx", "card %s ends its transaction on connector %d" % (tag, c.id))
                self.stop(c, "Local", tag)
                return
            grouped = grouped or (c.tx is not None and c.tx.parent is not None)
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
        if target is None and not grouped:
            # No group to match (TC_068: no Authorize for a card that cannot act).
            self._no_connector(tag)
            return
        asyncio.create_task(self._authorize(target, tag))

    def _no_connector(self, tag):
        self.cp.log.info("auth", "card %s: no connector free" % tag)
        self.cp.board.indicator.show("error")

    def _usable(self, conn, tag, parent):
        """Not reserved, or reserved for this tag (or its group)."""
        rs = self.cp.loaded("reservation")
        r = rs.holds(conn) if rs else None
        return r is None or rs.matches(r, tag, parent)

    async def _authorize(self, conn, tag):
        cp = self.cp
        status, parent = await cp.auth.authorize(tag)
        if status != "Accepted":
            if cp.rpc.connected and not cp.accepted:
                cp.log.warn("auth", "card %s refused: the charger is not registered with the"
                            " Central System (BootNotification %s)"
                            % (tag, cp.boot_status or "not answered yet"))
            else:
                cp.log.info("auth", "card %s %s" % (tag, status))
            cp.board.indicator.show("error")
            return
        if parent is not None:
            for c in cp.connectors:
                if c.tx is not None and c.tx.parent == parent:
                    cp.log.info("tx", "card %s of group %s ends the transaction on connector %d"
                                % (tag, parent, c.id))
                    self.stop(c, "Local", tag)
                    return
        if conn is None:
            self._no_connector(tag)
            return
        if not conn.free():
            return
        if not self._usable(conn, tag, parent):
            for c in cp.connectors:  # another free connector that is not held back?
                if (c is not conn and c.free() and c.auth_tag is None
                        and self._usable(c, tag, parent)):
                    conn = c
                    break
            else:
                cp.log.info("auth", "card %s: connector %d is reserved for another card"
                            % (tag, conn.id))
                cp.board.indicator.show("error")
                return
        conn.arm(tag, parent, cp.keys["ConnectionTimeOut"])
        conn.finishing = False
        cp.log.info("auth", "card %s accepted for connector %d" % (tag, conn.id))
        cp.kick()  # a board that is not polled ticks when told (hal/base.py Board.polled)

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
        tx.parent = conn.auth_parent
        tx.ref = "%08x" % int.from_bytes(urandom(4), "big")
        # The mirror file first: a cut before the journal append leaves a file without a Start,
        # which recover() simply deletes. The other order could leave a Start never stopped.
        self._mirror(conn, tx, meter, now)
        payload = {"connectorId": conn.id, "idTag": tag, "meterStart": meter,
                   "timestamp": cp.iso(now)}
        rs = cp.loaded("reservation")
        res = rs.holds(conn) if rs else None
        if res is not None and rs.matches(res, tag, conn.auth_parent):
            payload["reservationId"] = res["id"]
            rs.consume(res)
            conn.reserved = None
        cp.outbox.put_tx("StartTransaction", tx.ref, payload)
        conn.tx = tx
        conn.finishing = False
        conn.hw.relay.set(True)
        conn.hw.pilot.set_current_limit(conn.offered_a())
        if cp.keys.measurands("StopTxnSampledData"):
            tx.begin = meter_value(conn, cp.keys.measurands("StopTxnSampledData"),
                                   "Transaction.Begin", now)
        tx.next_sample = ticks_add(ticks_ms(), cp.keys["MeterValueSampleInterval"] * 1000)
        cp.log.info("tx", "start on connector %d for %s at %d Wh" % (conn.id, tag, meter))
        cp.board.indicator.show("charging")
        cp.kick()

    def started(self, ref, reply):
        """StartTransaction.conf for the transaction `ref` (maybe long after it started)."""
        cp = self.cp
        info = reply["idTagInfo"]
        for conn in cp.connectors:
            tx = conn.tx
            if tx is None or tx.ref != ref:
                continue
            tx.tx_id = reply["transactionId"]
            if info.get("parentIdTag"):
                tx.parent = info["parentIdTag"]  # the Central System's word on the group
            cp.auth.remember(tx.id_tag, info)
            if conn.profile is not None:
                # From RemoteStartTransaction: now it has its transaction.
                profile, conn.profile = conn.profile, None
                profile["transactionId"] = tx.tx_id
                status = cp.feature("smart").set_profile(conn.id, profile, tx.tx_id, cp.now())
                cp.log.info("smart", "remote start profile: %s" % status)
            cp.log.info("tx", "transaction %d on connector %d: %s"
                        % (tx.tx_id, conn.id, info["status"]))
            if info["status"] != "Accepted":
                tx.rejected = True
                self._deauthorized(conn)
            return

    def _deauthorized(self, conn):
        """The CSMS says the running transaction's idTag is not valid (maybe learnt offline)."""
        cp = self.cp
        if cp.keys["StopTransactionOnInvalidId"]:
            self.stop(conn, "DeAuthorized")
            return
        limit = cp.keys["MaxEnergyOnInvalidId"]
        if limit <= 0 or conn.hw.meter.energy_wh() - conn.tx.meter_start >= limit:
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
        data = [tx.begin] if tx.begin else []
        # Periodic (StopTxnSampledData) and clock-aligned (StopTxnAlignedData) samples.
        data.extend(tx.samples)
        measurands = cp.keys.measurands("StopTxnSampledData")
        if measurands:
            data.append(meter_value(conn, measurands, "Transaction.End", now))
        if data:
            payload["transactionData"] = data
        self._secure(conn, now, True)  # the mirror goes: meter.json keeps the register
        cp.outbox.put_tx("StopTransaction", tx.ref, payload)
        self._forget(conn)
        conn.profile = None
        smart = cp.loaded("smart")
        if smart is not None:
            smart.tx_ended(conn.id)
        conn.tx = None
        conn.finishing = conn.plugged()
        if conn.hw.lock is not None and (
                reason != "EVDisconnected" or cp.keys["UnlockConnectorOnEVSideDisconnect"]):
            conn.hw.lock.unlock()
        cp.log.info("tx", "stop on connector %d (%s) at %d Wh" % (conn.id, reason, meter))
        if conn.scheduled is not None:
            conn.operative = conn.scheduled
            conn.scheduled = None
            cp.save_state()
        cp.board.indicator.show("ready")
        cp.kick()

    def recover(self):
        """At boot: stop, with reason PowerLoss, every transaction the power cut short."""
        cp = self.cp
        for conn in cp.connectors:
            path = self._tx_path(conn)
            mirror = self._read_mirror(path)
            self._resume(conn, mirror)
            if mirror is None:
                self._forget(conn)
                continue
            st, last_wh, last_t = mirror
            ref = st["r"]
            stops = cp.outbox.pending_refs("StopTransaction")
            started = (ref in cp.outbox.tx_map()
                       or ref in cp.outbox.pending_refs("StartTransaction"))
            if ref not in stops and started:
                now_wh = conn.hw.meter.energy_wh()
                # A meter that kept its register knows best.
                meter = now_wh if now_wh >= last_wh else last_wh
                self._secure(conn, last_t, True)
                cp.outbox.put_tx("StopTransaction", ref, {
                    "meterStop": meter, "timestamp": cp.iso(last_t), "reason": "PowerLoss",
                    "idTag": st["tag"]})
                cp.log.warn("tx", "connector %d: transaction cut by a power loss, stopped at %d Wh"
                            % (conn.id, meter))
                conn.finishing = conn.plugged()
            self._forget(conn)

    def _forget(self, conn):
        try:
            os.remove(self._tx_path(conn))
            self.writes += 1
        except OSError:
            pass

    # -- per tick --------------------------------------------------------------------------
    def tick(self, conn):
        cp = self.cp
        if conn.guard(cp.log):  # the safety rule first (firmware/connector.py)
            self.stop(conn, "Other")
        plugged = conn.plugged()
        if plugged != conn.was_plugged:
            conn.was_plugged = plugged
            cp.log.info("hw", "connector %d %s"
                        % (conn.id, "plugged in" if plugged else "unplugged"))
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
        if tx is None:
            return
        if tx.rejected and conn.hw.relay.is_on():
            self._deauthorized(conn)  # MaxEnergyOnInvalidId reached?
        interval = cp.keys["MeterValueSampleInterval"]
        if ticks_diff(ticks_ms(), tx.next_sample) >= 0:
            # From the actual sample time: a loop that was held up must not bunch two samples
            # into one second.
            tx.next_sample = ticks_add(ticks_ms(), (interval or _CHECKPOINT_S) * 1000)
            if interval > 0:
                self.sample(conn, "Sample.Periodic")
            else:
                self._secure(conn, cp.now())

    def aligned(self, t):
        """Clock-aligned MeterValues (ClockAlignedDataInterval) at boundary `t`: connector 0
        and every connector, inside transactions too (then with their transactionId)."""
        cp = self.cp
        measurands = cp.keys.measurands("MeterValuesAlignedData")
        if measurands:
            cp.outbox.put(Entry("MeterValues", {"connectorId": 0, "meterValue": [
                station_value(cp.connectors, measurands, "Sample.Clock", t)]}))
            for conn in cp.connectors:
                self.sample(conn, "Sample.Clock", t)
        stm = cp.keys.measurands("StopTxnAlignedData")
        if stm:
            for conn in cp.connectors:
                if conn.tx is not None:
                    self._keep(conn.tx, meter_value(conn, stm, "Sample.Clock", t))

    def _keep(self, tx, mv):
        tx.samples.append(mv)
        if len(tx.samples) > _KEEP_SAMPLES:
            tx.samples.pop(0)

    def sample(self, conn, context, now=None):
        cp = self.cp
        now = cp.now() if now is None else now
        tx = conn.tx
        key = "MeterValuesAlignedData" if context == "Sample.Clock" else "MeterValuesSampledData"
        names = cp.keys.measurands(key)
        mv = meter_value(conn, names, context, now)
        payload = {"connectorId": conn.id, "meterValue": [mv]}
        if context != "Sample.Periodic":  # (a periodic sample writes its mirror line below)
            self._secure(conn, now)
        if tx is None or context == "Trigger":
            # A triggered reading answers a request now; the transaction's record is its
            # periodic samples. So it waits in RAM, one per connector (a flood of triggers
            # costs no journal write), with the transactionId once it is known.
            if tx is not None and tx.tx_id is not None:
                payload["transactionId"] = tx.tx_id
            cp.outbox.put(Entry("MeterValues", payload, key="mv%d" % conn.id
                                if context == "Trigger" else None))
        else:
            if context == "Sample.Periodic":
                # Mirror first, at a reading no lower than the sample: a PowerLoss stop
                # must never report less energy than a MeterValues already queued.
                self._persist(conn, conn.hw.meter.energy_wh(), now)
            cp.outbox.put_tx("MeterValues", tx.ref, payload)
            if context == "Sample.Periodic":
                stm = cp.keys.measurands("StopTxnSampledData")
                if stm:
                    self._keep(tx, meter_value(conn, stm, context, now))
        cp.kick()

