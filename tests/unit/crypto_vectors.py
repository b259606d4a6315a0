"""Test vectors for the firmware's crypto, made at test time by the host's `cryptography`
(CPython only): certificates, chains, signatures and keys, written as one JSON file that
tests/unit/crypto_checks.py reads on either interpreter.

Every expected value comes from `cryptography` (OpenSSL), never from the code under test.
"""
import datetime
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
MESSAGE = b"firmware bundle bytes \x00\x01\x02" * 40


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Vendor"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(cn, key, issuer_cn, issuer_key, ca=False, eku=None, ku="sign", before=None,
          after=None, serial=None, path_len=None):
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn)).issuer_name(_name(issuer_cn))
         .public_key(key.public_key())
         .serial_number(serial or x509.random_serial_number())
         .not_valid_before(before or NOW - 365 * DAY)
         .not_valid_after(after or NOW + 3650 * DAY))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_len), critical=True)
    if ku is not None:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=ku == "sign", content_commitment=False,
            key_encipherment=ku == "encipher", data_encipherment=False, key_agreement=False,
            key_cert_sign=ca is True, crl_sign=ca is True, encipher_only=False,
            decipher_only=False), critical=True)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _ec():
    return ec.generate_private_key(ec.SECP256R1())


def _rsa(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _ec_sig(key, data):
    return key.sign(data, ec.ECDSA(hashes.SHA256())).hex()


def _rsa_sig(key, data):
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()


def _hash_data(cert, issuer):
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    return {"hashAlgorithm": "SHA256", "issuerNameHash": req.issuer_name_hash.hex(),
            "issuerKeyHash": req.issuer_key_hash.hex(),
            "serialNumber": "%x" % req.serial_number}


def _ts(when):
    return int(when.timestamp())


def make(folder):
    """Write <folder>/vectors.json; -> its path."""
    code = [ExtendedKeyUsageOID.CODE_SIGNING]
    root_key, inter_key, leaf_key = _ec(), _rsa(2048), _ec()
    root = _cert("Root CA", root_key, "Root CA", root_key, ca=True)
    inter = _cert("Intermediate CA", inter_key, "Root CA", root_key, ca=True, path_len=0)
    leaf = _cert("Firmware Signer", leaf_key, "Intermediate CA", inter_key, eku=code,
                 serial=0x00A1B2C3D4E5F60718293A4B5C6D7E8F)
    rsa_root_key, rsa_leaf_key = _rsa(3072), _rsa(2048)
    rsa_root = _cert("RSA Root", rsa_root_key, "RSA Root", rsa_root_key, ca=True)
    rsa_leaf = _cert("RSA Signer", rsa_leaf_key, "RSA Root", rsa_root_key, eku=code)
    other_key = _ec()
    other_root = _cert("Root CA", other_key, "Root CA", other_key, ca=True)  # same name!
    k = _ec()
    lone_key = _ec()
    tampered = bytearray(leaf.public_bytes(serialization.Encoding.DER))
    i = tampered.find(b"Firmware Signer")
    tampered[i] = ord("f")
    long_root_key = _ec()
    v = {
        "now": _ts(NOW),
        "message": MESSAGE.hex(),
        "root": _pem(root), "inter": _pem(inter), "leaf": _pem(leaf),
        "leaf_fields": {
            "serial": leaf.serial_number, "cn": "Firmware Signer",
            "not_before": _ts(leaf.not_valid_before_utc),
            "not_after": _ts(leaf.not_valid_after_utc),
            "x": leaf_key.public_key().public_numbers().x,
            "y": leaf_key.public_key().public_numbers().y,
            "issuer": leaf.issuer.public_bytes().hex(),
            "subject": leaf.subject.public_bytes().hex(),
            "tbs": leaf.tbs_certificate_bytes.hex(),
            "signature": leaf.signature.hex(),
        },
        "inter_fields": {"n": inter_key.public_key().public_numbers().n,
                         "e": inter_key.public_key().public_numbers().e},
        "rsa_root": _pem(rsa_root), "rsa_leaf": _pem(rsa_leaf),
        "other_root": _pem(other_root),
        "other_leaf": _pem(_cert("Stranger", k, "Root CA", other_key, eku=code)),
        "tampered_leaf": x509.load_der_x509_certificate(bytes(tampered)).public_bytes(
            serialization.Encoding.PEM).decode(),
        "expired": _pem(_cert("Old", k, "Root CA", root_key, eku=code,
                              before=NOW - 400 * DAY, after=NOW - DAY)),
        "not_yet_valid": _pem(_cert("Early", k, "Root CA", root_key, eku=code,
                                    before=NOW + DAY, after=NOW + 400 * DAY)),
        "server_eku": _pem(_cert("Web", k, "Root CA", root_key,
                                 eku=[ExtendedKeyUsageOID.SERVER_AUTH])),
        "encipher_only": _pem(_cert("Cipher", k, "Root CA", root_key, eku=code,
                                    ku="encipher")),
        "no_extensions": _pem(_cert("Plain", k, "Root CA", root_key, ca=None, ku=None)),
        "not_ca": _pem(_cert("Not A CA", lone_key, "Root CA", root_key, ca=False)),
        "under_not_ca": _pem(_cert("Victim", k, "Not A CA", lone_key, eku=code)),
        "too_deep": _pem(_cert("Deep", k, "Sub CA", lone_key, eku=code)),
        "sub_ca": _pem(_cert("Sub CA", lone_key, "Intermediate CA", inter_key, ca=True)),
        "long_root": _pem(_cert("Long Root", long_root_key, "Long Root", long_root_key, ca=True,
                                after=datetime.datetime(2051, 3, 4, 5, 6, 7,
                                                        tzinfo=datetime.timezone.utc))),
        "long_root_after": _ts(datetime.datetime(2051, 3, 4, 5, 6, 7,
                                                 tzinfo=datetime.timezone.utc)),
        "ec_sig": _ec_sig(leaf_key, MESSAGE),
        "ec_sig_other_key": _ec_sig(k, MESSAGE),
        "rsa2048_sig": _rsa_sig(rsa_leaf_key, MESSAGE),
        "rsa3072_sig": _rsa_sig(rsa_root_key, MESSAGE),
        "deterministic_sig": leaf_key.sign(
            MESSAGE, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)).hex(),
        "leaf_d": leaf_key.private_numbers().private_value,
        "leaf_key_sec1": leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode(),
        "leaf_key_pkcs8": leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        "hash_leaf": _hash_data(leaf, inter),
        "hash_root": _hash_data(root, root),
        "hash_inter": _hash_data(inter, root),
    }
    path = os.path.join(str(folder), "vectors.json")
    with open(path, "w") as f:
        json.dump(v, f)
    return path
