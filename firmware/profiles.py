"""Feature profiles: which module handles which Central System request, and which keys it owns.

One row per feature module: (profile, module in firmware/, actions, configuration keys, state
file). A feature whose state file exists in data_dir is loaded at boot (stored charging profiles
and reservations act from the first tick); the others load on their first request.
A feature module has, for each action in its row, a plain function named after it:

    def ReserveNow(cp, req):          # -> reply dict, or (reply, after)
        ...

(`after` is a coroutine function started once the reply is on the wire, see rpc.py. A reply
that must wait for one of our own CALLs is a coroutine giving either later.) A module
that keeps state also has `load(cp) -> state`; the charge point calls it on the first
`cp.feature(name)`, caches the state, and `cp.drop(name)` forgets it and unloads the module.
Rpc asks `ChargePoint.handler(action)` on every CALL, so a module is imported on its first
request, never at boot.

SupportedFeatureProfiles is made from this table, naming only OCPP 1.6 feature profiles
(PROFILES_1_6): the rows of the security extension ("Security") are no 1.6 profile. The key
column is what the README's key tables and GetConfiguration's completeness test are checked
against (tests/unit/test_profiles.py).
"""
import sys

# The feature profiles OCPP 1.6 defines: the only names SupportedFeatureProfiles may carry.
PROFILES_1_6 = ("Core", "FirmwareManagement", "LocalAuthListManagement", "Reservation",
                "RemoteTrigger", "SmartCharging")

FEATURES = (
    ("Core", "core",
     "ChangeAvailability ChangeConfiguration ClearCache DataTransfer GetConfiguration"
     " RemoteStartTransaction RemoteStopTransaction Reset UnlockConnector",
     "AllowOfflineTxForUnknownId AuthorizationCacheEnabled AuthorizeRemoteTxRequests"
     " ClockAlignedDataInterval ConnectionTimeOut ConnectorPhaseRotation"
     " ConnectorPhaseRotationMaxLength GetConfigurationMaxKeys HeartbeatInterval"
     " LocalAuthorizeOffline LocalPreAuthorize MaxEnergyOnInvalidId MeterValuesAlignedData"
     " MeterValuesAlignedDataMaxLength MeterValuesSampledData MeterValuesSampledDataMaxLength"
     " MeterValueSampleInterval MinimumStatusDuration NumberOfConnectors ResetRetries"
     " StopTransactionOnEVSideDisconnect StopTransactionOnInvalidId StopTxnAlignedData"
     " StopTxnAlignedDataMaxLength StopTxnSampledData StopTxnSampledDataMaxLength"
     " SupportedFeatureProfiles SupportedFeatureProfilesMaxLength TransactionMessageAttempts"
     " TransactionMessageRetryInterval UnlockConnectorOnEVSideDisconnect WebSocketPingInterval",
     ""),
    # The security extension (whitepaper edition 3) defines no feature profile of its own:
    # its rows say "Core" so that SupportedFeatureProfiles names only 1.6 profiles.
    ("Core", "certificates", "DeleteCertificate GetInstalledCertificateIds InstallCertificate",
     "CertificateStoreMaxLength", ""),
    ("Core", "secprofile", "CertificateSigned",
     "AuthorizationKey CertificateSignedMaxChainSize CpoName SecurityProfile", ""),
    # SignedUpdateFirmware (security extension) is handled by the same module as
    # UpdateFirmware, so it shares its row.
    ("FirmwareManagement", "updater", "UpdateFirmware SignedUpdateFirmware", "", ""),
    ("FirmwareManagement", "diagnostics", "GetDiagnostics", "", ""),
    ("LocalAuthListManagement", "localauth", "GetLocalListVersion SendLocalList",
     "LocalAuthListEnabled LocalAuthListMaxLength SendLocalListMaxLength", ""),
    ("Reservation", "reservation", "CancelReservation ReserveNow",
     "ReserveConnectorZeroSupported", "reservations.json"),
    ("RemoteTrigger", "trigger", "TriggerMessage", "", ""),
    ("Security", "getlog", "GetLog", "", ""),
    ("Security", "exttrigger", "ExtendedTriggerMessage", "", ""),
    ("SmartCharging", "smart", "ClearChargingProfile GetCompositeSchedule SetChargingProfile",
     "ChargeProfileMaxStackLevel ChargingScheduleAllowedChargingRateUnit"
     " ChargingScheduleMaxPeriods ConnectorSwitch3to1PhaseSupported"
     " MaxChargingProfilesInstalled", "profiles.json"),
)


def _has(words, word):
    # A whole-word search without splitting the row (no list per request).
    if not word:
        return False
    i = words.find(word)
    while i >= 0:
        end = i + len(word)
        if (i == 0 or words[i - 1] == " ") and (end == len(words) or words[end] == " "):
            return True
        i = words.find(word, i + 1)
    return False


def module_for(action):
    """The feature module's name handling `action`, or None."""
    for row in FEATURES:
        if _has(row[2], action):
            return row[1]
    return None


def supported():
    """SupportedFeatureProfiles: every 1.6 profile of the table, once, in table order."""
    seen = []
    for row in FEATURES:
        if row[0] not in seen and row[0] in PROFILES_1_6:
            seen.append(row[0])
    return ",".join(seen)


def state_path(cp, name):
    """The state file of feature `name` in data_dir (its row's last column)."""
    from firmware.store import join
    for row in FEATURES:
        if row[1] == name:
            return join(cp.cfg["_data"], row[4])
    raise KeyError(name)


def module(name):
    """The feature module `name`, imported on first use."""
    path = "firmware." + name
    mod = sys.modules.get(path)
    if mod is None:
        __import__(path)
        mod = sys.modules[path]
    return mod
