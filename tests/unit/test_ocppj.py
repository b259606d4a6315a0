"""firmware.ocppj / firmware.schema16: OCPP-J 1.6 framing, CALLERROR mapping, payload checks.

The compact schema table is compared with the official OCPP 1.6 JSON schemas
(shipped in the `ocpp` package) both structurally and by running single-fault
mutations of valid payloads through jsonschema and through schema16.
"""
import copy
import json
import os

import pytest

from firmware import clock, ocppj, schema16
from tests.mp import run_mp

FORM = "FormationViolation"
PROTO = "ProtocolError"
OCC = "OccurenceConstraintViolation"
TYPE = "TypeConstraintViolation"
PROP = "PropertyConstraintViolation"
NOT_IMPL = "NotImplemented"
NOT_SUPP = "NotSupported"

CS_TO_CP = ["CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
            "ClearChargingProfile", "DataTransfer", "GetCompositeSchedule", "GetConfiguration",
            "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction",
            "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile",
            "TriggerMessage", "UnlockConnector", "UpdateFirmware"]
CP_TO_CS = ["Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
            "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
            "StatusNotification", "StopTransaction"]
# The security extension's messages (whitepaper edition 3) the charger handles.
CS_TO_CP += ["CertificateSigned", "DeleteCertificate", "GetInstalledCertificateIds",
             "InstallCertificate"]
CP_TO_CS += ["SignCertificate"]
CS_TO_CP += ["ExtendedTriggerMessage", "GetLog", "SignedUpdateFirmware"]
CP_TO_CS += ["LogStatusNotification", "SecurityEventNotification",
             "SignedFirmwareStatusNotification"]

T0 = "2026-11-21T12:00:00Z"


def profile(**over):
    p = {
        "chargingProfileId": 7,
        "transactionId": 42,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Recurring",
        "recurrencyKind": "Daily",
        "validFrom": T0,
        "validTo": "2027-11-21T12:00:00.000+01:00",
        "chargingSchedule": {
            "duration": 86400,
            "startSchedule": T0,
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                {"startPeriod": 3600, "limit": 6.5},
                {"startPeriod": 7200, "limit": 32},
            ],
            "minChargingRate": 6.0,
        },
    }
    p.update(over)
    return p


# One valid payload per CS->CP request, using every property at least once.
VALID_REQUESTS = [
    ("CancelReservation", {"reservationId": 3}),
    ("SignedUpdateFirmware", {"requestId": 4, "retries": 2, "retryInterval": 30, "firmware": {
        "location": "https://fw.example.com/fw-1.2.tar", "retrieveDateTime": T0,
        "installDateTime": T0, "signingCertificate": "-----BEGIN CERTIFICATE-----",
        "signature": "c2ln"}}),
    ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
    ("ChangeAvailability", {"connectorId": 1, "type": "Operative"}),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "300"}),
    ("ChangeConfiguration", {"key": "k" * 50, "value": "v" * 500}),
    ("ClearCache", {}),
    ("ClearChargingProfile", {}),
    ("ClearChargingProfile", {"id": 1, "connectorId": 1, "stackLevel": 0,
                              "chargingProfilePurpose": "TxDefaultProfile"}),
    ("DataTransfer", {"vendorId": "com.example", "messageId": "m1", "data": "{\"a\": 1}"}),
    ("DataTransfer", {"vendorId": "v" * 255}),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"}),
    ("GetConfiguration", {}),
    ("GetConfiguration", {"key": []}),
    ("GetConfiguration", {"key": ["HeartbeatInterval", "k" * 50]}),
    ("GetDiagnostics", {"location": "ftp://user:pw@diag.example.com/upload/", "retries": 3,
                        "retryInterval": 60, "startTime": T0, "stopTime": "2026-11-22T12:00:00Z"}),
    ("GetLocalListVersion", {}),
    ("RemoteStartTransaction", {"idTag": "ABC123"}),
    ("RemoteStartTransaction", {"connectorId": 1, "idTag": "Zo\u00eb-\u4e2d\u6587",
                                "chargingProfile": profile()}),
    ("RemoteStopTransaction", {"transactionId": 42}),
    ("ReserveNow", {"connectorId": 1, "expiryDate": T0, "idTag": "i" * 20, "parentIdTag": "PARENT",
                    "reservationId": 9}),
    ("Reset", {"type": "Hard"}),
    ("Reset", {"type": "Soft"}),
    ("SendLocalList", {"listVersion": 2, "updateType": "Full"}),
    ("SendLocalList", {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": [
        {"idTag": "A", "idTagInfo": {"status": "Accepted", "expiryDate": T0, "parentIdTag": "P"}},
        {"idTag": "B", "idTagInfo": {"status": "ConcurrentTx"}},
        {"idTag": "C"}]}),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile()}),
    ("SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {"chargingRateUnit": "W",
                             "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000}]}}}),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile(
        chargingProfileKind="Relative", chargingProfilePurpose="TxDefaultProfile",
        stackLevel=-1)}),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1}),
    ("TriggerMessage", {"requestedMessage": "BootNotification"}),
    ("UnlockConnector", {"connectorId": 1}),
    ("UpdateFirmware", {"location": "https://fw.example.com/fw-1.2.bin", "retries": 2,
                        "retrieveDate": T0, "retryInterval": 30}),
    ("CertificateSigned", {"certificateChain": "-----BEGIN CERTIFICATE-----"}),
    ("DeleteCertificate", {"certificateHashData": {
        "hashAlgorithm": "SHA256", "issuerNameHash": "ab" * 32, "issuerKeyHash": "cd" * 32,
        "serialNumber": "1f"}}),
    ("GetInstalledCertificateIds", {"certificateType": "ManufacturerRootCertificate"}),
    ("InstallCertificate", {"certificateType": "CentralSystemRootCertificate",
                            "certificate": "-----BEGIN CERTIFICATE-----"}),
    ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}),
    ("GetLog", {"logType": "SecurityLog", "requestId": 3, "retries": 1, "retryInterval": 5,
                "log": {"remoteLocation": "ftp://logs.example.com/in/",
                        "oldestTimestamp": T0, "latestTimestamp": T0}}),
]

# (action, payload, expected code, expected description)
BAD_REQUESTS = [
    ("CancelReservation", {}, OCC, "reservationId: required property missing"),
    ("CancelReservation", {"reservationId": "3"}, TYPE,
     "reservationId: expected integer, got string"),
    ("ChangeAvailability", {"connectorId": 1, "type": "Broken"}, PROP,
     "type: not one of Inoperative|Operative"),
    ("ChangeAvailability", {"connectorId": True, "type": "Operative"}, TYPE,
     "connectorId: expected integer, got boolean"),
    ("ChangeAvailability", {"connectorId": "1", "type": "Operative"}, TYPE,
     "connectorId: expected integer, got string"),
    ("ChangeAvailability", {"type": "Operative"}, OCC, "connectorId: required property missing"),
    ("ChangeConfiguration", {"key": "k" * 51, "value": "v"}, PROP,
     "key: longer than 50 characters"),
    ("ChangeConfiguration", {"key": "k", "value": "v" * 501}, PROP,
     "value: longer than 500 characters"),
    ("ChangeConfiguration", {"key": "k", "value": 300}, TYPE,
     "value: expected string, got integer"),
    ("ChangeConfiguration", {"key": "k"}, OCC, "value: required property missing"),
    ("ClearCache", {"all": True}, FORM, "all: unknown property"),
    ("ClearChargingProfile", {"chargingProfilePurpose": "Tx"}, PROP,
     "chargingProfilePurpose: not one of ChargePointMaxProfile|TxDefaultProfile|TxProfile"),
    ("ClearChargingProfile", {"id": 1.0}, TYPE, "id: expected integer, got number"),
    ("DataTransfer", {}, OCC, "vendorId: required property missing"),
    ("DataTransfer", {"vendorId": "v" * 256}, PROP, "vendorId: longer than 255 characters"),
    ("DataTransfer", {"vendorId": "v", "messageId": "m" * 51}, PROP,
     "messageId: longer than 50 characters"),
    ("DataTransfer", {"vendorId": "v", "data": {"a": 1}}, TYPE,
     "data: expected string, got object"),
    ("GetCompositeSchedule", {"connectorId": 1}, OCC, "duration: required property missing"),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 60, "chargingRateUnit": "kW"}, PROP,
     "chargingRateUnit: not one of A|W"),
    ("GetConfiguration", {"key": "HeartbeatInterval"}, TYPE, "key: expected array, got string"),
    ("GetConfiguration", {"key": ["ok", "k" * 51]}, PROP, "key[1]: longer than 50 characters"),
    ("GetConfiguration", {"key": [1]}, TYPE, "key[0]: expected string, got integer"),
    ("GetDiagnostics", {}, OCC, "location: required property missing"),
    ("GetDiagnostics", {"location": "not a uri"}, PROP, "location: not a URI"),
    ("GetDiagnostics", {"location": "ftp://h/", "startTime": "yesterday"}, PROP,
     "startTime: not an RFC 3339 date-time"),
    ("GetDiagnostics", {"location": "ftp://h/", "retries": 1.5}, TYPE,
     "retries: expected integer, got number"),
    ("GetLocalListVersion", {"listVersion": 1}, FORM, "listVersion: unknown property"),
    ("RemoteStartTransaction", {}, OCC, "idTag: required property missing"),
    ("RemoteStartTransaction", {"idTag": "x" * 21}, PROP, "idTag: longer than 20 characters"),
    ("RemoteStartTransaction", {"idTag": "\u00e9" * 21}, PROP, "idTag: longer than 20 characters"),
    ("RemoteStartTransaction", {"idTag": None}, TYPE, "idTag: expected string, got null"),
    ("RemoteStartTransaction", {"idTag": "A", "chargingProfile": {}}, OCC,
     "chargingProfile.chargingProfileId: required property missing"),
    ("RemoteStartTransaction",
     {"idTag": "A", "chargingProfile": profile(chargingProfileKind="Weekly")},
     PROP, "chargingProfile.chargingProfileKind: not one of Absolute|Recurring|Relative"),
    ("RemoteStopTransaction", {"transactionId": "42"}, TYPE,
     "transactionId: expected integer, got string"),
    ("RemoteStopTransaction", {}, OCC, "transactionId: required property missing"),
    ("ReserveNow", {"connectorId": 1, "expiryDate": "2026-11-21T12:00:00", "idTag": "A",
                    "reservationId": 1}, PROP, "expiryDate: not an RFC 3339 date-time"),
    ("ReserveNow", {"connectorId": 1, "expiryDate": T0, "idTag": "A"}, OCC,
     "reservationId: required property missing"),
    ("ReserveNow", {"connectorId": 1, "expiryDate": T0, "idTag": "A", "parentIdTag": "p" * 21,
                    "reservationId": 1}, PROP, "parentIdTag: longer than 20 characters"),
    ("Reset", {"type": "hard"}, PROP, "type: not one of Hard|Soft"),
    ("Reset", {"type": ""}, PROP, "type: not one of Hard|Soft"),
    ("Reset", {"type": "Hard|Soft"}, PROP, "type: not one of Hard|Soft"),
    ("Reset", {"type": "Har"}, PROP, "type: not one of Hard|Soft"),
    ("Reset", {}, OCC, "type: required property missing"),
    ("Reset", {"type": ["Hard"]}, TYPE, "type: expected string, got array"),
    ("Reset", {"type": "Hard", "when": "now"}, FORM, "when: unknown property"),
    ("Reset", {"type:=Hard|Soft": "Hard", "type": "Hard"}, FORM,
     "type:=Hard|Soft: unknown property"),
    ("Reset", {"Type": "Hard"}, FORM, "Type: unknown property"),
    ("SendLocalList", {"listVersion": 1}, OCC, "updateType: required property missing"),
    ("SendLocalList",
     {"listVersion": 1, "updateType": "Full", "localAuthorizationList": {"idTag": "A"}},
     TYPE, "localAuthorizationList: expected array, got object"),
    ("SendLocalList", {"listVersion": 1, "updateType": "Full",
                       "localAuthorizationList": [{"idTag": "A"},
                                                  {"idTag": "B", "idTagInfo": {}}]},
     OCC, "localAuthorizationList[1].idTagInfo.status: required property missing"),
    ("SendLocalList", {"listVersion": 1, "updateType": "Full",
                       "localAuthorizationList": [{"idTag": "A",
                                                   "idTagInfo": {"status": "Unknown"}}]},
     PROP, "localAuthorizationList[0].idTagInfo.status: "
           "not one of Accepted|Blocked|Expired|Invalid|ConcurrentTx"),
    ("SendLocalList", {"listVersion": 1, "updateType": "Full", "localAuthorizationList": [{}]},
     OCC, "localAuthorizationList[0].idTag: required property missing"),
    ("SendLocalList", {"listVersion": 1, "updateType": "Full", "localAuthorizationList": ["A"]},
     TYPE, "localAuthorizationList[0]: expected object, got string"),
    ("TriggerMessage", {"requestedMessage": "Authorize"}, PROP,
     "requestedMessage: not one of BootNotification|DiagnosticsStatusNotification|"
     "FirmwareStatusNotification|Heartbeat|MeterValues|StatusNotification"),
    ("TriggerMessage", {"connectorId": 1}, OCC, "requestedMessage: required property missing"),
    ("UnlockConnector", {"connectorId": 1.5}, TYPE, "connectorId: expected integer, got number"),
    ("UnlockConnector", {"connectorId": 1.0}, TYPE, "connectorId: expected integer, got number"),
    ("UnlockConnector", {}, OCC, "connectorId: required property missing"),
    ("UpdateFirmware", {"location": "https://x/"}, OCC, "retrieveDate: required property missing"),
    ("UpdateFirmware", {"location": "fw.bin", "retrieveDate": T0}, PROP, "location: not a URI"),
    ("UpdateFirmware", {"location": "https://x/", "retrieveDate": "2026-02-29T00:00:00Z"}, PROP,
     "retrieveDate: not an RFC 3339 date-time"),
]

SCP = "csChargingProfiles"
SCHED = SCP + ".chargingSchedule"


def scp(mutate):
    p = {"connectorId": 1, SCP: profile()}
    mutate(p)
    return p


def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


def _del(d, path):
    for k in path[:-1]:
        d = d[k]
    del d[path[-1]]


S = (SCP, "chargingSchedule")
P = S + ("chargingSchedulePeriod",)

BAD_SET_CHARGING_PROFILE = [
    (lambda p: _del(p, (SCP,)), OCC, SCP + ": required property missing"),
    (lambda p: _set(p, (SCP,), [profile()]), TYPE, SCP + ": expected object, got array"),
    (lambda p: _set(p, (SCP,), None), TYPE, SCP + ": expected object, got null"),
    (lambda p: _del(p, (SCP, "stackLevel")), OCC, SCP + ".stackLevel: required property missing"),
    (lambda p: _set(p, (SCP, "chargingProfileId"), "7"), TYPE,
     SCP + ".chargingProfileId: expected integer, got string"),
    (lambda p: _set(p, (SCP, "transactionId"), None), TYPE,
     SCP + ".transactionId: expected integer, got null"),
    (lambda p: _set(p, (SCP, "chargingProfilePurpose"), "txprofile"), PROP,
     SCP + ".chargingProfilePurpose: not one of ChargePointMaxProfile|TxDefaultProfile|TxProfile"),
    (lambda p: _set(p, (SCP, "recurrencyKind"), "Monthly"), PROP,
     SCP + ".recurrencyKind: not one of Daily|Weekly"),
    (lambda p: _set(p, (SCP, "validFrom"), "2026-02-30T00:00:00Z"), PROP,
     SCP + ".validFrom: not an RFC 3339 date-time"),
    (lambda p: _set(p, (SCP, "validTo"), 1795262400), TYPE,
     SCP + ".validTo: expected string, got integer"),
    (lambda p: _set(p, (SCP, "priority"), 1), FORM, SCP + ".priority: unknown property"),
    (lambda p: _del(p, S), OCC, SCHED + ": required property missing"),
    (lambda p: _set(p, S, "none"), TYPE, SCHED + ": expected object, got string"),
    (lambda p: _del(p, S + ("chargingRateUnit",)), OCC,
     SCHED + ".chargingRateUnit: required property missing"),
    (lambda p: _set(p, S + ("chargingRateUnit",), "kW"), PROP,
     SCHED + ".chargingRateUnit: not one of A|W"),
    (lambda p: _set(p, S + ("duration",), 1.5), TYPE,
     SCHED + ".duration: expected integer, got number"),
    (lambda p: _set(p, S + ("startSchedule",), "now"), PROP,
     SCHED + ".startSchedule: not an RFC 3339 date-time"),
    (lambda p: _set(p, S + ("minChargingRate",), "6"), TYPE,
     SCHED + ".minChargingRate: expected number, got string"),
    (lambda p: _set(p, S + ("minChargingRate",), 6.05), PROP,
     SCHED + ".minChargingRate: not a multiple of 0.1"),
    (lambda p: _del(p, P), OCC, SCHED + ".chargingSchedulePeriod: required property missing"),
    (lambda p: _set(p, P, {"startPeriod": 0, "limit": 6}), TYPE,
     SCHED + ".chargingSchedulePeriod: expected array, got object"),
    (lambda p: _set(p, P + (2,), 5), TYPE,
     SCHED + ".chargingSchedulePeriod[2]: expected object, got integer"),
    (lambda p: _del(p, P + (0, "startPeriod")), OCC,
     SCHED + ".chargingSchedulePeriod[0].startPeriod: required property missing"),
    (lambda p: _del(p, P + (1, "limit")), OCC,
     SCHED + ".chargingSchedulePeriod[1].limit: required property missing"),
    (lambda p: _set(p, P + (1, "limit"), "16"), TYPE,
     SCHED + ".chargingSchedulePeriod[1].limit: expected number, got string"),
    (lambda p: _set(p, P + (1, "limit"), True), TYPE,
     SCHED + ".chargingSchedulePeriod[1].limit: expected number, got boolean"),
    (lambda p: _set(p, P + (2, "limit"), 16.05), PROP,
     SCHED + ".chargingSchedulePeriod[2].limit: not a multiple of 0.1"),
    (lambda p: _set(p, P + (2, "numberPhases"), 3.0), TYPE,
     SCHED + ".chargingSchedulePeriod[2].numberPhases: expected integer, got number"),
    (lambda p: _set(p, P + (0, "phaseToUse"), 1), FORM,
     SCHED + ".chargingSchedulePeriod[0].phaseToUse: unknown property"),
]

GOOD_LIMITS = [0, 16, 16.0, 16.3, 6.5, 0.1, 0.3, 7.7, 99.9, 22000.1, 1e6, 1234567.8, -6.1]
BAD_LIMITS = [16.05, 0.01, 6.25, 7.77, 1e-9, 22000.15]

VALID_RESPONSES = [
    ("Authorize", {"idTagInfo": {"status": "Accepted"}}),
    ("Authorize", {"idTagInfo": {"status": "Blocked", "expiryDate": T0, "parentIdTag": "P" * 20}}),
    ("BootNotification",
     {"status": "Accepted", "currentTime": "2026-11-21T12:00:00.000Z", "interval": 300}),
    ("BootNotification",
     {"status": "Pending", "currentTime": "2026-11-21T13:00:00+01:00", "interval": 0}),
    ("DataTransfer", {"status": "UnknownVendorId"}),
    ("DataTransfer", {"status": "Accepted", "data": "x"}),
    ("DiagnosticsStatusNotification", {}),
    ("FirmwareStatusNotification", {}),
    ("Heartbeat", {"currentTime": T0}),
    ("MeterValues", {}),
    ("StartTransaction", {"idTagInfo": {"status": "Accepted"}, "transactionId": 17}),
    ("StatusNotification", {}),
    ("StopTransaction", {}),
    ("StopTransaction", {"idTagInfo": {"status": "Expired"}}),
    ("SignCertificate", {"status": "Rejected"}),
    ("LogStatusNotification", {}),
    ("SecurityEventNotification", {}),
    ("SignedFirmwareStatusNotification", {}),
]

BAD_RESPONSES = [
    ("Authorize", {}, OCC, "idTagInfo: required property missing"),
    ("Authorize", {"idTagInfo": {"status": "Nope"}}, PROP,
     "idTagInfo.status: not one of Accepted|Blocked|Expired|Invalid|ConcurrentTx"),
    ("Authorize", {"idTagInfo": "Accepted"}, TYPE, "idTagInfo: expected object, got string"),
    ("BootNotification", {"status": "OK", "currentTime": T0, "interval": 300}, PROP,
     "status: not one of Accepted|Pending|Rejected"),
    ("BootNotification", {"status": "Accepted", "currentTime": T0, "interval": "300"}, TYPE,
     "interval: expected integer, got string"),
    ("BootNotification",
     {"status": "Accepted", "currentTime": "2026-11-21 12:00:00", "interval": 300},
     PROP, "currentTime: not an RFC 3339 date-time"),
    ("BootNotification", {"status": "Accepted", "interval": 300}, OCC,
     "currentTime: required property missing"),
    ("DataTransfer", {"status": "Accepted", "data": 5}, TYPE,
     "data: expected string, got integer"),
    ("DataTransfer", {}, OCC, "status: required property missing"),
    ("DiagnosticsStatusNotification", {"status": "Idle"}, FORM, "status: unknown property"),
    ("FirmwareStatusNotification", {"x": 1}, FORM, "x: unknown property"),
    ("Heartbeat", {}, OCC, "currentTime: required property missing"),
    ("Heartbeat", {"currentTime": 1795262400}, TYPE, "currentTime: expected string, got integer"),
    ("MeterValues", {"ok": True}, FORM, "ok: unknown property"),
    ("StartTransaction", {"idTagInfo": {"status": "Accepted"}}, OCC,
     "transactionId: required property missing"),
    ("StartTransaction", {"idTagInfo": {"status": "Accepted"}, "transactionId": 1.5}, TYPE,
     "transactionId: expected integer, got number"),
    ("StatusNotification", {"status": "Available"}, FORM, "status: unknown property"),
    ("StopTransaction", {"idTagInfo": {"status": "Accepted", "parentIdTag": "p" * 21}}, PROP,
     "idTagInfo.parentIdTag: longer than 20 characters"),
]

# (frame text, code, msg_id, msg_type)
BAD_FRAMES = [
    ("", FORM, None, None),
    ("not json", FORM, None, None),
    ("[2, \"a\", \"Reset\", {\"type\": \"Hard\"}", FORM, None, None),
    ("{\"2\": \"a\"}", FORM, None, None),
    ("\"[2]\"", FORM, None, None),
    ("2", FORM, None, None),
    ("null", FORM, None, None),
    ("[]", FORM, None, None),
    ("[2]", FORM, None, None),
    ("[2, 17, \"Reset\", {\"type\": \"Hard\"}]", FORM, None, None),
    ("[2, null, \"Reset\", {\"type\": \"Hard\"}]", FORM, None, None),
    ("[2, [\"a\"], \"Reset\", {\"type\": \"Hard\"}]", FORM, None, None),
    ("[2, \"%s\", \"Reset\", {\"type\": \"Hard\"}]" % ("x" * 37), FORM, None, None),
    ("[5, \"a\", \"Reset\", {}]", PROTO, "a", None),
    ("[0, \"a\", \"Reset\", {}]", PROTO, "a", None),
    ("[1, \"a\"]", PROTO, "a", None),
    ("[\"2\", \"a\", \"Reset\", {\"type\": \"Hard\"}]", PROTO, "a", None),
    ("[2.0, \"a\", \"Reset\", {\"type\": \"Hard\"}]", PROTO, "a", None),
    ("[true, \"a\", \"Reset\", {\"type\": \"Hard\"}]", PROTO, "a", None),
    ("[null, \"a\"]", PROTO, "a", None),
    ("[2, \"a\"]", PROTO, "a", 2),
    ("[2, \"a\", \"Reset\"]", PROTO, "a", 2),
    ("[2, \"a\", \"Reset\", {\"type\": \"Hard\"}, {}]", FORM, "a", 2),
    ("[2, \"a\", 7, {\"type\": \"Hard\"}]", FORM, "a", 2),
    ("[2, \"a\", null, {}]", FORM, "a", 2),
    ("[2, \"a\", \"Reset\", []]", FORM, "a", 2),
    ("[2, \"a\", \"Reset\", null]", FORM, "a", 2),
    ("[2, \"a\", \"Reset\", \"{\\\"type\\\": \\\"Hard\\\"}\"]", FORM, "a", 2),
    ("[3, \"a\"]", PROTO, "a", 3),
    ("[3, \"a\", {}, {}]", FORM, "a", 3),
    ("[3, \"a\", \"ok\"]", FORM, "a", 3),
    ("[3, \"a\", null]", FORM, "a", 3),
    ("[4, \"a\"]", PROTO, "a", 4),
    ("[4, \"a\", 5, \"d\", {}]", FORM, "a", 4),
    ("[4, \"a\", \"GenericError\", 5, {}]", FORM, "a", 4),
    ("[4, \"a\", \"GenericError\", \"d\", []]", FORM, "a", 4),
    ("[4, \"a\", \"GenericError\", \"d\", null]", FORM, "a", 4),
    ("[4, \"a\", \"GenericError\", \"d\", {}, 1]", FORM, "a", 4),
]

# CALL frames whose action is refused: (frame, code)
BAD_ACTIONS = [
    ("[2, \"a\", \"Foo\", {}]", NOT_IMPL),
    ("[2, \"a\", \"\", {}]", NOT_IMPL),
    ("[2, \"a\", \"reset\", {\"type\": \"Hard\"}]", NOT_IMPL),
    ("[2, \"a\", \"@IdTagInfo\", {\"status\": \"Accepted\"}]", NOT_IMPL),
    ("[2, \"a\", \"@Purpose\", {}]", NOT_IMPL),
    ("[2, \"a\", \"Reset.conf\", {}]", NOT_IMPL),
    ("[2, \"a\", \"Reset/\", {}]", NOT_IMPL),
    ("[2, \"a\", \";Reset\", {}]", NOT_IMPL),
    ("[2, \"a\", \"CertificateSigned.conf\", {\"certificateChain\": \"x\"}]", NOT_IMPL),
    ("[2, \"a\", \"SignedUpdateFirmware.conf\", {}]", NOT_IMPL),
] + [("[2, \"a\", \"%s\", {}]" % a, NOT_SUPP) for a in CP_TO_CS if a not in CS_TO_CP]


def call_frame(action, payload, msg_id="m-1"):
    return json.dumps([2, msg_id, action, payload], ensure_ascii=False)


def outcome(frame, action=None):
    """What the firmware makes of a frame: ("OK",) or (code, description, msg_id, msg_type)."""
    try:
        m = ocppj.decode(frame)
        if m[0] == ocppj.CALL:
            ocppj.check_request(m[2], m[3], m[1])
        elif m[0] == ocppj.CALLRESULT and action:
            ocppj.check_response(action, m[2], m[1])
        return ("OK",)
    except ocppj.OcppError as e:
        return (e.code, e.description, e.msg_id, e.msg_type)


# ---------------------------------------------------------------- framing

@pytest.mark.parametrize("frame, code, msg_id, msg_type", BAD_FRAMES)
def test_bad_frames(frame, code, msg_id, msg_type):
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.decode(frame)
    e = ei.value
    assert (e.code, e.msg_id, e.msg_type) == (code, msg_id, msg_type)
    assert e.details == {}
    assert e.description
    # the reply to it is a well-formed CALLERROR, addressed to "-1" when the id was unreadable
    reply = json.loads(ocppj.encode_error(e.msg_id, e.code, e.description, e.details))
    assert reply == [4, msg_id if msg_id is not None else "-1", code, e.description, {}]


def test_message_id_of_36_chars_is_fine():
    mid = "x" * 36
    frame = call_frame("Reset", {"type": "Hard"}, mid)
    assert ocppj.decode(frame) == (2, mid, "Reset", {"type": "Hard"})


def test_empty_message_id_is_accepted():
    assert ocppj.decode('[3, "", {}]') == (3, "", {})


def test_bytes_frames_are_read_as_utf8():
    frame = call_frame("RemoteStartTransaction", {"idTag": "Zo\u00eb"}).encode()
    assert ocppj.decode(frame) == (2, "m-1", "RemoteStartTransaction", {"idTag": "Zo\u00eb"})
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.decode(b'[2, "a", "Reset", {"type": "\xff"}]')
    assert ei.value.code == FORM and ei.value.msg_id is None


def test_deeply_nested_json_is_a_formation_violation():
    frame = '[2, "a", "Reset", {"type": ' + "[" * 100000 + "]" * 100000 + "}]"
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.decode(frame)
    assert ei.value.code == FORM


def test_non_json_input_types():
    for value in (None, 5, ["[2]"]):
        with pytest.raises(ocppj.OcppError) as ei:
            ocppj.decode(value)
        assert ei.value.code == FORM


def test_decode_call_result_error():
    assert (ocppj.decode('[2,"id1","Reset",{"type":"Soft"}]')
            == (2, "id1", "Reset", {"type": "Soft"}))
    assert ocppj.decode('[3,"id1",{"status":"Accepted"}]') == (3, "id1", {"status": "Accepted"})
    assert (ocppj.decode('[4,"id1","NotSupported","no",{"a":1}]')
            == (4, "id1", "NotSupported", "no", {"a": 1}))


def test_callerror_without_description_or_details_is_salvaged():
    assert (ocppj.decode('[4,"id1","GenericError","oops"]')
            == (4, "id1", "GenericError", "oops", {}))
    assert ocppj.decode('[4,"id1","GenericError"]') == (4, "id1", "GenericError", "", {})


def test_decode_does_not_judge_the_action():
    # decode frames only; check_request decides about actions and payloads
    assert ocppj.decode('[2,"a","Foo",{"x":1}]') == (2, "a", "Foo", {"x": 1})
    assert ocppj.decode('[3,"a",{"anything":[1,2]}]') == (3, "a", {"anything": [1, 2]})


def test_constants():
    assert (ocppj.CALL, ocppj.CALLRESULT, ocppj.CALLERROR) == (2, 3, 4)
    assert len(set(ocppj.ERROR_CODES)) == 10
    assert "OccurenceConstraintViolation" in ocppj.ERROR_CODES  # 1.6 spelling
    assert "FormationViolation" in ocppj.ERROR_CODES


def test_ocpp_error_fields_and_text():
    e = ocppj.OcppError(TYPE, "connectorId: expected integer, got string", "id9")
    assert (e.code, e.description, e.msg_id, e.details, e.msg_type) == (
        TYPE, "connectorId: expected integer, got string", "id9", {}, None)
    assert str(e) == TYPE + ": connectorId: expected integer, got string"
    assert isinstance(e, Exception)
    assert ocppj.OcppError(PROTO, details={"a": 1}).details == {"a": 1}


# ---------------------------------------------------------------- encoding

@pytest.mark.parametrize("payload", [
    {}, {"type": "Hard"}, {"idTag": "Zo\u00eb \u4e2d\u6587 \U0001F600", "n": [1, 2.5, None, True]},
    {"data": "quote \" backslash \\ newline \n tab \t nul \u0000"},
])
def test_round_trips(payload):
    text = ocppj.encode_call("c-1", "DataTransfer", payload)
    assert ocppj.decode(text) == (2, "c-1", "DataTransfer", payload)
    assert ocppj.decode(ocppj.encode_result("r-1", payload)) == (3, "r-1", payload)
    assert ocppj.decode(ocppj.encode_error("e-1", "GenericError", "d\u00e9", payload)) == (
        4, "e-1", "GenericError", "d\u00e9", payload)


def test_encoding_is_compact():
    assert ocppj.encode_call("1", "Heartbeat", {}) == '[2,"1","Heartbeat",{}]'
    assert ocppj.encode_result("1", {"currentTime": T0}) == '[3,"1",{"currentTime":"%s"}]' % T0
    assert ocppj.encode_error("1", "NotImplemented") == '[4,"1","NotImplemented","",{}]'


def test_encode_error_details_default_is_fresh():
    a = json.loads(ocppj.encode_error("1", "GenericError"))
    b = json.loads(ocppj.encode_error(None, "InternalError", "boom", {"k": "v"}))
    assert a == [4, "1", "GenericError", "", {}]
    assert b == [4, "-1", "InternalError", "boom", {"k": "v"}]


@pytest.mark.parametrize("bad", [None, 5, "x" * 37])
def test_encoders_refuse_bad_ids(bad):
    with pytest.raises(ValueError):
        ocppj.encode_call(bad, "Heartbeat", {})
    with pytest.raises(ValueError):
        ocppj.encode_result(bad, {})
    if bad is not None:
        with pytest.raises(ValueError):
            ocppj.encode_error(bad, "GenericError")


@pytest.mark.parametrize("code", ["FormatViolation", "OccurrenceConstraintViolation", "Oops",
                                  None])
def test_encode_error_refuses_codes_outside_1_6(code):
    with pytest.raises(ValueError):
        ocppj.encode_error("1", code)


# ---------------------------------------------------------------- actions

def test_is_known_covers_all_of_1_6():
    for a in CS_TO_CP + CP_TO_CS:
        assert ocppj.is_known(a), a
    for a in ("", "Foo", "reset", "RESET", "@IdTagInfo", "Reset.conf", "BootNotification.conf",
              "CertificateSigned.conf", "SignCertificate.conf", "Reset/", ";Reset", None, 5):
        assert not ocppj.is_known(a), a


def test_table_holds_exactly_the_1_6_actions():
    keys = schema16.keys()
    assert sorted(k for k in keys if "." not in k and k[0] != "@") == sorted(CS_TO_CP)
    assert sorted(k[:-5] for k in keys if k.endswith(".conf")) == sorted(CP_TO_CS)


@pytest.mark.parametrize("frame, code", BAD_ACTIONS)
def test_refused_actions(frame, code):
    m = ocppj.decode(frame)
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_request(m[2], m[3], m[1])
    assert ei.value.code == code
    assert ei.value.msg_id == "a"
    assert ei.value.msg_type == 2


def test_check_response_refuses_actions_we_never_send():
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_response("Reset", {"status": "Accepted"})
    assert ei.value.code == NOT_SUPP
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_response("Foo", {})
    assert ei.value.code == NOT_IMPL


# ---------------------------------------------------------------- payloads

@pytest.mark.parametrize("action, payload", VALID_REQUESTS, ids=[a for a, _ in VALID_REQUESTS])
def test_valid_requests_pass(action, payload):
    ocppj.check_request(action, payload)
    assert outcome(call_frame(action, payload)) == ("OK",)


def test_every_request_has_a_valid_example():
    assert {a for a, _ in VALID_REQUESTS} == set(CS_TO_CP)


@pytest.mark.parametrize("action, payload, code, description", BAD_REQUESTS,
                         ids=["%s-%d" % (b[0], i) for i, b in enumerate(BAD_REQUESTS)])
def test_bad_requests(action, payload, code, description):
    assert outcome(call_frame(action, payload, "q-7")) == (code, description, "q-7", 2)


@pytest.mark.parametrize("mutate, code, description", BAD_SET_CHARGING_PROFILE,
                         ids=[b[2].split(":")[0] + "-" + b[1][:4]
                              for b in BAD_SET_CHARGING_PROFILE])
def test_bad_set_charging_profile(mutate, code, description):
    assert outcome(call_frame("SetChargingProfile", scp(mutate))) == (code, description, "m-1", 2)


@pytest.mark.parametrize("limit", GOOD_LIMITS)
def test_limit_multiple_of_a_tenth_accepted(limit):
    ocppj.check_request("SetChargingProfile", scp(lambda p: _set(p, P + (0, "limit"), limit)))


@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_limit_finer_than_a_tenth_refused(limit):
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_request("SetChargingProfile", scp(lambda p: _set(p, P + (0, "limit"), limit)))
    assert ei.value.code == PROP


@pytest.mark.parametrize("limit", [float("nan"), float("inf"), float("-inf")])
def test_limit_not_finite_refused(limit):
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_request("SetChargingProfile", scp(lambda p: _set(p, P + (0, "limit"), limit)))
    assert ei.value.code == PROP


def test_unknown_property_is_reported_before_missing_ones():
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_request("ReserveNow", {"connectorId": "x", "bogus": 1})
    assert (ei.value.code, ei.value.description) == (FORM, "bogus: unknown property")


def test_first_problem_in_schema_order_wins():
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_request("ReserveNow", {"idTag": 5, "connectorId": "x"})
    assert ((ei.value.code, ei.value.description)
            == (TYPE, "connectorId: expected integer, got string"))


def test_long_unknown_property_names_are_cut_in_descriptions():
    with pytest.raises(ocppj.OcppError) as ei:
        ocppj.check_request("Reset", {"type": "Hard", "k" * 5000: 1})
    assert ei.value.code == FORM
    assert len(ei.value.description) < 80


def test_non_object_payload_is_a_formation_violation():
    for payload in ([], "x", None, 1):
        with pytest.raises(ocppj.OcppError) as ei:
            ocppj.check_request("Reset", payload, "z")
        assert (ei.value.code, ei.value.msg_id) == (FORM, "z")


def test_payload_is_not_modified():
    payload = {"connectorId": 1, SCP: profile()}
    before = copy.deepcopy(payload)
    ocppj.check_request("SetChargingProfile", payload)
    assert payload == before


@pytest.mark.parametrize("action, payload", VALID_RESPONSES, ids=[a for a, _ in VALID_RESPONSES])
def test_valid_responses_pass(action, payload):
    ocppj.check_response(action, payload)
    assert outcome(json.dumps([3, "r", payload]), action) == ("OK",)


def test_every_response_has_a_valid_example():
    assert {a for a, _ in VALID_RESPONSES} == set(CP_TO_CS)


@pytest.mark.parametrize("action, payload, code, description", BAD_RESPONSES,
                         ids=["%s-%d" % (b[0], i) for i, b in enumerate(BAD_RESPONSES)])
def test_bad_responses(action, payload, code, description):
    assert outcome(json.dumps([3, "r", payload]), action) == (code, description, "r", 3)


@pytest.mark.parametrize("uri, ok", [
    ("ftp://h/x", True), ("https://h:8443/a?b=c#d", True), ("sftp://u@h/", True),
    ("urn:isbn:1", True),
    ("a+b.c-d://x", True), ("http://h/a b", False), ("http://h/\t", False), ("://x", False),
    ("1ftp://x", False), ("ftp:", False), ("ftp", False), ("", False), ("f\u00e9p://x", False),
    ("ht_tp://x", False),
])
def test_uri_check(uri, ok):
    err = schema16.validate("GetDiagnostics", {"location": uri})
    assert (err is None) == ok, err


def test_schema16_validate_unknown_key():
    with pytest.raises(KeyError):
        schema16.validate("Nope", {})


# ------------------------------------------- agreement with the official schemas

def official_schema(name):
    ocpp = pytest.importorskip("ocpp")
    path = os.path.join(os.path.dirname(ocpp.__file__), "v16", "schemas", name + ".json")
    with open(path) as f:
        return json.load(f)


def normalise(s, defs=None):
    """Official schema minus titles, and minus the no-op additionalProperties on strings;
    the security extension's "$ref"s to its definitions inlined."""
    defs = s.get("definitions", {}) if defs is None else defs
    if "$ref" in s:
        return normalise(defs[s["$ref"].rsplit("/", 1)[1]], defs)
    s = {k: v for k, v in s.items()
         if k not in ("$schema", "title", "id", "$id", "definitions", "additionalItems",
                      "javaType", "comment")}
    if s.get("type") != "object":
        s.pop("additionalProperties", None)
    elif "properties" not in s:
        s["properties"] = {}
    if "properties" in s:
        s["properties"] = {k: normalise(v, defs) for k, v in s["properties"].items()}
    if "items" in s:
        s["items"] = normalise(s["items"], defs)
    if "required" in s:
        s["required"] = sorted(s["required"])
    return s


def expand_type(t):
    """The JSON schema a compact schema16 type stands for."""
    if t[0] == "*":
        return {"type": "array", "items": expand_type(t[1:])}
    if t[0] == "@":
        sub = schema16.get(t)
        return expand_type(sub) if sub.startswith("=") else expand_object(sub)
    if t == "i":
        return {"type": "integer"}
    if t == "d":
        return {"type": "number", "multipleOf": 0.1}
    if t[0] == "s":
        return {"type": "string", "maxLength": int(t[1:])} if len(t) > 1 else {"type": "string"}
    if t == "t":
        return {"type": "string", "format": "date-time"}
    if t == "u":
        return {"type": "string", "format": "uri"}
    if t[0] == "=":
        return {"type": "string", "enum": t[1:].split("|")}
    raise AssertionError("unknown compact type " + t)


def expand_object(spec):
    props, req = {}, []
    for f in spec.split(",") if spec else []:
        name, t = f.split(":", 1)
        if name.startswith("!"):
            name = name[1:]
            req.append(name)
        assert name not in props
        props[name] = expand_type(t)
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if req:
        out["required"] = sorted(req)
    return out


@pytest.mark.parametrize("key", [a for a in CS_TO_CP] + [a + ".conf" for a in CP_TO_CS])
def test_table_matches_official_schema(key):
    name = key[:-5] + "Response" if key.endswith(".conf") else key
    assert expand_object(schema16.get(key)) == normalise(official_schema(name))


def _jsonschema_code(errors):
    kws = {e.validator for e in errors}
    if not kws:
        return None
    # A wrong type is the root cause: the official enum strings also carry a
    # (meaningless) additionalProperties, which fires when an object is put there.
    if "type" in kws:
        return TYPE
    if "additionalProperties" in kws:
        return FORM
    if "required" in kws:
        return OCC
    return PROP


REPLACEMENTS = [None, True, 0, 7, -3, 2.0, 1.5, 0.05, "", "x", "x" * 600, T0, "Accepted", [], [1],
                {}, {"a": 1}]


def _mutations(value, path=()):
    """Single-fault variants of a payload: (path, description, new payload)."""
    if isinstance(value, dict):
        yield path, "extra", lambda root, p=path + ("zzUnknown",): _set(root, p, 1)
        for k in value:
            yield path + (k,), "drop", lambda root, p=path + (k,): _del(root, p)
            yield from _mutations(value[k], path + (k,))
    elif isinstance(value, list):
        for i, item in enumerate(value[:2]):
            yield from _mutations(item, path + (i,))
    if path:
        for r in REPLACEMENTS:
            yield path, "set %r" % (r,), lambda root, p=path, r=r: _set(root, p, copy.deepcopy(r))


def test_single_faults_agree_with_jsonschema():
    jsonschema = pytest.importorskip("jsonschema")
    fc = jsonschema.FormatChecker(formats=())

    @fc.checks("date-time", raises=ValueError)
    def _dt(s):
        return not isinstance(s, str) or clock.parse_iso(s) is not None

    # jsonschema has no URI checker without extra packages; the URI rule
    # itself is pinned by test_uri_check.
    @fc.checks("uri")
    def _uri(s):
        return not isinstance(s, str) or schema16._is_uri(s)

    checked = 0
    cases = ([(a, "req", p, a) for a, p in VALID_REQUESTS]
             + [(a, "conf", p, a + "Response") for a, p in VALID_RESPONSES])
    for action, kind, payload, schema_name in cases:
        v = jsonschema.Draft4Validator(official_schema(schema_name), format_checker=fc)
        assert not list(v.iter_errors(payload)), (action, payload)
        for path, what, mutate in _mutations(payload):
            p = copy.deepcopy(payload)
            mutate(p)
            expected = _jsonschema_code(list(v.iter_errors(p)))
            try:
                (ocppj.check_request if kind == "req" else ocppj.check_response)(action, p)
                got = None
            except ocppj.OcppError as e:
                got = e.code
            assert got == expected, (action, path, what, p)
            checked += 1
    assert checked > 2000


# ---------------------------------------------------------------- MicroPython parity

MP_SCRIPT = """
import json, sys
from firmware import ocppj
out = []
for frame, action in json.loads(sys.stdin.read()):
    try:
        m = ocppj.decode(frame)
        if m[0] == ocppj.CALL:
            ocppj.check_request(m[2], m[3], m[1])
        elif m[0] == ocppj.CALLRESULT and action:
            ocppj.check_response(action, m[2], m[1])
        out.append(["OK"])
    except ocppj.OcppError as e:
        out.append([e.code, e.description, e.msg_id, e.msg_type])
print(json.dumps(out))
"""


def parity_cases():
    cases = [(f, None) for f, _, _, _ in BAD_FRAMES] + [(f, None) for f, _ in BAD_ACTIONS]
    cases += [(call_frame(a, p), None) for a, p in VALID_REQUESTS]
    cases += [(call_frame(a, p), None) for a, p, _, _ in BAD_REQUESTS]
    cases += [(call_frame("SetChargingProfile", scp(m)), None)
              for m, _, _ in BAD_SET_CHARGING_PROFILE]
    cases += [(call_frame("SetChargingProfile",
                          scp(lambda p, v=v: _set(p, P + (1, "limit"), v))), None)
              for v in GOOD_LIMITS + BAD_LIMITS]
    cases += [(json.dumps([3, "r", p]), a) for a, p in VALID_RESPONSES]
    cases += [(json.dumps([3, "r", p]), a) for a, p, _, _ in BAD_RESPONSES]
    cases += [(call_frame("RemoteStartTransaction", {"idTag": "\U0001F600" * n}), None)
              for n in (20, 21)]
    cases += [('[4,"e","GenericError"]', None), ('[4,"e","GenericError","x",{"a":[1]}]', None)]
    return cases


def test_micropython_gives_the_same_codes():
    cases = parity_cases()
    proc = run_mp(MP_SCRIPT, input=json.dumps(cases, ensure_ascii=False))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout)
    expected = [list(outcome(f, a)) for f, a in cases]
    assert len(got) == len(cases) > 150
    for case, g, e in zip(cases, got, expected):
        assert g == e, case


# ---- a frame in pieces (ocppj.pieces): the same text, never one big string -----------------

_PIECES_CASES = [
    [2, "id-1", "Heartbeat", {}],
    [3, "id-2", {"configurationKey": [{"key": "K%d" % i, "readonly": i % 2 == 0,
                                       "value": "v" * i} for i in range(40)],
                 "unknownKey": ["X", "Y"]}],
    [2, "id-3", "StopTransaction",
     {"transactionId": 7, "meterStop": 1200, "timestamp": "2026-01-01T00:00:00Z",
      "transactionData": [{"timestamp": "2026-01-01T00:00:%02dZ" % i,
                           "sampledValue": [{"value": str(i * 10.5), "unit": "Wh"},
                                            {"value": "230.1", "measurand": "Voltage"}]}
                          for i in range(10)]}],
    [3, "id-4", {"status": "Accepted", "data": "é\"\\\n", "n": None, "f": 1.5, "l": []}],
    [], {}, "text", 5,
]

_PIECES_MP = """
import json
from firmware import ocppj
for case in json.loads(%r):
    parts = list(ocppj.pieces(case))
    assert "".join(parts) == ocppj._dumps(case), case
    assert "".join(ocppj.pieces(case, False)) == json.dumps(case), case
    print(max(len(p) for p in parts))
"""


def test_pieces_give_the_same_text_as_one_dumps_in_small_parts():
    import json
    from firmware import ocppj
    longest = []
    for case in _PIECES_CASES:
        parts = list(ocppj.pieces(case))
        assert "".join(parts) == ocppj._dumps(case)
        assert "".join(ocppj.pieces(case, False)) == json.dumps(case)
        longest.append(max(len(p) for p in parts))
    whole = len(ocppj._dumps(_PIECES_CASES[1]))
    assert whole > 2000 and longest[1] < 200, (whole, longest[1])
    assert len(ocppj._dumps(_PIECES_CASES[2])) > 1000 and longest[2] < 200
    from tests.mp import run_mp
    proc = run_mp(_PIECES_MP % json.dumps(_PIECES_CASES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # (CPython escapes "é" as \u00e9, MicroPython writes it as is: lengths may differ there)
    mp_longest = [int(n) for n in proc.stdout.split()]
    assert len(mp_longest) == len(longest) and mp_longest[1:3] == longest[1:3]
