"""MeterValue objects from the HAL meter, per the configured measurands."""
from firmware.clock import iso

_UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Voltage": "V",
    "SoC": "Percent",
}


# Measurands a three-phase meter gives per phase, in the order of Meter.phases().
_PHASED = ("Voltage", "Current.Import", "Power.Active.Import")


def _fmt(v):
    # OCPP values are strings; keep them short and free of float noise.
    if isinstance(v, float):
        s = "%.2f" % v
        s = s.rstrip("0").rstrip(".")
        return s if s and s != "-0" else "0"
    return str(v)


def meter_value(conn, measurands, context, now):
    """One MeterValue {timestamp, sampledValue[]} for connector `conn` (a Connector)."""
    m = conn.hw.meter
    out = []
    per_phase = m.phases()
    for name in measurands:
        if per_phase and name in _PHASED:
            # Phase-resolved when the meter gives them, labelled per ConnectorPhaseRotation.
            k = _PHASED.index(name)
            for p, values in enumerate(per_phase):
                v = values[k]
                out.append({"value": _fmt(float(v)), "context": context, "measurand": name,
                            "unit": _UNITS[name], "phase": conn.phase_labels[p],
                            "location": "Outlet"})
            continue
        if name == "Energy.Active.Import.Register":
            v = m.energy_wh()
        elif name == "Power.Active.Import":
            v = m.power_w()
        elif name == "Current.Import":
            v = m.current_a()
        elif name == "Voltage":
            v = m.voltage_v()
        elif name == "Current.Offered":
            v = conn.offered_a()
        elif name == "SoC":
            v = m.soc()
            if v is None:
                continue
        else:
            continue
        sv = {"value": _fmt(v), "context": context, "measurand": name, "unit": _UNITS[name]}
        if name == "SoC":
            sv["location"] = "EV"
        elif name != "Current.Offered":
            sv["location"] = "Outlet"
        out.append(sv)
    return {"timestamp": iso(now), "sampledValue": out}


def station_value(connectors, measurands, context, now):
    """MeterValue of the whole station (connector 0): energy and power summed over connectors."""
    out = []
    for name in measurands:
        if name == "Energy.Active.Import.Register":
            v = sum(c.hw.meter.energy_wh() for c in connectors)
        elif name == "Power.Active.Import":
            v = sum(c.hw.meter.power_w() for c in connectors)
        else:
            continue  # per-outlet quantities have no station-wide sum
        out.append({"value": _fmt(v), "context": context, "measurand": name, "unit": _UNITS[name],
                    "location": "Inlet"})
    return {"timestamp": iso(now), "sampledValue": out}


_ROTATIONS = ("RST", "RTS", "SRT", "STR", "TRS", "TSR")


def phase_labels(rotation, cid):
    """OCPP phase names of meter phases 1-3 on connector `cid`, from ConnectorPhaseRotation
    ("0.RST, 1.RTS" ...): the meter's phase k is wired to grid phase R, S or T = L1, L2, L3."""
    order = "RST"
    for part in rotation.split(","):
        part = part.strip()
        if part.startswith("%d." % cid) and part[len("%d." % cid):] in _ROTATIONS:
            order = part[len("%d." % cid):]
    return tuple("L%d" % ("RST".index(ch) + 1) for ch in order)
