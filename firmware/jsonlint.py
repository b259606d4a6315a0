"""Find where a JSON text goes wrong, with its line number.

MicroPython's json says only "syntax error in JSON"; a technician needs the line.
Only called after json.loads failed, so it costs nothing on a good file.
"""

_WS = " \t\r\n"


def locate(text):
    """Return (line, message) of the first syntax error in `text`, or None if it parses."""
    p = _Parser(text)
    try:
        p.value()
        p.ws()
        if p.i < len(text):
            p.fail("unexpected text after the end of the JSON value")
    except _Fail as e:
        return text.count("\n", 0, min(e.pos, len(text))) + 1, e.msg
    return None


class _Fail(Exception):
    def __init__(self, pos, msg):
        self.pos = pos
        self.msg = msg


class _Parser:
    def __init__(self, text):
        self.t = text
        self.i = 0

    def fail(self, msg):
        raise _Fail(self.i, msg)

    def ws(self):
        t, n = self.t, len(self.t)
        while self.i < n and t[self.i] in _WS:
            self.i += 1

    def peek(self):
        self.ws()
        return self.t[self.i] if self.i < len(self.t) else ""

    def value(self):
        c = self.peek()
        if c == "{":
            self.obj()
        elif c == "[":
            self.arr()
        elif c == '"':
            self.string()
        elif c and (c in "-0123456789"):
            self.number()
        else:
            for word in ("true", "false", "null"):
                if self.t.startswith(word, self.i):
                    self.i += len(word)
                    return
            if c == "":
                self.fail("unexpected end of file, a value is missing")
            if c == "'":
                self.fail("strings need double quotes \", not '")
            self.fail("expected a value (string, number, true, false, null, object or array),"
                      " found %r" % c)

    def obj(self):
        self.i += 1
        if self.peek() == "}":
            self.i += 1
            return
        while True:
            if self.peek() != '"':
                self.fail("expected a key in double quotes")
            self.string()
            if self.peek() != ":":
                self.fail("expected ':' after a key")
            self.i += 1
            self.value()
            c = self.peek()
            if c == "}":
                self.i += 1
                return
            if c != ",":
                self.fail("expected ',' or '}' after a value")
            self.i += 1
            if self.peek() == "}":
                self.fail("trailing ',' before '}' is not allowed in JSON")

    def arr(self):
        self.i += 1
        if self.peek() == "]":
            self.i += 1
            return
        while True:
            self.value()
            c = self.peek()
            if c == "]":
                self.i += 1
                return
            if c != ",":
                self.fail("expected ',' or ']' after a value")
            self.i += 1

    def string(self):
        t, n = self.t, len(self.t)
        self.i += 1
        while self.i < n:
            c = t[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\":
                self.i += 1
            elif c == "\n":
                self.fail("string not closed before the end of the line")
            self.i += 1
        self.fail("string not closed")

    def number(self):
        t, n = self.t, len(self.t)
        start = self.i
        while self.i < n and t[self.i] in "+-0123456789.eE":
            self.i += 1
        try:
            float(t[start:self.i])
        except ValueError:
            self.i = start
            self.fail("bad number")
