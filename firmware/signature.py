"""One entry point for signature checks: the key's kind and the algorithm pick the module.

    verify(("ec", x, y), sha256(data).digest(), der_sig, ECDSA_SHA256)
    verify(("rsa", n, e), digest, sig)        # sig_alg None: the key's kind decides

Only SHA-256 algorithms exist here (MicroPython's hashlib has no SHA-384/512): a certificate
signed with another one does not verify.
"""

ECDSA_SHA256 = "1.2.840.10045.4.3.2"       # ecdsa-with-SHA256
RSA_SHA256 = "1.2.840.113549.1.1.11"       # sha256WithRSAEncryption


def verify(key, digest, signature, sig_alg=None):
    """Whether `signature` over the SHA-256 `digest` verifies with `key`, a tuple ("ec", x, y)
    or ("rsa", n, e); `sig_alg` is the algorithm's OID string (None: implied by the key).
    An unknown algorithm, a key that does not match it or malformed input give False."""
    kind = key[0] if key else None
    if kind == "ec" and sig_alg in (None, ECDSA_SHA256):
        from firmware import p256
        return p256.verify((key[1], key[2]), digest, signature)
    if kind == "rsa" and sig_alg in (None, RSA_SHA256):
        from firmware import rsa
        return rsa.verify((key[1], key[2]), digest, signature)
    return False
