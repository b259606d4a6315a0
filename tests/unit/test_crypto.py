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
