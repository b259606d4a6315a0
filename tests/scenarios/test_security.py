"""Security extension (OCPP 1.6 security whitepaper, edition 3): the certificate store,
security profiles 1-3 with their upgrade, fallback and no-downgrade rules, the write-only
AuthorizationKey, and SignCertificate / CertificateSigned, against tools/csms.py (plain and
TLS, Python's ssl server)."""
import ssl
from pathlib import Path

import pytest
from ocpp.v16 import call

from tests.harness import CsmsThread, write_config
from tests.scenarios import pki
from tests.scenarios.steps import booted, change_configuration
from tools.csms import tls_context

pytestmark = pytest.mark.slow

CSMS_ROOT = "CentralSystemRootCertificate"
MFR_ROOT = "ManufacturerRootCertificate"
KEY1 = "0123456789abcdef0123456789abcdef"            # 16 bytes as hex
KEY2 = "fedcba9876543210fedcba9876543210a5a5a5a5"    # 20 bytes as hex
FAST_LINK = {"reconnect_min": 0.2, "reconnect_max": 1.0}
_SNAKE = {"hashAlgorithm": "hash_algorithm", "issuerNameHash": "issuer_name_hash",
          "issuerKeyHash": "issuer_key_hash", "serialNumber": "serial_number"}


def install(csms, kind, pem):
    return csms.call(call.InstallCertificate(certificate_type=kind, certificate=pem)).status


def installed(csms, kind):
    """(status, [CertificateHashData in camelCase]) of GetInstalledCertificateIds."""
    r = csms.call(call.GetInstalledCertificateIds(certificate_type=kind))
    back = {v: k for k, v in _SNAKE.items()}
    return r.status, [{back[k]: v for k, v in h.items()} for h in r.certificate_hash_data or []]


def delete(csms, hash_data):
    data = {_SNAKE[k]: v for k, v in hash_data.items()}
    return csms.call(call.DeleteCertificate(certificate_hash_data=data)).status


def key_value(csms, key):
    conf = csms.call(call.GetConfiguration(key=[key]))
    return conf.configuration_key[0]["value"] if conf.configuration_key else None


def test_certificate_store_install_list_delete_and_limits(csms, charger):
    cp = charger()
    booted(csms)
    assert installed(csms, CSMS_ROOT) == ("NotFound", [])
    root = pki.Authority("Test CSMS Root")
    mfr = pki.Authority("Test Manufacturer Root", kind="ec")
    assert install(csms, CSMS_ROOT, root.pem) == "Accepted"
    assert install(csms, MFR_ROOT, mfr.pem) == "Accepted"
    assert install(csms, CSMS_ROOT, root.pem) == "Accepted"  # the same again: nothing new
    # Whitepaper: an invalid or incorrect certificate is Rejected.
    garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert install(csms, CSMS_ROOT, garbage) == "Rejected"
    assert install(csms, CSMS_ROOT, root.pem + mfr.pem) == "Rejected"  # one per request
    leaf = pki.Authority("Not a CA", parent=root, ca=False)
    assert install(csms, CSMS_ROOT, leaf.pem) == "Rejected"
    assert install(csms, CSMS_ROOT, pki.Authority("Old Root", expired=True).pem) == "Rejected"
    assert installed(csms, CSMS_ROOT) == ("Accepted", [pki.hash_data(root.cert)])
    assert installed(csms, MFR_ROOT) == ("Accepted", [pki.hash_data(mfr.cert)])

    conf = csms.call(call.GetConfiguration(key=["CertificateStoreMaxLength"]))
    assert conf.configuration_key == [{"key": "CertificateStoreMaxLength", "readonly": True,
                                       "value": "8"}]
    extra = [pki.Authority("Extra Root %d" % i, kind="ec", serial=0x100 + i) for i in range(7)]
    assert [install(csms, CSMS_ROOT, a.pem) for a in extra] == ["Accepted"] * 6 + ["Rejected"]

    assert delete(csms, pki.hash_data(mfr.cert)) == "Accepted"
    assert delete(csms, pki.hash_data(mfr.cert)) == "NotFound"
    assert installed(csms, MFR_ROOT) == ("NotFound", [])
    # Hex case and a serial's leading zeros do not matter.
    h = {k: v.upper() for k, v in pki.hash_data(extra[0].cert).items()}
    h["hashAlgorithm"], h["serialNumber"] = "SHA256", "00" + h["serialNumber"]
    assert delete(csms, h) == "Accepted"
    # At SecurityProfile 0 the last Central System root may go.
    for a in [root] + extra[1:6]:
        assert delete(csms, pki.hash_data(a.cert)) == "Accepted"
    assert installed(csms, CSMS_ROOT) == ("NotFound", [])

    assert install(csms, CSMS_ROOT, root.pem) == "Accepted"
    cp.stop()
    cp.start()  # the store is on flash
    booted(csms)
    assert installed(csms, CSMS_ROOT) == ("Accepted", [pki.hash_data(root.cert)])


def test_basic_auth_password_is_not_sent_over_plain_ws_unless_allowed(csms, charger):
    csms.password = KEY1
    cp = charger(csms_config=dict(FAST_LINK, password=KEY1))
    cp.wait_log("refusing to send the Basic auth password over plain ws://", timeout=15)
    cp.wait_log("refusing to send the Basic auth password over plain ws://", timeout=15)
    assert not csms.sessions and not csms.refused  # it never even asked
    cp.stop()
    charger(csms_config=dict(FAST_LINK, password=KEY1, allow_plain_basic_auth=True))
    booted(csms)
    assert csms.refused == []


def _secrets_absent(cp, folder, secrets):
    """No secret in the charger's output nor in any file of its data folder but the one that
    keeps the key."""
    text = "\n".join(cp.output())
    for path in Path(folder, "data").rglob("*"):
        if path.is_file() and path.name != "authkey.json":
            text += path.read_text(errors="replace")
    for s in secrets:
        assert s not in text and s.upper() not in text


def test_security_profile_upgrade_1_2_3_with_forced_failure_and_fallback(
        csms, charger, tmp_path):
    root = pki.Authority("Test CSMS Root")
    ca = tmp_path / "root.pem"
    ca.write_text(root.pem)
    cert, key = root.server(tmp_path)
    ctx = tls_context(cert, key, client_ca=str(ca))  # a client certificate is optional
    tls = CsmsThread(ssl=ctx, password=KEY2).start()
    try:
        tls.registration = csms.registration  # one Central System, two endpoints
        csms.password = KEY1
        cp = charger(ocpp={"SecurityProfile": 1},
                     csms_config=dict(FAST_LINK, password=KEY1, allow_plain_basic_auth=True,
                                      tls_url=tls.url), start=False)
        # At debug level every frame is logged: the one that sets the key must not be.
        config = Path(cp.config_path)
        config.write_text(config.read_text().replace('"level": "info"', '"level": "debug"'))
        cp.start()
        booted(csms)

        # AuthorizationKey: hex, 16 to 20 bytes; tried on a new link, then kept.
        assert change_configuration(csms, "AuthorizationKey", "not hex at all, no") == "Rejected"
        assert change_configuration(csms, "AuthorizationKey", "ab" * 8) == "Rejected"
        assert change_configuration(csms, "AuthorizationKey", KEY2 + "ab") == "Rejected"
        csms.password = KEY2
        assert change_configuration(csms, "AuthorizationKey", KEY2) == "Accepted"
        cp.wait_log("SecurityProfile 1 in use, new AuthorizationKey", timeout=20)
        csms.wait_connected("CP_1")
        conf = csms.call(call.GetConfiguration())
        assert "AuthorizationKey" not in [k["key"] for k in conf.configuration_key]
        conf = csms.call(call.GetConfiguration(key=["AuthorizationKey"]))
        assert conf.configuration_key == [] and conf.unknown_key == ["AuthorizationKey"]

        # 1 -> 2 needs a Central System root certificate.
        assert change_configuration(csms, "SecurityProfile", "2") == "Rejected"
        assert install(csms, CSMS_ROOT, root.pem) == "Accepted"
        assert change_configuration(csms, "SecurityProfile", "2") == "Accepted"
        cp.wait_log("SecurityProfile 2 in use", timeout=20)
        tls.wait_connected("CP_1")
        assert key_value(tls, "SecurityProfile") == "2"
        assert tls.peers[-1] == ("CP_1", None)  # Basic auth, no client certificate

        assert change_configuration(tls, "SecurityProfile", "1") == "Rejected"  # no downgrade
        assert change_configuration(tls, "SecurityProfile", "0") == "Rejected"
        assert change_configuration(tls, "SecurityProfile", "3") == "Rejected"  # no client cert
        # The last Central System root cannot go at profile 2 (DeleteCertificate: Failed).
        assert delete(tls, pki.hash_data(root.cert)) == "Failed"

        # SignCertificate -> CertificateSigned: a key pair and CSR made on the charger.
        cp.console("csr")
        csr = tls.wait_for("SignCertificate", timeout=60)["csr"]
        chain, req = root.sign_csr(csr)
        assert req.subject.rfc4514_string() == "CN=UC-000001"  # station.serial
        other = pki.Authority("Unknown Root")
        wrong, _ = other.sign_csr(csr)
        assert tls.call(call.CertificateSigned(certificate_chain=wrong),
                        timeout=30).status == "Rejected"
        tls.wait_for("SecurityEventNotification",
                      match={"type": "InvalidChargePointCertificate"}, timeout=20)
        stranger = pki.Authority("Stranger").client(tmp_path, "UC-000001")[0]
        assert tls.call(call.CertificateSigned(certificate_chain=Path(stranger).read_text()),
                        timeout=30).status == "Rejected"  # not for our key
        assert tls.call(call.CertificateSigned(certificate_chain=chain),
                        timeout=30).status == "Accepted"

        # Forced failure: the Central System does not take the certificate yet -> back to 2.
        tls.refuse_client_certs = True
        assert change_configuration(tls, "SecurityProfile", "3") == "Accepted"
        cp.wait_log("back to SecurityProfile 2", timeout=20)
        cp.wait_log("connected", timeout=20)
        tls.wait_connected("CP_1")
        assert ("CP_1", "client certificates are not accepted") in tls.refused
        assert key_value(tls, "SecurityProfile") == "2"

        # Now only a client certificate gets in, and profile 3 is kept.
        tls.refuse_client_certs = False
        ctx.verify_mode = ssl.CERT_REQUIRED
        assert change_configuration(tls, "SecurityProfile", "3") == "Accepted"
        cp.wait_log("SecurityProfile 3 in use", timeout=20)
        tls.wait_connected("CP_1")
        assert key_value(tls, "SecurityProfile") == "3"
        assert tls.peers[-1] == ("CP_1", "UC-000001")

        # Logs and diagnostics leave by https:// only now.
        tls.call(call.GetDiagnostics(location="ftp://127.0.0.1:9/", retries=0))
        tls.wait_for("DiagnosticsStatusNotification", match={"status": "UploadFailed"},
                     timeout=20)
        cp.wait_log("ftp:// refused at SecurityProfile 2 and 3: https:// only", timeout=5)

        # After a reboot the charger comes back at profile 3.
        cp.stop()
        n = len(tls.peers)
        cp.start()
        tls.wait_for("BootNotification", timeout=20)
        assert tls.peers[n:] and all(p == ("CP_1", "UC-000001") for p in tls.peers[n:])
        assert any("rpc: < (a frame with AuthorizationKey)" in line for line in cp.output())
        _secrets_absent(cp, tmp_path / "CP_1", [KEY2])
        assert tls.violations == []
    finally:
        tls.stop()


def test_tls_csms_requiring_client_certificates_accepts_only_profile_3(
        csms, charger, tmp_path):
    root = pki.Authority("Test CSMS Root")
    ca = tmp_path / "root.pem"
    ca.write_text(root.pem)
    cert, key = root.server(tmp_path)
    tls = CsmsThread(ssl=tls_context(cert, key, client_ca=str(ca),
                                     require_client_cert=True)).start()
    try:
        common = dict(FAST_LINK, url=tls.url, ca_file=str(ca))
        cp = charger(ocpp={"SecurityProfile": 2}, csms_config=dict(common, password=KEY1))
        for _ in range(3):
            cp.wait_log("W ws: cannot connect: ", timeout=20)  # never up: no "link down"
        assert not tls.sessions and not tls.peers  # never got past TLS
        cp.stop()

        client_cert, client_key = root.client(tmp_path, "UC-000001")
        charger(ocpp={"SecurityProfile": 3},
                csms_config=dict(common, client_cert=client_cert, client_key=client_key))
        tls.wait_for("BootNotification", timeout=20)
        assert tls.peers == [("CP_2", "UC-000001")]
        assert tls.violations == []
    finally:
        tls.stop()


def test_profile_2_verifies_the_central_system_certificate_whatever_verify_tls_says(
        csms, charger, tmp_path):
    """A server certificate that does not lead to an installed Central System root is refused
    at profile 2, even with csms.verify_tls false (which profile 0 and 1 honour)."""
    root, impostor = pki.Authority("Test CSMS Root"), pki.Authority("Impostor Root")
    ca = tmp_path / "root.pem"
    ca.write_text(root.pem)
    cert, key = impostor.server(tmp_path)
    tls = CsmsThread(ssl=tls_context(cert, key), password=KEY1).start()
    try:
        common = dict(FAST_LINK, url=tls.url, ca_file=str(ca), password=KEY1, verify_tls=False)
        cp = charger(ocpp={"SecurityProfile": 2}, csms_config=common)
        for _ in range(2):
            cp.wait_log("W ws: cannot connect: ", timeout=20)  # never up: no "link down"
        assert not tls.sessions and not tls.peers
        cp.stop()
        # The technician sets profile 1, where verify_tls false is honoured: the charger gets
        # in and reports what it found.
        write_config(tmp_path / "CP_1", tls.url, "CP_1", ocpp={"SecurityProfile": 1},
                     csms=common)
        cp.start()
        tls.wait_for("BootNotification", timeout=20)
        assert tls.peers == [("CP_1", None)]
        event = tls.wait_for("SecurityEventNotification",
                             match={"type": "InvalidCentralSystemCertificate"}, timeout=20)
        assert "certificate" in event["techInfo"].lower()
        assert tls.violations == []
    finally:
        tls.stop()


def test_a_client_certificate_near_its_end_is_renewed_by_the_charger(csms, charger, tmp_path):
    """Whitepaper A03: at profile 3 a certificate with less than 30 days left makes the charger
    send SignCertificate; the new chain is installed and used on the next connection."""
    root = pki.Authority("Test CSMS Root")
    ca = tmp_path / "root.pem"
    ca.write_text(root.pem)
    cert, key = root.server(tmp_path)
    tls = CsmsThread(ssl=tls_context(cert, key, client_ca=str(ca),
                                     require_client_cert=True)).start()
    try:
        client_cert, client_key = root.client(tmp_path, "UC-000001", days=10)
        cp = charger(ocpp={"SecurityProfile": 3},
                     csms_config=dict(FAST_LINK, url=tls.url, ca_file=str(ca),
                                      client_cert=client_cert, client_key=client_key))
        tls.wait_for("BootNotification", timeout=20)
        csr = tls.wait_for("SignCertificate", timeout=60)["csr"]
        chain, _ = root.sign_csr(csr)
        n = len(tls.peers)
        assert tls.call(call.CertificateSigned(certificate_chain=chain),
                        timeout=30).status == "Accepted"
        cp.wait_log("CertificateSigned: Accepted", timeout=10)
        cp.wait_log("connected", timeout=20)
        tls.wait_connected("CP_1")
        assert tls.peers[n:] == [("CP_1", "UC-000001")]
        tls.expect_none("SignCertificate", 3)  # the new certificate has 90 days
        assert tls.violations == []
    finally:
        tls.stop()
