"""Local Authorization List and Authorization Cache on flash (OCPP 1.6 §3.5, §5.4, §5.10, §5.15).

Both live in files of fixed-width records and are read a few bytes at a time, so a
list of thousands of idTags costs flash, not heap: a lookup reads one 20-byte key per
binary-search step and then one record. An update holds only the request's own
entries (bounded by SendLocalListMaxLength, which the caller enforces) and one
720-byte chunk of the old file while it streams the merge into the new one.

idTags are CiString20Type, compared case-insensitively: the stored key is the tag's
UTF-8 with ASCII letters upper-cased (bytes.upper(), which does the same on both
interpreters; other bytes are kept), NUL padded to 20 bytes. NUL sorts below every
other byte, so padded keys sort in the same order as the tags themselves.

Record, 45 bytes, little-endian "<20sBI20s":
    key     20 bytes, the folded idTag
    flags   bits 0-2 status (index in _STATUSES), 0x80 expiryDate present,
            0x40 parentIdTag present
    expiry  uint32 unix seconds; unsigned so that a card valid "until 2099" still
            works after 2038. Dates before 1970 are stored as 1970-01-01T00:00:00Z
            and dates after 2106-02-07T06:28:15Z as that second.
    parent  parentIdTag as sent (case kept), NUL padded

Local list file:
    "<4siI" magic b"OLL1", listVersion, count | count records sorted by key |
    "<I" CRC-32 of everything before it.
A missing, short or corrupt file is an empty list with version 0. Every change writes
a complete new file next to the old one and renames it over (littlefs renames
atomically), so a power cut leaves the old list or the new one.

Version rules (OCPP 1.6):
- GetLocalListVersion reports 0 for an empty list (§5.10), also after a Full update
  that carried a version but no entries (the compliance test "Get Local List Version
  (empty)" sends Full, listVersion 1, no list, and expects 0).
- A Differential update whose listVersion is less than or equal to the reported
  version is answered VersionMismatch (UpdateStatus, §7). A Full update carries the
  version of the whole new list and is taken whatever its number: it is how the
  Central System recovers from a mismatch (§5.15).

Cache file:
    magic b"OAC1" | slots of "<I20sBI20sI": put sequence number (0 = free slot),
    record, CRC-32 of the 49 bytes before it.
Slots are rewritten in place: one put or remove is one slot write (counted in the
instance's .writes). A slot that fails its CRC (a write torn by a power cut) is freed
when the file is opened; a bad magic, or more slots than max_entries, empties the cache.
When every slot is taken, put() overwrites the entry least recently put; get()
does not refresh an entry, because that would cost a flash write per card swipe.
Lookups scan all slots (the charger keeps 64: 64 x 53 bytes, read 8 slots at a time).
"""
import os
import struct
from binascii import crc32

from firmware.clock import iso, parse_iso
from firmware.compat import const

# idTagInfo statuses in the order of their codes on flash; never reorder.
_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
_STATUS_MASK = const(0x07)
_HAS_PARENT = const(0x40)
_HAS_EXPIRY = const(0x80)

_TAG_LEN = const(20)
_REC = "<20sBI20s"
_REC_LEN = const(45)
_U32_MAX = 0xFFFFFFFF  # not const(): above the ESP32's small-int range
_I32_MIN = -0x80000000
_I32_MAX = 0x7FFFFFFF

_LIST_MAGIC = b"OLL1"
_LIST_HEAD = "<4siI"
_LIST_HEAD_LEN = const(12)
_CRC_LEN = const(4)
_CHUNK_RECS = const(16)  # records per read while streaming a whole list (720 bytes)

_CACHE_MAGIC = b"OAC1"
_CACHE_HEAD_LEN = const(4)
_SLOT_BODY = const(49)  # 4 sequence + 45 record, covered by the CRC after it
_SLOT_LEN = const(53)
_CHUNK_SLOTS = const(8)
_FREE_REC = b"\0" * 45


def _key(id_tag):
    """The padded 20-byte key of an idTag, or None when it cannot be stored."""
    if not isinstance(id_tag, str):
        return None
    k = id_tag.encode().upper()
    if len(k) > _TAG_LEN:
        return None
    return k + b"\0" * (_TAG_LEN - len(k))


def _pack(key, info):
    """The record of `key` with idTagInfo `info`; ValueError when info is not one."""
    if not isinstance(info, dict) or info.get("status") not in _STATUSES:
        raise ValueError("bad idTagInfo status")
    flags = _STATUSES.index(info["status"])
    expiry = 0
    when = info.get("expiryDate")
    if when is not None:
        expiry = min(max(parse_iso(when), 0), _U32_MAX)
        flags |= _HAS_EXPIRY
    parent = info.get("parentIdTag")
    raw = b""
    if parent is not None:
        if not isinstance(parent, str):
            raise ValueError("bad parentIdTag")
        raw = parent.encode()
        if len(raw) > _TAG_LEN:
            raise ValueError("parentIdTag longer than 20 bytes")
        flags |= _HAS_PARENT
    return struct.pack(_REC, key, flags, expiry, raw)


def _unpack(buf, off=0):
    """The idTagInfo dict of the record at buf[off:], or None when its status is unknown."""
    _, flags, expiry, parent = struct.unpack_from(_REC, buf, off)
    code = flags & _STATUS_MASK
    if code >= len(_STATUSES):
        return None
    info = {"status": _STATUSES[code]}
    if flags & _HAS_EXPIRY:
        info["expiryDate"] = iso(expiry)
    if flags & _HAS_PARENT:
        info["parentIdTag"] = parent.rstrip(b"\0").decode()
    return info


def _slot_ok(buf, off):
    """Whether the cache slot at buf[off:] matches its CRC."""
    body = memoryview(buf)[off:off + _SLOT_BODY]
    return crc32(body) == struct.unpack_from("<I", buf, off + _SLOT_BODY)[0]


def _first(item):
    return item[0]


def _changes(entries, full):
    """SendLocalList entries -> [(key, record or None)] sorted by key.

    None means "remove" (Differential without idTagInfo); a Full update drops such
    entries. ValueError on a malformed entry or a repeated idTag (§5.15: idTags
    MUST be unique), so a bad request leaves the list as it was.
    """
    out = []
    for e in entries:
        if not isinstance(e, dict):
            raise ValueError("entry is not an object")
        key = _key(e.get("idTag"))
        if key is None:
            raise ValueError("bad idTag %r" % (e.get("idTag"),))
        info = e.get("idTagInfo")
        if info is None:
            if full:
                continue
            out.append((key, None))
        else:
            out.append((key, _pack(key, info)))
    out.sort(key=_first)
    for i in range(1, len(out)):
        if out[i][0] == out[i - 1][0]:
            raise ValueError("idTag %r sent twice" % (out[i][0].rstrip(b"\0"),))
    return out


class _Writer:
    """A file being written, with the running CRC-32 of what went in."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.crc = 0
        self.records = 0

    def put(self, data, records=0):
        self.f.write(data)
        self.crc = crc32(data, self.crc)
        self.records += records

    def record(self, rec):
        self.put(rec, 1)


class LocalList:
    """The Local Authorization List, sorted fixed-width records on flash.

    `state` is what state() returned for the same file: the file is then trusted
    without reading and checking all of it again.
    """

    def __init__(self, path, max_entries, log, state=None):
        self._path = path
        self._max = max_entries
        self._log = log
        self._version = 0
        self._count = 0
        if state:
            self._count, self._version = state
        else:
            self._load()

    def state(self):
        """(count, listVersion) to hand to the next instance on this file."""
        return self._count, self._version

    @property
    def version(self):
        """listVersion for GetLocalListVersion: 0 while the list is empty."""
        return self._version if self._count else 0

    def __len__(self):
        return self._count

    def _warn(self, msg):
        if self._log:
            self._log.warn("authlist", msg)

    def _load(self):
        try:
            size = os.stat(self._path)[6]
        except OSError:
            return  # never sent
        try:
            with open(self._path, "rb") as f:
                head = f.read(_LIST_HEAD_LEN)
                if len(head) != _LIST_HEAD_LEN:
                    raise ValueError("short header")
                magic, version, count = struct.unpack(_LIST_HEAD, head)
                if magic != _LIST_MAGIC or size != _LIST_HEAD_LEN + count * _REC_LEN + _CRC_LEN:
                    raise ValueError("bad header")
                crc = crc32(head)
                buf = memoryview(bytearray(_CHUNK_RECS * _REC_LEN))
                left = count * _REC_LEN
                while left:
                    got = f.readinto(buf[:min(left, len(buf))])
                    if not got:
                        raise ValueError("truncated")
                    crc = crc32(buf[:got], crc)
                    left -= got
                tail = f.read(_CRC_LEN)
                if len(tail) != _CRC_LEN or struct.unpack("<I", tail)[0] != crc:
                    raise ValueError("checksum mismatch")
        except (OSError, ValueError) as e:
            self._warn("%s unusable (%s): starting empty" % (self._path, e))
            return
        self._version = version
        self._count = count

    def _find(self, f, key, k):
        """Index of `key` in the open list file, or -1; k is a 20-byte scratch buffer."""
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) // 2
            f.seek(_LIST_HEAD_LEN + mid * _REC_LEN)
            if f.readinto(k) != _TAG_LEN:
                raise OSError("list file shrank")
            if k == key:
                return mid
            if k < key:
                lo = mid + 1
            else:
                hi = mid
        return -1

    def lookup(self, id_tag):
        """The idTagInfo stored for id_tag (expiry not checked), or None."""
        key = _key(id_tag)
        if key is None or not self._count:
            return None
        try:
            with open(self._path, "rb") as f:
                i = self._find(f, key, bytearray(_TAG_LEN))
                if i < 0:
                    return None
                f.seek(_LIST_HEAD_LEN + i * _REC_LEN)
                rec = f.read(_REC_LEN)
        except OSError as e:
            self._warn("lookup failed: %r" % (e,))
            return None
        if len(rec) != _REC_LEN:
            return None
        return _unpack(rec)

    def idtags(self):
        """The stored idTags (case-folded), in order, read from flash as they go."""
        if not self._count:
            return
        with open(self._path, "rb") as f:
            f.seek(_LIST_HEAD_LEN)
            for _ in range(self._count):
                rec = f.read(_REC_LEN)
                if len(rec) != _REC_LEN:
                    return
                yield rec[:_TAG_LEN].rstrip(b"\0").decode()

    def update(self, update_type, version, entries):
        """Apply a SendLocalList.req: "Accepted", "Failed" or "VersionMismatch"."""
        full = update_type == "Full"
        if not full and update_type != "Differential":
            return "Failed"
        if not isinstance(version, int) or not _I32_MIN <= version <= _I32_MAX:
            self._warn("listVersion %r out of range" % (version,))
            return "Failed"
        if not full and version <= self.version:
            return "VersionMismatch"
        try:
            changes = _changes(entries or (), full)
        except ValueError as e:
            self._warn("update refused: %s" % e)
            return "Failed"
        tmp = self._path + ".tmp"
        try:
            count = len(changes) if full else self._count_after(changes)
            if count > self._max:
                self._warn("update refused: %d entries, room for %d" % (count, self._max))
                return "Failed"
            self._write(tmp, version, count, changes, full)
            os.rename(tmp, self._path)
        except (OSError, ValueError) as e:
            self._warn("update failed: %r" % (e,))
            try:
                os.remove(tmp)
            except OSError:
                pass
            return "Failed"
        self._version = version
        self._count = count
        return "Accepted"

    def _count_after(self, changes):
        # Binary searches cost a few small reads each; finding out first spares
        # flash a rewrite that would be thrown away.
        n = self._count
        if not n:
            return sum(1 for _, rec in changes if rec is not None)
        k = bytearray(_TAG_LEN)
        with open(self._path, "rb") as f:
            for key, rec in changes:
                present = self._find(f, key, k) >= 0
                if rec is None and present:
                    n -= 1
                elif rec is not None and not present:
                    n += 1
        return n

    def _write(self, tmp, version, count, changes, full):
        out = _Writer(tmp)
        try:
            out.put(struct.pack(_LIST_HEAD, _LIST_MAGIC, version, count))
            if full:
                for _, rec in changes:
                    out.record(rec)
            else:
                self._merge(out, changes)
            if out.records != count:
                raise ValueError("wrote %d records, expected %d" % (out.records, count))
            out.f.write(struct.pack("<I", out.crc))
        finally:
            out.f.close()  # also on failure: the caller removes the file

    def _merge(self, out, changes):
        # Old file and changes are both sorted: one pass with one chunk of old records
        # in a reused buffer. Runs of untouched records are copied as slices of it, and
        # a change finds its place in the chunk by binary search, so the garbage made
        # grows with the number of changes, not with the size of the list.
        i, n = 0, len(changes)
        left = self._count
        if left:
            buf = bytearray(_CHUNK_RECS * _REC_LEN)
            mv = memoryview(buf)
            f = open(self._path, "rb")
            try:
                f.seek(_LIST_HEAD_LEN)
                while left:
                    want = min(left, _CHUNK_RECS)
                    if f.readinto(mv[:want * _REC_LEN]) != want * _REC_LEN:
                        raise ValueError("list file shrank")
                    left -= want
                    r = 0  # first record of the chunk not written yet
                    while r < want:
                        if i >= n:
                            out.put(mv[r * _REC_LEN:want * _REC_LEN], want - r)
                            break
                        key, rec = changes[i]
                        lo, hi = r, want  # first record whose key >= key
                        while lo < hi:
                            mid = (lo + hi) // 2
                            if buf[mid * _REC_LEN:mid * _REC_LEN + _TAG_LEN] < key:
                                lo = mid + 1
                            else:
                                hi = mid
                        if lo > r:
                            out.put(mv[r * _REC_LEN:lo * _REC_LEN], lo - r)
                            r = lo
                        if r == want:
                            break  # the change belongs in a later chunk
                        if buf[r * _REC_LEN:r * _REC_LEN + _TAG_LEN] == key:
                            r += 1  # the old record is replaced or removed
                        if rec is not None:
                            out.record(rec)
                        i += 1
            finally:
                f.close()
        while i < n:
            if changes[i][1] is not None:
                out.record(changes[i][1])
            i += 1

    def clear(self):
        """Forget the list and its version."""
        try:
            os.remove(self._path)
        except OSError:
            pass
        self._version = 0
        self._count = 0


class AuthCache:
    """The Authorization Cache: a fixed number of slots in one file, updated in place.

    `state` is what state() returned for the same file: the slots are then not
    scanned (and torn ones not freed) again.
    """

    def __init__(self, path, max_entries, log, state=None):
        self._path = path
        self._max = max_entries
        self._log = log
        self.writes = 0  # slot writes by this instance (each one is a flash write)
        self._slots = 0  # slots in the file, free ones included
        self._count = 0
        self._seq = 1    # next put sequence number; 0 marks a free slot
        if state:
            self._count, self._slots, self._seq = state
        else:
            self._load()

    def state(self):
        """(count, slots, next sequence number) to hand to the next instance on this file."""
        return self._count, self._slots, self._seq

    def __len__(self):
        return self._count

    def _warn(self, msg):
        if self._log:
            self._log.warn("authcache", msg)

    def _load(self):
        try:
            size = os.stat(self._path)[6]
        except OSError:
            return
        slots = (size - _CACHE_HEAD_LEN) // _SLOT_LEN
        try:
            with open(self._path, "rb") as f:
                if f.read(_CACHE_HEAD_LEN) != _CACHE_MAGIC:
                    raise ValueError("bad magic")
                if slots > self._max:
                    raise ValueError("%d slots, room for %d" % (slots, self._max))
                self._slots = slots
                damaged = []
                buf = bytearray(_CHUNK_SLOTS * _SLOT_LEN)
                for i, off in self._scan(f, buf):
                    seq = struct.unpack_from("<I", buf, off)[0]
                    if not seq:
                        continue
                    if not _slot_ok(buf, off):
                        damaged.append(i)
                        continue
                    self._count += 1
                    if seq >= self._seq:
                        self._seq = seq + 1
        except (OSError, ValueError) as e:
            self._warn("%s unusable (%s): starting empty" % (self._path, e))
            self.clear()
            return
        if damaged:
            # Freed once here, so later scans can trust a non-zero sequence number.
            self._warn("%d damaged slot(s) dropped" % len(damaged))
            try:
                with open(self._path, "r+b") as f:
                    for i in damaged:
                        self._write_slot(f, i, 0, _FREE_REC)
            except OSError as e:
                self._warn("%s unusable (%r): starting empty" % (self._path, e))
                self.clear()

    def _scan(self, f, buf):
        """(index, offset in buf) of every slot, buf holding that slot while it is visited."""
        mv = memoryview(buf)
        f.seek(_CACHE_HEAD_LEN)
        i = 0
        while i < self._slots:
            want = min(self._slots - i, _CHUNK_SLOTS)
            if f.readinto(mv[:want * _SLOT_LEN]) != want * _SLOT_LEN:
                return
            for k in range(want):
                yield i, k * _SLOT_LEN
                i += 1

    def _match(self, f, key):
        """(index, record bytes) of key's slot, or (-1, None)."""
        buf = bytearray(_CHUNK_SLOTS * _SLOT_LEN)
        for i, off in self._scan(f, buf):
            if buf[off + 4:off + 4 + _TAG_LEN] == key and struct.unpack_from("<I", buf, off)[0]:
                if not _slot_ok(buf, off):
                    return -1, None
                return i, bytes(buf[off + 4:off + _SLOT_BODY])
        return -1, None

    def get(self, id_tag):
        """The cached idTagInfo of id_tag (expiry not checked), or None."""
        key = _key(id_tag)
        if key is None or not self._count:
            return None
        try:
            with open(self._path, "rb") as f:
                _, slot = self._match(f, key)
        except OSError as e:
            self._warn("get failed: %r" % (e,))
            return None
        return _unpack(slot) if slot else None

    def put(self, id_tag, id_tag_info):
        """Insert or replace id_tag's entry; False when it cannot be cached."""
        key = _key(id_tag)
        if key is None or self._max <= 0:
            return False
        try:
            rec = _pack(key, id_tag_info)
        except ValueError as e:
            self._warn("not cached: %s" % e)
            return False
        try:
            f = self._open_rw()
            try:
                match = free = oldest = -1
                oldest_seq = 0
                buf = bytearray(_CHUNK_SLOTS * _SLOT_LEN)
                for i, off in self._scan(f, buf):
                    seq = struct.unpack_from("<I", buf, off)[0]
                    if not seq:
                        if free < 0:
                            free = i
                    elif buf[off + 4:off + 4 + _TAG_LEN] == key:
                        match = i
                        break
                    elif oldest < 0 or seq < oldest_seq:
                        oldest, oldest_seq = i, seq
                if match >= 0:
                    target = match
                elif free >= 0:
                    target = free
                elif self._slots < self._max:
                    target = self._slots
                else:
                    target = oldest  # evict the entry least recently put
                self._write_slot(f, target, self._seq, rec)
            finally:
                f.close()
        except OSError as e:
            self._warn("put failed: %r" % (e,))
            return False
        self._seq += 1
        if target == self._slots:
            self._slots += 1
        if match < 0 and target != oldest:
            self._count += 1
        return True

    def remove(self, id_tag):
        """Drop id_tag's entry; False when there was none."""
        key = _key(id_tag)
        if key is None or not self._count:
            return False
        try:
            with open(self._path, "r+b") as f:
                i, _ = self._match(f, key)
                if i < 0:
                    return False
                self._write_slot(f, i, 0, _FREE_REC)
        except OSError as e:
            self._warn("remove failed: %r" % (e,))
            return False
        self._count -= 1
        return True

    def clear(self):
        """Empty the cache (ClearCache.req)."""
        try:
            os.remove(self._path)
        except OSError:
            pass
        self._slots = 0
        self._count = 0

    def _open_rw(self):
        try:
            return open(self._path, "r+b")
        except OSError:
            f = open(self._path, "wb")
            f.write(_CACHE_MAGIC)
            self._slots = 0  # the file was removed behind our back, or never existed
            self._count = 0
            return f

    def _write_slot(self, f, index, seq, rec):
        body = struct.pack("<I", seq) + rec
        f.seek(_CACHE_HEAD_LEN + index * _SLOT_LEN)
        f.write(body + struct.pack("<I", crc32(body)))
        self.writes += 1
