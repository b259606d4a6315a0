"""OCPP 1.6 JSON payload schemas as one compact string, checked on demand.

The official schemas (OCPP 1.6 JSON, draft-04) would cost tens of kB of heap
as nested dicts. Here all of them share one string, walked by index while a
message is checked, so importing this module costs little more than the text
itself and a conforming message is checked without building anything.

The table is ";"-separated entries "key/schema". Keys:
  Reset                  request the CSMS may send us (CS->CP)
  BootNotification.conf  response to a request we send (CP->CS)
  @ChargingProfile       shared sub-type, referenced by that same name

An object schema is a comma-separated list of fields, "name:type", with a
leading "!" on required fields. Every object rejects properties it does not
list (all 1.6 schemas say additionalProperties: false). Types:
  i          integer (a JSON number without fraction; not a boolean)
  d          number that is a multiple of 0.1 (limit, minChargingRate)
  s / s20    string / string of at most 20 characters
  t          date-time, as firmware.clock.parse_iso reads it
  u          URI (scheme ":" rest, no whitespace)
  =A|B|C     string, one of the listed values
  @Name      the entry "@Name": an object, or an enum if it starts "="
  *T         array whose every item is of type T
The official schemas declare no minimum/maximum anywhere, so neither does this.
"""
from firmware import clock

FORMATION = "FormationViolation"
OCCURENCE = "OccurenceConstraintViolation"  # sic: OCPP 1.6 spelling
PROPERTY = "PropertyConstraintViolation"
TYPE = "TypeConstraintViolation"

# Transcribed from the OCPP 1.6 JSON schemas; tests/unit/test_ocppj.py
# compares every entry with the official files.
_T = (
    # shared sub-types
    ";@Purpose/=ChargePointMaxProfile|TxDefaultProfile|TxProfile"
    ";@RateUnit/=A|W"
    ";@IdTagInfo/expiryDate:t,parentIdTag:s20,!status:=Accepted|Blocked|Expired|Invalid|ConcurrentTx"
    ";@ChargingProfile/!chargingProfileId:i,transactionId:i,!stackLevel:i,"
    "!chargingProfilePurpose:@Purpose,!chargingProfileKind:=Absolute|Recurring|Relative,"
    "recurrencyKind:=Daily|Weekly,validFrom:t,validTo:t,!chargingSchedule:@ChargingSchedule"
    ";@ChargingSchedule/duration:i,startSchedule:t,!chargingRateUnit:@RateUnit,"
    "!chargingSchedulePeriod:*@SchedulePeriod,minChargingRate:d"
    ";@SchedulePeriod/!startPeriod:i,!limit:d,numberPhases:i"
    ";@AuthorizationData/!idTag:s20,idTagInfo:@IdTagInfo"
    ";@FirmwareType/!location:s512,!retrieveDateTime:t,installDateTime:t,"
    "!signingCertificate:s5500,!signature:s800"
    ";@LogParameters/!remoteLocation:s512,oldestTimestamp:t,latestTimestamp:t"
    ";@CertificateUse/=CentralSystemRootCertificate|ManufacturerRootCertificate"
    ";@CertificateHashData/!hashAlgorithm:=SHA256|SHA384|SHA512,!issuerNameHash:s128,"
    "!issuerKeyHash:s128,!serialNumber:s40"
    # CS->CP requests
    ";CancelReservation/!reservationId:i"
    ";CertificateSigned/!certificateChain:s10000"
    ";ChangeAvailability/!connectorId:i,!type:=Inoperative|Operative"
    ";ChangeConfiguration/!key:s50,!value:s500"
    ";ClearCache/"
    ";ClearChargingProfile/id:i,connectorId:i,chargingProfilePurpose:@Purpose,stackLevel:i"
    ";DataTransfer/!vendorId:s255,messageId:s50,data:s"
    ";DeleteCertificate/!certificateHashData:@CertificateHashData"
    ";GetCompositeSchedule/!connectorId:i,!duration:i,chargingRateUnit:@RateUnit"
    ";GetConfiguration/key:*s50"
    ";GetDiagnostics/!location:u,retries:i,retryInterval:i,startTime:t,stopTime:t"
    ";GetInstalledCertificateIds/!certificateType:@CertificateUse"
    ";InstallCertificate/!certificateType:@CertificateUse,!certificate:s5500"
    ";GetLocalListVersion/"
    ";RemoteStartTransaction/connectorId:i,!idTag:s20,chargingProfile:@ChargingProfile"
    ";RemoteStopTransaction/!transactionId:i"
    ";ReserveNow/!connectorId:i,!expiryDate:t,!idTag:s20,parentIdTag:s20,!reservationId:i"
    ";Reset/!type:=Hard|Soft"
    ";SendLocalList/!listVersion:i,localAuthorizationList:*@AuthorizationData,"
    "!updateType:=Differential|Full"
    ";SetChargingProfile/!connectorId:i,!csChargingProfiles:@ChargingProfile"
    ";SignedUpdateFirmware/retries:i,retryInterval:i,!requestId:i,!firmware:@FirmwareType"
    ";TriggerMessage/!requestedMessage:=BootNotification|DiagnosticsStatusNotification|"
    "FirmwareStatusNotification|Heartbeat|MeterValues|StatusNotification,connectorId:i"
    ";UnlockConnector/!connectorId:i"
    ";UpdateFirmware/!location:u,retries:i,!retrieveDate:t,retryInterval:i"
    # security extension (whitepaper edition 3): security events and logs
    ";ExtendedTriggerMessage/!requestedMessage:=BootNotification|LogStatusNotification|"
    "FirmwareStatusNotification|Heartbeat|MeterValues|SignChargePointCertificate|"
    "StatusNotification,connectorId:i"
    ";GetLog/!log:@LogParameters,!logType:=DiagnosticsLog|SecurityLog,!requestId:i,retries:i,"
    "retryInterval:i"
    # responses to CP->CS requests
    ";Authorize.conf/!idTagInfo:@IdTagInfo"
    ";BootNotification.conf/!status:=Accepted|Pending|Rejected,!currentTime:t,!interval:i"
    ";DataTransfer.conf/!status:=Accepted|Rejected|UnknownMessageId|UnknownVendorId,data:s"
    ";DiagnosticsStatusNotification.conf/"
    ";FirmwareStatusNotification.conf/"
    ";Heartbeat.conf/!currentTime:t"
    ";MeterValues.conf/"
    ";SignCertificate.conf/!status:=Accepted|Rejected"
    ";StartTransaction.conf/!idTagInfo:@IdTagInfo,!transactionId:i"
    ";StatusNotification.conf/"
    ";StopTransaction.conf/idTagInfo:@IdTagInfo"
    ";LogStatusNotification.conf/"
    ";SecurityEventNotification.conf/"
    ";SignedFirmwareStatusNotification.conf/"
    ";"
)

_MAX_NAME = 40  # property names echoed in error descriptions are cut here


def _span(key):
    # (start, end) of the schema stored under key inside _T, or None.
    if not key or ";" in key or "/" in key:
        return None
    n = len(key)
    i = _T.find(key)
    while i >= 0:
        if _T[i - 1] == ";" and _T.startswith("/", i + n):
            a = i + n + 1
            return a, _T.find(";", a)
        i = _T.find(key, i + 1)
    return None


def has(key):
    return type(key) is str and _span(key) is not None


def get(key):
    """The schema string stored under key, or None."""
    s = _span(key) if type(key) is str else None
    return _T[s[0]:s[1]] if s else None


def keys():
    """Every table key, in table order."""
    out = []
    i = 1
    while i < len(_T):
        j = _T.find("/", i)
        out.append(_T[i:j])
        i = _T.find(";", j) + 1
    return out


def validate(key, payload):
    """Check payload against the schema under key.

    Returns None when it conforms, else (error_code, description) for the
    first problem found: unknown properties first, then the fields in schema
    order, depth first. Raises KeyError for a key the table does not hold.
    """
    s = _span(key)
    if s is None:
        raise KeyError(key)
    if type(payload) is not dict:
        return FORMATION, "payload: expected object, got " + _jtype(payload)
    err = _object(s[0], s[1], payload)
    if err:
        return err[0], err[1] + ": " + err[2]
    return None


# The checks below walk _T by index instead of splitting it, and build the
# error path only on the way out of a failure. Errors are (code, path, why).

def _jtype(v):
    t = type(v)
    if t is dict:
        return "object"
    if t is list:
        return "array"
    if t is str:
        return "string"
    if t is bool:
        return "boolean"
    if t is int:
        return "integer"
    if t is float:
        return "number"
    if v is None:
        return "null"
    return "unknown"


def _has_field(a, b, name):
    # A field name in _T[a:b] follows the start, "," or "!" and precedes ":".
    if not name or "," in name or ":" in name or "!" in name:
        return False
    n = len(name)
    i = _T.find(name, a, b)
    while i >= 0:
        if i + n < b and _T[i + n] == ":" and (i == a or _T[i - 1] in ",!"):
            return True
        i = _T.find(name, i + 1, b)
    return False


def _join(name, path):
    if not path:
        return name
    if path[0] == "[":
        return name + path
    return name + "." + path


def _object(i, n, obj):
    for k in obj:
        if type(k) is not str or not _has_field(i, n, k):
            k = str(k)
            if len(k) > _MAX_NAME:
                k = k[:_MAX_NAME] + "..."
            return FORMATION, k, "unknown property"
    while i < n:
        e = _T.find(",", i, n)
        if e < 0:
            e = n
        req = _T[i] == "!"
        if req:
            i += 1
        c = _T.find(":", i, e)
        name = _T[i:c]
        if name in obj:
            err = _value(c + 1, e, obj[name])
            if err:
                return err[0], _join(name, err[1]), err[2]
        elif req:
            return OCCURENCE, name, "required property missing"
        i = e + 1
    return None


def _value(a, b, v):
    t = _T[a]
    if t == "@":
        a, b = _span(_T[a:b])
        if _T[a] != "=":
            if type(v) is not dict:
                return TYPE, "", "expected object, got " + _jtype(v)
            return _object(a, b, v)
        t = "="
    if t == "*":
        if type(v) is not list:
            return TYPE, "", "expected array, got " + _jtype(v)
        for i in range(len(v)):
            err = _value(a + 1, b, v[i])
            if err:
                return err[0], "[%d]" % i + _join("", err[1]), err[2]
        return None
    if t == "i":
        if type(v) is not int:
            return TYPE, "", "expected integer, got " + _jtype(v)
        return None
    if t == "d":
        if type(v) is float:
            # multipleOf 0.1, with room for binary rounding (single-precision
            # floats on the ESP32); inf and nan fail the comparison.
            x = v * 10
            r = x % 1.0
            if not min(r, 1.0 - r) <= 1e-6 * abs(x):
                return PROPERTY, "", "not a multiple of 0.1"
            return None
        if type(v) is not int:
            return TYPE, "", "expected number, got " + _jtype(v)
        return None
    if type(v) is not str:
        return TYPE, "", "expected string, got " + _jtype(v)
    if t == "s":
        m = 0
        for i in range(a + 1, b):
            m = m * 10 + ord(_T[i]) - 48
        if b > a + 1 and len(v) > m:
            return PROPERTY, "", "longer than %d characters" % m
    elif t == "=":
        if not _in_enum(a + 1, b, v):
            return PROPERTY, "", "not one of " + _T[a + 1:b]
    elif t == "t":
        try:
            clock.parse_iso(v)
        except ValueError:
            return PROPERTY, "", "not an RFC 3339 date-time"
    elif t == "u":
        if not _is_uri(v):
            return PROPERTY, "", "not a URI"
    return None


def _in_enum(a, b, v):
    # Is v one of the "|"-separated values in _T[a:b]?
    n = len(v)
    if not n or "|" in v:
        return False
    i = _T.find(v, a, b)
    while i >= 0:
        if (i == a or _T[i - 1] == "|") and (i + n == b or _T[i + n] == "|"):
            return True
        i = _T.find(v, i + 1, b)
    return False


def _is_uri(s):
    # RFC 3986 absolute URI at a glance: scheme = ALPHA *(ALPHA / DIGIT /
    # "+" / "-" / "."), then ":" and something without spaces or controls.
    c = s.find(":")
    if c < 1 or c == len(s) - 1:
        return False
    for i in range(c):
        o = ord(s[i])
        alpha = 65 <= o <= 90 or 97 <= o <= 122
        if not alpha and (i == 0 or not (48 <= o <= 57 or s[i] in "+-.")):
            return False
    for ch in s:
        o = ord(ch)
        if o <= 32 or o == 127:
            return False
    return True
