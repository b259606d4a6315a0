"""OCPP configuration keys (OCPP 1.6 §9): types, access, defaults, checks, persistence.

Initial values come from config.json's `ocpp` section; values the Central System sets
with ChangeConfiguration are kept in `<data_dir>/keys.json` and win over config.json, so
a technician's file is never rewritten by the charger.

The key table is one string, searched when a key is needed: as a tuple of tuples it took
~7 kB of heap, as text under 2 kB. Each ";"-separated row is "name type access default [rule]",
fields separated by one space (an empty default leaves two spaces). Types:
  i  integer; rule "lo-hi", given for writable keys
  b  boolean, default "true" or "false"
  c  comma-separated measurand list (MEASURANDS); rule = max items
  s  string; rule = max length
Access: r read-only, w writable, W writable and takes effect after a reboot, x write-only
(a secret: GetConfiguration never lists it, ChangeConfiguration hands it to its owner module,
see firmware/secprofile.py).
Rows are in GetConfiguration's order.
"""
import json

from firmware import profiles, store
from firmware.store import write_atomic

MEASURANDS = ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import",
              "Current.Offered", "Voltage", "SoC")

_T = (
    ";AllowOfflineTxForUnknownId b w false"
    ";AuthorizationCacheEnabled b w true"
    # Write-only: kept in <data_dir>/authkey.json by firmware/secprofile.py, never here.
    ";AuthorizationKey s x  40"
    ";AuthorizeRemoteTxRequests b w false"
    ";CertificateSignedMaxChainSize i r 10000"
    ";CertificateStoreMaxLength i r 8"
    ";ChargeProfileMaxStackLevel i r 8"
    ";ChargingScheduleAllowedChargingRateUnit s r Current,Power"
    ";ChargingScheduleMaxPeriods i r 24"
    ";ClockAlignedDataInterval i w 0 0-86400"
    ";ConnectionTimeOut i w 60 1-3600"
    ";ConnectorSwitch3to1PhaseSupported b r false"
    # Read once at boot to label phase-resolved meter values (metering.phase_labels): reboot.
    ";ConnectorPhaseRotation s W NotApplicable 500"
    ";ConnectorPhaseRotationMaxLength i r 9"
    ";CpoName s w  64"
    ";GetConfigurationMaxKeys i r 64"
    ";HeartbeatInterval i w 300 1-86400"
    ";LocalAuthListEnabled b w true"
    ";LocalAuthListMaxLength i r 1000"
    ";LocalAuthorizeOffline b w true"
    ";LocalPreAuthorize b w false"
    ";MaxChargingProfilesInstalled i r 8"
    ";MaxEnergyOnInvalidId i w 0 0-1000000"
    ";MeterValuesAlignedData c w Energy.Active.Import.Register 6"
    ";MeterValuesAlignedDataMaxLength i r 6"
    ";MeterValuesSampledData c w Energy.Active.Import.Register 6"
    ";MeterValuesSampledDataMaxLength i r 6"
    ";MeterValueSampleInterval i w 60 0-86400"
    ";MinimumStatusDuration i w 0 0-3600"
    ";NumberOfConnectors i r 1"
    ";ReserveConnectorZeroSupported b r true"
    ";ResetRetries i w 1 0-10"
    # Changed through firmware/secprofile.py (no downgrade, tried before it is kept).
    ";SecurityProfile i w 0 0-3"
    ";SendLocalListMaxLength i r 100"
    ";StopTransactionOnEVSideDisconnect b w true"
    ";StopTransactionOnInvalidId b w true"
    ";StopTxnAlignedData c w  6"
    ";StopTxnAlignedDataMaxLength i r 6"
    ";StopTxnSampledData c w Energy.Active.Import.Register 6"
    ";StopTxnSampledDataMaxLength i r 6"
    # Its value comes from firmware/profiles.py.
    ";SupportedFeatureProfiles s r -"
    ";SupportedFeatureProfilesMaxLength i r 6"
    ";TransactionMessageAttempts i w 3 1-100"
    ";TransactionMessageRetryInterval i w 10 1-3600"
    ";UnlockConnectorOnEVSideDisconnect b w true"
    ";WebSocketPingInterval i w 60 0-3600"
    ";"
)


def _row(name):
    """[name, type, access, default(, rule)] of key `name`, or None."""
    i = _T.find(";" + name + " ")
    if i < 0:
        return None
    row = _T[i + 1:_T.find(";", i + 1)].split(" ")
    # A name holding " " or ";" could match across fields or rows.
    return row if row[0] == name else None


def names():
    """Every key name in table order, cut from the table in place (a copy of the 1.5 KB
    table was the largest allocation of a GetConfiguration)."""
    out, i, end = [], 0, len(_T) - 1
    while i < end:
        j = _T.find(" ", i)
        out.append(_T[i + 1:j])
        i = _T.find(";", j)
    return out


def parse(name, value):
    """Parse `value` (str from ChangeConfiguration, or a JSON value from config.json) for key
    `name`. Returns the typed value or raises ValueError with the reason."""
    row = _row(name)
    if row is None:
        raise KeyError(name)
    return _typed(row, value)


def _typed(row, value):
    """`value` checked and typed by the key's table row (see parse)."""
    kind = row[1]
    rule = row[4] if len(row) > 4 else None
    if kind == "b":
        if isinstance(value, bool):
            return value
        v = str(value).strip().lower()
        if v not in ("true", "false"):
            raise ValueError("expected true or false")
        return v == "true"
    if kind == "i":
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError("expected a whole number")
        try:
            n = int(str(value).strip())
        except ValueError:
            raise ValueError("expected a whole number")
        if rule:
            lo, hi = rule.split("-")
            lo, hi = int(lo), int(hi)
            if not lo <= n <= hi:
                raise ValueError("expected %d..%d" % (lo, hi))
        return n
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if kind == "c":
        items = [s.strip() for s in value.split(",") if s.strip()]
        if len(items) > int(rule):
            raise ValueError("at most %s measurands" % rule)
        for s in items:
            if s not in MEASURANDS:
                raise ValueError("unsupported measurand %s (supported: %s)"
                                 % (s, ",".join(MEASURANDS)))
        return ",".join(items)
    if rule and len(value) > int(rule):
        raise ValueError("at most %s characters" % rule)
    return value


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def secret(name):
    """Whether OCPP key `name` is secret: write-only (access "x"), its value never shown."""
    row = _row(name)
    return row is not None and row[2] == "x"


def check_section(section):
    """Problems of config.json's `ocpp` section as (path, message) pairs."""
    problems = []
    if not isinstance(section, dict):
        return [("ocpp", "expected an object of OCPP keys, e.g. {\"HeartbeatInterval\": 300}")]
    for name in section:
        row = _row(name)
        if row is None:
            problems.append(("ocpp." + name, "unknown OCPP key; known keys: see README"))
        elif row[2] == "r" and name != "NumberOfConnectors":
            problems.append(("ocpp." + name, "read-only key, remove it"))
        elif row[2] == "x":  # a secret does not belong in config.json
            problems.append(("ocpp." + name, "write-only key, set csms.password instead"))
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
        # name -> typed value. A key still at its table default is added on first read, under
        # the caller's name string, so the table's names are never copied onto the heap.
        self._values = {}
        self._changed = {}
        for name in initial:
            self._values[name] = parse(name, initial[name])
        self._values["NumberOfConnectors"] = connectors
        self._values["SupportedFeatureProfiles"] = profiles.supported()
        try:
            with open(overlay_path) as f:
                saved = store.loads(f.read())  # strict: a lenient parse may drop keys
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
        v = self._values.get(name)   # never None: parse() returns bool, int or str
        if v is None:
            row = _row(name)
            if row is None:
                raise KeyError(name)
            v = self._values[name] = _typed(row, row[3])
        return v

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def override(self, name, value):
        """Set a key for this power cycle only (HeartbeatInterval from BootNotification)."""
        self._values[name] = value

    def change(self, name, value):
        """ChangeConfiguration: returns the OCPP ConfigurationStatus."""
        row = _row(name)
        if row is None:
            return "NotSupported"
        if row[2] == "r" or row[2] == "x":  # "x": only its owner module changes it
            return "Rejected"
        try:
            v = _typed(row, value)
        except ValueError as e:
            self._log.info("keys", "rejected %s=%r: %s" % (name, value, e))
            return "Rejected"
        self._values[name] = v
        self._changed[name] = _text(v)
        write_atomic(self._path, json.dumps(self._changed))
        return "RebootRequired" if row[2] == "W" else "Accepted"

    def listing(self, wanted=None):
        """GetConfiguration: (configurationKey list, unknownKey list)."""
        known, unknown = [], []
        for name in (wanted if wanted else names()):
            row = _row(name)
            if row is None or row[2] == "x":  # a write-only key is never shown
                if wanted:
                    unknown.append(name)
            else:
                # Not self[name]: that would keep these names, copied from the table, in _values.
                v = self._values.get(name)
                if v is None:
                    v = _typed(row, row[3])
                known.append({"key": name, "readonly": row[2] == "r", "value": _text(v)})
        return known, unknown

    def measurands(self, name):
        v = self[name]
        return v.split(",") if v else []
