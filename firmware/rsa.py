"""RSA signature verification: PKCS#1 v1.5 with SHA-256 (RFC 8017 section 8.2.2).

The encoded message is rebuilt from the digest and compared whole, never parsed, so no
padding or DigestInfo leniency can be exploited (Bleichenbacher's e=3 forgery).
"""

from firmware.compat import const

_MIN_BITS = const(2048)   # smaller moduli are factorable; refused
_MAX_BYTES = const(512)   # RSA-4096: bounds the work and the buffers
# DigestInfo header of a SHA-256 digest: SEQ { SEQ { OID sha256, NULL }, OCTET STRING (32) }
_SHA256_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


def size(n):
    """Bytes of the modulus n."""
    return (len("%x" % n) + 1) // 2


def check_key(pub):
    """ValueError unless (n, e) is a key this module verifies with."""
    n, e = pub
    k = size(n)
    if k > _MAX_BYTES or n >> (_MIN_BITS - 1) == 0:
        raise ValueError("RSA: modulus of %d bytes outside 2048..4096 bits" % k)
    if e < 3 or not e & 1 or n % 2 == 0:
        raise ValueError("RSA: bad key")


def verify(pub, digest, sig):
    """Whether `sig` (bytes, as long as the modulus) is a PKCS#1 v1.5 signature of the
    SHA-256 `digest` under the public key (n, e). A key outside 2048..4096 bits gives False."""
    try:
        check_key(pub)
    except ValueError:
        return False
    n, e = pub
    k = size(n)
    if len(sig) != k or len(digest) != 32:
        return False
    s = int.from_bytes(bytes(sig), "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    pad = k - 3 - len(_SHA256_INFO) - 32
    return em == b"\x00\x01" + b"\xff" * pad + b"\x00" + _SHA256_INFO + bytes(digest)
