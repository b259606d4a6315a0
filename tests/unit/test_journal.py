"""firmware.journal: order, durability, recovery from torn/corrupt lines and crashes, thinning.

`python -m tests.unit.test_journal` prints the flash figures of one transaction (bench()).
"""
import binascii
import os
import random
import shutil
import signal
import subprocess
import time
import tracemalloc

import pytest

from firmware import journal as journal_mod
from firmware.journal import Journal
from tests.fakes import Log
from tests.mp import INTERPRETERS, ROOT

CHILD = os.path.join("tests", "unit", "journal_crash_child.py")


def mv(n):
    return {"a": "MeterValues", "r": n, "p": {"connectorId": 1, "meterValue": [{"v": n}]}}


def start(n):
    return {"a": "StartTransaction", "r": n, "p": {"connectorId": 1, "idTag": "TAG%d" % n}}


def stop(n):
    return {"a": "StopTransaction", "r": n, "p": {"meterStop": n, "reason": "Local"}}


def files(folder, ext):
    return sorted(n for n in os.listdir(folder) if n.endswith(ext))


def segments(folder):
    return [os.path.join(folder, n) for n in files(folder, ".log")]


def pending(j):
    return [(s, r["r"]) for s, r in j.pending()]


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "journal")


def test_append_first_ack_in_order(folder):
    j = Journal(folder, Log())
    assert j.first() is None and len(j) == 0 and list(j.pending()) == []
    seqs = [j.append(mv(i)) for i in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert len(j) == 5
    assert j.first() == (seqs[0], mv(0))
    assert pending(j) == list(zip(seqs, range(5)))
    assert j.ack(seqs[0]) is True
    assert j.first() == (seqs[1], mv(1)) and len(j) == 4
    assert j.ack(seqs[0]) is False  # already gone
    assert j.ack(9999) is False
    assert len(j) == 4


def test_first_is_a_copy_of_what_was_stored(folder):
    j = Journal(folder, Log())
    rec = mv(1)
    seq = j.append(rec)
    rec["p"]["meterValue"] = "changed after append"
    assert j.first() == (seq, mv(1))


def test_each_append_and_ack_is_one_flash_write(folder):
    j = Journal(folder, Log())
    a = j.append(start(1))
    b = j.append(mv(2))
    assert j.writes == 2
    j.ack(a)
    assert j.writes == 3
    j.ack(b)  # drains: the .end mark is the only write
    assert j.writes == 4
    assert len(j) == 0 and j.bytes == 0


def test_reopen_keeps_pending_in_order_and_seq_increases(folder):
    j = Journal(folder, Log())
    seqs = [j.append(mv(i)) for i in range(6)]
    j.ack(seqs[0])
    j.ack(seqs[1])
    j2 = Journal(folder, Log())
    assert len(j2) == 4
    assert pending(j2) == list(zip(seqs[2:], range(2, 6)))
    assert j2.first() == (seqs[2], mv(2))
    nxt = j2.append(mv(6))
    assert nxt > seqs[-1]
    # drained and reopened: the counter still moves on
    for s, _ in list(j2.pending()):
        j2.ack(s)
    assert len(j2) == 0
    j3 = Journal(folder, Log())
    assert len(j3) == 0 and j3.first() is None
    assert j3.append(mv(7)) > nxt


def test_torn_last_line_is_ignored_and_later_appends_survive(folder):
    j = Journal(folder, Log())
    a, b, _ = j.append(mv(1)), j.append(mv(2)), j.append(mv(3))
    (seg,) = segments(folder)
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:
        f.truncate(size - 25)  # cut the third record mid-line
    j2 = Journal(folder, Log())
    assert pending(j2) == [(a, 1), (b, 2)]
    assert j2.bytes == size - 25
    d = j2.append(mv(4))
    assert d > b
    j2.ack(a)
    j3 = Journal(folder, Log())
    assert pending(j3) == [(b, 2), (d, 4)]


def test_line_missing_only_its_newline_is_kept(folder):
    j = Journal(folder, Log())
    a, b = j.append(mv(1)), j.append(mv(2))
    (seg,) = segments(folder)
    with open(seg, "r+b") as f:
        f.truncate(os.path.getsize(seg) - 1)
    j2 = Journal(folder, Log())
    assert pending(j2) == [(a, 1), (b, 2)]
    c = j2.append(mv(3))
    assert c > b
    assert pending(Journal(folder, Log())) == [(a, 1), (b, 2), (c, 3)]


def test_corrupt_crc_line_is_ignored(folder):
    j = Journal(folder, Log())
    a, _, c = j.append(mv(1)), j.append(mv(2)), j.append(mv(3))
    (seg,) = segments(folder)
    data = open(seg, "rb").read()
    lines = data.split(b"\n")
    assert lines[1].endswith(b"}}")
    lines[1] = lines[1].replace(b'"v": 2', b'"v": 7')  # same length, wrong crc
    with open(seg, "wb") as f:
        f.write(b"\n".join(lines))
    assert pending(Journal(folder, Log())) == [(a, 1), (c, 3)]


def test_overlong_garbage_line_is_skipped(folder):
    j = Journal(folder, Log())
    a = j.append(mv(1))
    (seg,) = segments(folder)
    with open(seg, "ab") as f:
        f.write(b"9" * 10000 + b"\n")
    j2 = Journal(folder, Log())
    b = j2.append(mv(2))
    assert pending(Journal(folder, Log())) == [(a, 1), (b, 2)]


def test_lines_are_cut_at_newlines_across_read_chunks_with_their_offsets(tmp_path):
    from firmware.journal import _lines
    exact = b"e" * 4095 + b"\n"           # 4096 bytes with the newline: the longest allowed
    over = b"o" * 4096 + b"\n"            # one byte more: comes as b""
    data = b"a\n" + b"m" * 700 + b"\n" + exact + over + b"\n" + b"z\n" + b"torn"
    path = tmp_path / "seg.log"
    path.write_bytes(data)
    with open(path, "rb") as f:
        got = list(_lines(f, 0))
    assert [line for _, line in got] == [b"a\n", b"m" * 700 + b"\n", exact, b"", b"\n", b"z\n",
                                         b"torn"]
    offsets = [off for off, _ in got]
    assert offsets == [0, 2, 703, 4799, 8896, 8897, 8899]
    with open(path, "rb") as f:  # from an offset, as after a seek
        f.seek(703)
        assert [off for off, _ in _lines(f, 703)] == offsets[2:]


def test_record_longer_than_a_line_is_refused(folder):
    j = Journal(folder, Log())
    with pytest.raises(ValueError):
        j.append({"a": "MeterValues", "p": "x" * 5000})
    assert len(j) == 0 and j.writes == 0 and segments(folder) == []


def test_drained_journal_deletes_its_segments(folder):
    j = Journal(folder, Log(), max_bytes=16 * 1024)  # 2 KB segments
    seqs = [j.append(mv(i)) for i in range(60)]
    assert len(segments(folder)) > 2
    assert j.bytes == sum(os.path.getsize(p) for p in segments(folder))
    for s in seqs[:-1]:
        j.ack(s)
        # a segment goes as soon as the first pending record has left it
        numbers = [int(n[:-4]) for n in files(folder, ".log")]
        assert numbers[0] <= j.first()[0] and (len(numbers) == 1 or j.first()[0] < numbers[1])
    assert len(segments(folder)) == 1
    j.ack(seqs[-1])
    assert segments(folder) == []
    assert files(folder, ".end") == ["%08d.end" % (seqs[-1] + 1)]
    assert j.bytes == 0 and len(j) == 0


def test_out_of_order_acks_survive_reopen_and_trigger_a_rewrite(folder):
    j = Journal(folder, Log())
    seqs = [j.append(mv(i)) for i in range(30)]
    for s in seqs[1:19:2]:  # nine acks beyond the first pending record
        assert j.ack(s)
    assert j.ack(seqs[3]) is False  # already acked
    want = [(s, i) for i, s in enumerate(seqs) if not (1 <= i < 19 and i % 2)]
    assert pending(j) == want and len(j) == len(want)
    # more than 8 outstanding: rewritten to one segment holding only the pending records
    assert len(segments(folder)) == 1
    data = open(segments(folder)[0], "rb").read()
    assert data.count(b"\n") == len(want) + 2  # after the "A" and "N" lines
    assert pending(Journal(folder, Log())) == want
    j.ack(seqs[0])
    j.ack(seqs[2])  # the first pending record now skips the acked seqs[3]
    assert j.first() == (seqs[4], mv(4))
    assert pending(Journal(folder, Log())) == want[2:]


def test_thin_drops_every_second_meter_values_only(folder):
    j = Journal(folder, Log())
    recs = ([start(0)] + [mv(i) for i in range(1, 8)]
            + [stop(8), start(9), mv(10), mv(11), stop(12)])
    seqs = [j.append(r) for r in recs]
    j.ack(seqs[0])  # acked records vanish in the rewrite too
    dropped = j.thin()
    left = [r for _, r in j.pending()]
    # MeterValues in order: 1..7, 10, 11 -> keep 1st, 3rd, ... = 1, 3, 5, 7, 11
    assert dropped == 4
    assert [r["r"] for r in left] == [1, 3, 5, 7, 8, 9, 11, 12]
    assert all(r in left for r in recs[8:10] + recs[12:])  # every Start/Stop pending kept
    assert len(j) == 8
    assert [r["r"] for _, r in Journal(folder, Log()).pending()] == [1, 3, 5, 7, 8, 9, 11, 12]
    assert j.bytes == os.path.getsize(segments(folder)[0])


def test_thin_with_nothing_to_drop_writes_nothing(folder):
    j = Journal(folder, Log())
    j.append(start(1))
    j.append(mv(2))
    j.append(stop(3))
    writes = j.writes
    assert j.thin() == 0
    assert j.writes == writes and len(j) == 3


def test_append_near_the_cap_thins_and_never_loses_start_stop(folder):
    log = Log()
    j = Journal(folder, log, max_bytes=8 * 1024)
    kinds = []
    for i in range(200):
        rec = start(i) if i % 20 == 0 else (stop(i) if i % 20 == 19 else mv(i))
        j.append(rec)
        kinds.append(rec["a"])
        assert j.bytes <= 8 * 1024
    left = [r for _, r in j.pending()]
    kept = [r["r"] for r in left if r["a"] != "MeterValues"]
    assert kept == [i for i in range(200) if i % 20 in (0, 19)]
    assert sum(r["a"] == "MeterValues" for r in left) < 180
    assert log.levels("warn") and not log.levels("error")
    order = [r["r"] for r in left]
    assert order == sorted(order)


def test_past_the_cap_start_stop_are_still_kept_with_an_error(folder):
    log = Log()
    j = Journal(folder, log, max_bytes=4 * 1024)
    seqs = [j.append(start(i) if i % 2 else stop(i)) for i in range(60)]
    assert j.bytes > 4 * 1024
    assert log.levels("error")
    assert [s for s, _ in Journal(folder, Log(), max_bytes=4 * 1024).pending()] == seqs


def test_past_the_cap_the_newest_meter_values_give_way(folder):
    # Start/Stop only, so thinning finds nothing: the oldest records stay, a new
    # MeterValues is refused (the Stop carries the meter reading anyway).
    log = Log()
    j = Journal(folder, log, max_bytes=4 * 1024)
    seqs = [j.append(start(i) if i % 2 else stop(i)) for i in range(60)]
    assert j.bytes > 4 * 1024
    n, b = len(j), j.bytes
    assert j.append(mv(99)) is None
    assert len(j) == n and j.bytes == b
    assert log.levels("warn")[-1].endswith("MeterValues refused")
    assert j.append(stop(100)) == seqs[-1] + 1  # billing records are still kept
    assert [s for s, _ in j.pending()][:60] == seqs


def test_changes_counts_appends_acks_and_rewrites(folder):
    j = Journal(folder, Log())
    c = j.changes
    a = j.append(mv(1))
    b = j.append(mv(2))
    j.append(mv(3))
    assert j.changes == c + 3
    j.ack(b)                                    # out of order
    j.ack(a)
    assert j.changes == c + 5
    j.thin()                                    # too few MeterValues: no rewrite
    assert j.changes == c + 5
    j.ack(j.first()[0])                         # drained
    assert j.changes == c + 6 and len(j) == 0


def test_near_the_cap_acked_records_are_compacted_before_anything_is_dropped(folder):
    log = Log()
    j = Journal(folder, log, max_bytes=8 * 1024)  # 2 KB segments, room made past 7372 B
    seqs = []
    while len(segments(folder)) < 2:
        seqs.append(j.append(mv(len(seqs))))
    for s in seqs[:-3]:  # the first segment is mostly acked but cannot be deleted yet
        j.ack(s)
    first_kept = len(seqs) - 3
    garbage = j.bytes
    while True:
        b, w = j.bytes, j.writes
        seqs.append(j.append(mv(len(seqs))))
        if j.bytes < b:
            break
        assert j.writes == w + 1
    assert j.writes == w + 3  # tmp file + rename + the append itself
    assert b - j.bytes > garbage - 600
    assert not log.levels("warn")  # no MeterValues thinned
    got = [r for _, r in pending(j)]
    assert got == list(range(first_kept, len(seqs))) and len(got) == len(j)
    assert pending(Journal(folder, Log(), max_bytes=8 * 1024)) == pending(j)


@pytest.mark.parametrize("acked", [15, 22], ids=["new-name", "replaces-first-segment"])
def test_interrupted_rewrite_is_repaired_on_load(folder, acked):
    j = Journal(folder, Log(), max_bytes=16 * 1024)
    seqs = [j.append(mv(i)) for i in range(60)]
    for s in seqs[:acked]:
        j.ack(s)
    j.ack(seqs[30])
    old = {n: open(os.path.join(folder, n), "rb").read() for n in files(folder, ".log")}
    assert len(old) >= 2
    assert ("%08d.log" % j.first()[0] in old) == (acked == 22)
    j.thin()
    # power cut after the rename, before the old segments were deleted
    for n, data in old.items():
        if not os.path.exists(os.path.join(folder, n)):
            with open(os.path.join(folder, n), "wb") as f:
                f.write(data)
    after = pending(j)
    log = Log()
    j2 = Journal(folder, log, max_bytes=16 * 1024)
    assert log.levels("warn")
    got = pending(j2)
    assert [s for s, _ in got] == sorted(set(s for s, _ in got))
    assert set(after) <= set(got)  # thinned samples may come back, nothing else
    assert all(s > seqs[acked - 1] and s != seqs[30] for s, _ in got)
    assert len(segments(folder)) == 1
    assert pending(Journal(folder, Log(), max_bytes=16 * 1024)) == got


def test_leftover_tmp_and_half_drained_state_are_cleaned(folder):
    j = Journal(folder, Log())
    a, b = j.append(mv(1)), j.append(mv(2))
    seg = segments(folder)[0]
    kept = open(seg, "rb").read()
    j.ack(a)
    j.ack(b)
    with open(seg, "wb") as f:  # power cut after the .end mark, before the delete
        f.write(kept)
    with open(os.path.join(folder, "rewrite.tmp"), "wb") as f:
        f.write(b"junk")
    j2 = Journal(folder, Log())
    assert len(j2) == 0 and j2.first() is None
    assert segments(folder) == [] and files(folder, ".tmp") == []
    assert j2.append(mv(3)) > b


def test_meta_survives_reopen(folder):
    j = Journal(folder, Log())
    assert j.meta("next_ref") is None and j.meta("x", 5) == 5
    j.set_meta("next_ref", 7)
    j.set_meta("refs", {"3": 1234, "4": None})
    w = j.writes
    j.set_meta("next_ref", 7)  # unchanged: no write
    assert j.writes == w
    j.set_meta("gone", (1, 2))
    assert j.meta("gone") == [1, 2]
    j.set_meta("gone", None)
    j2 = Journal(folder, Log())
    assert j2.meta("next_ref") == 7
    assert j2.meta("refs") == {"3": 1234, "4": None}
    assert j2.meta("gone") is None
    assert files(folder, ".tmp") == []


def test_thousand_records_round_trip_in_bounded_memory(folder):
    j = Journal(folder, Log())
    for i in range(1000):
        j.append({"a": "MeterValues", "r": i, "p": "v" * 100})
    assert j.bytes > 100_000
    tracemalloc.start()
    try:
        j2 = Journal(folder, Log())
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(j2) == 1000
    assert kept < 20_000 and peak < 60_000  # far below the 100 KB on flash
    n = 0
    for seq, rec in j2.pending():
        assert rec["r"] == n
        n += 1
    assert n == 1000
    for _ in range(1000):
        j2.ack(j2.first()[0])
    assert len(j2) == 0 and segments(folder) == []


def test_soft_crc_matches_binascii():
    for data in (b"", b"a", b"123 {\"a\": 1}", bytes(range(256))):
        assert journal_mod._crc32_soft(data) == binascii.crc32(data)
        head = journal_mod._crc32_soft(data[:3])
        assert journal_mod._crc32_soft(data[3:], head) == binascii.crc32(data)


# ---- crash test ------------------------------------------------------------------------

class Ledger:
    """What the children reported, and the invariants a journal must keep across crashes.

    The operation in flight when a child is killed may or may not have happened: each kill
    allows one record to appear unreported (an append) or vanish unreported (an ack)."""

    def __init__(self):
        self.durable = {}    # seq -> (nonce, action, event number)
        self.acked = set()
        self.thins = []      # event numbers of thin() starts
        self.events = 0
        self.kills = 0
        self.slack = 0       # kills since the journal was last checked
        self.in_flight = 0   # records that appeared or vanished by an interrupted operation
        self.starts = []     # the meta counter of starts, as each child found it

    def killed(self):
        self.kills += 1
        self.slack += 1

    def feed(self, text):
        for line in text.splitlines():
            self.events += 1
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "P":
                listed = [p.split(",") for p in parts[1:]]
                self.check([int(s) for s, _, _ in listed],
                           {int(s): int(n) for s, n, _ in listed},
                           {int(s): a for s, _, a in listed})
            elif parts[0] == "D" and len(parts) == 4:
                seq = int(parts[1])
                assert seq not in self.durable, "seq %d reused" % seq
                self.durable[seq] = (int(parts[2]), parts[3], self.events)
            elif parts[0] == "K" and len(parts) == 2:
                self.acked.add(int(parts[1]))
            elif parts[0] == "T":
                self.thins.append(self.events)
            elif parts[0] == "M":
                self.starts.append(int(parts[1]))

    def check(self, seqs, nonces, actions=None):
        assert seqs == sorted(seqs), "order lost: %r" % seqs
        assert len(seqs) == len(set(seqs)), "duplicates: %r" % seqs
        present = set(seqs)
        back = present & self.acked
        assert not back, "acked records came back: %r" % sorted(back)
        vanished = []
        for seq, (nonce, action, when) in self.durable.items():
            if seq in present:
                assert nonces[seq] == nonce, "record %d altered" % seq
            elif seq not in self.acked:
                if not (action == "MeterValues" and any(t > when for t in self.thins)):
                    vanished.append(seq)
        appeared = sorted(present - set(self.durable))
        assert len(vanished) + len(appeared) <= self.slack, \
            "durable records lost: %r, records nobody appended: %r" % (vanished, appeared)
        self.in_flight += len(vanished) + len(appeared)
        self.acked.update(vanished)
        for seq in appeared:
            # Its action counts: a MeterValues a later thin() drops is no loss.
            self.durable[seq] = (nonces[seq], (actions or {}).get(seq, "?"), self.events)
        self.slack = 0


def _crash_run(interpreter, folder, kills, seed):
    rng = random.Random(seed)
    ledger = Ledger()
    runs = 0
    while ledger.kills < kills:
        runs += 1
        finish = runs % 6 == 0  # now and then a clean run to the end
        ops = 60 if finish else 5000
        seed = str(rng.randrange(1, 1 << 30))
        proc = subprocess.Popen([interpreter, CHILD, folder, seed, str(ops)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        head = b""
        if not finish:
            if runs % 5:  # mostly in the middle of the work, sometimes while loading
                head = proc.stdout.readline()
            time.sleep(rng.uniform(0.0, 0.03))
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        text = (head + out).decode()
        if not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]  # a line cut by the kill is no report
        if finish or proc.returncode == 0:
            assert proc.returncode == 0 and text.endswith("E\n"), err.decode()[-2000:]
        else:
            assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        ledger.feed(text)
        if proc.returncode != 0:
            ledger.killed()
    j = Journal(folder, Log(), max_bytes=16 * 1024)
    got = list(j.pending())
    ledger.check([s for s, _ in got], {s: r["n"] for s, r in got}, {s: r["a"] for s, r in got})
    assert len(j) == len(got)
    assert (j.first() or (None,))[0] == (got[0][0] if got else None)
    assert j.bytes == sum(os.path.getsize(p) for p in segments(folder))
    return ledger, runs


@pytest.mark.parametrize("name", ["python3", "micropython"])
def test_power_cut_at_random_instants(name, tmp_path):
    interpreter = INTERPRETERS[name]
    if not os.access(interpreter, os.X_OK):
        pytest.skip(name + " not found at " + interpreter)
    ledger, runs = _crash_run(interpreter, str(tmp_path / "journal"), 30, 1000 + len(name))
    assert ledger.kills == 30 and runs > 30
    # a meta counter each child bumps before reporting it: a reported save is never lost
    assert ledger.starts[0] == 0 and len(ledger.starts) > 20
    assert all(a < b for a, b in zip(ledger.starts, ledger.starts[1:]))
    assert ledger.starts[-1] < runs
    assert len(ledger.durable) > 100 and len(ledger.acked) > 50  # the children did real work


# ---- flash figures -------------------------------------------------------------------

def _tx_records():
    sample = {"connectorId": 1, "transactionId": 1234, "meterValue": [{
        "timestamp": "2025-01-01T12:00:00Z", "sampledValue": [
            {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"}]}]}
    yield {"a": "StartTransaction", "r": 1,
           "p": {"connectorId": 1, "idTag": "04A2B3C4D5", "meterStart": 1000,
                 "timestamp": "2025-01-01T12:00:00Z"}}
    for _ in range(10):
        yield {"a": "MeterValues", "r": 1, "p": sample}
    yield {"a": "StopTransaction", "r": 1,
           "p": {"transactionId": 1234, "idTag": "04A2B3C4D5", "meterStop": 9000,
                 "timestamp": "2025-01-01T13:00:00Z", "reason": "Local"}}


def bench(folder=None):
    """Flash writes and bytes for one transaction (1 Start, 10 MeterValues, 1 Stop), appended
    and acked one by one (online) and all appended before any ack (offline)."""
    import tempfile
    figures = {}
    own = folder is None
    folder = folder or tempfile.mkdtemp()
    try:
        for mode in ("online", "offline"):
            path = os.path.join(folder, mode)
            j = Journal(path, Log())
            j.append({"a": "MeterValues"})  # start from the steady state: a drained journal
            j.ack(j.first()[0])
            w0 = j.writes
            peak = written = 0
            seqs = []
            for rec in _tx_records():
                b = j.bytes
                seqs.append(j.append(rec))
                written += j.bytes - b
                peak = max(peak, j.bytes)
                if mode == "online":
                    b = j.bytes
                    j.ack(seqs.pop())
                    written += max(0, j.bytes - b)
            for s in seqs:
                b = j.bytes
                j.ack(s)
                written += max(0, j.bytes - b)
                peak = max(peak, j.bytes)
            figures[mode] = {"writes": j.writes - w0, "bytes_written": written, "peak_bytes": peak,
                             "bytes_after": j.bytes}
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)
    for mode, f in figures.items():
        print("%-7s flash writes %d, bytes written %d, peak %d B, after %d B"
              % (mode, f["writes"], f["bytes_written"], f["peak_bytes"], f["bytes_after"]))
    return figures


def test_bench_figures(tmp_path):
    figures = bench(str(tmp_path))
    # 12 appends + 11 ack lines + the .end mark when drained; nothing left on flash
    assert figures["offline"]["writes"] == 24
    assert figures["online"]["writes"] == 24
    assert figures["online"]["bytes_after"] == figures["offline"]["bytes_after"] == 0
    assert figures["online"]["peak_bytes"] < 600 < figures["offline"]["peak_bytes"]


if __name__ == "__main__":
    bench()
