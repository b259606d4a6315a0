"""A strict JSON check (RFC 8259) that names the line of the first error.

MicroPython's json.loads is lenient: `{"a": 1 2}` gives {'a': 1}, `{"a": 26, "b": }` drops
"b", `[1,,2]` is [1, 2]. A config or state file read that way is silently wrong, so every
JSON file read from flash passes through check() before json.loads (firmware/store.py
loads()), on every interpreter: the same file is refused with the same message everywhere.

The scan is iterative (no recursion: the ESP32's stack is small) over the bytes (indexing a
non-ASCII str is not O(1) on MicroPython) and allocates nothing per character.
"""
from firmware.compat import const

_DEPTH = const(32)  # nesting kept by the scan; our files use 3 or 4 levels
_ESCAPES = b'"\\/bfnrtu'
_HEX = b"0123456789abcdefABCDEF"


class _Fail(Exception):
    def __init__(self, pos, msg):
        self.pos = pos
        self.msg = msg


def check(text):
    """(line, message) of the first error in `text` (str or bytes), or None when it is
    strict JSON holding one value."""
    b = text.encode() if isinstance(text, str) else text
    try:
        _scan(b)
    except _Fail as e:
        return b.count(b"\n", 0, min(e.pos, len(b))) + 1, e.msg
    return None


locate = check  # the older name


def _ws(b, i, n):
    while i < n and b[i] in b" \t\r\n":
        i += 1
    return i


def _scan(b):
    n = len(b)
    stack = bytearray(_DEPTH)  # b"{" / b"[" of the containers still open: stack[:depth]
    depth = 0
    i = _ws(b, 0, n)
    while True:
        # -- one value at i --
        if i >= n:
            raise _Fail(i, "unexpected end of file, a value is missing")
        c = b[i]
        if c == 0x7B or c == 0x5B:  # { [
            if depth >= _DEPTH:
                raise _Fail(i, "nested deeper than %d levels" % _DEPTH)
            close = 0x7D if c == 0x7B else 0x5D
            i = _ws(b, i + 1, n)
            if i < n and b[i] == close:
                i += 1
            else:
                stack[depth] = c
                depth += 1
                if c == 0x7B:
                    i = _key(b, i, n)
                continue
        elif c == 0x22:  # "
            i = _string(b, i, n)
        elif c == 0x2D or 0x30 <= c <= 0x39:
            i = _number(b, i, n)
        elif b.startswith(b"true", i):
            i += 4
        elif b.startswith(b"false", i):
            i += 5
        elif b.startswith(b"null", i):
            i += 4
        elif c == 0x27:
            raise _Fail(i, "strings need double quotes \", not '")
        else:
            raise _Fail(i, "expected a value (string, number, true, false, null, object or"
                           " array), found %r" % chr(c) if c < 0x80 else "expected a value")
        # -- after a value: close what ends here, then the next value --
        while True:
            i = _ws(b, i, n)
            if not depth:
                if i < n:
                    raise _Fail(i, "unexpected text after the end of the JSON value")
                return
            obj = stack[depth - 1] == 0x7B
            c = b[i] if i < n else 0
            if c == 0x2C:  # ,
                i = _ws(b, i + 1, n)
                if i < n and b[i] == (0x7D if obj else 0x5D):
                    raise _Fail(i, "trailing ',' before '%s' is not allowed in JSON"
                                % ("}" if obj else "]"))
                if obj:
                    i = _key(b, i, n)
                break
            if c == (0x7D if obj else 0x5D):
                depth -= 1
                i += 1
                continue
            raise _Fail(i, "expected ',' or '%s' after a value" % ("}" if obj else "]"))


def _key(b, i, n):
    """A key and its ':' at i -> where its value starts."""
    if i >= n or b[i] != 0x22:
        if i < n and b[i] == 0x27:
            raise _Fail(i, "strings need double quotes \", not '")
        raise _Fail(i, "expected a key in double quotes")
    i = _ws(b, _string(b, i, n), n)
    if i >= n or b[i] != 0x3A:
        raise _Fail(i, "expected ':' after a key")
    return _ws(b, i + 1, n)


def _string(b, i, n):
    i += 1
    while i < n:
        c = b[i]
        if c == 0x22:
            return i + 1
        if c == 0x5C:  # backslash
            e = b[i + 1] if i + 1 < n else 0
            if e not in _ESCAPES or e == 0:
                raise _Fail(i, "bad escape in a string; JSON has \\\" \\\\ \\/ \\b \\f \\n \\r"
                               " \\t \\uXXXX")
            if e == 0x75:  # u
                for k in range(i + 2, i + 6):
                    if k >= n or b[k] not in _HEX:
                        raise _Fail(i, "bad \\u escape in a string: 4 hex digits expected")
                i += 4
            i += 2
            continue
        if c < 0x20:
            if c == 0x0A:
                raise _Fail(i, "string not closed before the end of the line")
            raise _Fail(i, "control character in a string; write it as \\t or \\uXXXX")
        i += 1
    raise _Fail(i, "string not closed")


def _digits(b, i, n):
    start = i
    while i < n and 0x30 <= b[i] <= 0x39:
        i += 1
    return i, i > start


def _number(b, i, n):
    start = i
    if b[i] == 0x2D:
        i += 1
    if i < n and b[i] == 0x30:
        i += 1
        if i < n and 0x30 <= b[i] <= 0x39:
            raise _Fail(start, "bad number: no leading zeros in JSON")
    else:
        i, ok = _digits(b, i, n)
        if not ok:
            raise _Fail(start, "bad number: a digit is missing")
    if i < n and b[i] == 0x2E:  # .
        i, ok = _digits(b, i + 1, n)
        if not ok:
            raise _Fail(start, "bad number: digits must follow '.'")
    if i < n and b[i] in b"eE":
        i += 1
        if i < n and b[i] in b"+-":
            i += 1
        i, ok = _digits(b, i, n)
        if not ok:
            raise _Fail(start, "bad number: digits must follow the exponent")
    return i
