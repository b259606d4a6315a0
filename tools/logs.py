"""Print the charger's log ring and journal status from the board.

    python -m tools.logs [--port /dev/ttyUSB0] [--no-restart]
    python -m tools.logs --local DIR     (DIR holds config.json, as the board's root folder does)

One small script runs on the board with `mpremote exec` (under CPython for --local): it reads
data_dir from the board's config.json (default "data"), prints `<data_dir>/log.1` (older half)
then `<data_dir>/log.0` (newest last), lists data_dir, and sums up `<data_dir>/journal/`:
files, bytes, and the records still waiting for the Central System (counted from the record
and ack lines; CRCs are not checked, so a torn line may count) and the messages held after
running out of attempts (firmware/outbox.py), from the journal's meta.json.

Reading the board interrupts the running charger; it is reset afterwards so it starts again
(--no-restart leaves it at the REPL).
"""
import argparse
import re
import sys
import time

from tools.deploy import BoardError, Folder, Mpremote

# Runs on the board (MicroPython) and, for --local, under CPython: built-ins only, and
# line by line so a long log never has to fit in RAM.
BOARD_SCRIPT = """
import os, json
def _cfg(p, key, default):
    try:
        with open(p) as f:
            v = json.load(f).get(key)
        return v if isinstance(v, str) and v else default
    except Exception:
        return default
def _size(p):
    try:
        return os.stat(p)[6]
    except OSError:
        return -1
def _isdir(p):
    try:
        return os.stat(p)[0] & 0x4000 != 0
    except OSError:
        return False
_d = _cfg('config.json', 'data_dir', 'data')
print('firmware version: %s' % _cfg('manifest.json', 'version', 'unknown (no manifest.json)'))
print('data_dir: %s' % _d)
try:
    _names = sorted(os.listdir(_d))
except OSError:
    _names = None
if _names is None:
    print('  (missing: the charger has not started yet or data_dir is wrong)')
else:
    for _n in _names:
        _p = _d + '/' + _n
        print('  %s' % (_n + '/' if _isdir(_p) else '%s %d B' % (_n, _size(_p))))
for _n in ('log.1', 'log.0'):
    _p = _d + '/' + _n
    try:
        _f = open(_p, 'rb')
    except OSError:
        print('== %s: none' % _p)
        continue
    print('== %s (%d B)' % (_p, _size(_p)))
    for _l in _f:
        try:
            print(_l.rstrip(b'\\r\\n').decode())
        except UnicodeError:
            print(repr(_l))
    _f.close()
_j = _d + '/journal'
try:
    _names = sorted(os.listdir(_j))
except OSError:
    _names = None
if _names is None:
    print('== journal %s: none' % _j)
else:
    _files = _bytes = 0
    _done = -1
    _recs = {}
    _xs = {}
    for _n in _names:
        _p = _j + '/' + _n
        _files += 1
        _bytes += max(_size(_p), 0)
        if _n.endswith('.end'):
            try:
                _done = max(_done, int(_n[:-4]) - 1)
            except ValueError:
                pass
        elif _n.endswith('.log'):
            _f = open(_p, 'rb')
            for _l in _f:
                _w = _l.split(b' ', 2)
                try:
                    if _w[0] == b'A':
                        _done = max(_done, int(_w[1]))
                    elif _w[0] == b'X':
                        _xs[int(_w[1])] = 1
                    elif _w[0] != b'N' and len(_w) == 3:
                        _recs[int(_w[0])] = 1
                except (ValueError, IndexError):
                    pass
            _f.close()
    _pending = 0
    for _s in _recs:
        if _s > _done and _s not in _xs:
            _pending += 1
    print('== journal %s: %d files, %d B, %d record%s pending'
          % (_j, _files, _bytes, _pending, '' if _pending == 1 else 's'))
    try:
        with open(_j + '/meta.json') as _f:
            _held = json.load(_f).get('held') or []
    except Exception:
        _held = []
    for _h in _held:
        print('  HELD %s #%s (last error %s): the Central System refused it every attempt;'
              ' kept, sent again after a reconnect or reboot' % (_h[1], _h[0], _h[2]))
"""


def read(board):
    """The status text of `board` (a tools.deploy Mpremote or Folder), ring lines dated."""
    return dated(board.run(BOARD_SCRIPT))


_RING_LINE = re.compile(r"^(\d+) (\d\d:\d\d:\d\d )?(.*)$")


def dated(text):
    """Ring lines (`<unix seconds> <line>`) as a person reads them: the line, which carries
    its ISO 8601 UTC time; a line of older firmware (hh:mm:ss only) gets its date from the
    stored seconds. Other lines stay as they are."""
    out = []
    for line in text.splitlines(True):
        m = _RING_LINE.match(line)
        if m and m.group(2):
            t = int(m.group(1))
            line = time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime(t)) + m.group(3) + "\n"
        elif m and (re.match(r"\d{4}-\d\d-\d\dT", m.group(3)) or m.group(3).startswith("unset:")):
            line = m.group(3) + "\n"
        out.append(line)
    return "".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.logs",
                                 description="Print the charger's logs and journal status.")
    ap.add_argument("--port",
                    help="serial port, e.g. /dev/ttyUSB0 (default: first USB serial device)")
    ap.add_argument("--local", metavar="DIR",
                    help="read a local folder laid out like the board (holds config.json)")
    ap.add_argument("--no-restart", action="store_true",
                    help="leave the board at the REPL afterwards")
    args = ap.parse_args(argv)
    board = Folder(args.local) if args.local else Mpremote(args.port)
    try:
        text = read(board)
    except BoardError as e:
        print("logs: cannot read %s: %s" % (board.name, e), file=sys.stderr)
        return 1
    sys.stdout.write(text)
    if not args.no_restart and board.restarts:
        board.reset()   # reading stopped the charger: start it again
        print("(board reset: the charger starts again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
