"""What config.json may hold: one definition shared by the firmware and `tools.config`.

Each entry: (dotted path, type, default, rule, help).
type: "str" "int" "float" "bool" "url" "pin"; rule: None, (lo, hi) for numbers and
string lengths, or a tuple of allowed strings. REQUIRED as default means the key must be set.
The `ocpp` section is checked against the OCPP key table (firmware/keys.py) instead, and
`hardware` / `wifi` against hal/hwspec.py, with the pin range and wiring defaults of the
board `hardware.board` names (hal/boards/).
"""
REQUIRED = "<required>"

SPEC = (
    ("csms.url", "url", REQUIRED, None,
     "Central System URL, e.g. \"wss://csms.example.com/ocpp\""),
    ("csms.id", "str", REQUIRED, (1, 48),
     "charge point identity (last URL segment), e.g. \"CP_1\""),
    ("csms.password", "str", "", (0, 40), "HTTP Basic auth password; empty for none"),
    ("csms.ca_file", "str", "", (0, 120),
     "CA certificate file (PEM) for wss://, relative to config.json"),
    ("csms.verify_tls", "bool", True, None,
     "verify the CSMS certificate (true or false); always on at SecurityProfile 2 and 3"),
    ("csms.tls_url", "str", "", (0, 200),
     "wss:// URL for SecurityProfile 2 and 3; empty: csms.url with ws:// made wss://"),
    ("csms.allow_plain_basic_auth", "bool", False, None,
     "allow the Basic auth password over plain ws:// (SecurityProfile 0 and 1)"),
    ("csms.client_cert", "str", "", (0, 120),
     "client certificate chain (PEM) for SecurityProfile 3, relative to config.json"),
    ("csms.client_key", "str", "", (0, 120),
     "private key (PEM) of csms.client_cert, relative to config.json"),
    ("csms.max_message", "int", 8192, (1024, 65536),
     "largest websocket message accepted, in bytes"),
    ("csms.connect_timeout", "int", 10, (1, 120),
     "seconds allowed for TCP/TLS connect and handshake, and for each frame sent or begun"),
    ("csms.call_timeout", "int", 30, (1, 600), "seconds to wait for the CSMS to answer a request"),
    ("csms.reconnect_min", "float", 1.0, (0.1, 600), "first reconnect delay in seconds"),
    ("csms.reconnect_max", "float", 60.0, (1, 3600), "longest reconnect delay in seconds"),
    ("station.vendor", "str", REQUIRED, (1, 20), "chargePointVendor in BootNotification"),
    ("station.model", "str", REQUIRED, (1, 20), "chargePointModel in BootNotification"),
    ("station.serial", "str", "", (0, 25), "chargePointSerialNumber in BootNotification"),
    ("station.charge_box_serial", "bool", True, None,
     "also send the serial as chargeBoxSerialNumber (deprecated in 1.6; older CSMSs read it)"),
    ("station.firmware_version", "str", "", (0, 50), "firmwareVersion in BootNotification"),
    ("station.connectors", "int", 1, (1, 8), "number of connectors (1-8)"),
    ("station.fixed_cable", "bool", False, None,
     "true when the cable is fixed (no lock, no unlock)"),
    ("station.voltage", "float", 230.0, (100, 480), "nominal phase voltage in V"),
    ("station.phases", "int", 1, (1, 3), "phases wired (1 or 3)"),
    ("station.max_current", "float", 32.0, (6, 80), "rated current per phase in A"),
    ("data_dir", "str", "data", (1, 60), "folder for persistent state, relative to config.json"),
    ("log.level", "str", "info", ("debug", "info", "warn", "error"), "log level"),
)

# Secret values (README "Security"): never printed, logged, echoed in a config error, shown by
# `tools.config show` or uploaded. OCPP keys with access "x" (write-only, firmware/keys.py,
# e.g. AuthorizationKey) are secret too; they never appear in config.json.
SECRETS = ("csms.password", "wifi.password")

SECTIONS = ("csms", "station", "data_dir", "log", "ocpp", "hardware", "wifi")
