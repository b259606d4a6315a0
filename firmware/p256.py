"""ECDSA on NIST P-256 (secp256r1) with SHA-256 digests, in plain Python integers.

verify((x, y), digest, der_sig) checks a signature; generate() makes a key pair from the
port's random source; sign(d, digest) signs with RFC 6979 deterministic nonces (no random
number is needed at signing time, and a weak one cannot leak the key).

Points are Jacobian (X, Y, Z) while they are worked on, so a step costs no inversion; scalars
are recoded in width-4 NAF and both scalars of a verification share one doubling chain
(Shamir's trick), with the odd multiples 1P..7P of each point made affine by one batched
inversion. The window is sized for RAM, not speed: width 5 (1P..15P) needs a few additions
fewer, but its tables took the verify peak on the 32-bit frozen build to 10 KB; width 4 with
compact table entries needs 5 KB (tools/bench_crypto.py; time 14 -> 16 ms median there).
Pure Python is not constant-time: signing is meant for the charger's own
key-generation and CSR, where timing is not observable by a peer.
"""

from firmware.compat import const

_P = const(0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF)
_N = const(0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551)
_B = const(0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B)
_GX = const(0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296)
_GY = const(0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)
_W = const(4)          # NAF window: digits are odd, -7..7
_HALF = const(8)       # 2 ** (_W - 1)
_FULL = const(16)      # 2 ** _W
_BLOCK = const(64)     # SHA-256 block size, for HMAC


def on_curve(pub):
    """Whether (x, y) is an affine point of P-256 (y^2 = x^3 - 3x + b)."""
    x, y = pub
    p = _P
    if not (0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x - 3 * x + _B)) % p == 0


def is_scalar(d):
    """Whether d is a valid private key (1..n-1)."""
    return 0 < d < _N


def point_from_bytes(data):
    """SEC1 point bytes (04||X||Y, or compressed 02/03||X) -> (x, y); ValueError if it is not
    a point of the curve."""
    if len(data) == 65 and data[0] == 4:
        pub = (int.from_bytes(bytes(data[1:33]), "big"), int.from_bytes(bytes(data[33:]), "big"))
    elif len(data) == 33 and data[0] in (2, 3):
        x = int.from_bytes(bytes(data[1:]), "big")
        y = pow((x * x * x - 3 * x + _B) % _P, (_P + 1) // 4, _P)  # p = 3 mod 4
        if (y ^ data[0]) & 1:
            y = _P - y
        pub = (x, y)
    else:
        raise ValueError("P-256: bad point encoding")
    if not on_curve(pub):
        raise ValueError("P-256: point not on the curve")
    return pub


def point_bytes(pub):
    """(x, y) -> uncompressed SEC1 bytes 04||X||Y."""
    return b"\x04" + pub[0].to_bytes(32, "big") + pub[1].to_bytes(32, "big")


def verify(pub, digest, sig):
    """Whether the DER ECDSA signature `sig` over the SHA-256 `digest` verifies with the
    public key (x, y). Malformed input gives False."""
    try:
        r, s = _parse_sig(sig)
    except (ValueError, IndexError):
        return False
    n = _N
    if not (0 < r < n and 0 < s < n) or not on_curve(pub):
        return False
    w = pow(s, n - 2, n)
    e = _digest_int(digest)
    q = _mul((e * w) % n, (_GX, _GY), (r * w) % n, pub)
    if q is None:
        return False
    x, _ = _affine(q)
    return x % n == r


def generate():
    """A new key pair (d, (x, y)) from the port's random source."""
    from firmware.compat import urandom
    while True:
        d = int.from_bytes(urandom(32), "big")  # rejection keeps d uniform in 1..n-1
        if 0 < d < _N:
            return d, public(d)


def public(d):
    """The public key (x, y) of the private scalar d."""
    return _affine(_mul(d, (_GX, _GY)))


def sign(d, digest):
    """The DER ECDSA signature of the SHA-256 `digest` with the private scalar d; k from
    RFC 6979 (HMAC-SHA256), so the same input always gives the same signature."""
    from firmware.der import int_, seq
    n = _N
    e = _digest_int(digest)
    for k in _nonces(d, e):
        x, _ = _affine(_mul(k, (_GX, _GY)))
        r = x % n
        if r:
            s = pow(k, n - 2, n) * (e + r * d) % n
            if s:
                return seq(int_(r), int_(s))
    return None  # not reached: _nonces never ends


def _digest_int(digest):
    # The leftmost 256 bits of the digest (all of a SHA-256 one).
    return int.from_bytes(bytes(digest[:32]), "big")


def _parse_sig(sig):
    from firmware import der
    s, e = der.expect(sig, 0, len(sig), der.SEQUENCE)
    if e != len(sig):
        raise ValueError("trailing bytes")
    rs, re = der.expect(sig, s, e, der.INTEGER)
    ss, se = der.expect(sig, re, e, der.INTEGER)
    if se != e:
        raise ValueError("trailing bytes")
    return der.integer(sig, rs, re), der.integer(sig, ss, se)


def _hmac(key, msg):
    # HMAC-SHA256 (RFC 2104) on hashlib: MicroPython has no hmac module. key is 32 bytes.
    from hashlib import sha256
    k = key + bytes(_BLOCK - len(key))
    inner = sha256(bytes(b ^ 0x36 for b in k) + msg).digest()
    return sha256(bytes(b ^ 0x5C for b in k) + inner).digest()


def _nonces(d, e):
    # RFC 6979 section 3.2 for qlen = hlen = 256: candidate k values, in order.
    n = _N
    bx = d.to_bytes(32, "big") + (e % n).to_bytes(32, "big")
    v = b"\x01" * 32
    k = _hmac(b"\x00" * 32, v + b"\x00" + bx)
    v = _hmac(k, v)
    k = _hmac(k, v + b"\x01" + bx)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        c = int.from_bytes(v, "big")
        if 0 < c < n:
            yield c
        k = _hmac(k, v + b"\x00")
        v = _hmac(k, v)


# -- point arithmetic: Jacobian (X, Y, Z) with x = X/Z^2, y = Y/Z^3; None is infinity --

def _double(pt):
    # dbl-2001-b (a = -3): 3 squarings, 5 multiplications.
    p = _P
    x, y, z = pt
    if not y:
        return None
    delta = z * z % p
    gamma = y * y % p
    beta = x * gamma % p
    alpha = 3 * (x - delta) * (x + delta) % p
    x3 = (alpha * alpha - 8 * beta) % p
    z3 = 2 * y * z % p
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % p
    return x3, y3, z3


def _add_affine(pt, ax, ay):
    # pt + (ax, ay) with the second point affine (Z = 1): 3 squarings, 8 multiplications.
    if pt is None:
        return ax, ay, 1
    p = _P
    x, y, z = pt
    zz = z * z % p
    h = (ax * zz - x) % p
    r = (ay * zz % p * z - y) % p
    if not h:
        return _double((ax, ay, 1)) if not r else None
    hh = h * h % p
    hhh = h * hh % p
    v = x * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y * hhh) % p
    return x3, y3, z * h % p


def _affine(pt):
    p = _P
    x, y, z = pt
    zi = pow(z, p - 2, p)
    zi2 = zi * zi % p
    return x * zi2 % p, y * zi2 * zi % p


def _odd_multiples(pub):
    # [1P, 3P, 5P, 7P] affine: 2P made affine once, then each step adds it; the Jacobian
    # results are made affine with one inversion (Montgomery's batch trick), in place.
    p = _P
    two = _affine(_double((pub[0], pub[1], 1)))
    pts = [(pub[0], pub[1], 1)]
    for _ in range(_HALF // 2 - 1):
        pts.append(_add_affine(pts[-1], two[0], two[1]))
    two = None
    prods = []
    acc = 1
    for pt in pts:
        acc = acc * pt[2] % p
        prods.append(acc)
    inv = pow(acc, p - 2, p)
    for i in range(len(pts) - 1, -1, -1):
        zi = inv * prods[i - 1] % p if i else inv
        x, y, z = pts[i]
        inv = inv * z % p
        zi2 = zi * zi % p
        # -(-v): a remainder keeps the digit room of its 512-bit dividend; the copy has just
        # the 256 bits (MicroPython), and the table lives for the whole multiplication.
        pts[i] = (-(-(x * zi2 % p)), -(-(y * zi2 * zi % p)))
        prods[i] = None
    return pts


def _naf(k):
    # Width-4 NAF digits of k, least significant first: each non-zero digit is odd and
    # followed by at least three zeros, so about one addition per five doublings. Stored as
    # digit + 8 in a bytearray: 257 bytes where a list would take 2 KB on a 64-bit port.
    out = bytearray()
    while k:
        if k & 1:
            d = k & (_FULL - 1)
            if d >= _HALF:
                d -= _FULL
            k -= d
        else:
            d = 0
        out.append(d + _HALF)
        k >>= 1
    return out


def _mul(k1, pt1, k2=0, pt2=None):
    """k1*pt1 + k2*pt2 (affine points, scalars reduced mod n) as a Jacobian point or None."""
    p = _P
    plan = [(_naf(k1), _odd_multiples(pt1))]
    if k2:
        plan.append((_naf(k2), _odd_multiples(pt2)))
    acc = None
    for i in range(max(len(d) for d, _ in plan) - 1, -1, -1):
        if acc is not None:
            acc = _double(acc)
        for digits, table in plan:
            if i < len(digits):
                d = digits[i] - _HALF
                if d > 0:
                    x, y = table[d >> 1]
                    acc = _add_affine(acc, x, y)
                elif d < 0:
                    x, y = table[(-d) >> 1]
                    acc = _add_affine(acc, x, p - y)
    return acc
