"""Throwaway vendor keys for the tests: made with `cryptography` per test process, never
stored in the repository. A charger trusts a key once vendor_keys.json next to its
config.json names it (trust())."""
import base64
import functools
import hashlib
import json
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tools import bundle


@functools.lru_cache(maxsize=None)
def key(name="vendor"):
    """A P-256 private key, the same object for the same name within a test process."""
    return ec.generate_private_key(ec.SECP256R1())


def public_hex(k):
    return bundle.public_key_hex(k)


def trust(folder, *keys):
    """Write vendor_keys.json into `folder` (the config's folder) naming `keys`."""
    path = os.path.join(str(folder), "vendor_keys.json")
    with open(path, "w") as f:
        json.dump({"keys": [public_hex(k) for k in keys]}, f)
    return path


def sign(folder, k=None, chain=None):
    """(Re)sign the bundle folder's manifest.json with `k` (default: the vendor key)."""
    return bundle.sign(str(folder), k or key(), chain)


def ecdsa_b64(k, data):
    """Base64 DER ECDSA/SHA-256 signature of `data` (SignedUpdateFirmware's signature)."""
    return base64.b64encode(k.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def certificate(subject, key, issuer=None, issuer_key=None, ca=False, code_signing=False,
                days=365):
    """A PEM X.509 certificate of `key`'s public key, signed by issuer_key (self-signed
    when None): a CA (keyCertSign) or, with code_signing, a firmware signing certificate."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer.subject if issuer is not None else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), critical=True)
    if code_signing:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                          False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                            critical=False)
    cert = b.sign(issuer_key or key, hashes.SHA256())
    return cert, cert.public_bytes(serialization.Encoding.PEM).decode()


@functools.lru_cache(maxsize=None)
def manufacturer(name="Manufacturer"):
    """(root PEM, signing certificate PEM, signing key) of a firmware manufacturer."""
    root_key = key(name + " root")
    root, root_pem = certificate(name + " Root CA", root_key, ca=True)
    signer = key(name + " signer")
    _, signer_pem = certificate(name + " Firmware Signing", signer, issuer=root,
                                issuer_key=root_key, code_signing=True)
    return root_pem, signer_pem, signer
