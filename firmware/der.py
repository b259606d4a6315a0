"""Minimal DER: walk tag/length/value, read OIDs, INTEGERs, BIT STRINGs and times; build the
few structures a certificate request needs.

A value is addressed by (tag, start, end) offsets into the caller's buffer, so walking a
certificate copies nothing. Every length is checked against the enclosing end: a truncated or
lying length raises ValueError, never reads past the buffer.
"""

from firmware.compat import const

BOOLEAN = const(0x01)
INTEGER = const(0x02)
BIT_STRING = const(0x03)
OCTET_STRING = const(0x04)
NULL = const(0x05)
OID = const(0x06)
UTF8_STRING = const(0x0C)
PRINTABLE_STRING = const(0x13)
UTC_TIME = const(0x17)
GENERALIZED_TIME = const(0x18)
SEQUENCE = const(0x30)
SET = const(0x31)
CONTEXT0 = const(0xA0)  # [0] constructed; CONTEXT0 + n for [n]

_MAX_LEN_BYTES = const(3)  # 16 MB: far beyond anything this firmware accepts


def read(buf, pos, end):
    """The element at buf[pos:end] -> (tag, value_start, value_end)."""
    if pos + 2 > end:
        raise ValueError("DER: truncated")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("DER: multi-byte tag")
    n = buf[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > _MAX_LEN_BYTES or pos + k > end:
            raise ValueError("DER: bad length")
        n = 0
        for i in range(pos, pos + k):
            n = (n << 8) | buf[i]
        pos += k
    if pos + n > end:
        raise ValueError("DER: length past end")
    return tag, pos, pos + n


def expect(buf, pos, end, tag):
    """read() that insists on `tag` -> (value_start, value_end)."""
    t, s, e = read(buf, pos, end)
    if t != tag:
        raise ValueError("DER: tag 0x%02x where 0x%02x expected" % (t, tag))
    return s, e


def items(buf, start, end):
    """The elements of a constructed value buf[start:end] -> list of (tag, head, start, end);
    buf[head:end] is the whole element, buf[start:end] its value."""
    out = []
    while start < end:
        t, s, e = read(buf, start, end)
        out.append((t, start, s, e))
        start = e
    return out


def oid(buf, start, end):
    """The OBJECT IDENTIFIER value buf[start:end] as a dotted string ("1.2.840.10045.2.1")."""
    if start >= end or buf[end - 1] & 0x80:
        raise ValueError("DER: bad OID")
    parts = []
    v = 0
    for i in range(start, end):
        b = buf[i]
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            if not parts:
                first = 2 if v >= 80 else v // 40
                parts.append(first)
                v -= first * 40
            parts.append(v)
            v = 0
    return ".".join(str(p) for p in parts)


def integer(buf, start, end):
    """An INTEGER value as a (signed) int."""
    if start >= end:
        raise ValueError("DER: empty INTEGER")
    n = int.from_bytes(bytes(buf[start:end]), "big")
    if buf[start] & 0x80:
        n -= 1 << (8 * (end - start))
    return n


def bit_string(buf, start, end):
    """A BIT STRING value -> (unused_bits, first_byte_offset); the bits are buf[first:end]."""
    if start >= end or buf[start] > 7:
        raise ValueError("DER: bad BIT STRING")
    return buf[start], start + 1


def time(tag, buf, start, end):
    """A UTCTime or GeneralizedTime ("...Z", whole seconds) -> unix seconds (firmware/clock.py's
    convention on every port). UTCTime years 50..99 are 19xx, 00..49 are 20xx (RFC 5280)."""
    from firmware.clock import days_from_civil
    s = bytes(buf[start:end])
    if tag == UTC_TIME and len(s) == 13:
        y = _digits(s, 0, 2)
        y += 1900 if y >= 50 else 2000
        i = 2
    elif tag == GENERALIZED_TIME and len(s) == 15:
        y = _digits(s, 0, 4)
        i = 4
    else:
        raise ValueError("DER: bad time")
    if s[-1] != 0x5A:  # "Z": DER times are UTC
        raise ValueError("DER: time not in UTC")
    mo, d = _digits(s, i, 2), _digits(s, i + 2, 2)
    h, mi, sec = _digits(s, i + 4, 2), _digits(s, i + 6, 2), _digits(s, i + 8, 2)
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 61):
        raise ValueError("DER: bad time")
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec


def _digits(s, i, n):
    v = 0
    for k in range(i, i + n):
        c = s[k] - 0x30
        if not 0 <= c <= 9:
            raise ValueError("DER: bad time")
        v = v * 10 + c
    return v


# -- writer: each helper returns the complete element as bytes --

def tlv(tag, value):
    n = len(value)
    if n < 0x80:
        head = bytes((tag, n))
    elif n < 0x100:
        head = bytes((tag, 0x81, n))
    else:
        head = bytes((tag, 0x82, n >> 8, n & 0xFF))
    return head + value


def seq(*parts):
    return tlv(SEQUENCE, b"".join(parts))


def set_of(*parts):
    return tlv(SET, b"".join(parts))


def int_(n):
    """A non-negative INTEGER."""
    # MicroPython ints have no bit_length(): size from the hex digits, with room for a
    # leading 0 sign byte, dropped again when the next byte leaves the sign bit clear.
    body = n.to_bytes(len("%x" % n) // 2 + 1, "big")
    if len(body) > 1 and body[0] == 0 and body[1] < 0x80:
        body = body[1:]
    return tlv(INTEGER, body)


def oid_(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray()
    for i, v in enumerate([parts[0] * 40 + parts[1]] + parts[2:]):
        chunk = [v & 0x7F]
        v >>= 7
        while v:
            chunk.append(0x80 | (v & 0x7F))
            v >>= 7
        chunk.reverse()
        body.extend(bytes(chunk))
    return tlv(OID, bytes(body))


def bits(data):
    """A BIT STRING of whole bytes."""
    return tlv(BIT_STRING, b"\x00" + data)


def octets(data):
    return tlv(OCTET_STRING, data)


def utf8(text):
    return tlv(UTF8_STRING, text.encode())
