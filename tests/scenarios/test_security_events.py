"""Security extension, events and logs: SecurityEventNotification (critical events kept on
flash and delivered after reconnects and restarts, in order, once), GetLog with
LogStatusNotification, ExtendedTriggerMessage."""
import http.server
import re
import threading
import time

import pytest
from ocpp.v16 import call

import tools.csms
from tests.scenarios.steps import FAST, booted, start_session

SEC = "SecurityEventNotification"


def events(csms, cp_id=None):
    return [m["type"] for m in csms.messages(SEC, cp_id)]


def wait_event(csms, kind, timeout=15):
    return csms.wait_for(SEC, {"type": kind}, timeout=timeout)


# ---- an upload server --------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.puts.append((time.monotonic(), self.path))
        if self.path.startswith("/denied/"):
            status, answer = 401, b"who are you"
        else:
            self.server.uploads[self.path] = body
            status, answer = 201, b"stored"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class Web(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.uploads, self.puts = {}, []
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture(scope="module")
def web():
    server = Web()
    yield server
    server.shutdown()
    server.server_close()


def get_log(csms, kind, location, request_id, **kw):
    params = {"remoteLocation": location}
    for key, name in (("oldest", "oldestTimestamp"), ("latest", "latestTimestamp")):
        if key in kw:
            params[name] = kw.pop(key)
    return csms.call(call.GetLog(log=params, log_type=kind, request_id=request_id, **kw))


def log_statuses(csms, request_id, *expected, timeout=15):
    for s in expected:
        csms.wait_for("LogStatusNotification", {"status": s, "requestId": request_id},
                      timeout=timeout)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


# ---- SecurityEventNotification -----------------------------------------------------------

def test_startup_and_reset_are_reported_in_order_once(csms, charger):
    cp = charger()
    booted(csms)
    first = wait_event(csms, "StartupOfTheDevice")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", first["timestamp"])
    assert csms.call(call.Reset(type="Soft")).status == "Accepted"
    csms.wait_for("BootNotification", timeout=20)
    wait_event(csms, "StartupOfTheDevice", timeout=20)  # the next one: after the restart
    time.sleep(1)
    # Reset before the second startup, nothing twice (each event carries its own timestamp).
    assert events(csms) == ["StartupOfTheDevice", "ResetOrReboot", "StartupOfTheDevice"]
    assert "soft reset" in csms.messages(SEC)[1].get("techInfo", "")
    cp.wait_log("security event ResetOrReboot")


def test_an_opened_enclosure_is_reported_once_per_opening(csms, charger):
    cp = charger()
    booted(csms)
    wait_event(csms, "StartupOfTheDevice")
    cp.console("tamper open")
    cp.wait_log("enclosure opened (tamper switch)")
    wait_event(csms, "TamperDetectionActivated")
    time.sleep(1)  # many ticks with the enclosure still open: no second event
    cp.console("tamper close")
    cp.wait_log("enclosure closed")
    cp.console("tamper open")
    cp.wait_log("enclosure opened (tamper switch)")
    csms.wait_for(SEC, lambda p: events(csms).count("TamperDetectionActivated") == 2,
                  timeout=15)
    time.sleep(1)
    assert events(csms) == ["StartupOfTheDevice", "TamperDetectionActivated",
                            "TamperDetectionActivated"]


def test_critical_events_wait_on_flash_while_offline(csms, charger, link):
    """Made while the Central System is unreachable, across a restart: delivered after the
    link comes back, in the order they happened, each once."""
    cp = charger(csms_config=link.config)
    booted(csms)
    wait_event(csms, "StartupOfTheDevice")
    # Its CALLRESULT must be read before the cut: a reply lost with the link has the event
    # sent again (at least once, like a transaction message; see README "Security").
    time.sleep(1)
    link.cut()
    cp.wait_log("link down")
    cp.console("seclog clear")
    cp.wait_log("security event SecurityLogWasCleared")
    cp.stop()
    cp.start()  # a power cycle while offline: a second StartupOfTheDevice, on flash
    cp.wait_log("security event StartupOfTheDevice")
    time.sleep(1)
    assert events(csms) == ["StartupOfTheDevice"]
    link.restore()
    csms.wait_for(SEC, lambda p: len(events(csms)) >= 3, timeout=20)
    time.sleep(2)
    assert events(csms) == ["StartupOfTheDevice", "SecurityLogWasCleared", "StartupOfTheDevice"]


def test_invalid_messages_and_clock_changes_are_security_events(csms, charger, monkeypatch):
    charger()
    booted(csms)
    wait_event(csms, "StartupOfTheDevice")
    csms.send_raw('[2,"x1","Reset",{"type":"Warm"}]')
    got = wait_event(csms, "InvalidMessages")
    assert got["techInfo"].startswith("PropertyConstraintViolation")
    # A second one within 10 s is counted, not sent nor logged on its own.
    csms.send_raw('[2,"x2","Reset",{"type":"Sideways"}]')
    csms.expect_none(SEC, 2, match={"type": "InvalidMessages"})
    assert events(csms).count("InvalidMessages") == 1
    # The Central System moves the clock by an hour: SettingSystemTime.
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    monkeypatch.setattr(tools.csms, "utc_now_iso", lambda: later)
    assert csms.call(call.TriggerMessage(requested_message="Heartbeat")).status == "Accepted"
    got = wait_event(csms, "SettingSystemTime")
    assert later in got["techInfo"]


def test_failed_authentication_at_the_central_system(csms, charger):
    """HTTP 401 at the websocket upgrade: FailedToAuthenticateAtCentralSystem in the security
    log (it cannot be sent on a link that is refused)."""
    csms.password = "right-password"
    cp = charger(csms_config={"password": "wrong-password", "allow_plain_basic_auth": True,
                              "reconnect_min": 0.2, "reconnect_max": 1})
    cp.wait_log("security event FailedToAuthenticateAtCentralSystem", timeout=15)
    assert not csms.messages("BootNotification")


# ---- GetLog ------------------------------------------------------------------------------

def test_get_log_security_log_over_http(csms, charger, web, tmp_path):
    cp = charger()
    booted(csms)
    wait_event(csms, "StartupOfTheDevice")
    base = "%s/%s/sec" % (web.url, tmp_path.name)  # a directory without "/" at its end
    reply = get_log(csms, "SecurityLog", base, 11)
    assert reply.status == "Accepted"
    assert re.fullmatch(r"CP_1-\d{8}T\d{6}Z-security\.log", reply.filename), reply.filename
    log_statuses(csms, 11, "Uploading", "Uploaded")
    text = web.uploads["/%s/sec/%s" % (tmp_path.name, reply.filename)].decode()
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ StartupOfTheDevice firmware ", text, re.M)
    assert "BootNotification" not in text  # the diagnostics log is another file
    # A window that ends before the startup holds no event.
    time.sleep(1.1)
    reply = get_log(csms, "SecurityLog", base + "/old/", 12, latest=iso(time.time() - 3600))
    log_statuses(csms, 12, "Uploading", "Uploaded")
    text = web.uploads["/%s/sec/old/%s" % (tmp_path.name, reply.filename)].decode()
    assert text.startswith("# ") and "StartupOfTheDevice" not in text
    cp.wait_log("uploaded %s" % reply.filename)


def test_get_log_diagnostics_log_with_time_window(csms, charger, web, tmp_path):
    cp = charger(ocpp=FAST)
    booted(csms)
    time.sleep(2)
    start = int(time.time()) - 1
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    reply = get_log(csms, "DiagnosticsLog", "%s/%s/d/" % (web.url, tmp_path.name), 21,
                    oldest=iso(start))
    assert reply.filename.endswith("-diagnostics.log")
    log_statuses(csms, 21, "Uploading", "Uploaded")
    text = web.uploads["/%s/d/%s" % (tmp_path.name, reply.filename)].decode()
    assert "connector 1 Preparing" in text and "BootNotification Accepted" not in text


def test_get_log_failures_and_retries(csms, charger, web):
    charger()
    booted(csms)
    t0 = time.monotonic()
    # The server refuses who we are, twice (retries=2 attempts, 1 s apart is below the floor).
    reply = get_log(csms, "SecurityLog", web.url + "/denied/", 31, retries=2, retry_interval=1)
    assert reply.status == "Accepted"
    log_statuses(csms, 31, "Uploading", "PermissionDenied", timeout=30)
    puts = [t for t, path in web.puts if path.startswith("/denied/") and t > t0]
    assert len(puts) == 2 and puts[1] - puts[0] >= 4.5  # job.py: at least 5 s apart
    # Not a URL, and a scheme we cannot upload to.
    assert get_log(csms, "SecurityLog", "nowhere", 32).status == "Accepted"
    log_statuses(csms, 32, "BadMessage")
    assert get_log(csms, "DiagnosticsLog", "sftp://h/x/", 33).status == "Accepted"
    log_statuses(csms, 33, "NotSupportedOperation")


def test_get_log_replaces_an_upload_waiting_to_retry(csms, charger, web, tmp_path):
    charger()
    booted(csms)
    reply = get_log(csms, "SecurityLog", web.url + "/denied/", 41, retries=3, retry_interval=60)
    log_statuses(csms, 41, "Uploading")
    time.sleep(2)  # the first attempt failed: it waits 60 s for the next
    assert [p for _, p in web.puts if p.startswith("/denied/")]
    reply = get_log(csms, "SecurityLog", "%s/%s/" % (web.url, tmp_path.name), 42)
    assert reply.status == "AcceptedCanceled"
    log_statuses(csms, 42, "Uploading", "Uploaded")
    assert "/%s/%s" % (tmp_path.name, reply.filename) in web.uploads
    # The replaced upload says nothing more.
    csms.expect_none("LogStatusNotification", 3, match={"requestId": 41})


# ---- ExtendedTriggerMessage --------------------------------------------------------------

def ext_trigger(csms, message, connector=None):
    return csms.call(call.ExtendedTriggerMessage(requested_message=message,
                                                 connector_id=connector)).status


def test_extended_trigger_message_every_requested_message(csms, charger):
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    assert ext_trigger(csms, "MeterValues", 1) == "Accepted"
    mv = csms.wait_for("MeterValues", lambda p: p["meterValue"][0]["sampledValue"][0].get(
        "context") == "Trigger")
    assert mv["transactionId"] == tx_id
    assert ext_trigger(csms, "Heartbeat") == "Accepted"
    csms.wait_for("Heartbeat")
    assert ext_trigger(csms, "StatusNotification", 1) == "Accepted"
    csms.wait_for_status(1, "Charging")
    assert ext_trigger(csms, "LogStatusNotification") == "Accepted"
    assert csms.wait_for("LogStatusNotification") == {"status": "Idle"}
    assert ext_trigger(csms, "FirmwareStatusNotification") == "Accepted"
    assert csms.wait_for("SignedFirmwareStatusNotification") == {"status": "Idle"}
    assert ext_trigger(csms, "BootNotification") == "Accepted"
    csms.wait_for("BootNotification")
    # A new key and CSR (firmware/secprofile.py): SignCertificate follows.
    assert ext_trigger(csms, "SignChargePointCertificate") == "Accepted"
    assert "BEGIN CERTIFICATE REQUEST" in csms.wait_for("SignCertificate", timeout=60)["csr"]
    assert ext_trigger(csms, "MeterValues", 0) == "Rejected"
    assert ext_trigger(csms, "StatusNotification", 7) == "Rejected"


# ---- TLS handshake failures and replays --------------------------------------------------

class TlsGate:
    """A front for a TLS Central System: while `refuse` is an ssl context, each connection
    gets a TLS handshake with it from a blocking Python ssl server (which, unlike an asyncio
    one, sends its alert: protocol_version, handshake_failure) and is closed; while `refuse`
    is None the bytes are relayed to the Central System, TLS end to end."""

    def __init__(self, target_port):
        import socket
        self.target = ("127.0.0.1", target_port)
        self.refuse = None
        self.refused = []  # the server side's error for each refused handshake
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        import socket
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            conn.settimeout(10)
            ctx = self.refuse
            if ctx is None:
                threading.Thread(target=self._relay, args=(conn,), daemon=True).start()
                continue
            try:
                ctx.wrap_socket(conn, server_side=True).close()
                self.refused.append("handshake completed")
            except (OSError, ValueError) as e:
                self.refused.append(str(e))
            conn.close()

    def _relay(self, conn):
        import select
        import socket
        up = socket.create_connection(self.target, timeout=10)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([conn, up], [], [], 0.2)
                for a in ready:
                    data = a.recv(65536)
                    if not data:
                        return
                    (up if a is conn else conn).sendall(data)
        except OSError:
            pass
        finally:
            up.close()
            conn.close()

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


KEY = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("event", ["InvalidTLSVersion", "InvalidTLSCipherSuite"])
def test_tls_version_or_cipher_suite_refused_is_a_security_event(charger, tmp_path, event):
    """A Central System that offers only TLS 1.0/1.1, or only a cipher suite the charger
    does not take (CAMELLIA, RSA key exchange): the handshake fails, the event is recorded
    (critical: kept on flash) and delivered once the server speaks TLS 1.2+ with usual
    suites."""
    import ssl
    from tests.harness import CsmsThread
    from tests.scenarios import pki
    root = pki.Authority("Test CSMS Root")
    ca = tmp_path / "root.pem"
    ca.write_text(root.pem)
    cert, key = root.server(tmp_path)
    narrow = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    narrow.load_cert_chain(cert, key)
    narrow.set_ciphers("ALL:@SECLEVEL=0")
    if event == "InvalidTLSVersion":
        narrow.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        narrow.maximum_version = ssl.TLSVersion.TLSv1_1
    else:
        narrow.maximum_version = ssl.TLSVersion.TLSv1_2
        narrow.set_ciphers("CAMELLIA128-SHA:@SECLEVEL=0")
    tls = CsmsThread(ssl=tools.csms.tls_context(cert, key), password=KEY).start()
    gate = TlsGate(tls.port)
    gate.refuse = narrow
    try:
        cp = charger(ocpp={"SecurityProfile": 2},
                     csms_config=dict(url="wss://127.0.0.1:%d/ocpp" % gate.port,
                                      ca_file=str(ca), password=KEY, reconnect_min=0.2,
                                      reconnect_max=1.0))
        cp.wait_log("security event %s: " % event, timeout=20)
        # The server refused the client's versions (UNSUPPORTED_PROTOCOL) or the client the
        # server's (its alert: TLSV1_ALERT_PROTOCOL_VERSION); no cipher suite in common.
        reason = "PROTOCOL" if event == "InvalidTLSVersion" else "NO_SHARED_CIPHER"
        # The gate's thread notes the refusal after the handshake failed on both sides.
        deadline = time.monotonic() + 5
        while not gate.refused and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(reason in r for r in gate.refused), gate.refused
        assert not tls.sessions
        gate.refuse = None
        got = tls.wait_for(SEC, {"type": event}, timeout=30)
        assert "connect" in got["techInfo"]
        time.sleep(1)
        assert {t for t in events(tls) if t.startswith("InvalidTLS")} == {event}
        assert tls.violations == []
    finally:
        gate.stop()
        tls.stop()


def test_a_replayed_call_is_refused_and_reported(csms, charger):
    """A CALL reusing the uniqueId of a recent one is not executed: CALLERROR SecurityError
    and AttemptedReplayAttacks."""
    charger()
    booted(csms)
    wait_event(csms, "StartupOfTheDevice")
    frame = '[2,"rp-1","GetConfiguration",{"key":["HeartbeatInterval"]}]'
    csms.send_raw(frame)
    csms.wait_raw(lambda f: isinstance(f.parsed, list) and f.parsed[:2] == [3, "rp-1"])
    csms.send_raw(frame)
    err = csms.wait_raw(lambda f: isinstance(f.parsed, list) and f.parsed[:2] == [4, "rp-1"])
    assert err.parsed[2] == "SecurityError"
    got = wait_event(csms, "AttemptedReplayAttacks")
    assert got["techInfo"] == "GetConfiguration reuses the uniqueId rp-1"
    csms.violations[:] = [v for v in csms.violations if "rp-1" not in v]
