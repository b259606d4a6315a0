"""Reservation profile: ReserveNow, CancelReservation, expiry, who may use a reserved connector.

The state (Reservations) is loaded on the first request, or at boot when reservations are
stored, and dropped with its module once nothing is reserved. Reservations live in
`<data_dir>/reservations.json` ({id, c, tag, parent, exp}) so they survive a reboot.
A reservation on connector 0 (ReserveConnectorZeroSupported) holds back the last free
connector for its idTag: the others stay usable by anyone.
"""
import json

from firmware import clock, store
from firmware.profiles import state_path


def load(cp):
    return Reservations(cp)


def ReserveNow(cp, req):
    return cp.feature("reservation").reserve(req)


def CancelReservation(cp, req):
    return cp.feature("reservation").cancel(req)


class Reservations:
    def __init__(self, cp):
        self.cp = cp
        self._path = state_path(cp, "reservation")
        items = store.read_json(self._path, [])
        self._items = items if isinstance(items, list) else []

    def _save(self):
        store.write_atomic(self._path, json.dumps(self._items))

    def _find(self, rid):
        for r in self._items:
            if r["id"] == rid:
                return r
        return None

    def on(self, cid):
        for r in self._items:
            if r["c"] == cid:
                return r
        return None

    def holds(self, conn):
        """The reservation that keeps `conn` from other users now, or None."""
        r = self.on(conn.id)
        if r is not None:
            return r
        zero = self.on(0)
        if zero is None:
            return None
        others = [c for c in self.cp.connectors
                  if c is not conn and c.free() and c.tx is None and c.auth_tag is None
                  and self.on(c.id) is None]
        return None if others else zero

    def matches(self, r, tag, parent):
        return tag == r["tag"] or (parent is not None and r.get("parent") == parent)

    def consume(self, r):
        if r in self._items:
            self._items.remove(r)
            self._save()
        if not self._items:
            import os
            try:
                os.remove(self._path)
            except OSError:
                pass

    def tick(self):
        """Expire reservations whose expiryDate passed; mark held connectors."""
        now = self.cp.now()
        expired = [r for r in self._items if r["exp"] <= now]
        for r in expired:
            self.cp.log.info("reserve", "reservation %d expired" % r["id"])
            self._items.remove(r)
        if expired:
            self._save() if self._items else self.consume(None)
        for c in self.cp.connectors:
            c.reserved = self.holds(c) if self._items else None
        if not self._items:
            self.cp.drop("reservation")  # nothing reserved: the module's RAM can go

    # -- requests --------------------------------------------------------------------------
    def reserve(self, req):
        cp = self.cp
        cid, rid = req["connectorId"], req["reservationId"]
        try:
            exp = clock.parse_iso(req["expiryDate"])
        except ValueError:
            return {"status": "Rejected"}
        if cid == 0:
            if not cp.keys["ReserveConnectorZeroSupported"]:
                return {"status": "Rejected"}
            targets = cp.connectors
        else:
            conn = cp.connector(cid)
            if conn is None:
                return {"status": "Rejected"}
            targets = [conn]
        if not cp.operative or all(not c.operative for c in targets):
            return {"status": "Unavailable"}
        if all(c.error_code() != "NoError" for c in targets):
            return {"status": "Faulted"}
        same = self._find(rid)
        for c in targets:
            other = self.on(c.id)
            busy = c.tx is not None or c.plugged() or c.auth_tag is not None or c.finishing
            if (not busy and c.operative and c.error_code() == "NoError"
                    and (other is None or other is same)):
                break
        else:
            return {"status": "Occupied"}
        if same is not None:
            self._items.remove(same)
        self._items.append({"id": rid, "c": cid, "tag": req["idTag"],
                            "parent": req.get("parentIdTag"), "exp": exp})
        self._save()
        cp.log.info("reserve", "connector %d reserved for %s until %s (id %d)"
                    % (cid, req["idTag"], req["expiryDate"], rid))
        return {"status": "Accepted"}

    def cancel(self, req):
        r = self._find(req["reservationId"])
        if r is None:
            return {"status": "Rejected"}
        self.consume(r)
        self.cp.log.info("reserve", "reservation %d cancelled" % r["id"])
        return {"status": "Accepted"}
