"""OCPP-J 1.6 message framing (OCPP-J 1.6 §4) and payload checks.

A frame is a JSON array:
  CALL        [2, "<id>", "<Action>", {payload}]
  CALLRESULT  [3, "<id>", {payload}]
  CALLERROR   [4, "<id>", "<errorCode>", "<errorDescription>", {errorDetails}]

How a bad frame maps to a 1.6 error code (decode), checked in this order:
  - not JSON, not an array, fewer than 2 elements, message id not a string
    or longer than 36 characters: FormationViolation, msg_id None (the id
    cannot be trusted, so the reply goes to "-1").
  - MessageTypeId other than the integers 2, 3, 4 (5, "2", 2.0, true, ...):
    ProtocolError; the frame is JSON, but not a message this protocol has.
  - type and id readable but trailing elements missing (e.g. [2, "id",
    "Reset"]): ProtocolError, "incomplete". Too many elements, an action that
    is not a string, a payload that is not an object: FormationViolation.
  - Exception: a CALLERROR is never answered, so a CALLERROR without
    errorDescription and/or errorDetails is accepted ("" and {}) to let the
    pending call it answers be resolved.
Every OcppError carries msg_type: 2, 3 or 4 when the frame is known to be
that kind, None when the kind could not be read. Answer with a CALLERROR
only when msg_type is CALL or None, never to a CALLRESULT or CALLERROR.

check_request / check_response (payloads, per firmware.schema16):
  action unknown to OCPP 1.6: NotImplemented; a 1.6 action that travels the
  other way (the CSMS sending us BootNotification): NotSupported; payload not
  an object or with a property the schema lacks: FormationViolation; required
  property missing: OccurenceConstraintViolation; wrong JSON type (bool or
  1.5 for an integer, "1" for an integer, ...): TypeConstraintViolation;
  value outside an enum, too long, not a multiple of 0.1, unparseable
  date-time or URI: PropertyConstraintViolation.
"""
import json

from firmware import schema16
from firmware.compat import const

CALL = const(2)
CALLRESULT = const(3)
CALLERROR = const(4)

_MAX_ID = const(36)

NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = schema16.FORMATION
PROPERTY_CONSTRAINT_VIOLATION = schema16.PROPERTY
OCCURENCE_CONSTRAINT_VIOLATION = schema16.OCCURENCE
TYPE_CONSTRAINT_VIOLATION = schema16.TYPE
GENERIC_ERROR = "GenericError"

ERROR_CODES = (
    NOT_IMPLEMENTED, NOT_SUPPORTED, INTERNAL_ERROR, PROTOCOL_ERROR, SECURITY_ERROR,
    FORMATION_VIOLATION, PROPERTY_CONSTRAINT_VIOLATION, OCCURENCE_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION, GENERIC_ERROR,
)

_CONF = ".conf"


class OcppError(Exception):
    """A message that has to be refused with a CALLERROR.

    code: OCPP 1.6 error code; description: what is wrong, naming the field;
    msg_id: the message id, or None when it could not be read; details: dict;
    msg_type: MessageTypeId of the offending frame, None if unreadable.
    """

    def __init__(self, code, description="", msg_id=None, details=None, msg_type=None):
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.msg_id = msg_id
        self.details = {} if details is None else details
        self.msg_type = msg_type

    def __str__(self):
        return self.code + ": " + self.description


def _valid_id(v):
    return type(v) is str and len(v) <= _MAX_ID


def decode(text):
    """Parse one frame (str or bytes) into a tuple:

    (CALL, id, action, payload) | (CALLRESULT, id, payload)
    | (CALLERROR, id, code, description, details). Raises OcppError.
    """
    try:
        msg = json.loads(text)
    except (ValueError, TypeError, RuntimeError):
        # RuntimeError: CPython's parser recurses (RecursionError) on deep input.
        raise OcppError(FORMATION_VIOLATION, "frame is not valid JSON")
    if type(msg) is not list:
        raise OcppError(FORMATION_VIOLATION, "frame is not a JSON array")
    if len(msg) < 2:
        raise OcppError(FORMATION_VIOLATION, "frame has fewer than 2 elements")
    mid = msg[1]
    if not _valid_id(mid):
        raise OcppError(FORMATION_VIOLATION,
                        "message id must be a string of at most 36 characters")
    kind = msg[0]
    if type(kind) is not int or kind < CALL or kind > CALLERROR:
        raise OcppError(PROTOCOL_ERROR, "unknown MessageTypeId", mid)
    n = len(msg)
    if kind == CALL:
        _need(n, 4, 4, mid, kind)
        if type(msg[2]) is not str:
            raise OcppError(FORMATION_VIOLATION, "action must be a string", mid, None, kind)
        _need_object(msg[3], mid, kind)
        return CALL, mid, msg[2], msg[3]
    if kind == CALLRESULT:
        _need(n, 3, 3, mid, kind)
        _need_object(msg[2], mid, kind)
        return CALLRESULT, mid, msg[2]
    _need(n, 3, 5, mid, kind)
    code = msg[2]
    desc = msg[3] if n > 3 else ""
    details = msg[4] if n > 4 else {}
    if type(code) is not str or type(desc) is not str:
        raise OcppError(FORMATION_VIOLATION, "errorCode and errorDescription must be strings",
                        mid, None, kind)
    if type(details) is not dict:
        raise OcppError(FORMATION_VIOLATION, "errorDetails must be an object", mid, None, kind)
    return CALLERROR, mid, code, desc, details


def _need(n, lo, hi, mid, kind):
    if n < lo:
        raise OcppError(PROTOCOL_ERROR, "incomplete message: %d of %d elements" % (n, lo),
                        mid, None, kind)
    if n > hi:
        raise OcppError(FORMATION_VIOLATION, "too many elements: %d" % n, mid, None, kind)


def _need_object(p, mid, kind):
    if type(p) is not dict:
        raise OcppError(FORMATION_VIOLATION, "payload must be a JSON object", mid, None, kind)


def _dumps(frame):
    return json.dumps(frame, separators=(",", ":"))


def _check_id(msg_id):
    if not _valid_id(msg_id):
        raise ValueError("message id must be a string of at most 36 characters")


def encode_call(msg_id, action, payload):
    """A CALL as one string (the charger sends call_pieces())."""
    return "".join(call_pieces(msg_id, action, payload))


def encode_result(msg_id, payload):
    """A CALLRESULT as one string (the charger sends result_pieces())."""
    return "".join(result_pieces(msg_id, payload))


def pieces(value, compact=True):
    """The compact JSON of `value` (what json.dumps with separators (",", ":") gives) as an
    iterator of small strings: a container holding containers is opened member by member; a
    flat one, a key or a scalar is one piece. A big reply (GetConfiguration of every key, a
    StopTransaction with its transactionData) never exists as one string: ws.Connection.send
    takes the pieces and sends them in bounded frames. compact=False: json.dumps's default
    separators (", " and ": "), as the journal stores records."""
    if isinstance(value, dict):
        items = value.items()
        nested = any(isinstance(v, (dict, list, tuple)) for v in value.values())
    elif isinstance(value, (list, tuple)):
        items = value
        nested = any(isinstance(v, (dict, list, tuple)) for v in value)
    else:
        nested = False
    if not nested:
        yield _dumps(value) if compact else json.dumps(value)
        return
    is_dict = isinstance(value, dict)
    comma, colon = (",", ":") if compact else (", ", ": ")
    yield "{" if is_dict else "["
    sep = ""
    for item in items:
        if is_dict:
            yield sep + json.dumps(item[0]) + colon
            item = item[1]
        elif sep:
            yield sep
        yield from pieces(item, compact)
        sep = comma
    yield "}" if is_dict else "]"


def call_pieces(msg_id, action, payload):
    """encode_call() as pieces (see pieces())."""
    _check_id(msg_id)
    return pieces([CALL, msg_id, action, payload])


def result_pieces(msg_id, payload):
    """encode_result() as pieces (see pieces())."""
    _check_id(msg_id)
    return pieces([CALLRESULT, msg_id, payload])


def encode_error(msg_id, code, description="", details=None):
    """A CALLERROR frame; msg_id None (unreadable id) is sent as "-1"."""
    if msg_id is None:
        msg_id = "-1"
    _check_id(msg_id)
    if code not in ERROR_CODES:
        raise ValueError("not an OCPP 1.6 error code: " + str(code))
    return _dumps([CALLERROR, msg_id, code, description, {} if details is None else details])


def is_known(action):
    """True for any OCPP 1.6 action name, in either direction."""
    if type(action) is not str or not action or action[0] == "@" or "." in action:
        return False
    return schema16.has(action) or schema16.has(action + _CONF)


def check_request(action, payload, msg_id=None):
    """Raise OcppError unless payload is a valid CS->CP request `action`."""
    if not is_known(action):
        raise OcppError(NOT_IMPLEMENTED, "unknown action: " + str(action)[:40],
                        msg_id, None, CALL)
    if not schema16.has(action):
        raise OcppError(NOT_SUPPORTED, action + " is sent by a charge point, not to it",
                        msg_id, None, CALL)
    _raise(schema16.validate(action, payload), msg_id, CALL)


def check_response(action, payload, msg_id=None):
    """Raise OcppError unless payload is a valid answer to our request `action`."""
    if not is_known(action):
        raise OcppError(NOT_IMPLEMENTED, "unknown action: " + str(action)[:40],
                        msg_id, None, CALLRESULT)
    if not schema16.has(action + _CONF):
        raise OcppError(NOT_SUPPORTED, action + " is not sent by a charge point",
                        msg_id, None, CALLRESULT)
    _raise(schema16.validate(action + _CONF, payload), msg_id, CALLRESULT)


def _raise(err, msg_id, kind):
    if err:
        raise OcppError(err[0], err[1], msg_id, None, kind)
