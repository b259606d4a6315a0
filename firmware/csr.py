"""The charger's own key and certificate request: PKCS#10 CSRs signed with ECDSA P-256, and
the SEC1 "EC PRIVATE KEY" format that both a generated key and a technician-provisioned one
are kept in (mbedtls and OpenSSL, so both interpreters' `ssl`, load it as a client key).

    d, pub = p256.generate()
    key_pem = der_to_pem(ec_key_der(d, pub), "EC PRIVATE KEY")
    csr_der = build(d, pub, "CP-0001", organization="Example CPO")
"""

from firmware.compat import const

_MAX_KEY_TEXT = const(2048)  # a P-256 key in PEM is about 230 bytes
_EC_KEY = "1.2.840.10045.2.1"
_P256 = "1.2.840.10045.3.1.7"
_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
_CN = "2.5.4.3"
_O = "2.5.4.10"


def name(common_name, organization=None):
    """DER of the Name O=organization, CN=common_name."""
    from firmware.der import oid_, seq, set_of, utf8
    rdns = []
    if organization:
        rdns.append(set_of(seq(oid_(_O), utf8(organization))))
    rdns.append(set_of(seq(oid_(_CN), utf8(common_name))))
    return seq(*rdns)


def public_key_info(pub):
    """DER SubjectPublicKeyInfo of the P-256 public key (x, y)."""
    from firmware.der import bits, oid_, seq
    from firmware.p256 import point_bytes
    return seq(seq(oid_(_EC_KEY), oid_(_P256)), bits(point_bytes(pub)))


def build(d, pub, common_name, organization=None):
    """A PKCS#10 certification request (DER) for the key pair (d, pub), subject
    O=organization, CN=common_name, no attributes, signed with ecdsa-with-SHA256."""
    from hashlib import sha256
    from firmware import der, p256
    info = der.seq(der.int_(0), name(common_name, organization), public_key_info(pub),
                   der.tlv(der.CONTEXT0, b""))
    sig = p256.sign(d, sha256(info).digest())
    return der.seq(info, der.seq(der.oid_(_ECDSA_SHA256)), der.bits(sig))


def ec_key_der(d, pub):
    """SEC1 ECPrivateKey (RFC 5915) DER of the P-256 key pair, with curve and public key."""
    from firmware import der
    from firmware.p256 import point_bytes
    return der.seq(der.int_(1), der.octets(d.to_bytes(32, "big")),
                   der.tlv(der.CONTEXT0, der.oid_(_P256)),
                   der.tlv(der.CONTEXT0 + 1, der.bits(point_bytes(pub))))


def parse_ec_key(data):
    """(d, (x, y)) of a P-256 private key given as SEC1 ("EC PRIVATE KEY") or PKCS#8
    ("PRIVATE KEY", as `openssl genpkey` writes it), PEM text or DER bytes. ValueError when
    it is something else; the message never contains key material."""
    from firmware import der
    from firmware.p256 import is_scalar, point_from_bytes, public
    if isinstance(data, str):
        data = data.encode()
    if len(data) > _MAX_KEY_TEXT:
        raise ValueError("private key longer than %d bytes" % _MAX_KEY_TEXT)
    if data.startswith(b"-----"):
        from firmware.x509 import pem_blocks
        blocks = pem_blocks(data, "EC PRIVATE KEY") or pem_blocks(data, "PRIVATE KEY")
        if len(blocks) != 1:
            raise ValueError("expected one EC PRIVATE KEY or PRIVATE KEY block")
        data = blocks[0]
    try:
        s, e = der.expect(data, 0, len(data), der.SEQUENCE)
        parts = der.items(data, s, e)
        version = der.integer(data, parts[0][2], parts[0][3])
        if version == 0:  # PKCS#8 PrivateKeyInfo: algorithm, then the SEC1 key in an OCTET STRING
            alg = der.items(data, parts[1][2], parts[1][3])
            if (der.oid(data, alg[0][2], alg[0][3]) != _EC_KEY
                    or der.oid(data, alg[1][2], alg[1][3]) != _P256):
                raise ValueError("not a P-256 key")
            data = bytes(data[parts[2][2]:parts[2][3]])
            s, e = der.expect(data, 0, len(data), der.SEQUENCE)
            parts = der.items(data, s, e)
            version = der.integer(data, parts[0][2], parts[0][3])
        if version != 1 or parts[1][0] != der.OCTET_STRING:
            raise ValueError("not an EC private key")
        d = int.from_bytes(bytes(data[parts[1][2]:parts[1][3]]), "big")
        pub = None
        for t, _, vs, ve in parts[2:]:
            if t == der.CONTEXT0:
                s2, e2 = der.expect(data, vs, ve, der.OID)
                if der.oid(data, s2, e2) != _P256:
                    raise ValueError("not a P-256 key")
            elif t == der.CONTEXT0 + 1:
                s2, e2 = der.expect(data, vs, ve, der.BIT_STRING)
                pub = point_from_bytes(data[s2 + 1:e2])
    except IndexError:
        raise ValueError("malformed private key")
    if not is_scalar(d):
        raise ValueError("private key out of range")
    derived = public(d)
    if pub is not None and pub != derived:
        raise ValueError("public key does not match the private key")
    return d, derived
