"""firmware.authstore: Local Authorization List and Authorization Cache on flash."""
import json
import os

import pytest

from firmware import authstore
from firmware.authstore import AuthCache, LocalList
from firmware.clock import iso
from tests.fakes import Log
from tests.mp import run_mp


@pytest.fixture
def log():
    return Log()


def entry(tag, status="Accepted", expiry=None, parent=None):
    info = {"status": status}
    if expiry is not None:
        info["expiryDate"] = expiry
    if parent is not None:
        info["parentIdTag"] = parent
    return {"idTag": tag, "idTagInfo": info}


def remove(tag):
    return {"idTag": tag}


@pytest.fixture
def ll(tmp_path, log):
    return LocalList(str(tmp_path / "locallist.dat"), 100, log)


# ---- local list: updates -------------------------------------------------------------

def test_fresh_list_is_empty_with_version_0(ll):
    assert ll.version == 0
    assert len(ll) == 0
    assert ll.lookup("ANY") is None
    assert list(ll.idtags()) == []


def test_full_then_differential(ll):
    assert ll.update("Full", 1, [
        entry("AAA", expiry="2030-01-02T03:04:05Z", parent="GROUP1"),
        entry("CCC", "Blocked"),
        remove("DROPPED"),  # no idTagInfo in a Full update: not stored
        entry("EEE"),
    ]) == "Accepted"
    assert (ll.version, len(ll)) == (1, 3)
    assert ll.lookup("AAA") == {"status": "Accepted", "expiryDate": "2030-01-02T03:04:05Z",
                                "parentIdTag": "GROUP1"}
    assert ll.lookup("CCC") == {"status": "Blocked"}
    assert ll.lookup("DROPPED") is None

    assert ll.update("Differential", 2, [
        entry("BBB", "Invalid"),          # new, between existing keys
        entry("CCC", "Accepted"),         # replaced
        remove("EEE"),                    # removed
        remove("NOT-THERE"),              # removing an absent tag changes nothing
        entry("ZZZ", "ConcurrentTx"),     # new, after the last key
        entry("0", "Expired"),            # new, before the first key
    ]) == "Accepted"
    assert (ll.version, len(ll)) == (2, 5)
    assert list(ll.idtags()) == ["0", "AAA", "BBB", "CCC", "ZZZ"]
    assert ll.lookup("BBB") == {"status": "Invalid"}
    assert ll.lookup("CCC") == {"status": "Accepted"}
    assert ll.lookup("EEE") is None
    assert ll.lookup("ZZZ") == {"status": "ConcurrentTx"}
    assert ll.lookup("0") == {"status": "Expired"}
    assert ll.lookup("AAA")["parentIdTag"] == "GROUP1"  # untouched by the merge

    assert ll.update("Full", 3, [entry("NEW")]) == "Accepted"
    assert list(ll.idtags()) == ["NEW"]
    assert ll.lookup("AAA") is None


def test_differential_without_entries_only_sets_the_version(ll):
    assert ll.update("Full", 1, [entry("A")]) == "Accepted"
    assert ll.update("Differential", 2, None) == "Accepted"
    assert ll.update("Differential", 3, []) == "Accepted"
    assert (ll.version, list(ll.idtags())) == (3, ["A"])


def test_differential_version_must_grow(ll):
    assert ll.update("Full", 5, [entry("A")]) == "Accepted"
    assert ll.update("Differential", 5, [entry("B")]) == "VersionMismatch"
    assert ll.update("Differential", 4, [entry("B")]) == "VersionMismatch"
    assert ll.update("Differential", -1, [entry("B")]) == "VersionMismatch"
    assert (ll.version, list(ll.idtags())) == (5, ["A"])
    assert ll.update("Differential", 6, [entry("B")]) == "Accepted"
    assert ll.version == 6


def test_full_update_takes_any_version(ll):
    # Full is how the Central System resynchronises after a mismatch: no version check.
    assert ll.update("Full", 9, [entry("A")]) == "Accepted"
    assert ll.update("Full", 2, [entry("B")]) == "Accepted"
    assert (ll.version, list(ll.idtags())) == (2, ["B"])
    assert ll.update("Full", 2, [entry("C")]) == "Accepted"
    assert list(ll.idtags()) == ["C"]


def test_empty_list_reports_version_0(ll):
    # GetLocalListVersion: 0 means the list is empty (compliance test TC_042_2: Full,
    # listVersion 1, no list -> Accepted, then version 0).
    assert ll.update("Full", 1, None) == "Accepted"
    assert ll.version == 0
    # The next differential is judged against the reported version.
    assert ll.update("Differential", 1, [entry("A")]) == "Accepted"
    assert ll.version == 1
    assert ll.update("Differential", 2, [remove("A")]) == "Accepted"
    assert (ll.version, len(ll)) == (0, 0)


def test_too_many_entries_fails_and_changes_nothing(tmp_path, log):
    ll = LocalList(str(tmp_path / "l.dat"), 3, log)
    assert ll.update("Full", 1, [entry("A"), entry("B"), entry("C"), entry("D")]) == "Failed"
    assert (ll.version, len(ll)) == (0, 0)
    assert ll.update("Full", 1, [entry("A"), entry("B"), entry("C"), remove("D")]) == "Accepted"
    assert ll.update("Differential", 2, [entry("D")]) == "Failed"
    assert (ll.version, list(ll.idtags())) == (1, ["A", "B", "C"])
    assert not os.path.exists(str(tmp_path / "l.dat.tmp"))
    assert "room for 3" in log.text()
    # Replacing and removing do not grow the list: these fit.
    batch = [entry("A", "Blocked"), remove("B"), entry("D")]
    assert ll.update("Differential", 2, batch) == "Accepted"
    assert list(ll.idtags()) == ["A", "C", "D"]
    assert ll.lookup("A") == {"status": "Blocked"}


@pytest.mark.parametrize("bad", [
    [entry("A", "Maybe")],                              # unknown status
    [{"idTag": "A", "idTagInfo": {}}],                  # status missing
    [entry("A", expiry="tomorrow")],                    # not a date-time
    [entry("A"), entry("a")],                           # same idTag twice (case-insensitive)
    [entry("X" * 21)],                                  # longer than CiString20
    [entry("A", parent="P" * 21)],
    [{"idTagInfo": {"status": "Accepted"}}],            # idTag missing
    ["A"],
])
def test_malformed_update_fails_and_changes_nothing(ll, bad):
    assert ll.update("Full", 1, [entry("KEEP")]) == "Accepted"
    assert ll.update("Differential", 2, bad) == "Failed"
    assert ll.update("Full", 2, bad) == "Failed"
    assert (ll.version, list(ll.idtags())) == (1, ["KEEP"])


def test_bad_update_type_or_version_fails(ll):
    assert ll.update("Partial", 1, [entry("A")]) == "Failed"
    assert ll.update("Full", "1", [entry("A")]) == "Failed"
    assert ll.update("Full", 2 ** 31, [entry("A")]) == "Failed"
    assert (ll.version, len(ll)) == (0, 0)
    assert ll.update("Full", 2 ** 31 - 1, [entry("A")]) == "Accepted"
    assert ll.version == 2 ** 31 - 1


def test_id_tags_are_case_insensitive(ll):
    assert ll.update("Full", 1, [entry("abcDEF", parent="MixedCase")]) == "Accepted"
    assert ll.lookup("ABCdef") == {"status": "Accepted", "parentIdTag": "MixedCase"}
    assert ll.update("Differential", 2, [remove("ABCDEF")]) == "Accepted"
    assert ll.lookup("abcdef") is None


def test_twenty_characters_and_prefixes(ll):
    long = "0123456789ABCDEF0123"
    assert ll.update("Full", 1, [entry(long), entry("AB", "Blocked"), entry("ABC", "Invalid"),
                                 entry("", "Expired")]) == "Accepted"
    assert ll.lookup(long) == {"status": "Accepted"}
    assert ll.lookup("AB") == {"status": "Blocked"}
    assert ll.lookup("ABC") == {"status": "Invalid"}
    assert ll.lookup("") == {"status": "Expired"}
    assert ll.lookup("A") is None and ll.lookup("ABCD") is None
    assert ll.lookup(long + "4") is None
    assert ll.lookup(None) is None


@pytest.mark.parametrize("given,stored", [
    ("2030-06-01T12:00:00Z", "2030-06-01T12:00:00Z"),
    ("2030-06-01T14:00:00.250+02:00", "2030-06-01T12:00:00Z"),   # offset and fraction normalised
    ("2040-01-01T00:00:00Z", "2040-01-01T00:00:00Z"),             # beyond int32 seconds
    ("1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z"),             # clamped: already past
    ("2200-01-01T00:00:00Z", iso(0xFFFFFFFF)),                    # clamped: 2106
])
def test_expiry_dates(ll, given, stored):
    assert ll.update("Full", 1, [entry("A", expiry=given)]) == "Accepted"
    assert ll.lookup("A")["expiryDate"] == stored


def test_list_persists_across_reopen(tmp_path, log):
    path = str(tmp_path / "l.dat")
    a = LocalList(path, 10, log)
    batch = [entry("A", expiry="2031-01-01T00:00:00Z"), entry("B")]
    assert a.update("Full", 7, batch) == "Accepted"
    assert a.update("Differential", 8, [remove("B"), entry("C", "Blocked")]) == "Accepted"
    b = LocalList(path, 10, log)
    assert (b.version, len(b), list(b.idtags())) == (8, 2, ["A", "C"])
    assert b.lookup("A") == {"status": "Accepted", "expiryDate": "2031-01-01T00:00:00Z"}
    assert b.lookup("C") == {"status": "Blocked"}
    b.clear()
    c = LocalList(path, 10, log)
    assert (c.version, len(c)) == (0, 0)


def test_failed_rename_keeps_the_old_list(tmp_path, log, monkeypatch):
    path = str(tmp_path / "l.dat")
    ll = LocalList(path, 10, log)
    assert ll.update("Full", 1, [entry("A")]) == "Accepted"

    def broken(a, b):
        raise OSError(28, "no space")
    monkeypatch.setattr(authstore.os, "rename", broken)
    assert ll.update("Differential", 2, [entry("B")]) == "Failed"
    monkeypatch.undo()
    assert (ll.version, list(ll.idtags())) == (1, ["A"])
    assert not os.path.exists(path + ".tmp")
    again = LocalList(path, 10, log)
    assert (again.version, list(again.idtags())) == (1, ["A"])


def test_flash_full_while_writing_keeps_the_old_list(tmp_path, log, monkeypatch):
    path = str(tmp_path / "l.dat")
    ll = LocalList(path, 100, log)
    assert ll.update("Full", 1, [entry(tag(n)) for n in range(50)]) == "Accepted"
    real_open = open
    opened = []

    class Full:
        def __init__(self, f):
            self.f, self.left = f, 500
            opened.append(self)

        def write(self, data):
            self.left -= len(data)
            if self.left < 0:
                raise OSError(28, "ENOSPC")
            return self.f.write(data)

        def close(self):
            self.f.close()

    def full_open(p, m):
        return Full(real_open(p, m)) if "w" in m else real_open(p, m)
    monkeypatch.setattr(authstore, "open", full_open, raising=False)
    assert ll.update("Differential", 2, [entry(tag(n) + "X") for n in range(30)]) == "Failed"
    monkeypatch.undo()
    assert opened and all(o.f.closed for o in opened)
    assert not os.path.exists(path + ".tmp")
    assert (ll.version, len(ll)) == (1, 50)
    again = LocalList(path, 100, log)
    assert (again.version, list(again.idtags())) == (1, [tag(n) for n in range(50)])


def test_stale_temporary_file_is_harmless(tmp_path, log):
    path = str(tmp_path / "l.dat")
    with open(path + ".tmp", "wb") as f:
        f.write(b"half a list from before a power cut")
    ll = LocalList(path, 10, log)
    assert ll.version == 0
    assert ll.update("Full", 1, [entry("A")]) == "Accepted"
    assert LocalList(path, 10, log).lookup("A") == {"status": "Accepted"}


# ---- local list: damaged files -------------------------------------------------------

def _good_file(path, log):
    ll = LocalList(path, 10, log)
    assert ll.update("Full", 4, [entry("A"), entry("B"), entry("C")]) == "Accepted"
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("damage", [
    lambda b: b"",
    lambda b: b"garbage",
    lambda b: b[:-1],                                   # truncated
    lambda b: b + b"\0",                                # trailing bytes
    lambda b: b"XLL1" + b[4:],                          # wrong magic
    lambda b: b[:20] + bytes([b[20] ^ 0x01]) + b[21:],  # flipped bit in a record
    lambda b: b[:4] + bytes([b[4] ^ 0x01]) + b[5:],     # flipped bit in the version
    lambda b: b[:8] + b"\x02\0\0\0" + b[12:],           # count disagrees with the size
])
def test_damaged_file_is_an_empty_list(tmp_path, log, damage):
    path = str(tmp_path / "l.dat")
    good = _good_file(path, log)
    with open(path, "wb") as f:
        f.write(damage(good))
    ll = LocalList(path, 10, log)
    assert (ll.version, len(ll)) == (0, 0)
    assert ll.lookup("A") is None
    assert "unusable" in log.text()
    # And it recovers: a differential (version > 0) or a full update writes a fresh file.
    assert ll.update("Differential", 1, [entry("Z")]) == "Accepted"
    assert list(LocalList(path, 10, log).idtags()) == ["Z"]


def test_directory_in_the_way_is_an_empty_list(tmp_path, log):
    path = tmp_path / "l.dat"
    path.mkdir()
    ll = LocalList(str(path), 10, log)
    assert (ll.version, len(ll)) == (0, 0)
    assert ll.update("Full", 1, [entry("A")]) == "Failed"


# ---- local list: size ----------------------------------------------------------------

def tag(n):
    return "TAG%06d" % n


def test_1200_entries_with_room_for_2000(tmp_path, log, monkeypatch):
    path = str(tmp_path / "l.dat")
    ll = LocalList(path, 2000, log)
    # Even numbers in one Full update, then odd ones and changes in differentials of 100.
    assert ll.update("Full", 1, [entry(tag(n)) for n in range(0, 1600, 2)]) == "Accepted"
    version = 1
    for start in range(1, 800, 200):
        version += 1
        batch = [entry(tag(n), "Blocked") for n in range(start, start + 200, 2)]
        assert ll.update("Differential", version, batch) == "Accepted"
    version += 1
    batch = [remove(tag(n)) for n in range(1400, 1600, 2)]
    assert ll.update("Differential", version, batch) == "Accepted"
    expect = {tag(n): "Accepted" for n in range(0, 1400, 2)}
    expect.update({tag(n): "Blocked" for n in range(1, 800, 2)})
    assert len(ll) == len(expect) == 1100
    version += 1
    batch = [entry(tag(n), "Expired") for n in range(2001, 2201, 2)]
    assert ll.update("Differential", version, batch) == "Accepted"
    expect.update({tag(n): "Expired" for n in range(2001, 2201, 2)})
    assert len(ll) == 1200
    assert os.path.getsize(path) == 12 + 1200 * 45 + 4

    reopened = LocalList(path, 2000, log)
    assert (reopened.version, len(reopened)) == (version, 1200)
    assert list(reopened.idtags()) == sorted(expect)

    # Every lookup reads at most one key per halving plus the record.
    reads = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def seek(self, n):
            return self.f.seek(n)

        def read(self, n):
            data = self.f.read(n)
            reads.append(len(data))
            return data

        def readinto(self, buf):
            n = self.f.readinto(buf)
            reads.append(n)
            return n
    monkeypatch.setattr(authstore, "open", lambda p, m: Counting(real_open(p, m)), raising=False)
    for n in (0, 1, 2, 799, 801, 1398, 1399, 1400, 2001, 2199, 2201, 5000):
        reads.clear()
        got = reopened.lookup(tag(n))
        assert (got or {}).get("status") == expect.get(tag(n)), n
        assert sum(reads) <= 11 * 20 + 45, (n, reads)  # ceil(log2(1201)) = 11
    for n in range(0, 2300, 7):
        got = reopened.lookup(tag(n))
        assert (got or {}).get("status") == expect.get(tag(n)), n
    assert reopened.lookup("TAG") is None and reopened.lookup("ZZZ") is None


@pytest.mark.parametrize("seed", range(6))
def test_differentials_match_a_model(tmp_path, log, seed):
    # Random adds, replacements and removals, many of them at the 16-record chunk
    # edges the merge reads in, checked against a dict after every update.
    import random
    rnd = random.Random(seed)
    ll = LocalList(str(tmp_path / "l.dat"), 400, log)
    model = {}
    statuses = ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]
    for version in range(1, 30):
        batch, seen = [], set()
        for _ in range(rnd.choice((1, 2, 17, 40))):
            t = "K%03d" % rnd.randrange(300)
            if t in seen:
                continue
            seen.add(t)
            if rnd.random() < 0.3:
                batch.append(remove(t))
                model.pop(t, None)
            else:
                st = rnd.choice(statuses)
                batch.append(entry(t, st))
                model[t] = st
        assert ll.update("Differential", version, batch) == "Accepted"
        assert list(ll.idtags()) == sorted(model)
        assert len(ll) == len(model)
    for n in range(300):
        got = ll.lookup("K%03d" % n)
        assert (got or {}).get("status") == model.get("K%03d" % n)
    again = LocalList(str(tmp_path / "l.dat"), 400, log)
    assert list(again.idtags()) == sorted(model)


# ---- under MicroPython ---------------------------------------------------------------

MP_SCRIPT = r"""
import gc, json, os, sys
from firmware.authstore import LocalList, AuthCache
d = sys.argv[1]
gc.collect()
base = gc.mem_free()
ll = LocalList(d + "/locallist.dat", 2000, None)


def send(b):
    # 100 tags spread over the key space: every update merges into the middle of the file.
    batch = [{"idTag": "T%05d" % ((b * 100 + j) * 7919 % 100000),
              "idTagInfo": {"status": "Accepted", "expiryDate": "2031-01-01T00:00:00Z"}}
             for j in range(100)]
    r = ll.update("Differential", b + 1, batch)
    if r != "Accepted":
        raise SystemExit("update %d: %s" % (b, r))


for b in range(10):
    send(b)
gc.collect()
retained = base - gc.mem_free()
worst = 0
found = 0
for k in range(200):
    # even k: a listed tag; odd k: a tag sorting right after one, so not listed
    t = "T%05d" % ((k * 7919) % 100000) + ("" if k % 2 == 0 else "X")
    gc.collect()
    before = gc.mem_free()
    r = ll.lookup(t)
    used = before - gc.mem_free()
    if used > worst:
        worst = used
    if r is not None:
        found += 1
        if r != {"status": "Accepted", "expiryDate": "2031-01-01T00:00:00Z"}:
            raise SystemExit("bad record %r" % (r,))
# A one-tag change to the full list: the merge streams, so the garbage it makes stays
# far below the 45 KB the file holds.
gc.collect()
before = gc.mem_free()
blocked = {"idTag": "T00000", "idTagInfo": {"status": "Blocked"}}
if ll.update("Differential", 11, [blocked]) != "Accepted":
    raise SystemExit("1-tag update failed")
update1 = before - gc.mem_free()
if ll.lookup("T00000") != {"status": "Blocked"} or len(ll) != 1000:
    raise SystemExit("1-tag update not applied")
c = AuthCache(d + "/cache.dat", 4, None)
for i in range(6):
    c.put("C%d" % i, {"status": "Accepted"})
cache = [c.get("C%d" % i) is not None for i in range(6)]
size = os.stat(d + "/locallist.dat")[6]
print(json.dumps({"count": len(ll), "version": ll.version, "file": size,
                  "retained": retained, "lookup": worst, "found": found, "cache": cache,
                  "writes": c.writes, "update1": update1}))
"""


def test_micropython_1000_entries_in_a_small_heap(tmp_path):
    # 128 KB of heap, about what an ESP32 has left after networking and TLS; the
    # list file alone is bigger than a third of that and as Python objects it would
    # not fit at all.
    proc = run_mp(MP_SCRIPT, tmp_path, heap="128K", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print("MicroPython 1000-entry list:", out)
    assert out["count"] == 1000 and out["version"] == 11
    assert out["file"] == 12 + 1000 * 45 + 4
    assert out["found"] == 100  # the even probes are listed tags, the odd ones are not
    assert out["lookup"] < 8 * 1024, out
    assert out["retained"] < 4 * 1024, out
    assert out["update1"] < 16 * 1024, out
    assert out["cache"] == [False, False, True, True, True, True]
    assert out["writes"] == 6

    # The same file reads back identically on CPython.
    ll = LocalList(str(tmp_path / "locallist.dat"), 2000, Log())
    assert (len(ll), ll.version) == (1000, 11)
    assert ll.lookup("T%05d" % (123 * 7919 % 100000)) == {"status": "Accepted",
                                                          "expiryDate": "2031-01-01T00:00:00Z"}


# ---- authorization cache -------------------------------------------------------------

@pytest.fixture
def cache(tmp_path, log):
    return AuthCache(str(tmp_path / "cache.dat"), 3, log)


def test_cache_put_get_replace(cache):
    assert len(cache) == 0 and cache.get("A") is None
    info = {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z", "parentIdTag": "P"}
    assert cache.put("A", dict(info))
    assert cache.get("a") == info
    assert cache.put("A", {"status": "Blocked"})
    assert cache.get("A") == {"status": "Blocked"}
    assert len(cache) == 1
    assert cache.writes == 2  # one slot write per put


def test_cache_evicts_the_entry_least_recently_put(cache):
    for t in ("A", "B", "C"):
        assert cache.put(t, {"status": "Accepted"})
    assert cache.get("A")            # reading does not refresh...
    assert cache.put("B", {"status": "Accepted"})  # ...putting does
    assert cache.put("D", {"status": "Accepted"})  # full: A goes
    assert [cache.get(t) is not None for t in "ABCD"] == [False, True, True, True]
    assert cache.put("E", {"status": "Accepted"})  # then C
    assert [cache.get(t) is not None for t in "BCDE"] == [True, False, True, True]
    assert len(cache) == 3
    assert cache.writes == 6


def test_cache_larger_than_one_read(tmp_path, log):
    c = AuthCache(str(tmp_path / "c.dat"), 20, log)
    for n in range(20):
        assert c.put("T%02d" % n, {"status": "Accepted"})
    c.put("T05", {"status": "Blocked"})  # refreshed: T00..T04 and T06.. are older
    for n in range(20, 26):
        assert c.put("T%02d" % n, {"status": "Accepted"})
    present = [n for n in range(26) if c.get("T%02d" % n) is not None]
    assert present == [5] + list(range(7, 26))  # T00-T04 and T06 evicted, oldest first
    assert c.get("T05") == {"status": "Blocked"}
    assert len(c) == 20
    assert os.path.getsize(str(tmp_path / "c.dat")) == 4 + 20 * 53
    reopened = AuthCache(str(tmp_path / "c.dat"), 20, log)
    assert len(reopened) == 20
    reopened.put("NEW", {"status": "Accepted"})
    assert reopened.get("T07") is None and reopened.get("T08") is not None


def test_cache_remove_and_clear(cache, tmp_path, log):
    for t in ("A", "B", "C"):
        cache.put(t, {"status": "Accepted"})
    assert cache.remove("b") is True
    assert cache.remove("B") is False
    assert len(cache) == 2 and cache.get("B") is None
    assert cache.put("D", {"status": "Accepted"})  # takes B's free slot, evicts nothing
    assert [cache.get(t) is not None for t in "ACD"] == [True, True, True]
    assert os.path.getsize(str(tmp_path / "cache.dat")) == 4 + 3 * 53
    cache.clear()
    assert len(cache) == 0 and cache.get("A") is None
    assert AuthCache(str(tmp_path / "cache.dat"), 3, log).get("A") is None
    assert cache.put("A", {"status": "Accepted"}) and cache.get("A") == {"status": "Accepted"}


def test_cache_persists_with_its_eviction_order(tmp_path, log):
    path = str(tmp_path / "cache.dat")
    a = AuthCache(path, 2, log)
    a.put("OLD", {"status": "Accepted"})
    a.put("NEW", {"status": "Invalid"})
    b = AuthCache(path, 2, log)
    assert len(b) == 2
    assert b.get("NEW") == {"status": "Invalid"}
    b.put("NEWER", {"status": "Accepted"})
    assert b.get("OLD") is None and b.get("NEW") is not None


def test_cache_refuses_what_it_cannot_store(cache):
    assert cache.put("X" * 21, {"status": "Accepted"}) is False
    assert cache.put("A", {"status": "Unknown"}) is False
    assert cache.put("A", {"status": "Accepted", "expiryDate": "soon"}) is False
    assert cache.put(None, {"status": "Accepted"}) is False
    assert len(cache) == 0 and cache.writes == 0


def test_cache_disabled_with_zero_slots(tmp_path, log):
    c = AuthCache(str(tmp_path / "c.dat"), 0, log)
    assert c.put("A", {"status": "Accepted"}) is False
    assert c.get("A") is None


def test_torn_cache_slot_is_free_and_others_survive(tmp_path, log):
    path = str(tmp_path / "cache.dat")
    a = AuthCache(path, 3, log)
    for t in ("A", "B", "C"):
        a.put(t, {"status": "Accepted"})
    with open(path, "r+b") as f:
        f.seek(4 + 53 + 10)  # inside B's slot
        f.write(b"\xff")
    b = AuthCache(path, 3, log)
    assert len(b) == 2
    assert b.get("B") is None and b.get("A") and b.get("C")
    assert b.put("D", {"status": "Accepted"})  # reuses the damaged slot
    assert [b.get(t) is not None for t in "ACD"] == [True, True, True]


@pytest.mark.parametrize("content", [b"", b"OA", b"XXXX" + b"\0" * 53, b"OAC1" + b"\1" * 53 * 5])
def test_damaged_cache_file_is_an_empty_cache(tmp_path, log, content):
    path = str(tmp_path / "cache.dat")
    with open(path, "wb") as f:
        f.write(content)
    c = AuthCache(path, 3, log)  # the last content has more slots than room: dropped too
    assert len(c) == 0 and c.get("A") is None
    assert c.put("A", {"status": "Accepted"})
    assert AuthCache(path, 3, log).get("A") == {"status": "Accepted"}


def test_cache_file_removed_behind_its_back(cache, tmp_path):
    cache.put("A", {"status": "Accepted"})
    os.remove(str(tmp_path / "cache.dat"))
    assert cache.get("A") is None
    assert cache.put("B", {"status": "Accepted"})
    assert cache.get("B") == {"status": "Accepted"} and len(cache) == 1
