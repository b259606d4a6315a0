"""X.509 certificates: PEM <-> DER, the fields a charger needs, chain checks, OCPP hash data.

    certs = pem_to_ders(text)
    reason = check_chain(certs, roots, now, usage=CODE_SIGNING)   # None: trusted
    ids = hash_data(der, issuer_der)                              # CertificateHashDataType

Names are compared as DER bytes (what a CA that issues its own chain always produces), SHA-256
is the only hash (signature.py). Revocation: a charger has no CRL or OCSP access of its own;
check_chain takes a list of revoked certificates (issuer name hash and serial, provisioned by
the technician in `revoked.json`, see load_revoked()) and refuses a path through any of them.
check_chain's reasons are the words of the OCPP security whitepaper's statuses: EXPIRED,
NOT_YET_VALID, UNTRUSTED, BAD_SIGNATURE, WRONG_USAGE, MALFORMED, REVOKED.
"""

from firmware.compat import const

_MAX_CERT = const(4096)    # an RSA-4096 certificate with the usual extensions is < 2 KB
_MAX_PEM = const(20000)    # CertificateSigned's certificateChain is string[10000]
_MAX_CHAIN = const(5)      # certificates in one chain, and links followed up to a root

EXPIRED = "expired"
NOT_YET_VALID = "not yet valid"
UNTRUSTED = "untrusted"
BAD_SIGNATURE = "bad signature"
WRONG_USAGE = "wrong usage"
MALFORMED = "malformed"
REVOKED = "revoked"
REVOKED_FILE = "revoked.json"  # next to config.json, as vendor_keys.json
_MAX_REVOKED = const(64)

# Extended key usages (RFC 5280 4.2.1.12)
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
CODE_SIGNING = "1.3.6.1.5.5.7.3.3"
_ANY_EKU = "2.5.29.37.0"

# key_usage bits: bit n of the KeyUsage BIT STRING is 1 << n
KU_DIGITAL_SIGNATURE = const(0x01)
KU_KEY_ENCIPHERMENT = const(0x04)
KU_KEY_AGREEMENT = const(0x10)
KU_KEY_CERT_SIGN = const(0x20)

_EC_KEY = "1.2.840.10045.2.1"
_P256 = "1.2.840.10045.3.1.7"
_RSA_KEY = "1.2.840.113549.1.1.1"
_CN = "2.5.4.3"
_EXT_KEY_USAGE = "2.5.29.15"
_EXT_BASIC = "2.5.29.19"
_EXT_EKU = "2.5.29.37"
# Extensions a certificate may mark critical without being refused: the ones checked here,
# and name/policy ones that only constrain what this firmware never relies on.
_KNOWN_CRITICAL = ("2.5.29.15", "2.5.29.19", "2.5.29.37", "2.5.29.17", "2.5.29.32",
                   "2.5.29.14", "2.5.29.35")


class Cert:
    """A parsed certificate (ValueError if it is malformed or larger than 4 KB).

    serial (int), issuer / subject (DER of the Name), not_before / not_after (unix seconds),
    key: ("ec", x, y) for P-256, ("rsa", n, e), or ("other", algorithm OID); sig_alg (OID
    string), signature (bytes), is_ca, path_len (int or None), key_usage (bits, None when
    absent), ext_key_usage (OID strings, None when absent)."""

    def __init__(self, der):
        try:
            self._parse(bytes(der))
        except IndexError:  # a structure with fewer elements than its kind has
            raise ValueError("malformed certificate")

    def _parse(self, der):
        from firmware import der as d
        if len(der) > _MAX_CERT:
            raise ValueError("certificate larger than %d bytes" % _MAX_CERT)
        self.der = der
        s, e = d.expect(der, 0, len(der), d.SEQUENCE)
        if e != len(der):
            raise ValueError("bytes after the certificate")
        top = d.items(der, s, e)
        if len(top) != 3 or top[0][0] != d.SEQUENCE or top[2][0] != d.BIT_STRING:
            raise ValueError("not a certificate")
        self._tbs = (top[0][1], top[0][3])
        self.sig_alg = _alg(der, top[1])
        unused, first = d.bit_string(der, top[2][2], top[2][3])
        self.signature = der[first:top[2][3]]
        f = d.items(der, top[0][2], top[0][3])
        if f and f[0][0] == d.CONTEXT0:
            f = f[1:]  # version: v3 is the only one with extensions, which are read as found
        if len(f) < 6 or f[0][0] != d.INTEGER:
            raise ValueError("short certificate")
        self.serial = d.integer(der, f[0][2], f[0][3])
        if _alg(der, f[1]) != self.sig_alg:
            raise ValueError("signature algorithms differ")
        self.issuer = der[f[2][1]:f[2][3]]
        self.subject = der[f[4][1]:f[4][3]]
        times = d.items(der, f[3][2], f[3][3])
        if f[3][0] != d.SEQUENCE or len(times) != 2:
            raise ValueError("bad validity")
        self.not_before = d.time(times[0][0], der, times[0][2], times[0][3])
        self.not_after = d.time(times[1][0], der, times[1][2], times[1][3])
        self._key_bits = self._read_key(d, der, f[5])
        self.is_ca = False
        self.path_len = None
        self.key_usage = None
        self.ext_key_usage = None
        self.unknown_critical = False
        for t, _, vs, ve in f[6:]:
            if t == d.CONTEXT0 + 3:
                self._read_extensions(d, der, *d.expect(der, vs, ve, d.SEQUENCE))

    def _read_key(self, d, der, spki):
        alg, bits = d.items(der, spki[2], spki[3])
        parts = d.items(der, alg[2], alg[3])
        kind = d.oid(der, parts[0][2], parts[0][3])
        unused, first = d.bit_string(der, bits[2], bits[3])
        if unused:
            raise ValueError("bad public key")
        if kind == _EC_KEY and len(parts) > 1 and d.oid(der, parts[1][2], parts[1][3]) == _P256:
            from firmware.p256 import point_from_bytes
            x, y = point_from_bytes(der[first:bits[3]])
            self.key = ("ec", x, y)
        elif kind == _RSA_KEY:
            n, e = d.items(der, *d.expect(der, first, bits[3], d.SEQUENCE))
            self.key = ("rsa", d.integer(der, n[2], n[3]), d.integer(der, e[2], e[3]))
        else:
            self.key = ("other", kind)
        return first, bits[3]

    def _read_extensions(self, d, der, start, end):
        for _, _, s, e in d.items(der, start, end):
            parts = d.items(der, s, e)
            name = d.oid(der, parts[0][2], parts[0][3])
            critical = len(parts) == 3 and parts[1][0] == d.BOOLEAN and der[parts[1][2]] != 0
            vs, ve = d.expect(der, parts[-1][1], parts[-1][3], d.OCTET_STRING)
            if name == _EXT_BASIC:
                inner = d.items(der, *d.expect(der, vs, ve, d.SEQUENCE))
                for t, _, s2, e2 in inner:
                    if t == d.BOOLEAN:
                        self.is_ca = der[s2] != 0
                    elif t == d.INTEGER:
                        self.path_len = d.integer(der, s2, e2)
            elif name == _EXT_KEY_USAGE:
                s2, e2 = d.expect(der, vs, ve, d.BIT_STRING)
                unused, first = d.bit_string(der, s2, e2)
                bits = 0
                for i in range(first, min(e2, first + 2)):  # named bits 0..8
                    b = der[i]
                    for j in range(8):
                        if b & (0x80 >> j):
                            bits |= 1 << ((i - first) * 8 + j)
                self.key_usage = bits
            elif name == _EXT_EKU:
                s2, e2 = d.expect(der, vs, ve, d.SEQUENCE)
                self.ext_key_usage = [d.oid(der, it[2], it[3]) for it in d.items(der, s2, e2)]
            elif critical and name not in _KNOWN_CRITICAL:
                self.unknown_critical = True  # RFC 5280: such a certificate is refused

    @property
    def tbs(self):
        """The signed part (TBSCertificate) as bytes."""
        return self.der[self._tbs[0]:self._tbs[1]]

    @property
    def key_bits(self):
        """The subjectPublicKey bits (what OCSP's issuerKeyHash hashes)."""
        return self.der[self._key_bits[0]:self._key_bits[1]]

    @property
    def subject_cn(self):
        """The subject's commonName as text, or None."""
        return name_cn(self.subject)

    def self_issued(self):
        return self.issuer == self.subject

    def can_sign_certs(self):
        """A CA (basicConstraints cA) whose key usage, when present, allows keyCertSign."""
        return self.is_ca and (self.key_usage is None or self.key_usage & KU_KEY_CERT_SIGN)

    def allows(self, usage):
        """Whether this end-entity certificate may be used for the extended key usage `usage`
        (an OID string): an absent extension allows every usage."""
        eku = self.ext_key_usage
        if eku is not None and usage not in eku and _ANY_EKU not in eku:
            return False
        ku = self.key_usage
        if ku is None:
            return True
        if usage == CODE_SIGNING:
            return bool(ku & KU_DIGITAL_SIGNATURE)
        return bool(ku & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT))

    def verify_with(self, issuer):
        """Whether `issuer` (a Cert) names this certificate's issuer and its key signed it."""
        if issuer.subject != self.issuer:
            return False
        from hashlib import sha256
        from firmware.signature import verify
        h = sha256(memoryview(self.der)[self._tbs[0]:self._tbs[1]]).digest()
        return verify(issuer.key, h, self.signature, self.sig_alg)

    def valid_at(self, now):
        """None when unix time `now` lies in the validity period, else EXPIRED or NOT_YET_VALID."""
        if now < self.not_before:
            return NOT_YET_VALID
        if now > self.not_after:
            return EXPIRED
        return None


def _alg(der, item):
    from firmware import der as d
    if item[0] != d.SEQUENCE:
        raise ValueError("bad algorithm")
    t, s, e = d.read(der, item[2], item[3])
    if t != d.OID:
        raise ValueError("bad algorithm")
    return d.oid(der, s, e)


def name_cn(name):
    """The first commonName in a DER Name, as text, or None."""
    from firmware import der as d
    s, e = d.expect(name, 0, len(name), d.SEQUENCE)
    for _, _, rs, re in d.items(name, s, e):
        for _, _, as_, ae in d.items(name, rs, re):
            parts = d.items(name, as_, ae)
            if len(parts) == 2 and d.oid(name, parts[0][2], parts[0][3]) == _CN:
                return bytes(name[parts[1][2]:parts[1][3]]).decode()
    return None


def check_chain(chain_ders, root_ders, now, usage=None, revoked=None):
    """Why the chain (leaf first, then the intermediates that lead to a root) is not trusted
    at unix time `now` for the extended key usage `usage` (OID string, None: any), or None
    when it is. `root_ders` are the trust anchors. now None: the clock is unknown and validity
    periods are not checked (the caller decides whether that is acceptable). `revoked`:
    load_revoked()'s set; a certificate of the path in it (the anchor too) -> REVOKED.

    -> None, EXPIRED, NOT_YET_VALID, UNTRUSTED, BAD_SIGNATURE, WRONG_USAGE, MALFORMED or
    REVOKED."""
    if not chain_ders or len(chain_ders) > _MAX_CHAIN:
        return MALFORMED
    try:
        chain = [Cert(der) for der in chain_ders]
    except (ValueError, IndexError):
        return MALFORMED
    roots = []
    for der in root_ders:
        try:
            roots.append(Cert(der))
        except (ValueError, IndexError):
            pass  # one unreadable anchor does not stop the others from working
    cur = chain[0]
    if usage is not None and not cur.allows(usage):
        return WRONG_USAGE
    below = 0  # intermediates between the leaf and the issuer looked for (pathLenConstraint)
    for _ in range(_MAX_CHAIN):
        why = _usable(cur, now) or _revoked(cur, revoked)
        if why:
            return why
        if any(root.der == cur.der for root in roots):
            return None  # the certificate is itself a trust anchor
        issuer, anchor, bad_sig = _issuer(cur, roots, chain)
        if issuer is None:
            return BAD_SIGNATURE if bad_sig else UNTRUSTED
        if not issuer.can_sign_certs() or (issuer.path_len is not None
                                           and below > issuer.path_len):
            return UNTRUSTED
        if anchor:
            return _usable(issuer, now) or _revoked(issuer, revoked)
        below += 1
        cur = issuer
    return UNTRUSTED


def _issuer(cert, roots, chain):
    # -> (the certificate that signed cert, whether it is a trust anchor, whether a
    # certificate of the right name had a signature that did not verify)
    bad_sig = False
    for pool, anchor in ((roots, True), (chain, False)):
        for c in pool:
            if c is not cert and c.subject == cert.issuer:
                if cert.verify_with(c):
                    return c, anchor, bad_sig
                bad_sig = True
    return None, False, bad_sig


def _revoked(cert, revoked):
    if not revoked:
        return None
    from binascii import hexlify
    from hashlib import sha256
    name = hexlify(sha256(cert.issuer).digest()).decode()
    return REVOKED if (name, cert.serial) in revoked else None


def load_revoked(path):
    """The revoked certificates of `path` (revoked.json: {"revoked": [{"issuerNameHash":
    "<hex SHA-256 of the issuer's DER Name>", "serialNumber": "<hex>"}, ...]}, the fields of
    CertificateHashData; other fields are ignored) as a set of (issuerNameHash lower case,
    serial int). No file: an empty set. A file that is there but unreadable, not strict JSON,
    longer than 64 entries or with a malformed entry raises ValueError: a revocation list
    that silently meant nothing would trust what it was meant to refuse."""
    from firmware import store
    try:
        with open(path, "rb") as f:
            text = f.read(16384 + 1)
    except OSError:
        return set()
    if len(text) > 16384:
        raise ValueError("%s is over 16384 bytes" % path)
    doc = store.loads(text)
    items = doc.get("revoked") if isinstance(doc, dict) else None
    if not isinstance(items, list) or len(items) > _MAX_REVOKED:
        raise ValueError("%s: \"revoked\" must be a list of at most %d certificates"
                         % (path, _MAX_REVOKED))
    out = set()
    for it in items:
        try:
            name = it["issuerNameHash"].lower()
            if len(name) != 64 or any(c not in "0123456789abcdef" for c in name):
                raise ValueError
            out.add((name, int(it["serialNumber"], 16)))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ValueError("%s: each entry needs issuerNameHash (64 hex digits) and "
                             "serialNumber (hex)" % path)
    return out


def _usable(cert, now):
    if cert.unknown_critical:
        return UNTRUSTED
    return None if now is None else cert.valid_at(now)


def hash_data(cert_der, issuer_der=None):
    """The OCPP CertificateHashDataType of a certificate: SHA-256 of the issuer's DER Name and
    of the issuer's public key bits (as OCSP's CertID), the serial number in hex without
    leading zeros. issuer_der None: the issuer is not known; for a self-issued certificate
    (a root) that is the certificate itself, for any other the issuer's key is unknown and
    issuerKeyHash is "" (KEY_UNKNOWN): a hash of the certificate's own key would name a key
    that never signed it. Issuer name and serial still identify the certificate (RFC 5280
    4.1.2.2), which is what matches() then relies on."""
    from binascii import hexlify
    from hashlib import sha256
    cert = Cert(cert_der)
    if issuer_der is not None:
        issuer = Cert(issuer_der)
    else:
        issuer = cert if cert.self_issued() else None
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": hexlify(sha256(cert.issuer).digest()).decode(),
        "issuerKeyHash": (KEY_UNKNOWN if issuer is None
                          else hexlify(sha256(issuer.key_bits).digest()).decode()),
        "serialNumber": "%x" % cert.serial,
    }


KEY_UNKNOWN = ""


def matches(ours, theirs):
    """Whether CertificateHashData `theirs` (a Central System's) names the certificate whose
    hash data is `ours` (hash_data()'s): hex case and a serial's leading zeros do not matter;
    an issuerKeyHash we could not compute (KEY_UNKNOWN) is not compared."""
    if ours["hashAlgorithm"] != theirs["hashAlgorithm"]:
        return False
    fields = ("issuerNameHash",) if ours["issuerKeyHash"] == KEY_UNKNOWN else (
        "issuerNameHash", "issuerKeyHash")
    for f in fields:
        if ours[f].lower() != theirs[f].lower():
            return False
    return ours["serialNumber"].lower().lstrip("0") == theirs["serialNumber"].lower().lstrip("0")


def pem_blocks(text, label):
    """The DER bytes of every "-----BEGIN <label>-----" block of a PEM text (str or bytes)."""
    from binascii import a2b_base64
    if isinstance(text, str):
        text = text.encode()
    if len(text) > _MAX_PEM:
        raise ValueError("PEM text longer than %d bytes" % _MAX_PEM)
    begin = b"-----BEGIN " + label.encode() + b"-----"
    end = b"-----END " + label.encode() + b"-----"
    out = []
    i = text.find(begin)
    while i >= 0:
        j = text.find(end, i)
        if j < 0:
            raise ValueError("unterminated PEM block")
        out.append(a2b_base64(b"".join(text[i + len(begin):j].split())))
        i = text.find(begin, j)
    return out


def pem_to_ders(text):
    """The DER bytes of every certificate of a PEM text; ValueError if one is over 4 KB or
    there are more than 5 (a chain) or none."""
    ders = pem_blocks(text, "CERTIFICATE")
    if not ders or len(ders) > _MAX_CHAIN:
        raise ValueError("expected 1..%d PEM certificates, found %d" % (_MAX_CHAIN, len(ders)))
    for der in ders:
        if len(der) > _MAX_CERT:
            raise ValueError("certificate larger than %d bytes" % _MAX_CERT)
    return ders


def der_to_pem(der, label="CERTIFICATE"):
    """PEM text of DER bytes, 64 characters a line."""
    from binascii import b2a_base64
    lines = ["-----BEGIN %s-----\n" % label]
    for i in range(0, len(der), 48):
        lines.append(b2a_base64(der[i:i + 48]).decode())  # 48 bytes: 64 characters and "\n"
    lines.append("-----END %s-----\n" % label)
    return "".join(lines)


def verify(key, digest, signature, sig_alg=None):
    """signature.verify, for callers that already have this module."""
    from firmware.signature import verify as v
    return v(key, digest, signature, sig_alg)
