"""Secrets never leave the charger (README "Security"): a session sets every secret the
charger holds, then the log ring on flash, the security log, the console output, a
GetDiagnostics upload and GetLog uploads (both logs) are searched for each of them."""
import http.server
import json
import os
import threading
import time

from ocpp.v16 import call

from tests.scenarios import pki
from tests.scenarios.steps import booted

CSMS_PASSWORD = "Csms-Basic-Pass-7"
WIFI_KEY = "WiFi-PSK-in-config-9"
# ChangeConfiguration AuthorizationKey: 40 hex digits, as the whitepaper wants.
AUTH_KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"
URL_PASSWORD = "Url-Pass-In-Location-3"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.uploads[self.path] = body
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.uploads = {}
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def key_material(path):
    """The lines of a PEM private key's body: none of them may show up anywhere."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("-----")]


def test_secrets_never_leave_the_charger(csms, charger, tmp_path):
    csms.password = CSMS_PASSWORD
    cp = charger(csms_config={"password": CSMS_PASSWORD, "allow_plain_basic_auth": True},
                 start=False)
    folder = os.path.dirname(cp.config_path)
    # A technician-provisioned client key (SecurityProfile 3 material) and a WiFi key.
    _, key_path = pki.Authority().client(tmp_path, "CP_1")
    with open(cp.config_path) as f:
        cfg = json.load(f)
    cfg["csms"]["client_cert"] = os.path.relpath(str(tmp_path / "client.pem"), folder)
    cfg["csms"]["client_key"] = os.path.relpath(key_path, folder)
    cfg["wifi"] = {"ssid": "depot", "password": WIFI_KEY}
    with open(cp.config_path, "w") as f:
        json.dump(cfg, f)
    secrets = [CSMS_PASSWORD, WIFI_KEY, AUTH_KEY, URL_PASSWORD] + key_material(key_path)
    cp.start()
    booted(csms)
    web = serve()
    try:
        # AuthorizationKey by ChangeConfiguration: the charger tries it at once (the Central
        # System still wants the old password: 401, back to the old one), echoed nowhere.
        reply = csms.call(call.ChangeConfiguration(key="AuthorizationKey", value=AUTH_KEY))
        assert reply.status == "Accepted"
        cp.wait_log("back to SecurityProfile", timeout=30)
        cp.wait_log("ws: connected", timeout=30)
        # A location with credentials in its URL; the log lines name it without them.
        location = "http://logs:%s@127.0.0.1:%d/in/" % (URL_PASSWORD, web.server_address[1])
        name = csms.call(call.GetDiagnostics(location=location)).file_name
        csms.wait_for("DiagnosticsStatusNotification", {"status": "Uploaded"}, timeout=20)
        time.sleep(1.1)  # a file name of its own for the next upload
        csms.call(call.ChangeConfiguration(key="HeartbeatInterval", value="77"))
        names = [name]
        for n, kind in enumerate(("DiagnosticsLog", "SecurityLog")):
            reply = csms.call(call.GetLog(log={"remoteLocation": location}, log_type=kind,
                                          request_id=n + 1))
            assert reply.status == "Accepted"
            csms.wait_for("LogStatusNotification", {"status": "Uploaded", "requestId": n + 1},
                          timeout=20)
            names.append(reply.filename)
        # A firmware location with credentials: logged, without its password.
        fw = "http://fw:%s@127.0.0.1:%d/fw.tar" % (URL_PASSWORD, web.server_address[1])
        csms.call(call.UpdateFirmware(location=fw, retrieve_date=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
        cp.wait_log("fw:***@127.0.0.1")
        cp.console("status")
        cp.wait_log("boot accepted")
    finally:
        web.shutdown()
        web.server_close()
    cp.stop()
    uploads = {path: body.decode() for path, body in web.uploads.items()}
    assert sorted(p.rsplit("/", 1)[1] for p in uploads) == sorted(names)
    # What was looked at must hold the session: otherwise the scan proves nothing.
    everything = {"console": "\n".join(cp.output())}
    data = os.path.join(folder, "data")
    for name in os.listdir(data):
        if name.startswith(("log.", "sec.")):
            with open(os.path.join(data, name)) as f:
                everything[name] = f.read()
    everything.update(uploads)
    assert "log.0" in everything and "sec.0" in everything
    for where, text in everything.items():
        for secret in secrets:
            assert secret not in text, "a secret in %s" % where
    assert "ChangeConfiguration AuthorizationKey=(not shown): Accepted" in everything["log.0"]
    assert "fw:***@127.0.0.1" in everything["log.0"]
    diag = [body for path, body in uploads.items() if path.endswith(names[0])][0]
    assert "BootNotification Accepted" in diag and "HeartbeatInterval" not in diag
    seclog = [body for path, body in uploads.items() if path.endswith(names[2])][0]
    assert "StartupOfTheDevice" in seclog and "FailedToAuthenticateAtCentralSystem" in seclog
