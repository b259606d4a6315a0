"""OCPP configuration keys (OCPP 1.6 §9): types, access, defaults, checks, persistence.

Initial values come from config.json's `ocpp` section; values the Central System sets
with ChangeConfiguration are kept in `<data_dir>/keys.json` and win over config.json, so
a technician's file is never rewritten by the charger.
"""
import json

from firmware.store import write_atomic

MEASURANDS = ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
              "Current.Offered", "Voltage", "SoC")
PROFILES = "Core,FirmwareManagement,LocalAuthListManagement,Reservation,RemoteTrigger,SmartCharging"

# (name, type, writable, default, rule, reboot)
# type: "int" (rule = (lo, hi)), "bool", "csl" (measurand list, rule = max items), "str" (rule = max length)
_TABLE = (
    ("AllowOfflineTxForUnknownId", "bool", 1, False, None, 0),
    ("AuthorizationCacheEnabled", "bool", 1, True, None, 0),
    ("AuthorizeRemoteTxRequests", "bool", 1, False, None, 0),
    ("ChargeProfileMaxStackLevel", "int", 0, 8, None, 0),
    ("ChargingScheduleAllowedChargingRateUnit", "str", 0, "Current,Power", None, 0),
    ("ChargingScheduleMaxPeriods", "int", 0, 24, None, 0),
    ("ClockAlignedDataInterval", "int", 1, 0, (0, 86400), 0),
    ("ConnectionTimeOut", "int", 1, 60, (1, 3600), 0),
    ("ConnectorSwitch3to1PhaseSupported", "bool", 0, False, None, 0),
    # Read once at boot to label phase-resolved meter values (metering.phase_labels): reboot.
    ("ConnectorPhaseRotation", "str", 1, "NotApplicable", 500, 1),
    ("ConnectorPhaseRotationMaxLength", "int", 0, 9, None, 0),
    ("GetConfigurationMaxKeys", "int", 0, 64, None, 0),
    ("HeartbeatInterval", "int", 1, 300, (1, 86400), 0),
    ("LocalAuthListEnabled", "bool", 1, True, None, 0),
    ("LocalAuthListMaxLength", "int", 0, 1000, None, 0),
    ("LocalAuthorizeOffline", "bool", 1, True, None, 0),
    ("LocalPreAuthorize", "bool", 1, False, None, 0),
    ("MaxChargingProfilesInstalled", "int", 0, 8, None, 0),
    ("MaxEnergyOnInvalidId", "int", 1, 0, (0, 1000000), 0),
    ("MeterValuesAlignedData", "csl", 1, "Energy.Active.Import.Register", 6, 0),
    ("MeterValuesAlignedDataMaxLength", "int", 0, 6, None, 0),
    ("MeterValuesSampledData", "csl", 1, "Energy.Active.Import.Register", 6, 0),
    ("MeterValuesSampledDataMaxLength", "int", 0, 6, None, 0),
    ("MeterValueSampleInterval", "int", 1, 60, (0, 86400), 0),
    ("MinimumStatusDuration", "int", 1, 0, (0, 3600), 0),
    ("NumberOfConnectors", "int", 0, 1, None, 0),
    ("ReserveConnectorZeroSupported", "bool", 0, True, None, 0),
    ("ResetRetries", "int", 1, 1, (0, 10), 0),
    ("SendLocalListMaxLength", "int", 0, 100, None, 0),
    ("StopTransactionOnEVSideDisconnect", "bool", 1, True, None, 0),
    ("StopTransactionOnInvalidId", "bool", 1, True, None, 0),
    ("StopTxnAlignedData", "csl", 1, "", 6, 0),
    ("StopTxnAlignedDataMaxLength", "int", 0, 6, None, 0),
    ("StopTxnSampledData", "csl", 1, "Energy.Active.Import.Register", 6, 0),
    ("StopTxnSampledDataMaxLength", "int", 0, 6, None, 0),
    ("SupportedFeatureProfiles", "str", 0, PROFILES, None, 0),
    ("SupportedFeatureProfilesMaxLength", "int", 0, 6, None, 0),
    ("TransactionMessageAttempts", "int", 1, 3, (1, 100), 0),
    ("TransactionMessageRetryInterval", "int", 1, 10, (1, 3600), 0),
    ("UnlockConnectorOnEVSideDisconnect", "bool", 1, True, None, 0),
    ("WebSocketPingInterval", "int", 1, 60, (0, 3600), 0),
)


def _row(name):
    for row in _TABLE:
        if row[0] == name:
            return row
    return None


def names():
    return [row[0] for row in _TABLE]


def parse(name, value):
    """Parse `value` (str from ChangeConfiguration, or a JSON value from config.json) for key
    `name`. Returns the typed value or raises ValueError with the reason."""
    row = _row(name)
    if row is None:
        raise KeyError(name)
    kind, rule = row[1], row[4]
    if kind == "bool":
        if isinstance(value, bool):
            return value
        v = str(value).strip().lower()
        if v not in ("true", "false"):
            raise ValueError("expected true or false")
        return v == "true"
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError("expected a whole number")
        try:
            n = int(str(value).strip())
        except ValueError:
            raise ValueError("expected a whole number")
        if rule and not rule[0] <= n <= rule[1]:
            raise ValueError("expected %d..%d" % rule)
        return n
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if kind == "csl":
        items = [s.strip() for s in value.split(",") if s.strip()]
        if len(items) > rule:
            raise ValueError("at most %d measurands" % rule)
        for s in items:
            if s not in MEASURANDS:
                raise ValueError("unsupported measurand %s (supported: %s)" % (s, ",".join(MEASURANDS)))
        return ",".join(items)
    if rule and len(value) > rule:
        raise ValueError("at most %d characters" % rule)
    return value


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_section(section):
    """Problems of config.json's `ocpp` section as (path, message) pairs."""
    problems = []
    if not isinstance(section, dict):
        return [("ocpp", "expected an object of OCPP keys, e.g. {\"HeartbeatInterval\": 300}")]
    for name in section:
        row = _row(name)
        if row is None:
            problems.append(("ocpp." + name, "unknown OCPP key; known keys: see README"))
        elif not row[2] and name != "NumberOfConnectors":
            problems.append(("ocpp." + name, "read-only key, remove it"))
        else:
            try:
                parse(name, section[name])
            except ValueError as e:
                problems.append(("ocpp." + name, "%s (found %s)" % (e, json.dumps(section[name]))))
    return problems


class Keys:
    """The live key values of one charger."""

    def __init__(self, initial, overlay_path, connectors, log):
        self._path = overlay_path
        self._log = log
        self._values = {}
        self._changed = {}
        for row in _TABLE:
            self._values[row[0]] = row[3]
        for name in initial:
            self._values[name] = parse(name, initial[name])
        self._values["NumberOfConnectors"] = connectors
        try:
            with open(overlay_path) as f:
                saved = json.load(f)
            for name in saved:
                try:
                    self._values[name] = parse(name, saved[name])
                    self._changed[name] = saved[name]
                except (KeyError, ValueError):
                    log.warn("keys", "ignoring saved %s=%r" % (name, saved[name]))
        except OSError:
            pass
        except ValueError as e:
            log.warn("keys", "%s unreadable (%s), using config.json values" % (overlay_path, e))

    def __getitem__(self, name):
        return self._values[name]

    def get(self, name, default=None):
        return self._values.get(name, default)

    def change(self, name, value):
        """ChangeConfiguration: returns the OCPP ConfigurationStatus."""
        row = _row(name)
        if row is None:
            return "NotSupported"
        if not row[2]:
            return "Rejected"
        try:
            v = parse(name, value)
        except ValueError as e:
            self._log.info("keys", "rejected %s=%r: %s" % (name, value, e))
            return "Rejected"
        self._values[name] = v
        self._changed[name] = _text(v)
        write_atomic(self._path, json.dumps(self._changed))
        return "RebootRequired" if row[5] else "Accepted"

    def listing(self, wanted=None):
        """GetConfiguration: (configurationKey list, unknownKey list)."""
        known, unknown = [], []
        for name in (wanted if wanted else names()):
            row = _row(name)
            if row is None:
                unknown.append(name)
            else:
                known.append({"key": name, "readonly": not row[2], "value": _text(self._values[name])})
        return known, unknown

    def measurands(self, name):
        v = self._values[name]
        return v.split(",") if v else []
