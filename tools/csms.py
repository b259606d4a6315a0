"""Local OCPP 1.6J Central System for exercising the charge-point firmware.

Built on the `ocpp` package (ocpp.v16) and `websockets` (asyncio API). It is
deliberately stricter than a production CSMS: every frame from a charger is
checked against the OCPP-J framing rules and the official 1.6 JSON schemas,
including `date-time` formats, which the `ocpp` package alone does not check.
Anything wrong is answered the way the spec says (CALLERROR where possible)
and also appended to `CentralSystem.violations`, so a test can fail on it.

Everything that crosses the wire is kept in `ledger`; transactions, meter
values and status notifications are also kept in audit-friendly structures.

Run by hand:  python -m tools.csms --help
"""

import argparse
import asyncio
import base64
import binascii
import calendar
import collections
import datetime
import decimal
import errno
import hmac
import json
import re
import ssl as ssl_module
import sys
import time
import traceback
import urllib.parse
import uuid
from pathlib import Path

import ocpp.v16
from jsonschema import Draft4Validator, FormatChecker
from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call
from ocpp.messages import CallError as LibCallError
from ocpp.messages import CallResult as LibCallResult
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

SUBPROTOCOL = "ocpp1.6"

# OCPP-J 1.6 section 4.1.3: the unique id is a string of at most 36 characters.
_MAX_UNIQUE_ID = 36

# OCPP-J 1.6 table "Valid Error Codes". The two misspellings are normative for
# 1.6 (errata sheet, "known issues that will not be fixed").
ERROR_CODES_16 = frozenset((
    "NotImplemented", "NotSupported", "InternalError", "ProtocolError",
    "SecurityError", "FormationViolation", "PropertyConstraintViolation",
    "OccurenceConstraintViolation", "TypeConstraintViolation", "GenericError",
))

# Which 1.6 error code answers a Call whose payload fails a schema keyword.
_CODE_BY_KEYWORD = {
    "type": "TypeConstraintViolation",
    "required": "ProtocolError",            # "Payload for Action is incomplete"
    "additionalProperties": "FormationViolation",
    "format": "FormationViolation",
    "minItems": "OccurenceConstraintViolation",
    "maxItems": "OccurenceConstraintViolation",
}

_SCHEMA_DIR = Path(ocpp.v16.__file__).resolve().parent / "schemas"
_ACTION_NAME = re.compile(r"[A-Za-z]{1,64}")

# Slack when checking that a charger waited the BootNotification interval;
# both ends share this host's monotonic clock, so this only absorbs scheduling.
_BOOT_INTERVAL_SLACK = 0.25

Frame = collections.namedtuple("Frame", "t cp_id direction raw parsed")
Frame.__doc__ = """One WebSocket message. t: time.monotonic(); direction "in"
(charger -> CSMS) or "out"; raw: str (text frame) or bytes (binary frame);
parsed: the decoded JSON value, None when the frame is not JSON."""

Record = collections.namedtuple("Record", "t cp_id payload")


# ---------------------------------------------------------------- strictness

_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)


def is_rfc3339_date_time(text):
    """True if `text` is an RFC 3339 section 5.6 `date-time`.

    The separator must be "T" and an offset ("Z" or +hh:mm) is mandatory; the
    ABNF is case-insensitive, so "t"/"z" are accepted. Field ranges are checked
    against the calendar (2026-02-29 is rejected). Second 60 is allowed because
    the grammar allows leap seconds.
    """
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not 1 <= month <= 12:
        return False
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    if hour > 23 or minute > 59 or second > 60:
        return False
    off_h, off_m = m.group(7), m.group(8)
    if off_h is not None and (int(off_h) > 23 or int(off_m) > 59):
        return False
    return True


def strict_format_checker():
    """A FormatChecker whose `date-time` check really runs.

    jsonschema only registers `date-time` when the optional rfc3339-validator
    package is importable; otherwise the format silently passes. The 1.6
    schemas use only `date-time` and `uri` (the latter only in CSMS -> charger
    requests), so a private checker with our own RFC 3339 test is enough.
    """
    checker = FormatChecker(formats=())

    @checker.checks("date-time")
    def _date_time(instance):
        # JSON Schema formats constrain strings only; other types pass here
        # and are caught by the "type" keyword instead.
        return not isinstance(instance, str) or is_rfc3339_date_time(instance)

    return checker


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate object key {key!r}")
        obj[key] = value
    return obj


def parse_strict(text):
    """Decode JSON the way a strict peer must: no NaN/Infinity, no duplicate
    keys; floats become Decimal so `multipleOf` checks are exact."""
    return json.loads(text, parse_constant=_reject_constant,
                      object_pairs_hook=_no_duplicate_keys,
                      parse_float=decimal.Decimal)


class SchemaBook:
    """Strict validators for the 1.6 schemas shipped with the ocpp package."""

    def __init__(self):
        self._checker = strict_format_checker()
        self._validators = {}

    def validator(self, action, response):
        """Validator for `action` (request or response), None if no schema."""
        if not _ACTION_NAME.fullmatch(action):
            return None
        name = action + ("Response" if response else "")
        if name not in self._validators:
            path = _SCHEMA_DIR / (name + ".json")
            if not path.is_file():
                self._validators[name] = None
            else:
                schema = json.loads(path.read_text(encoding="utf-8-sig"),
                                    parse_float=decimal.Decimal)
                self._validators[name] = Draft4Validator(
                    schema, format_checker=self._checker)
        return self._validators[name]

    def errors(self, action, payload, response=False):
        """List of (keyword, text) schema errors; [] when valid or unknown."""
        validator = self.validator(action, response)
        if validator is None:
            return []
        found = sorted(validator.iter_errors(payload),
                       key=lambda e: list(e.absolute_path))
        out = []
        for err in found:
            where = "/".join(str(p) for p in err.absolute_path) or "(payload)"
            out.append((err.validator, f"{where}: {err.message}"))
        return out


def check_envelope(parsed):
    """OCPP-J framing problems of a decoded frame, as a list of str."""
    if not isinstance(parsed, list) or not parsed:
        return ["frame is not a non-empty JSON array"]
    kind = parsed[0]
    sizes = {2: 4, 3: 3, 4: 5}
    if type(kind) is not int or kind not in sizes:
        return [f"MessageTypeId {kind!r} is not 2, 3 or 4"]
    problems = []
    if len(parsed) != sizes[kind]:
        problems.append(f"message type {kind} needs {sizes[kind]} elements, "
                        f"got {len(parsed)}")
        return problems
    uid = parsed[1]
    if not isinstance(uid, str):
        problems.append(f"UniqueId {uid!r} is not a string")
    elif not uid or len(uid) > _MAX_UNIQUE_ID:
        problems.append(f"UniqueId length {len(uid)} outside 1..{_MAX_UNIQUE_ID}")
    if kind == 2:
        if not isinstance(parsed[2], str):
            problems.append(f"Action {parsed[2]!r} is not a string")
        if not isinstance(parsed[3], dict):
            problems.append("Call payload is not a JSON object")
    elif kind == 3:
        if not isinstance(parsed[2], dict):
            problems.append("CallResult payload is not a JSON object")
    else:
        if parsed[2] not in ERROR_CODES_16:
            problems.append(f"errorCode {parsed[2]!r} is not an OCPP 1.6 code")
        if not isinstance(parsed[3], str):
            problems.append("errorDescription is not a string")
        if not isinstance(parsed[4], dict):
            problems.append("errorDetails is not a JSON object")
    return problems


def utc_now_iso():
    """Current UTC time as RFC 3339 with milliseconds and "Z"."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class ViolationError(Exception):
    """A charger's answer to a CSMS call broke the schema (format checks)."""


# ------------------------------------------------------------------ sessions

class Session(ocpp.v16.ChargePoint):
    """One WebSocket connection of one charger. Answers CP -> CS actions with
    the policies of its CentralSystem; frame checking lives there too."""

    def __init__(self, cs, cp_id, ws):
        # Our own wait_for() enforces per-call timeouts; the library's is a
        # backstop only.
        super().__init__(cp_id, ws, response_timeout=3600)
        self.cs = cs
        self.ws = ws
        self.payload = {}           # camelCase payload of the Call being handled
        self.sent_calls = {}        # uid -> (action, payload) of our Calls
        self.answered = set()       # uids of our Calls already answered
        self.inbound = {}           # uid -> action of the charger's Calls
        self.awaiting = set()       # uids a CentralSystem.call() is waiting on
        self.bad_results = {}       # uid -> schema errors in the answer
        self.triggered = collections.Counter()  # actions allowed by TriggerMessage
        self.boot_wait_until = None  # monotonic; set by non-Accepted boots

    async def _send(self, message):
        await self.cs._transmit(self, message)

    # --- CP -> CS actions. The library passes snake_case kwargs; handlers
    # use self.payload (camelCase as on the wire) for the ledgers.

    @on(Action.authorize)
    def on_authorize(self, **_):
        return call_result.Authorize(
            id_tag_info=self.cs.id_tag_info(self.payload["idTag"]))

    @on(Action.boot_notification)
    def on_boot_notification(self, **_):
        cs = self.cs
        if cs.boot_responses:
            status, interval = cs.boot_responses.pop(0)
        else:
            status, interval = cs.default_boot_status, cs.heartbeat_interval
        cs.registration[self.id] = status
        self.boot_wait_until = (None if status == "Accepted"
                                else time.monotonic() + interval)
        return call_result.BootNotification(
            current_time=utc_now_iso(), interval=interval, status=status)

    @on(Action.data_transfer)
    def on_data_transfer(self, **_):
        return call_result.DataTransfer(status=self.cs.data_transfer_status,
                                        data=self.cs.data_transfer_data)

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(self, **_):
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_):
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status_notification(self, **_):
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event_notification(self, **_):
        return call_result.SecurityEventNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status_notification(self, **_):
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.heartbeat)
    def on_heartbeat(self, **_):
        return call_result.Heartbeat(current_time=utc_now_iso())

    @on(Action.meter_values)
    def on_meter_values(self, **_):
        self.cs._record_meter_values(self.id, self.payload)
        return call_result.MeterValues()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, **_):
        self.cs.csrs.append(Record(time.monotonic(), self.id, self.payload["csr"]))
        return call_result.SignCertificate(status=self.cs.sign_certificate_status)

    @on(Action.start_transaction)
    async def on_start_transaction(self, **_):
        payload = self.payload
        tx_id = self.cs._open_transaction(self.id, payload)
        if self.cs.before_start_reply is not None:
            # e.g. a RemoteStopTransaction sent ahead of this conf (some CSMSs do)
            await self.cs.before_start_reply(self, tx_id)
        self.payload = payload
        return call_result.StartTransaction(
            transaction_id=tx_id,
            id_tag_info=self.cs.id_tag_info(self.payload["idTag"]))

    @on(Action.status_notification)
    def on_status_notification(self, **_):
        self.cs.status_notifications.append(
            Record(time.monotonic(), self.id, self.payload))
        self.cs._status_seen(self.id, self.payload)
        return call_result.StatusNotification()

    @on(Action.stop_transaction)
    def on_stop_transaction(self, **_):
        self.cs._close_transaction(self.id, self.payload)
        tag = self.payload.get("idTag")
        info = self.cs.id_tag_info(tag) if tag is not None else None
        return call_result.StopTransaction(id_tag_info=info)


# ------------------------------------------------------------ central system


def stamp(now=None):
    """The time of a timeline line: ISO 8601 UTC to the millisecond, on the charger's time
    base (its log lines are ISO 8601 UTC to the second), so the two read side by side."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (
        int(now * 1000) % 1000)


class CentralSystem:
    """Strict local OCPP 1.6J Central System.

    Policies (plain attributes, change them any time):
      boot_responses      list of (status, interval), consumed in order
      default_boot_status status once boot_responses is empty ("Accepted")
      heartbeat_interval  interval sent with the default boot answer (60)
      id_tags             tag -> "Accepted"/"Blocked"/"Expired"/"Invalid"/
                          "ConcurrentTx", or (status, parent_id_tag), or a
                          dict with status / parent_id_tag / expiry_date
      default_tag_status  status for tags not in id_tags ("Accepted")
      data_transfer_status, data_transfer_data   DataTransfer answer
      no_reply_actions    set of actions left unanswered (timeout tests)
      callerror_actions   action -> 1.6 error code to answer with instead
      enforce_registration  flag Calls sent before an Accepted boot (unless
                          triggered), answers while Rejected, and
                          BootNotification retries before the interval (True)
      before_start_reply  None, or async f(session, transaction_id) awaited
                          before a StartTransaction.conf goes out
      path_prefix         None (any path, the id is its last segment), or the
                          exact path before "/<id>", e.g. SteVe's
                          "/steve/websocket/CentralSystemService" (else 404)
      sign_certificate_status  answer to SignCertificate ("Accepted")
      client_cert_auth    over TLS, a verified client certificate stands in for
                          the Basic auth password (security profile 3) (True)
      refuse_client_certs answer 403 to a connection that presents a client
                          certificate (a Central System not ready for profile 3)
      remote_start_after  seconds a connector may stay Preparing before this
                          Central System sends it RemoteStartTransaction with
                          remote_start_tag ("REMOTE"), as a driver's app would
                          (None: never; for fleet load tests)
    id_tags keys ending in "*" match every tag with that prefix.
    fast=True (tools.fleet load tests with thousands of chargers): no strict
      checks, no ledger and no `ocpp` library on the path; frames are answered
      from the same policies and counted in `counts` (action -> n), and
      transactions are kept as in strict mode. The default stays strict.
    Records: ledger, violations, refused, transactions, meter_values,
      status_notifications, registration, csrs (Record of each SignCertificate
      csr), peers ((cp_id, client certificate subject CN or None) per accepted
      TLS connection).
    """

    def __init__(self, host="127.0.0.1", port=0, password=None, ssl=None,
                 quiet=False, ping_interval=20, close_timeout=2, fast=False):
        self.fast = fast
        self.counts = collections.Counter()
        self.remote_start_after = None
        self.remote_start_tag = "REMOTE"
        self.last_status = {}           # (cp_id, connectorId) -> status
        self._starts = {}               # (cp_id, start payload as JSON) -> tx_id
        self.host = host
        self.port = port
        self.password = password
        self.ssl = ssl
        self.quiet = quiet
        self.ping_interval = ping_interval
        self.close_timeout = close_timeout

        self.boot_responses = []
        self.default_boot_status = "Accepted"
        self.heartbeat_interval = 60
        self.id_tags = {}
        self.default_tag_status = "Accepted"
        self.data_transfer_status = "Accepted"
        self.data_transfer_data = None
        self.no_reply_actions = set()
        self.callerror_actions = {}
        self.enforce_registration = True
        self.before_start_reply = None
        self.path_prefix = None
        self.sign_certificate_status = "Accepted"
        self.client_cert_auth = True
        self.refuse_client_certs = False
        self.csrs = []
        self.peers = []

        self.ledger = []
        self.violations = []
        self.closes = []  # (charge point id, websocket close code) of each ended connection
        self.refused = []               # (cp_id or path, reason)
        self.transactions = {}          # tx_id -> {"cp_id","start","meter_values","stop"}
        self.meter_values = []          # Record for every MeterValues
        self.status_notifications = []  # Record for every StatusNotification
        self.registration = {}          # cp_id -> last boot status sent
        self.sessions = {}              # cp_id -> Session (open connections)

        self._schemas = SchemaBook()
        self._next_tx = 1
        self._server = None
        self._waiters = set()

    # --- lifecycle

    async def start(self):
        """Listen; afterwards `.port` holds the real port."""
        self._server = await serve(
            self._serve_connection, self.host, self.port,
            subprotocols=[SUBPROTOCOL], process_request=self._check_handshake,
            ssl=self.ssl, compression=None, ping_interval=self.ping_interval,
            close_timeout=self.close_timeout)
        self.port = self._server.sockets[0].getsockname()[1]
        scheme = "wss" if self.ssl else "ws"
        self._say(f"listening on {scheme}://{self.host}:{self.port}"
                  f"{self.path_prefix or '/ocpp'}/<id>",
                  always=True)
        return self

    @property
    def url(self):
        """Base URL for a charger's config on this machine; the charger appends "/<id>"."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"{'wss' if self.ssl else 'ws'}://{host}:{self.port}{self.path_prefix or '/ocpp'}"

    async def stop(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # --- handshake and connection

    def _check_handshake(self, connection, request):
        cp_id = cp_id_from_path(request.path)
        who = cp_id or request.path
        offered = []
        for value in request.headers.get_all("Sec-WebSocket-Protocol"):
            offered.extend(p.strip() for p in value.split(",") if p.strip())
        if not cp_id:
            return self._refuse(connection, who, 404,
                                "no charge point id in the request path")
        path = urllib.parse.urlsplit(request.path).path
        if self.path_prefix is not None and path.rsplit("/", 1)[0] != self.path_prefix:
            return self._refuse(connection, who, 404,
                                f"path {path!r} is not {self.path_prefix}/<id>")
        if SUBPROTOCOL not in offered:
            return self._refuse(
                connection, who, 400,
                f"client offered subprotocols {offered or 'none'}; "
                f"{SUBPROTOCOL} is required")
        client = self._client_cert(connection)
        if client is not None and self.refuse_client_certs:
            return self._refuse(connection, who, 403, "client certificates are not accepted")
        if self.ssl is not None:
            self.peers.append((cp_id, client))
        if self.password is not None and not (client is not None and self.client_cert_auth):
            problem = self._auth_problem(cp_id, request.headers.get("Authorization"))
            if problem:
                response = self._refuse(connection, who, 401, problem)
                response.headers["WWW-Authenticate"] = 'Basic realm="OCPP"'
                return response
        return None

    @staticmethod
    def _client_cert(connection):
        """The commonName of the client certificate the TLS layer verified, "" when it has
        none, or None when no certificate was presented (or the connection is plain)."""
        ssl_object = connection.transport.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for name, value in rdn:
                if name == "commonName":
                    return value
        return ""

    def _auth_problem(self, cp_id, header):
        if not header or not header.startswith("Basic "):
            return "missing HTTP Basic authorization"
        try:
            user, _, secret = base64.b64decode(
                header[6:].strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed HTTP Basic authorization"
        if user != cp_id:
            return f"basic-auth user {user!r} is not the charge point id"
        if not hmac.compare_digest(secret.encode(), self.password.encode()):
            return "wrong password"
        return None

    def _refuse(self, connection, who, status, reason):
        self.refused.append((who, reason))
        self._say(f"{who} REFUSED ({status}): {reason}", always=True)
        return connection.respond(status, f"{reason}\n")

    async def _serve_connection(self, ws):
        if self.fast:
            await self._serve_fast(ws)
            return
        cp_id = cp_id_from_path(ws.request.path)
        session = Session(self, cp_id, ws)
        old = self.sessions.get(cp_id)
        self.sessions[cp_id] = session
        if old is not None:
            self._say(f"{cp_id} reconnected; closing the previous connection",
                      always=True)
            await old.ws.close(1000, "replaced by a new connection")
        self._say(f"{cp_id} connected ({ws.subprotocol}) from "
                  f"{ws.remote_address[0]}:{ws.remote_address[1]}", always=True)
        self._wake()
        try:
            async for data in ws:
                try:
                    await self._on_frame(session, data)
                except ConnectionClosed:
                    raise
                except Exception as e:  # a CSMS bug must not look like a charger fault
                    self._violation(cp_id, f"CSMS internal error {e!r} on "
                                           f"{data[:200]!r}")
                    traceback.print_exc()
        except ConnectionClosed:
            pass
        finally:
            if self.sessions.get(cp_id) is session:
                del self.sessions[cp_id]
            self.closes.append((cp_id, ws.close_code))
            self._say(f"{cp_id} disconnected (code {ws.close_code}"
                      f"{' ' + ws.close_reason if ws.close_reason else ''})",
                      always=True)
            self._wake()

    # --- inbound frames

    async def _on_frame(self, session, data):
        cp_id = session.id
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        self._append(Frame(time.monotonic(), cp_id, "in", data, parsed), session)

        if isinstance(data, bytes):
            self._violation(cp_id, "binary frame; OCPP-J uses text frames only")
        try:
            strict = parse_strict(text)
        except (ValueError, RecursionError) as e:
            self._violation(cp_id, f"frame is not strict JSON ({e}): {text[:200]!r}")
            return
        problems = check_envelope(strict)
        if problems:
            for p in problems:
                self._violation(cp_id, f"{p}: {text[:200]!r}")
            uid = strict[1] if isinstance(strict, list) and len(strict) > 1 else None
            if isinstance(strict, list) and strict[:1] == [2] and isinstance(uid, str):
                await self._send_call_error(session, uid, "FormationViolation",
                                            "; ".join(problems))
            return
        kind = strict[0]
        if kind == 2:
            await self._on_call(session, strict[1], strict[2], parsed[3], strict[3])
        else:
            self._on_answer(session, strict, parsed)

    async def _on_call(self, session, uid, action, payload, strict_payload):
        cp_id = session.id
        session.inbound[uid] = action
        self._check_registration(session, action)
        if action in self.no_reply_actions:
            return
        if action in self.callerror_actions:
            await self._send_call_error(session, uid, self.callerror_actions[action],
                                        "answered with an error by test policy")
            return
        errors = self._schemas.errors(action, strict_payload)
        if errors:
            for _, text in errors:
                self._violation(cp_id, f"{action}.req {text}")
            code = _CODE_BY_KEYWORD.get(errors[0][0], "PropertyConstraintViolation")
            await self._send_call_error(session, uid, code, errors[0][1])
            return
        if action not in session.route_map:
            self._violation(cp_id, f"{action} is not a charge point action this "
                                   f"Central System handles")
            try:
                Action(action)
                code = "NotImplemented"
            except ValueError:
                code = "NotSupported"
            await self._send_call_error(session, uid, code,
                                        f"{action} not handled")
            return
        session.payload = payload
        try:
            # Library path: schema check (non-strict), snake_case handler,
            # response validation and serialisation.
            await session._handle_call(Call(uid, action, payload))
        except OCPPError as e:
            await self._send_call_error(session, uid, e.code, e.description,
                                        e.details)

    def _check_registration(self, session, action):
        if not self.enforce_registration:
            return
        cp_id = session.id
        now = time.monotonic()
        if action == "BootNotification":
            wait_until = session.boot_wait_until
            if (wait_until is not None and now < wait_until - _BOOT_INTERVAL_SLACK
                    and not self._use_trigger(session, action)):
                self._violation(cp_id, f"BootNotification resent "
                                       f"{wait_until - now:.2f} s before the "
                                       f"interval elapsed")
            return
        state = self.registration.get(cp_id)
        if state != "Accepted" and not self._use_trigger(session, action):
            self._violation(cp_id, f"{action} sent while registration is "
                                   f"{state or 'unknown (no BootNotification yet)'}")

    @staticmethod
    def _use_trigger(session, action):
        if session.triggered[action] > 0:
            session.triggered[action] -= 1
            return True
        return False

    def _on_answer(self, session, strict, parsed):
        cp_id = session.id
        kind, uid = strict[0], strict[1]
        label = "CallResult" if kind == 3 else "CallError"
        if uid not in session.sent_calls:
            self._violation(cp_id, f"{label} for unknown UniqueId {uid!r}")
            return
        if uid in session.answered:
            self._violation(cp_id, f"second {label} for UniqueId {uid!r}")
            return
        session.answered.add(uid)
        action, request = session.sent_calls[uid]
        if self.enforce_registration and self.registration.get(cp_id) == "Rejected":
            # 1.6 section 4.2: "While Rejected, the Charge Point SHALL NOT
            # respond to any Central System initiated message".
            self._violation(cp_id, f"answered {action} while registration is Rejected")
        if kind == 3:
            errors = self._schemas.errors(action, strict[2], response=True)
            for _, text in errors:
                self._violation(cp_id, f"{action}.conf {text}")
            if errors:
                session.bad_results[uid] = [t for _, t in errors]
            elif (action in ("TriggerMessage", "ExtendedTriggerMessage")
                  and parsed[2].get("status") == "Accepted"):
                what = request.get("requestedMessage")
                if action == "ExtendedTriggerMessage" and what == "FirmwareStatusNotification":
                    what = "SignedFirmwareStatusNotification"
                session.triggered[what] += 1
            if uid in session.awaiting:
                session._response_queue.put_nowait(
                    LibCallResult(uid, parsed[2], action))
        elif uid in session.awaiting:
            session._response_queue.put_nowait(
                LibCallError(uid, parsed[2], parsed[3], parsed[4]))

    # --- outbound frames

    async def _transmit(self, session, message, text=None):
        """Every outbound frame goes through here (library replies, calls,
        raw test frames) so the ledger is complete. `text` as in
        websockets' send(): force the frame type regardless of str/bytes."""
        decoded = (message.decode("utf-8", "replace") if isinstance(message, bytes)
                   else message)
        try:
            parsed = json.loads(decoded)
        except (ValueError, RecursionError):
            parsed = None
        if (isinstance(parsed, list) and len(parsed) == 4 and parsed[0] == 2
                and isinstance(parsed[1], str) and isinstance(parsed[2], str)):
            payload = parsed[3] if isinstance(parsed[3], dict) else {}
            session.sent_calls[parsed[1]] = (parsed[2], payload)
            session.answered.discard(parsed[1])
        self._append(Frame(time.monotonic(), session.id, "out", message, parsed),
                     session)
        await session.ws.send(message, text=text)

    async def _send_call_error(self, session, uid, code, description, details=None):
        await self._transmit(session, json.dumps(
            [4, uid, code, description, details or {}], separators=(",", ":")))

    # --- ledgers

    def _open_transaction(self, cp_id, payload):
        # A charger that lost power between sending StartTransaction and storing the reply
        # sends the very same request again: answer with the same transaction, as a
        # production CSMS does, instead of opening a second one.
        key = (cp_id, json.dumps(payload, sort_keys=True))
        if key in self._starts:
            return self._starts[key]
        tx_id = self._starts[key] = self._next_tx
        self._next_tx += 1
        self.transactions[tx_id] = {"cp_id": cp_id, "start": payload,
                                    "meter_values": [], "stop": None}
        return tx_id

    def _tx(self, cp_id, tx_id):
        # A charger may report a transaction this CSMS never started (e.g.
        # one from a previous run); keep it visible instead of dropping it.
        return self.transactions.setdefault(
            tx_id, {"cp_id": cp_id, "start": None, "meter_values": [], "stop": None})

    def _record_meter_values(self, cp_id, payload):
        self.meter_values.append(Record(time.monotonic(), cp_id, payload))
        if "transactionId" in payload:
            self._tx(cp_id, payload["transactionId"])["meter_values"].append(payload)

    def _close_transaction(self, cp_id, payload):
        self._tx(cp_id, payload["transactionId"])["stop"] = payload

    def _tag_entry(self, tag):
        entry = self.id_tags.get(tag)
        if entry is None:
            for key, value in self.id_tags.items():
                if key.endswith("*") and tag.startswith(key[:-1]):
                    return value
            return self.default_tag_status
        return entry

    def id_tag_info(self, tag):
        """idTagInfo (snake_case dict) for `tag` under the id_tags policy."""
        entry = self._tag_entry(tag)
        if isinstance(entry, str):
            return {"status": entry}
        if isinstance(entry, (tuple, list)):
            info = {"status": entry[0]}
            if len(entry) > 1 and entry[1] is not None:
                info["parent_id_tag"] = entry[1]
            return info
        return camel_to_snake_case(dict(entry))

    # --- the driver's app: RemoteStartTransaction for a connector left Preparing

    def _status_seen(self, cp_id, payload):
        key = (cp_id, payload.get("connectorId"))
        self.last_status[key] = payload.get("status")
        if (self.remote_start_after is not None and key[1]
                and payload.get("status") == "Preparing"):
            asyncio.get_running_loop().call_later(
                self.remote_start_after, self._remote_start_due, key)

    def _remote_start_due(self, key):
        if self.last_status.get(key) == "Preparing" and key[0] in self.sessions:
            asyncio.ensure_future(self._remote_start(*key))

    async def _remote_start(self, cp_id, connector_id):
        self.counts["RemoteStartTransaction sent"] += 1
        try:
            if self.fast:
                frame = json.dumps([2, str(uuid.uuid4()), "RemoteStartTransaction",
                                    {"connectorId": connector_id,
                                     "idTag": self.remote_start_tag}])
                await self.sessions[cp_id].send(frame)
            else:
                await self.call(cp_id, ocpp.v16.call.RemoteStartTransaction(
                    id_tag=self.remote_start_tag, connector_id=connector_id))
        except Exception as e:  # the charger went away meanwhile: the driver gives up
            self._say(f"{cp_id} RemoteStartTransaction failed: {e!r}")

    # --- fast mode (load tests): answers from the policies, counts only

    async def _serve_fast(self, ws):
        cp_id = cp_id_from_path(ws.request.path)
        old = self.sessions.get(cp_id)
        self.sessions[cp_id] = ws
        self.counts["(connections)"] += 1
        if old is not None:
            await old.close(1000, "replaced by a new connection")
        try:
            async for data in ws:
                msg = None
                try:
                    msg = json.loads(data)
                    uid, action, payload = msg[1], msg[2], msg[3]
                except (ValueError, IndexError, KeyError, TypeError):
                    self.counts["(not a call)" if isinstance(msg, list) else "(bad)"] += 1
                    continue
                if msg[0] != 2:
                    continue
                self.counts[action] += 1
                reply = self._fast_reply(cp_id, action, payload)
                if reply is None:
                    text = json.dumps([4, uid, "NotImplemented", action, {}])
                else:
                    text = json.dumps([3, uid, reply], separators=(",", ":"))
                await ws.send(text)
        except ConnectionClosed:
            pass
        finally:
            if self.sessions.get(cp_id) is ws:
                del self.sessions[cp_id]

    def _fast_tag(self, tag):
        info = self.id_tag_info(tag)
        out = {"status": info["status"]}
        if info.get("parent_id_tag"):
            out["parentIdTag"] = info["parent_id_tag"]
        return out

    def _fast_reply(self, cp_id, action, p):
        if action == "Heartbeat":
            return {"currentTime": utc_now_iso()}
        if action in ("StatusNotification", "MeterValues"):
            if action == "StatusNotification":
                self._status_seen(cp_id, p)
            return {}
        if action == "BootNotification":
            status, interval = self.default_boot_status, self.heartbeat_interval
            self.registration[cp_id] = status
            return {"currentTime": utc_now_iso(), "interval": interval, "status": status}
        if action == "Authorize":
            return {"idTagInfo": self._fast_tag(p["idTag"])}
        if action == "StartTransaction":
            tx_id = self._open_transaction(cp_id, p)
            return {"transactionId": tx_id, "idTagInfo": self._fast_tag(p["idTag"])}
        if action == "StopTransaction":
            self._close_transaction(cp_id, p)
            return {"idTagInfo": self._fast_tag(p["idTag"])} if "idTag" in p else {}
        if action == "DataTransfer":
            return {"status": self.data_transfer_status}
        if action in ("DiagnosticsStatusNotification", "FirmwareStatusNotification",
                      "SecurityEventNotification", "LogStatusNotification",
                      "SignedFirmwareStatusNotification"):
            return {}
        if action == "SignCertificate":
            return {"status": self.sign_certificate_status}
        return None

    def _append(self, frame, session):
        self.ledger.append(frame)
        if not self.quiet:
            self._say(f"{frame.cp_id} {'->' if frame.direction == 'in' else '<-'} "
                      f"{describe(frame, session)}")
        self._wake()

    def _violation(self, cp_id, text):
        self.violations.append(f"{cp_id}: {text}")
        self._say(f"{cp_id} !! VIOLATION {text}", always=True)
        self._wake()

    def _say(self, line, always=False):
        if self.quiet and not always:
            return
        print(f"{stamp()} {line}", flush=True)

    # --- waiting (used by tests; all on the event loop)

    def _wake(self):
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    async def _changed(self, deadline):
        """Sleep until something is recorded or the deadline passes."""
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        fut = loop.create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait_for(fut, remaining)
        except asyncio.TimeoutError:
            return False
        finally:
            self._waiters.discard(fut)
        return True

    async def wait_frame(self, predicate, timeout=10.0, start=None):
        """First ledger frame at index >= start (default: from now on) for
        which predicate(frame) is true; returns (index, frame) or raises
        TimeoutError."""
        pos = len(self.ledger) if start is None else start
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while pos < len(self.ledger):
                frame = self.ledger[pos]
                if predicate(frame):
                    return pos, frame
                pos += 1
            if not await self._changed(deadline):
                raise TimeoutError(f"no matching frame within {timeout} s")

    async def wait_raw(self, predicate, timeout=10.0, cp_id=None, start=None):
        """Next frame FROM a charger matching predicate(frame) -> Frame."""
        def wanted(frame):
            return (frame.direction == "in"
                    and (cp_id is None or frame.cp_id == cp_id)
                    and predicate(frame))
        return (await self.wait_frame(wanted, timeout, start))[1]

    async def wait_connected(self, cp_id=None, timeout=10.0):
        """Wait until `cp_id` (or any charger) is connected; returns its id."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if cp_id is None and self.sessions:
                return next(iter(self.sessions))
            if cp_id is not None and cp_id in self.sessions:
                return cp_id
            if not await self._changed(deadline):
                raise TimeoutError(f"{cp_id or 'no charger'} not connected "
                                   f"within {timeout} s")

    # --- CS -> CP

    def session(self, cp_id=None):
        """Open session of cp_id; with None, the only connected charger."""
        if cp_id is None:
            if len(self.sessions) != 1:
                raise LookupError(f"cp_id needed: {len(self.sessions)} chargers "
                                  f"connected ({sorted(self.sessions)})")
            return next(iter(self.sessions.values()))
        try:
            return self.sessions[cp_id]
        except KeyError:
            raise LookupError(f"{cp_id} is not connected") from None

    async def call(self, cp_id, request, timeout=10.0):
        """Send an ocpp.v16.call.* request; return the call_result object.

        Raises the OCPPError of a CALLERROR, ViolationError if the answer
        breaks the strict schema, TimeoutError if there is no answer."""
        session = self.session(cp_id)
        uid = str(uuid.uuid4())
        session.awaiting.add(uid)
        try:
            result = await asyncio.wait_for(
                session.call(request, suppress=False, unique_id=uid), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{session.id} did not answer "
                               f"{type(request).__name__} within {timeout} s") from None
        finally:
            session.awaiting.discard(uid)
        bad = session.bad_results.pop(uid, None)
        if bad:
            raise ViolationError(f"{type(request).__name__}.conf: " + "; ".join(bad))
        return result

    async def send_raw(self, cp_id, data, text=None):
        """Send data exactly as given: str -> text frame, bytes -> binary
        frame; text=True sends bytes as a text frame (e.g. invalid UTF-8)."""
        await self._transmit(self.session(cp_id), data, text)


def tls_context(cert, key, client_ca=None, require_client_cert=False):
    """A server TLS context for `cert`/`key` (PEM files). client_ca: a PEM file of the CAs
    whose client certificates are verified (optional for the client unless
    require_client_cert); set `verify_mode` later to change what new connections need."""
    ctx = ssl_module.SSLContext(ssl_module.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = (ssl_module.CERT_REQUIRED if require_client_cert
                           else ssl_module.CERT_OPTIONAL)
    elif require_client_cert:
        raise ValueError("require_client_cert needs client_ca")
    return ctx


def cp_id_from_path(path):
    """Charge point id: last segment of the request path, percent-decoded."""
    segment = urllib.parse.urlsplit(path).path.rsplit("/", 1)[-1]
    return urllib.parse.unquote(segment)


def describe(frame, session=None):
    """One-line human description of a frame for the timeline."""
    p = frame.parsed

    def body(value):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) <= 1000 else text[:1000] + "...(truncated)"

    if isinstance(p, list) and len(p) >= 3 and p[0] in (2, 3, 4) and isinstance(p[1], str):
        if p[0] == 2 and len(p) == 4:
            return f"{p[2]} {body(p[3])}"
        action = "?"
        if session is not None:
            if frame.direction == "in":
                action = session.sent_calls.get(p[1], ("?",))[0]
            else:
                action = session.inbound.get(p[1], "?")
        if p[0] == 3:
            return f"{action}.conf {body(p[2])}"
        return f"{action}.error {body(p[2:])}"
    raw = frame.raw if len(frame.raw) <= 300 else frame.raw[:300]
    return f"RAW {raw!r}"


# ----------------------------------------------------------------------- CLI

def _parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m tools.csms",
        description="Strict local OCPP 1.6J Central System. Chargers connect to "
                    "ws[s]://HOST:PORT/<any path>/<charge point id> with "
                    "subprotocol ocpp1.6. Prints a timeline; Ctrl-C stops.")
    ap.add_argument("--host", default="127.0.0.1",
                    help="listen address (127.0.0.1: this machine only; 0.0.0.0 lets a board"
                         " on the network in)")
    ap.add_argument("--port", type=int, default=9000, help="listen port (9000)")
    ap.add_argument("--password", help="require HTTP Basic auth with this password "
                                       "(user = charge point id)")
    ap.add_argument("--cert", help="TLS certificate (PEM) -> serve wss://")
    ap.add_argument("--key", help="TLS private key (PEM) for --cert")
    ap.add_argument("--client-ca", help="verify client certificates against these CAs "
                                        "(PEM); a verified one replaces --password")
    ap.add_argument("--require-client-cert", action="store_true",
                    help="refuse TLS clients without a certificate (security profile 3)")
    ap.add_argument("--boot-status", default="Accepted",
                    choices=["Accepted", "Pending", "Rejected"],
                    help="answer to every BootNotification (Accepted)")
    ap.add_argument("--heartbeat-interval", type=int, default=60,
                    help="interval in the boot answer, seconds (60)")
    ap.add_argument("--tag", action="append", default=[], metavar="TAG=STATUS",
                    help="idTag policy, e.g. --tag BAD=Blocked (repeatable)")
    ap.add_argument("--default-tag-status", default="Accepted",
                    help="status for unknown idTags (Accepted)")
    ap.add_argument("--ping-interval", type=float, default=20,
                    help="WebSocket ping interval, 0 = off (20)")
    ap.add_argument("--no-registration-check", action="store_true",
                    help="do not flag messages sent before an accepted "
                         "BootNotification (for a charger that was already "
                         "booted when this CSMS started)")
    ap.add_argument("--remote-start-after", type=float, metavar="S",
                    help="send RemoteStartTransaction to a connector left Preparing "
                         "for S seconds (a driver's app; for fleet load tests)")
    ap.add_argument("--fast", action="store_true",
                    help="no strict checks, no ledger: answer and count only (load "
                         "tests with thousands of chargers; implies --quiet)")
    ap.add_argument("--path-prefix", metavar="PATH",
                    help="accept only PATH/<id>, e.g. SteVe's "
                         "/steve/websocket/CentralSystemService (any path)")
    ap.add_argument("--quiet", action="store_true",
                    help="print only connections and violations")
    args = ap.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")
    if (args.client_ca or args.require_client_cert) and not args.cert:
        ap.error("--client-ca and --require-client-cert need --cert")
    if args.require_client_cert and not args.client_ca:
        ap.error("--require-client-cert needs --client-ca")
    for item in args.tag:
        if "=" not in item:
            ap.error(f"--tag expects TAG=STATUS, got {item!r}")
    return args


async def _main(args):
    ctx = None
    if args.cert:
        ctx = tls_context(args.cert, args.key, args.client_ca, args.require_client_cert)
    cs = CentralSystem(host=args.host, port=args.port, password=args.password,
                       ssl=ctx, quiet=args.quiet or args.fast,
                       ping_interval=args.ping_interval or None, fast=args.fast)
    cs.remote_start_after = args.remote_start_after
    cs.default_boot_status = args.boot_status
    cs.heartbeat_interval = args.heartbeat_interval
    cs.default_tag_status = args.default_tag_status
    cs.id_tags = dict(item.split("=", 1) for item in args.tag)
    cs.enforce_registration = not args.no_registration_check
    cs.path_prefix = args.path_prefix
    await cs.start()
    try:
        await asyncio.Event().wait()
    finally:
        await cs.stop()
        if cs.fast:
            print("calls: " + ", ".join(f"{a} {n}" for a, n in sorted(cs.counts.items())),
                  flush=True)
        print(f"{len(cs.ledger)} frames, {len(cs.violations)} violations", flush=True)
        for v in cs.violations:
            print("  " + v, flush=True)


def main(argv=None):
    args = _parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    except OSError as e:  # the listening socket: one line, not a traceback
        if e.errno == errno.EADDRINUSE:
            why = "port %d is in use (another Central System?); choose another with --port" \
                % args.port
        else:
            why = e.strerror or str(e)
        print("csms: cannot listen on %s:%d: %s" % (args.host, args.port, why),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
