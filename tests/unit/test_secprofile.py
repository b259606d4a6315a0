"""firmware/secprofile.py: what each security profile connects with, and which security event
a failed connect stands for (the connects themselves: tests/scenarios/test_security.py)."""
import pytest

from firmware import certificates, secprofile
from tests.scenarios import pki


class Log:
    def __init__(self):
        self.lines = []

    def info(self, tag, text):
        self.lines.append(("I", tag, text))

    warn = info


def cfg_for(tmp_path, **csms):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    base = {"url": "ws://csms.example/ocpp", "id": "CP_1", "password": "", "ca_file": "",
            "verify_tls": False, "tls_url": "", "allow_plain_basic_auth": False,
            "client_cert": "", "client_key": ""}
    base.update(csms)
    return {"_dir": str(tmp_path), "_data": str(data), "csms": base}


KEYS = {"CertificateStoreMaxLength": 8}


def options(cfg, profile, key=None):
    return secprofile.options(cfg, KEYS, Log(), profile, key)


def test_profile_0_and_1_basic_auth_only_where_it_is_allowed(tmp_path):
    assert options(cfg_for(tmp_path), 0) == ("ws://csms.example/ocpp",
                                             {"auth": None, "verify": False})
    with pytest.raises(ValueError, match="over plain ws://"):
        options(cfg_for(tmp_path, password="pw"), 0)
    with pytest.raises(ValueError, match="needs a password"):
        options(cfg_for(tmp_path, allow_plain_basic_auth=True), 1)
    cfg = cfg_for(tmp_path, password="pw", allow_plain_basic_auth=True)
    assert options(cfg, 1)[1]["auth"] == ("CP_1", "pw")
    assert options(cfg, 1, "ab" * 16)[1]["auth"] == ("CP_1", "ab" * 16)  # the key wins
    # Over wss:// Basic auth needs no permission.
    cfg = cfg_for(tmp_path, url="wss://csms.example/ocpp", password="pw")
    assert options(cfg, 1) == ("wss://csms.example/ocpp",
                               {"auth": ("CP_1", "pw"), "verify": False})


def test_profile_2_and_3_need_tls_a_root_and_verify_always(tmp_path):
    cfg = cfg_for(tmp_path, password="pw")
    with pytest.raises(ValueError, match="Central System root"):
        options(cfg, 2)
    root = pki.Authority("Test CSMS Root")
    (tmp_path / "root.pem").write_text(root.pem)
    cfg = cfg_for(tmp_path, password="pw", ca_file="root.pem")
    url, opts = options(cfg, 2)
    roots = certificates.paths(cfg["_data"], certificates.CSMS_ROOT)
    assert url == "wss://csms.example/ocpp" and len(roots) == 1
    assert opts == {"auth": ("CP_1", "pw"), "verify": True, "ca_file": roots}
    cfg["csms"]["tls_url"] = "ws://other.example:81/x"
    assert options(cfg, 2)[0] == "wss://other.example:81/x"
    cfg["csms"]["tls_url"] = "http://other.example/x"
    with pytest.raises(ValueError, match="needs a wss:// URL"):
        options(cfg, 2)
    cfg["csms"]["tls_url"] = ""
    with pytest.raises(ValueError, match="client certificate"):
        options(cfg, 3)
    cfg["csms"].update(client_cert="c.pem", client_key="c.key")
    url, opts = options(cfg, 3)
    assert opts["auth"] is None and opts["verify"] is True
    assert (opts["cert_file"], opts["key_file"]) == (str(tmp_path / "c.pem"),
                                                     str(tmp_path / "c.key"))
    (tmp_path / "data" / "client.pem").write_text("chain and key")  # CertificateSigned's
    opts = options(cfg, 3)[1]
    assert (opts["cert_file"], opts["key_file"]) == (str(tmp_path / "data" / "client.pem"),
                                                     None)


def test_ca_file_is_copied_into_the_store_once_per_content(tmp_path):
    a, b = pki.Authority("Root A"), pki.Authority("Root B")
    (tmp_path / "root.pem").write_text(a.pem)
    cfg = cfg_for(tmp_path, ca_file="root.pem")
    log = Log()
    certificates.seed(cfg, log, 8)
    certificates.seed(cfg, log, 8)
    first = certificates.paths(cfg["_data"], certificates.CSMS_ROOT)
    assert len(first) == 1 and len(log.lines) == 1  # the second call found nothing new
    import os
    os.remove(first[0])  # a Central System deleted it: it stays deleted
    certificates.seed(cfg, log, 8)
    assert certificates.paths(cfg["_data"], certificates.CSMS_ROOT) == []
    (tmp_path / "root.pem").write_text(a.pem + b.pem)  # the technician changed the file
    certificates.seed(cfg, log, 8)
    assert len(certificates.paths(cfg["_data"], certificates.CSMS_ROOT)) == 2


@pytest.mark.parametrize("why, event", [
    ("HTTP 401 Unauthorized", "FailedToAuthenticateAtCentralSystem"),
    ("HTTP 403 Forbidden", "FailedToAuthenticateAtCentralSystem"),
    ("connection to h:443 failed: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert "
     "certificate required", "FailedToAuthenticateAtCentralSystem"),
    ("cannot connect to h:443: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed",
     "InvalidCentralSystemCertificate"),
    ("connection to h:443 failed: The certificate is not correctly signed by the trusted CA",
     "InvalidCentralSystemCertificate"),
    ("cannot connect to h:443: ECONNREFUSED", None),
    ("HTTP 500 Internal Server Error", None),
    # TLS versions and cipher suites, as both interpreters say them (seen against Python's
    # ssl server limited to TLS 1.0/1.1, or to CAMELLIA128-SHA).
    ("cannot connect to h:443: [SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol "
     "version (_ssl.c:1006)", "InvalidTLSVersion"),
    ("cannot connect to h:443: [SSL: UNSUPPORTED_PROTOCOL] unsupported protocol",
     "InvalidTLSVersion"),
    ("connection to h:443 failed: (-28288, 'MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION')",
     "InvalidTLSVersion"),
    ("connection to h:443 failed: (-28288, 'SSL - unsupported version')", "InvalidTLSVersion"),
    ("cannot connect to h:443: [SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake "
     "failure (_ssl.c:1006)", "InvalidTLSCipherSuite"),
    ("connection to h:443 failed: (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')",
     "InvalidTLSCipherSuite"),
    ("connection to h:443 failed: (-28160, 'MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE')",
     "InvalidTLSCipherSuite"),
    ("connection to h:443 failed: (-29568, 'MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN')",
     "InvalidTLSCipherSuite"),
    ("cannot connect to h:443: [SSL: WRONG_VERSION_NUMBER] wrong version number", None),
    # The upgrade answer does not prove an OCPP Central System answered.
    ("bad Sec-WebSocket-Accept", "CentralSystemFailedToAuthenticate"),
    ("server did not agree to subprotocol ocpp1.6 (got none)",
     "CentralSystemFailedToAuthenticate"),
])
def test_security_event_of_a_failed_connect(why, event):
    assert secprofile.event_for(why) == event


@pytest.mark.parametrize("why, event", [
    # With a client certificate offered (profile 3) a handshake failure alert is read as
    # the server refusing it: a TLS 1.2 server without our CA sends handshake_failure.
    ("cannot connect to h:443: [SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake "
     "failure", "FailedToAuthenticateAtCentralSystem"),
    ("connection to h:443 failed: (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')",
     "FailedToAuthenticateAtCentralSystem"),
    ("connection to h:443 failed: (-28288, 'MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION')",
     "InvalidTLSVersion"),
    ("cannot connect to h:443: [SSL: NO_CIPHERS_AVAILABLE] no ciphers available",
     "InvalidTLSCipherSuite"),
])
def test_security_event_of_a_failed_connect_with_a_client_certificate(why, event):
    assert secprofile.event_for(why, client_cert=True) == event


def test_a_logged_url_carries_no_credentials():
    assert secprofile.shown("wss://CP_1:s3cret@h:443/ocpp/CP_1") == "wss://h:443/ocpp/CP_1"
    assert secprofile.shown("ws://h/ocpp/a@b") == "ws://h/ocpp/a@b"


_UPGRADE_CHECK = """
import sys
sys.path.insert(0, "")
from firmware import secprofile, ws
from firmware.compat import asyncio
async def main(port):
    try:
        await ws.connect("ws://127.0.0.1:%d/ocpp/CP_1" % port, connect_timeout_ms=5000,
                         handshake_timeout_ms=5000)
        print("connected")
    except ws.WsError as e:
        print("event", secprofile.event_for(str(e)))
for port in sys.argv[1:]:
    asyncio.run(main(int(port)))
"""


def _upgrade_server(answer):
    """A server answering each websocket upgrade with `answer(key)` (a 101 head)."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
            key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                   if ln.lower().startswith(b"sec-websocket-key:")][0]
            conn.sendall(answer(key))
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv


@pytest.mark.parametrize("interpreter", ["micropython", "python3"])
def test_an_upgrade_answer_that_is_no_ocpp_central_system_is_an_event(interpreter):
    """CentralSystemFailedToAuthenticate: the 101 answer lacks the agreed subprotocol, or
    its Sec-WebSocket-Accept is not the one our key asks for (RFC 6455 4.2.2)."""
    import base64
    import hashlib
    import subprocess
    from tests.mp import INTERPRETERS, run_mp
    from tools.driver import ROOT

    def accept(key):
        return base64.b64encode(hashlib.sha1(
            key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())

    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    servers = [_upgrade_server(lambda k: head + b"Sec-WebSocket-Accept: " + accept(k)
                               + b"\r\n\r\n"),
               _upgrade_server(lambda k: head + b"Sec-WebSocket-Accept: " + accept(k + b"x")
                               + b"\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n")]
    ports = [str(s.getsockname()[1]) for s in servers]
    try:
        if interpreter == "micropython":
            proc = run_mp(_UPGRADE_CHECK, *ports)
        else:
            proc = subprocess.run([INTERPRETERS[interpreter], "-c", _UPGRADE_CHECK] + ports,
                                  cwd=ROOT, capture_output=True, text=True, timeout=60)
    finally:
        for s in servers:
            s.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["event", "CentralSystemFailedToAuthenticate"] * 2
