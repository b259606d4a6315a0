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
