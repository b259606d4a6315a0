# Works a journal until killed, reporting on stdout what has become durable
# (cwd = repository root):
#   micropython|python3 tests/unit/journal_crash_child.py FOLDER SEED OPS
# Lines: "P seq,nonce,action ..." pending at start; "M n" runs counted in the meta map (then n + 1
# saved); "D seq nonce action" once append returned; "K seq" once ack returned; "T" before a
# thin() starts; "E" at a normal end.
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the package lives in cwd

from firmware.journal import Journal  # noqa: E402
from tests.fakes import Log  # noqa: E402


class Quiet(Log):
    """Keeps nothing: the child's stdout is its report."""

    def _add(self, level, tag, msg):
        pass


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    folder, seed, ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    state = [seed & 0x7FFFFFFF or 1]

    def rnd(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n

    j = Journal(folder, Quiet(), max_bytes=16 * 1024)
    out("P " + " ".join("%d,%d,%s" % (s, r.get("n", -1), r.get("a")) for s, r in j.pending()))
    starts = j.meta("starts", 0)
    j.set_meta("starts", starts + 1)
    out("M %d" % starts)
    for _ in range(ops):
        roll = rnd(100)
        if len(j) < 3 or (roll < 55 and len(j) < 30):
            kind = rnd(10)
            action = ("StartTransaction" if kind == 0
                      else "StopTransaction" if kind == 1 else "MeterValues")
            nonce = rnd(1000000)
            seq = j.append({"a": action, "n": nonce, "p": "x" * rnd(120)})
            out("D %d %d %s" % (seq, nonce, action))
        elif roll < 90:
            seq = j.first()[0]
            j.ack(seq)
            out("K %d" % seq)
        elif roll < 99:
            pick = rnd(len(j))
            seq = None
            walk = j.pending()
            for i, item in enumerate(walk):
                if i == pick:
                    seq = item[0]
                    break
            walk.close()  # closes the segment it was reading
            if seq is not None and j.ack(seq):
                out("K %d" % seq)
        else:
            out("T")
            j.thin()
    out("E")


main()
