"""Put the firmware onto a board running MicroPython 1.29, copying only what changed.

    python -m tools.deploy [--port /dev/ttyUSB0] [--no-config] [--config FILE] [--dry-run]
                           [--romfs | --scripts-only]
    python -m tools.deploy --local DIR ...   (a folder stands in for the board's flash)

Builds the bundle (tools.bundle), asks the board for the sha256 of every bundle file in one
`mpremote exec` run, copies the files that differ, deletes `.py` files that would shadow a
copied `.mpy` (MicroPython's import looks for `name.py` before `name.mpy` in each folder) and
resets the board. `manifest.json` goes last, so a board holding the new manifest holds all of it.

Every mpremote session interrupts the running charger (Ctrl-C); `resume` keeps mpremote from
soft-resetting, which would run boot.py and wait for WiFi. The board is reset at the end so the
charger starts again; `--dry-run` writes nothing but still resets a board it has read.

A board whose MicroPython image has firmware/ frozen in (`make firmware`, README "Which board
takes which form") is refused, with the fix: a folder on flash would shadow the frozen package.
`--scripts-only` copies only boot.py, main.py and config.json there (and removes module copies
found on flash).

`--romfs` is for MicroPython built with a ROMFS partition: the modules go into it as one image
(`mpremote romfs deploy`), where their bytecode runs from flash instead of being copied into the
heap, and their copies on the flash filesystem are removed, since `firmware/` there would be
imported before `/rom/firmware`. The image is written first, so a failed deploy leaves the
board with one complete copy of the modules. boot.py, main.py and config.json stay files.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

from tools import bundle

MARK = "@@hashes@@"

# Runs on the board (MicroPython) and, for --local, under CPython: built-ins only.
_HASH_SCRIPT = """
import os, json, hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    s = hashlib.sha256()
    while True:
        c = f.read(1024)
        if not c:
            break
        s.update(c)
    f.close()
    return binascii.hexlify(s.digest()).decode()
_out = {'hashes': {}, 'dirs': {}}
for _p in %r:
    _out['hashes'][_p] = _h(_p)
for _d in %r:
    try:
        _out['dirs'][_d] = sorted(os.listdir(_d))
    except OSError:
        _out['dirs'][_d] = None
# Is firmware/ frozen into the image? Import it from '.frozen' alone: a folder on flash comes
# first on sys.path and would answer instead.
import sys
_path = sys.path[:]
for _m in [m for m in sys.modules if m == 'firmware' or m.startswith('firmware.')]:
    del sys.modules[_m]
sys.path[:] = ['.frozen']
try:
    import firmware
    _out['frozen'] = True
except ImportError:
    _out['frozen'] = False
sys.path[:] = _path
for _m in [m for m in sys.modules if m == 'firmware' or m.startswith('firmware.')]:
    del sys.modules[_m]
print(%r + json.dumps(_out))
"""

FROZEN = ("this board's MicroPython image has firmware/ frozen in; copying firmware/ onto its "
          "filesystem would shadow it (MicroPython imports from the filesystem before "
          "'.frozen'), and a board without PSRAM has no heap for the .mpy modules. Fix: update "
          "the image instead (make firmware, then esptool write-flash; README \"Which board "
          "takes which form\"), or copy only boot.py, main.py and config.json with "
          "`make deploy DEPLOY_ARGS=--scripts-only`")


class BoardError(Exception):
    pass


def hash_script(files, dirs):
    return _HASH_SCRIPT % (list(files), list(dirs), MARK)


def mpremote_path():
    path = os.path.join(os.path.dirname(sys.executable), "mpremote")
    if not os.access(path, os.X_OK):
        raise BoardError("mpremote not found next to %s: run `make setup` (it installs it)"
                         % sys.executable)
    return path


class Mpremote:
    """The board on a serial port (None: mpremote picks the first USB serial device)."""

    def __init__(self, port=None):
        self.port = port
        self.name = port or "auto-detected serial port"
        self.restarts = True

    def check(self):
        """BoardError when the named serial device is not there (said plainly, at once)."""
        if self.port and self.port.startswith("/dev/") and not os.path.exists(self.port):
            raise BoardError("no serial device %s: is the board plugged in (and powered)?"
                             " `.venv/bin/mpremote connect list` shows the ports there are"
                             % self.port)

    def _argv(self, cmds):
        self.check()
        return [mpremote_path(), "connect", self.port or "auto", "resume"] + cmds

    def run(self, code, timeout=120):
        """stdout of `code` run on the board with `mpremote exec`."""
        try:
            r = subprocess.run(self._argv(["exec", code]), capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BoardError("no answer from the board within %d s" % timeout)
        if r.returncode != 0:
            why = r.stderr.strip() or r.stdout.strip() or "mpremote failed"
            if "no device found" in why:
                raise BoardError("no board found on a USB serial port: plug it in, or name"
                                 " the port (PORT=/dev/ttyUSB0)")
            raise BoardError(why.splitlines()[-1])
        return r.stdout

    def apply(self, folder, steps, progress):
        """Run the steps (("mkdir"|"copy"|"remove"|"rmdir", path)) in one mpremote session,
        then reset."""
        cmds = []
        for op, rel in steps:
            if cmds:
                cmds.append("+")
            if op == "mkdir":
                cmds += ["fs", "mkdir", ":" + rel]
            elif op == "remove":
                cmds += ["fs", "rm", ":" + rel]
            elif op == "rmdir":
                cmds += ["fs", "rmdir", ":" + rel]
            else:
                cmds += ["fs", "cp", "-f", os.path.join(folder, rel), ":" + rel]
        cmds += ["+", "reset"] if cmds else ["reset"]
        proc = subprocess.Popen(self._argv(cmds), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        tail = []
        for line in proc.stdout:
            line = line.rstrip("\n")
            words = line.split()
            # mpremote announces each step ("cp SRC :DEST", "rm :PATH", "mkdir :PATH") before
            # doing it.
            if (len(words) in (2, 3) and words[0] in ("cp", "rm", "rmdir", "mkdir")
                    and words[-1].startswith(":")):
                progress(words[-1][1:])
            elif line.strip():
                tail.append(line)
        if proc.wait() != 0:
            raise BoardError("mpremote failed: %s\nthe board was not reset; run the deploy again"
                             % (tail[-1] if tail else "exit code %d" % proc.returncode))

    def reset(self):
        subprocess.run(self._argv(["reset"]), capture_output=True, timeout=30)

    def romfs(self, image):
        """Write `image` into the board's ROMFS partition."""
        r = subprocess.run(self._argv(["romfs", "deploy", image]), capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0 or "ROMFS is not enabled" in r.stdout:
            why = r.stderr.strip() or r.stdout.strip() or "exit code %d" % r.returncode
            raise BoardError("romfs deploy failed: %s" % why.splitlines()[-1])


class Folder:
    """A local folder standing in for the board's flash (a mounted filesystem, or tests)."""

    def __init__(self, path, python=None):
        self.path = path
        self.name = path
        self.python = python or sys.executable
        self.restarts = False

    def run(self, code, timeout=60):
        if not os.path.isdir(self.path):
            raise BoardError("%s is not a folder" % self.path)
        r = subprocess.run([self.python, "-c", code], cwd=self.path, capture_output=True,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise BoardError((r.stderr.strip() or "exit code %d" % r.returncode).splitlines()[-1])
        return r.stdout

    def apply(self, folder, steps, progress):
        for op, rel in steps:
            progress(rel)
            target = os.path.join(self.path, rel)
            if op == "mkdir":
                os.mkdir(target)
            elif op == "remove":
                os.remove(target)
            elif op == "rmdir":
                os.rmdir(target)
            else:
                shutil.copyfile(os.path.join(folder, rel), target)

    def reset(self):
        pass

    def romfs(self, image):
        raise BoardError("a folder has no ROMFS partition; deploy to a board")


def board_state(board, manifest):
    """{"hashes": {path: sha256 or None}, "dirs": {dir: [names] or None}} read from the board."""
    files = list(manifest["files"]) + [bundle.MANIFEST]
    out = board.run(hash_script(files, folders(manifest)))
    for line in out.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise BoardError("unexpected answer from the board: %r" % out[-200:])


def folders(manifest):
    """Every folder the bundle needs, parents first."""
    found = set()
    for rel in manifest["files"]:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            found.add("/".join(parts[:i]))
    return sorted(found, key=lambda d: (d.count("/"), d))


def _order(rel):
    """Copy order: modules, then data (config, CA), then boot.py/main.py; manifest.json last."""
    if rel == bundle.MANIFEST:
        return (4, rel)
    if rel in bundle.SCRIPTS:
        return (2, rel)
    return (0 if rel.split("/")[0] in bundle.DEVICE_DIRS else 1, rel)


def _in_romfs(rel):
    return rel.split("/")[0] in bundle.DEVICE_DIRS


def plan(manifest, local_manifest_sha, state, romfs=False):
    """What to do: {"copy": [rel], "mkdir": [dir], "remove": [(rel, why)], "rmdir": [dir],
    "unchanged": [rel], "extra": [rel]}.

    `state` None (no board) counts every file as changed. With `romfs` the modules are not
    copied (they go into the ROMFS image) and every file in their folders on flash is removed.
    """
    files = dict((rel, f["sha256"]) for rel, f in manifest["files"].items())
    files[bundle.MANIFEST] = local_manifest_sha
    hashes = state["hashes"] if state else {}
    dirs = state["dirs"] if state else {}
    flash = dict((rel, sha) for rel, sha in files.items() if not (romfs and _in_romfs(rel)))
    copy = sorted((rel for rel in flash if hashes.get(rel) != flash[rel]), key=_order)
    result = {"copy": copy, "unchanged": sorted(rel for rel in flash if rel not in copy),
              "mkdir": [d for d in folders(manifest) if state and dirs.get(d) is None
                        and not (romfs and _in_romfs(d))],
              "remove": [], "extra": [], "rmdir": []}
    if romfs:  # even an empty firmware/ on flash is a package that hides /rom/firmware
        result["rmdir"] = sorted((d for d in dirs if dirs[d] is not None and _in_romfs(d)),
                                 key=lambda d: (-d.count("/"), d))
    for d, names in sorted(dirs.items()):
        for name in names or ():
            rel = d + "/" + name
            if rel in dirs:
                continue  # a folder of the bundle (hal/boards): its own entry covers it
            if romfs and _in_romfs(rel):
                result["remove"].append(
                    (rel, "the modules run from ROMFS: a copy on flash would shadow /rom"))
                continue
            if rel in files:
                continue
            if name.endswith(".py") and rel[:-3] + ".mpy" in files:
                result["remove"].append(
                    (rel, "shadows %s.mpy: MicroPython imports .py before .mpy" % rel[:-3]))
            else:
                result["extra"].append(rel)
    return result


def _board_name(config):
    """hardware.board of a (validated) config file; configs without one are for the default."""
    from hal import boards
    with open(config) as f:
        return boards.name(json.load(f))


def _files(n):
    return "%d file%s" % (n, "" if n == 1 else "s")


def deploy(board, dest, include_config=True, config=None, dry_run=False, out=print, romfs=False,
           scripts_only=False):
    """Build, compare, copy. Returns the plan. BoardError when the board cannot be read
    (except in a dry run, where every file then counts as changed) and when its image has
    firmware/ frozen in (unless `scripts_only`: then no module is copied)."""
    manifest = bundle.build(dest, include_config=include_config, config=config)
    if include_config and _board_name(os.path.join(dest, "config.json")) == "sim":
        out("note: config.json names hardware.board \"sim\": the board will run the simulator,"
            " not its pins")
    image = bundle.write_romfs(dest, dest.rstrip("/" + os.sep) + ".romfs") if romfs else None
    msha = bundle.sha256_file(os.path.join(dest, bundle.MANIFEST))
    sizes = dict((rel, f["size"]) for rel, f in manifest["files"].items())
    sizes[bundle.MANIFEST] = os.path.getsize(os.path.join(dest, bundle.MANIFEST))
    out("bundle: version %s, %d files (%s)"
        % (manifest["version"], len(sizes), manifest["mpy_cross"]))
    try:
        state = board_state(board, manifest)
    except BoardError as e:
        if not dry_run:
            raise BoardError("cannot read the board (%s): %s" % (board.name, e))
        out("no board reachable (%s): every file counts as changed" % e)
        state = None
    if state and state.get("frozen") and not scripts_only:
        if not dry_run:
            board.reset()  # reading stopped the charger: start it again
        raise BoardError(FROZEN)
    p = plan(manifest, msha, state, romfs or scripts_only)
    if state is not None:
        out("board %s: %d of %d files differ" % (board.name, len(p["copy"]), len(sizes)))
    if state and "config.json" in p["copy"] and state["hashes"].get("config.json"):
        out("note: the board's config.json differs and is replaced (--no-config keeps it)")
    verb = "would copy " if dry_run else ""
    total = len(p["copy"])
    steps = [("mkdir", d) for d in p["mkdir"]]
    steps += [("copy", rel) for rel in p["copy"] if rel != bundle.MANIFEST]
    steps += [("remove", rel) for rel, _ in p["remove"]] + [("rmdir", d) for d in p["rmdir"]]
    steps += [("copy", bundle.MANIFEST)] if bundle.MANIFEST in p["copy"] else []
    counter = {"n": 0}
    why = dict(p["remove"])

    def progress(rel):
        if rel in why:
            out("%sremove %s (%s)" % ("would " if dry_run else "", rel, why[rel]))
        elif rel in p["rmdir"]:
            out("%sremove folder %s" % ("would " if dry_run else "", rel))
        elif rel in sizes:
            counter["n"] += 1
            out("%s[%d/%d] %s (%d B)" % (verb, counter["n"], total, rel, sizes[rel]))
        else:
            out("%smkdir %s" % ("would " if dry_run else "", rel))

    if image:
        out("%sROMFS image %s (%d B): firmware/ and hal/"
            % ("would write " if dry_run else "writing ", image, os.path.getsize(image)))
        if not dry_run:
            board.romfs(image)
    if dry_run:
        for _, rel in steps:
            progress(rel)
        if state is not None:
            board.reset()   # reading stopped the charger: start it again
    elif steps:
        board.apply(dest, steps, progress)
    else:
        board.reset()
    for rel in p["extra"]:
        out("note: %s is on the board but not in this bundle (left in place)" % rel)
    nbytes = sum(sizes[rel] for rel in p["copy"])
    if dry_run:
        out("dry run: %s (%d B) would be copied, %d removed; nothing written"
            % (_files(total), nbytes, len(p["remove"])))
    else:
        out("copied %s (%d B), %d unchanged, %d removed%s"
            % (_files(total), nbytes, len(p["unchanged"]), len(p["remove"]),
               "; board reset: the charger starts again" if board.restarts else ""))
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m tools.deploy",
        description="Copy the firmware bundle onto the board (only changed files).")
    ap.add_argument("--port", help="serial port, e.g. /dev/ttyUSB0 or COM3 "
                                   "(default: first USB serial device)")
    ap.add_argument("--local", metavar="DIR", help="deploy into a local folder instead of a board")
    ap.add_argument("--no-config", action="store_true", help="keep the board's config.json")
    ap.add_argument("--config", default=os.path.join(bundle.ROOT, "config.json"),
                    help="config file to deploy")
    ap.add_argument("--dest", default=os.path.join(bundle.ROOT, "build", "bundle"),
                    help="bundle folder")
    ap.add_argument("--dry-run", action="store_true",
                    help="list what would be copied; write nothing")
    ap.add_argument("--romfs", action="store_true",
                    help="put the modules into the board's ROMFS partition "
                         "(MicroPython built with ROMFS)")
    ap.add_argument("--scripts-only", action="store_true",
                    help="copy only boot.py, main.py and config.json (a board whose image has "
                         "firmware/ frozen in)")
    args = ap.parse_args(argv)
    board = Folder(args.local) if args.local else Mpremote(args.port)
    try:
        if not args.local and not args.dry_run:
            board.check()  # before the bundle is built: the likeliest mistake, said first
        deploy(board, args.dest, include_config=not args.no_config, config=args.config,
               dry_run=args.dry_run, romfs=args.romfs, scripts_only=args.scripts_only)
    except (bundle.BundleError, BoardError) as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
