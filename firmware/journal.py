"""Flash journal of transaction messages: written before sending, removed on CALLRESULT.

Each record is durable when append() returns and leaves only when ack() returns; a
power cut at any instant loses neither, nor brings back an acked record, nor reorders.

On flash, in the journal folder:

  NNNNNNNN.log  segments, only ever appended to; the number is the lowest seq the segment
                may hold (a new segment starts when the last passes max_bytes/8, 2..32 KB).
                Lines of UTF-8 text, each at most 4096 bytes with its "\\n":
                  "<seq> <crc> <json>"  a record; crc = CRC-32 of "<seq> <json>", 8 hex digits
                  "A <seq> <crc>"       every record with a seq <= <seq> is done
                  "X <seq> <crc>"       record <seq> alone is done (acked out of order)
                  "N <seq> <crc>"       the next record gets a seq >= <seq>
                (crc of an A/X/N line = CRC-32 of "A <seq>" / "X <seq>" / "N <seq>").
  NNNNNNNN.end  empty: every record with a seq < NNNNNNNN is done. Written when the last
                pending record is acked, then every segment is deleted; it also carries the
                seq counter across a restart while no segment exists.
  meta.json     the meta map, replaced atomically (meta.json.tmp + rename).
  *.tmp         an unfinished rewrite; deleted on load.

Reading: segments in numeric order, line by line. A line that is torn, longer than 4096
bytes, fails its crc, or holds a record seq not above the previous record's is ignored.
Pending = the records above the highest "A"/".end" mark not named by an "X" line.

Writing (each open-for-write+close counts as one flash write in .writes, each rename one):
  append       one line appended to the last segment (after a torn tail: "\\n" first,
               so the torn bytes stay a line of their own).
  ack(first)   one "A" line; the oldest segment is deleted once no pending record is left
               in it; when nothing is pending any more: the .end file instead of the line.
  ack(other)   one "X" line; more than 8 of them outstanding trigger a rewrite.
  rewrite      rewrite.tmp gets "A <first-1>", "N <next seq>" and the pending records, is
               renamed to <first>.log, then the other segments are deleted. A power cut in
               between leaves records present twice: load ignores the second copies (so the
               result is the old or the new state) and rewrites again.
Room: when an append would take the segments past 90 % of max_bytes, a rewrite drops the
acked records; if that cannot get below 75 %, thin() also drops every second pending
MeterValues (the oldest is kept). A MeterValues that would still go past max_bytes is
refused (the newest gives way); Start/Stop are never dropped nor refused: past max_bytes
their append still succeeds and an error is logged. .bytes counts the segments only (not
meta.json). .changes counts appends, acks and rewrites (a reader's cache stamp).

RAM: counters, the first pending record, the segment numbers and the few out-of-order acks.
"""
import binascii
import json
import os

from firmware.compat import const
from firmware.ocppj import pieces
from firmware.store import join, makedirs, read_json, write_atomic

_LINE_MAX = const(4096)  # bytes per line with its newline; longer records are refused
_CHUNK = const(256)       # bytes read from flash at a time while walking lines
_X_MAX = const(8)        # out-of-order acks kept before a rewrite forgets them
_SEG_MIN = const(2048)
_SEG_MAX = const(32768)
_REC = const(0)
_ACK = const(1)          # "A": watermark
_ONE = const(2)          # "X": a single record
_NEXT = const(3)         # "N": the seq counter
_MV = "MeterValues"


def _crc32_soft(data, crc=0):
    # Only for builds without binascii.crc32; same polynomial and result.
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


_crc32 = getattr(binascii, "crc32", None) or _crc32_soft


def _json(record):
    """The record's JSON as small encoded pieces (ocppj.pieces): a StopTransaction's 1.2 KB
    is never one string, nor one line (the largest allocations of a session were those)."""
    for piece in pieces(record, False):  # the text json.dumps(record) gives
        yield piece.encode()


def _line(head, body):
    yield head
    yield from body
    yield b"\n"


def _copy(v):
    """A copy of a record as a reload gives it back (tuples as lists), made without text."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_copy(x) for x in v]
    return v


def _mark_line(kind, seq):
    body = b"%s %d" % (kind, seq)
    return body + b" %08x\n" % (_crc32(body) & 0xFFFFFFFF)


def _parse(line):
    """(kind, seq, json bytes or None) of a valid line, else None."""
    if line.endswith(b"\n"):
        line = line[:-1]
    kind = line[:2]
    if kind == b"A " or kind == b"X " or kind == b"N ":
        parts = line.split(b" ")
        if len(parts) != 3:
            return None
        try:
            seq = int(parts[1])
            crc = int(parts[2], 16)
        except ValueError:
            return None
        if seq < 0 or crc != _crc32(parts[0] + b" " + parts[1]) & 0xFFFFFFFF:
            return None
        return (_ACK if kind == b"A " else (_ONE if kind == b"X " else _NEXT), seq, None)
    parts = line.split(b" ", 2)
    if len(parts) != 3:
        return None
    try:
        seq = int(parts[0])
        crc = int(parts[1], 16)
    except ValueError:
        return None
    if seq <= 0 or crc != _crc32(parts[2], _crc32(parts[0] + b" ")) & 0xFFFFFFFF:
        return None
    return (_REC, seq, parts[2])


def _decode(js):
    try:
        return json.loads(js)
    except ValueError:
        return None


def _is_mv(rec):
    return isinstance(rec, dict) and rec.get("a") == _MV


def _lines(f, pos):
    """(offset, line) for each line of f from offset pos; an overlong line comes as b"".
    Reads go through a small chunk buffer, so a line costs the heap its own bytes only:
    readline(limit) would ask for a contiguous block of the limit for every line."""
    buf = bytearray(_CHUNK)
    mv = memoryview(buf)
    parts = []    # pieces of the current line (dropped once it is overlong)
    size = 0      # bytes of the current line so far
    start = pos
    i = n = 0     # buf[i:n] is read but not consumed
    while True:
        if i == n:
            i, n = 0, f.readinto(buf)
            if not n:
                if size:  # a torn last line, without its newline
                    yield start, (b"".join(parts) if size < _LINE_MAX else b"")
                return
        j = buf.find(b"\n", i, n)
        end = n if j < 0 else j + 1
        size += end - i
        if size <= _LINE_MAX:
            parts.append(bytes(mv[i:end]))
        elif parts:
            parts = []  # overlong: skip the rest without holding it
        i = end
        if j >= 0:
            if size > _LINE_MAX:
                yield start, b""
            elif len(parts) == 1:
                yield start, parts[0]
            else:
                yield start, b"".join(parts)
            start += size
            parts = []
            size = 0


def _number(name, ext):
    if not name.endswith(ext):
        return None
    digits = name[:-len(ext)]
    if not digits or not digits.isdigit():
        return None
    return int(digits)


class Journal:
    def __init__(self, folder, log, max_bytes=256 * 1024):
        self._dir = folder
        self._log = log
        self._max = max_bytes
        self._soft = max_bytes * 9 // 10
        self._target = max_bytes * 3 // 4
        self._seg_max = min(_SEG_MAX, max(_SEG_MIN, max_bytes // 8))
        self.writes = 0
        self.changes = 0
        self.written = 0  # bytes appended to segments by this object (wear figure)
        self.bytes = 0
        self._segs = []      # segment numbers, ascending
        self._ends = []      # .end marks on flash (normally one)
        self._next = 1       # seq of the next append
        self._done = 0       # every seq <= this is acked
        self._x = []         # acked seqs above _done (out of order)
        self._n = 0          # pending records
        self._mv = 0         # pending MeterValues
        self._live = 0       # bytes of pending record lines
        self._head = None    # (seq, record) of the first pending record
        self._hpos = None    # (segment, offset, line length) of that record
        self._tail_size = 0
        self._nl = False     # the last segment ends in a torn line
        makedirs(folder)
        self._meta = read_json(join(folder, "meta.json"), None)
        if not isinstance(self._meta, dict):
            self._meta = {}
        self._load()

    # -- public ---------------------------------------------------------------------------
    def __len__(self):
        return self._n

    def append(self, record):
        """Store record durably; returns its seq, or None for a MeterValues refused because
        the journal is full. ValueError if its line exceeds 4 KB."""
        # Two passes over the pieces (nothing runs in between): the CRC and length for the
        # head, then the writes. The line is head + JSON + newline.
        seq = self._next
        head = b"%d " % seq
        crc, n = _crc32(head), 0
        for piece in _json(record):
            crc = _crc32(piece, crc)
            n += len(piece)
        head += b"%08x " % (crc & 0xFFFFFFFF)
        size = len(head) + n + 1
        if size > _LINE_MAX:
            raise ValueError("journal record too long")
        if self.bytes + size > self._soft:
            self._make_room(size)
        if self.bytes + size > self._max:
            if _is_mv(record):
                self._log.warn("journal", "full (%d bytes): MeterValues refused" % self.bytes)
                return None
            self._log.error("journal", "full (%d bytes): keeping record %d anyway"
                            % (self.bytes, seq))
        new = not self._segs or (
            self._tail_size > 0 and self._tail_size + size > self._seg_max)
        seg = seq if new else self._segs[-1]
        if self._nl and not new:
            head = b"\n" + head  # end a line torn by an earlier failed write
        if new:
            self._segs.append(seg)
            self._tail_size = 0
        off = self._tail_size + len(head) + n + 1 - size
        self._write(seg, _line(head, _json(record)))
        self._next = seq + 1
        self.changes += 1
        self._n += 1
        self._live += size
        if _is_mv(record):
            self._mv += 1
        if self._head is None:
            self._head = (seq, _copy(record))  # a copy as stored, not the caller's object
            self._hpos = (seg, off, size)
        return seq

    def first(self):
        """(seq, record) of the oldest pending record, or None. Kept in RAM: do not mutate."""
        return self._head

    def pending(self):
        """(seq, record) of every pending record, oldest first, read from flash as it goes.

        Do not append/ack/thin while iterating."""
        if self._head is None:
            return
        for _, _, seq, js, _ in self._records(self._hpos[0], self._hpos[1]):
            if seq > self._done and seq not in self._x:
                rec = _decode(js)
                if rec is not None:
                    yield seq, rec

    def ack(self, seq):
        """Forget a delivered record; False if seq was not pending."""
        if self._head is None or seq < self._head[0] or seq in self._x:
            return False
        if seq == self._head[0]:
            seg, off, size = self._hpos
            nxt = self._find(seg, off + size, seq, None)
            if nxt is None:
                self._drain()
                return True
            self._put(_mark_line(b"A", nxt[2] - 1))
            self._forget(size, self._head[1])
            self._done = nxt[2] - 1
            self._x = [s for s in self._x if s > self._done]
            self._head = (nxt[2], _decode(nxt[3]))
            self._hpos = (nxt[0], nxt[1], len(nxt[4]))
            self._drop_done_segments()
            return True
        hit = self._find(self._hpos[0], self._hpos[1], self._head[0], seq)
        if hit is None:
            return False
        self._put(_mark_line(b"X", seq))
        self._forget(len(hit[4]), _decode(hit[3]))
        self._x.append(seq)
        if len(self._x) > _X_MAX:
            self._rewrite(False)
        return True

    def thin(self):
        """Drop every second pending MeterValues (the 2nd, 4th, ...); returns how many."""
        if self._mv < 2:
            return 0
        before = self._mv
        self._rewrite(True)
        dropped = before - self._mv
        self._log.warn("journal", "thinned %d MeterValues, %d records left" % (dropped, self._n))
        return dropped

    def meta(self, key, default=None):
        return self._meta.get(key, default)

    def set_meta(self, key, value):
        """Persist key -> JSON value (None deletes the key); no write if nothing changes."""
        if value is None:
            if key not in self._meta:
                return
            del self._meta[key]
        else:
            value = json.loads(json.dumps(value))  # what a reload would give back
            if key in self._meta and self._meta[key] == value:
                return
            self._meta[key] = value
        write_atomic(join(self._dir, "meta.json"), json.dumps(self._meta))
        self.writes += 2

    # -- flash ----------------------------------------------------------------------------
    def _path(self, n, ext):
        return join(self._dir, "%08d%s" % (n, ext))

    def _write(self, seg, parts):
        # Pessimistic until the close returned: a failed write may have left a torn line.
        self._nl = True
        n = 0
        try:
            with open(self._path(seg, ".log"), "ab") as f:
                for data in parts:
                    f.write(data)
                    n += len(data)
        except OSError:
            self._restat()
            raise
        finally:
            self.writes += 1
        self._nl = False
        self._tail_size += n
        self.bytes += n
        self.written += n

    def _put(self, line):
        self._write(self._segs[-1], (b"\n" + line if self._nl else line,))

    def _restat(self):
        total = 0
        for s in self._segs:
            try:
                total += os.stat(self._path(s, ".log"))[6]
            except OSError:
                pass
        self.bytes = total
        try:
            self._tail_size = os.stat(self._path(self._segs[-1], ".log"))[6]
        except (OSError, IndexError):
            self._tail_size = 0

    def _remove(self, path):
        try:
            os.remove(path)
        except OSError:
            pass

    def _walk(self, seg0, off0):
        """(segment, offset, line) of every line from segment seg0 at off0 onwards."""
        for seg in list(self._segs):
            if seg < seg0:
                continue
            start = off0 if seg == seg0 else 0
            try:
                f = open(self._path(seg, ".log"), "rb")
            except OSError:
                continue
            with f:
                if start:
                    f.seek(start)
                for off, line in _lines(f, start):
                    yield seg, off, line

    def _records(self, seg0, off0):
        """(segment, offset, seq, json, line) of valid records, seq strictly increasing."""
        last = 0
        for seg, off, line in self._walk(seg0, off0):
            p = _parse(line)
            if p is not None and p[0] == _REC and p[1] > last:
                last = p[1]
                yield seg, off, p[1], p[2], line

    def _find(self, seg0, off0, after, want):
        """The first pending record above `after` (or the pending record `want`)."""
        for r in self._records(seg0, off0):
            s = r[2]
            if s <= after or s <= self._done or s in self._x:
                continue
            if want is None or s == want:
                return r
            if s > want:
                return None
        return None

    def _forget(self, size, rec):
        self.changes += 1
        self._n -= 1
        self._live -= size
        if _is_mv(rec):
            self._mv -= 1

    def _drop_done_segments(self):
        # Segment k holds seqs below segment k+1's number: once the first pending record is
        # past it, the oldest segment is all acked (and its marks speak only of itself).
        while len(self._segs) > 1 and self._segs[1] <= self._head[0]:
            seg = self._segs.pop(0)
            path = self._path(seg, ".log")
            try:
                self.bytes -= os.stat(path)[6]
            except OSError:
                pass
            self._remove(path)

    def _drain(self):
        """Nothing pending: mark the seq counter, then delete every segment."""
        mark = self._next
        if mark not in self._ends:
            with open(self._path(mark, ".end"), "wb"):
                pass
            self.writes += 1
        for seg in self._segs:
            self._remove(self._path(seg, ".log"))
        for e in self._ends:
            if e != mark:
                self._remove(self._path(e, ".end"))
        self._ends = [mark]
        self._segs = []
        self._done = mark - 1
        self._x = []
        self.changes += 1
        self._n = self._mv = self._live = 0
        self._head = self._hpos = None
        self.bytes = self._tail_size = 0
        self._nl = False

    def _rewrite(self, thin):
        """Copy the pending records (every second MeterValues dropped if thin) to one segment."""
        if self._head is None:
            self._drain()
            return
        first = self._head[0]
        tmp = join(self._dir, "rewrite.tmp")
        n = mv = live = seen_mv = 0
        hpos = None
        with open(tmp, "wb") as out:
            # What the dropped lines told: all below `first` is done, seqs go on from _next.
            mark = _mark_line(b"A", first - 1) + _mark_line(b"N", self._next)
            out.write(mark)
            size = len(mark)
            for _, _, seq, js, line in self._records(self._hpos[0], self._hpos[1]):
                if seq <= self._done or seq in self._x:
                    continue
                is_mv = _is_mv(_decode(js))
                if is_mv:
                    seen_mv += 1
                    if thin and seen_mv % 2 == 0:
                        continue
                if not line.endswith(b"\n"):
                    line += b"\n"
                out.write(line)
                if hpos is None:
                    hpos = (first, size, len(line))
                size += len(line)
                n += 1
                live += len(line)
                mv += is_mv
        self.writes += 1
        os.rename(tmp, self._path(first, ".log"))
        self.writes += 1
        for seg in self._segs:
            if seg != first:
                self._remove(self._path(seg, ".log"))
        self._segs = [first]
        self._x = []
        self._done = first - 1
        self.changes += 1
        self._n, self._mv, self._live = n, mv, live
        self._hpos = hpos
        self.bytes = self._tail_size = size
        self._nl = False

    def _make_room(self, need):
        if self._head is not None and self._live + need <= self._target:
            self._rewrite(False)  # the acked records alone free enough
        elif self._mv >= 2:
            self.thin()

    # -- load -----------------------------------------------------------------------------
    def _load(self):
        for name in os.listdir(self._dir):
            if name.endswith(".tmp"):
                self._remove(join(self._dir, name))
                continue
            n = _number(name, ".log")
            if n is not None:
                self._segs.append(n)
                continue
            n = _number(name, ".end")
            if n is not None:
                self._ends.append(n)
        self._segs.sort()
        self._ends.sort()
        top = 0
        if self._ends:
            top = self._ends[-1]
            self._done = top - 1
        if self._segs:
            top = max(top, self._segs[-1])
        # Pass 1: marks and the highest seq. Pass 2 (needs the final marks): what is pending.
        last = 0
        dup = False
        for _, _, line in self._walk(0, 0):
            p = _parse(line)
            if p is None:
                continue
            if p[0] == _REC:
                if p[1] <= last:
                    dup = True
                last = max(last, p[1])
            elif p[0] == _ACK:
                self._done = max(self._done, p[1])
            elif p[0] == _NEXT:
                top = max(top, p[1])
            elif p[1] not in self._x:
                self._x.append(p[1])
                if len(self._x) > 4 * _X_MAX:
                    self._x = [s for s in self._x if s > self._done]
        self._x = [s for s in self._x if s > self._done]
        self._next = max(top, last + 1, 1)
        for r in self._records(0, 0):
            seq, rec = r[2], None
            if seq <= self._done or seq in self._x:
                continue
            rec = _decode(r[3])
            if rec is None:
                continue
            self._n += 1
            self._live += len(r[4])
            if _is_mv(rec):
                self._mv += 1
            if self._head is None:
                self._head = (seq, rec)
                self._hpos = (r[0], r[1], len(r[4]))
        self._restat()
        if self._tail_size:
            with open(self._path(self._segs[-1], ".log"), "rb") as f:
                f.seek(self._tail_size - 1)
                self._nl = f.read(1) != b"\n"
        if self._head is None:
            if self._segs or len(self._ends) > 1:
                self._drain()
        elif dup or len(self._x) > _X_MAX:
            self._log.warn("journal", "repairing an interrupted rewrite")
            self._rewrite(False)
        else:
            self._drop_done_segments()
        self._log.info("journal", "%d pending, %d bytes, next seq %d"
                       % (self._n, self.bytes, self._next))
