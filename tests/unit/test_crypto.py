"""The firmware's pure-Python crypto (firmware/der.py, x509.py, p256.py, rsa.py, csr.py,
signature.py) against vectors the host's `cryptography` makes at test time: every check of
tests/unit/crypto_checks.py runs under CPython and on the MicroPython unix port, and keys and
certificate requests made on MicroPython are checked by `cryptography` and both `ssl` modules.
"""
import datetime
import json
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from firmware import compat
from tests.mp import run_mp
from tests.unit import crypto_checks, crypto_vectors


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("crypto")
    crypto_vectors.make(path)
    return path


@pytest.mark.parametrize("check", crypto_checks.CHECKS)
def test_crypto_on_cpython(folder, check):
    getattr(crypto_checks, check)(crypto_checks.load(str(folder)))


def test_crypto_on_micropython(folder):
    proc = run_mp("tests/unit/crypto_checks.py", folder, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "crypto-ok %d" % len(crypto_checks.CHECKS) in proc.stdout


# A charger's key and CSR made on MicroPython: key PEM, CSR PEM and a signature of "abc".
_MAKE_KEY = """
import sys, json
sys.path.insert(0, "")
from hashlib import sha256
from firmware import csr, p256, x509
d, pub = p256.generate()
print(json.dumps({
    "key": x509.der_to_pem(csr.ec_key_der(d, pub), "EC PRIVATE KEY"),
    "csr": x509.der_to_pem(csr.build(d, pub, "CP-0042", "Example CPO"), "CERTIFICATE REQUEST"),
    "sig": p256.sign(d, sha256(b"abc").digest()).hex()}))
"""


@pytest.fixture(scope="module")
def mp_key():
    proc = run_mp(_MAKE_KEY)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_key_made_on_micropython_is_usable_by_cryptography(mp_key):
    key = serialization.load_pem_private_key(mp_key["key"].encode(), None)
    assert isinstance(key.curve, ec.SECP256R1)
    key.public_key().verify(bytes.fromhex(mp_key["sig"]), b"abc", ec.ECDSA(hashes.SHA256()))


def test_csr_made_on_micropython_is_accepted_by_cryptography(mp_key):
    req = x509.load_pem_x509_csr(mp_key["csr"].encode())
    assert req.is_signature_valid
    assert req.subject.rfc4514_string() == "CN=CP-0042,O=Example CPO"
    assert isinstance(req.signature_hash_algorithm, hashes.SHA256)
    key = serialization.load_pem_private_key(mp_key["key"].encode(), None)
    assert req.public_key().public_numbers() == key.public_key().public_numbers()


def _issue(req, tmp_path):
    # A CA signs the request as a Central System would; the chain file holds leaf then CA.
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "CPO CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(req.subject).issuer_name(ca_name)
            .public_key(req.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    path = tmp_path / "chain.pem"
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca)))
    return path


_LOAD_CHAIN = """
import sys, ssl
sys.path.insert(0, "")
from firmware import compat
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
compat.load_cert_chain(ctx, sys.argv[1], sys.argv[2])
print("loaded")
"""


def test_key_made_on_micropython_loads_as_client_key_in_both_ssl(mp_key, tmp_path):
    chain = _issue(x509.load_pem_x509_csr(mp_key["csr"].encode()), tmp_path)
    key = tmp_path / "key.pem"
    key.write_text(mp_key["key"])
    compat.load_cert_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), str(chain), str(key))
    proc = run_mp(_LOAD_CHAIN, chain, key)
    assert proc.returncode == 0 and "loaded" in proc.stdout, proc.stdout + proc.stderr


_TLS_CLIENT = """
import socket, ssl, sys
sys.path.insert(0, "")
from firmware import compat
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
compat.load_cert_chain(ctx, sys.argv[2], sys.argv[3])
if hasattr(ctx, "check_hostname"):
    ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the server's certificate is not what this test checks
sock = socket.socket()
sock.connect(socket.getaddrinfo("127.0.0.1", int(sys.argv[1]))[0][-1])
tls = ctx.wrap_socket(sock, server_hostname="localhost")
print(tls.read(64) if hasattr(tls, "read") else tls.recv(64))
"""


def _tls_server(tmp_path, ca_pem):
    # A TLS server that demands a client certificate issued by the CA of `ca_pem` and answers
    # with the subject of the one it got.
    import socket
    import threading
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "server.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp_path / "server.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(tmp_path / "ca.pem"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(2)
    listener.settimeout(60)
    seen = []

    def serve():
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    subject = dict(x[0] for x in tls.getpeercert()["subject"])
                    seen.append(subject["commonName"])
                    tls.sendall(("hello " + subject["commonName"]).encode())
            except (ssl.SSLError, OSError) as e:
                seen.append(repr(e))
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], seen


def test_tls_client_certificate_from_a_micropython_key_on_both_interpreters(mp_key, tmp_path):
    chain = _issue(x509.load_pem_x509_csr(mp_key["csr"].encode()), tmp_path)
    key = tmp_path / "key.pem"
    key.write_text(mp_key["key"])
    ca_pem = chain.read_bytes().split(b"-----END CERTIFICATE-----\n", 1)[1]
    port, seen = _tls_server(tmp_path, ca_pem)
    for interpreter in ("micropython", "python3"):
        if interpreter == "micropython":
            proc = run_mp(_TLS_CLIENT, port, chain, key)
        else:
            import subprocess
            import sys
            from tools.driver import ROOT
            proc = subprocess.run([sys.executable, "-c", _TLS_CLIENT, str(port), str(chain),
                                   str(key)], cwd=ROOT, capture_output=True, text=True,
                                  timeout=60)
        assert proc.returncode == 0 and "hello CP-0042" in proc.stdout, \
            (interpreter, proc.stdout + proc.stderr, seen)
    assert seen == ["CP-0042", "CP-0042"]


def test_store_hash_data_uses_an_installed_issuer_else_leaves_the_key_unknown(folder,
                                                                              tmp_path):
    """certificates.Store.hashes(): an intermediate installed as a Central System root gets
    its issuer's key hash when the issuer is installed (here as a manufacturer root), and
    "" (unknown) when it is not; DeleteCertificate matches it either way."""
    from firmware import certificates, x509 as fx509
    v = crypto_checks.load(str(folder))
    inter, root = (fx509.pem_to_ders(v[n])[0] for n in ("inter", "root"))

    class Log:
        def warn(self, *a):
            raise AssertionError(a)

    class CP:
        cfg = {"_data": str(tmp_path)}
        log = Log()
    st = certificates.Store(CP())
    certificates._add(str(tmp_path), certificates.CSMS_ROOT, inter)
    [(_p, alone)] = st.hashes(certificates.CSMS_ROOT)
    assert alone["issuerKeyHash"] == ""
    assert fx509.matches(alone, v["hash_inter"])
    certificates._add(str(tmp_path), certificates.MFR_ROOT, root)
    [(_p, known)] = st.hashes(certificates.CSMS_ROOT)
    assert known == v["hash_inter"]
    assert st.hashes(certificates.MFR_ROOT)[0][1] == v["hash_root"]
