"""Technician tools: the bundle, deploy (against a folder standing in for the board, and a
fake mpremote), config check/show/set, and the log reader."""
import hashlib
import json
import os
import select
import subprocess
import sys
import tarfile

import pytest

from tests.mp import MICROPYTHON, ROOT, needs_mp, run_mp
from tools import bundle, config as cfgtool, deploy, logs


def modules(folder):
    """Module paths under `folder`, packages included ("boards/sim")."""
    top = os.path.join(ROOT, folder)
    return sorted(os.path.relpath(os.path.join(d, n), top)[:-3].replace(os.sep, "/")
                  for d, _, names in os.walk(top) for n in names if n.endswith(".py"))


def rom_listing(folder):
    """What os.listdir shows of `folder` in a ROMFS image: .mpy files and package folders."""
    return sorted(set(m.split("/")[0] if "/" in m else m + ".mpy" for m in modules(folder)))


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_tool(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m"] + list(args), cwd=cwd, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("b") / "bundle")
    return dest, bundle.build(dest)


# -- bundle ---------------------------------------------------------------------------

def test_bundle_holds_every_device_module_compiled(built):
    dest, manifest = built
    for d in ("firmware", "hal"):
        for m in modules(d):
            assert d + "/" + m + ".mpy" in manifest["files"]
            assert not os.path.exists(os.path.join(dest, d, m + ".py"))
    for name in ("boot.py", "main.py", "config.json"):
        assert manifest["files"][name]["sha256"] == sha(os.path.join(ROOT, name))
    assert manifest["version"] == "0.1.0"
    assert manifest["mpy_cross"].split()[1].startswith("v1.29.")


def test_manifest_matches_the_files_and_the_tar(built):
    dest, manifest = built
    on_disk = set()
    for top, _, names in os.walk(dest):
        for n in names:
            on_disk.add(os.path.relpath(os.path.join(top, n), dest).replace(os.sep, "/"))
    assert on_disk == set(manifest["files"]) | {"manifest.json"}
    for rel, f in manifest["files"].items():
        assert f["sha256"] == sha(os.path.join(dest, rel))
        assert f["size"] == os.path.getsize(os.path.join(dest, rel))
    with open(os.path.join(dest, "manifest.json")) as f:
        assert json.load(f) == manifest
    with tarfile.open(dest + ".tar") as tar:
        assert sorted(tar.getnames()) == sorted(on_disk)
        data = tar.extractfile("hal/sim.mpy").read()
    assert hashlib.sha256(data).hexdigest() == manifest["files"]["hal/sim.mpy"]["sha256"]


def test_mpy_files_name_the_device_path_not_this_machine(built):
    dest, _ = built
    with open(os.path.join(dest, "firmware", "ws.mpy"), "rb") as f:
        data = f.read()
    assert b"firmware/ws.py" in data and ROOT.encode() not in data


def test_bundle_modules_load_on_micropython(built):
    dest, _ = built
    code = "import firmware.chargepoint, hal.sim; print(firmware.chargepoint.__file__)"
    r = run_mp(code, cwd=dest, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "firmware/chargepoint.mpy"


def test_bundle_is_reproducible(built, tmp_path):
    dest, manifest = built
    again = bundle.build(str(tmp_path / "again"))
    assert again == manifest
    with open(dest + ".tar", "rb") as a, open(str(tmp_path / "again.tar"), "rb") as b:
        assert a.read() == b.read()


def test_bundle_without_config_and_with_an_empty_version(tmp_path):
    cfg = json.load(open(os.path.join(ROOT, "config.json")))
    cfg["station"]["firmware_version"] = ""
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    m = bundle.build(str(tmp_path / "b"), include_config=False, config=str(tmp_path / "c.json"))
    assert "config.json" not in m["files"] and m["version"] == "dev"
    assert not (tmp_path / "b" / "config.json").exists()


def test_bundle_refuses_an_invalid_config_and_carries_the_ca_file(tmp_path):
    cfg = json.load(open(os.path.join(ROOT, "config.json")))
    cfg["csms"]["url"] = "http://nope"
    (tmp_path / "bad.json").write_text(json.dumps(cfg))
    with pytest.raises(bundle.BundleError, match="csms.url"):
        bundle.build(str(tmp_path / "b1"), config=str(tmp_path / "bad.json"))
    assert not (tmp_path / "b1").exists()
    cfg["csms"]["url"] = "wss://csms.example.com/ocpp"
    cfg["csms"]["ca_file"] = "certs/ca.pem"
    (tmp_path / "good.json").write_text(json.dumps(cfg))
    with pytest.raises(bundle.BundleError, match="ca.pem"):
        bundle.build(str(tmp_path / "b2"), config=str(tmp_path / "good.json"))
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    m = bundle.build(str(tmp_path / "b2"), config=str(tmp_path / "good.json"))
    assert m["files"]["certs/ca.pem"]["size"] == 28


def test_bundle_never_wipes_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    with pytest.raises(bundle.BundleError, match="not deleting"):
        bundle.build(str(tmp_path))
    assert (tmp_path / "mine.txt").read_text() == "keep"


def test_wrong_mpy_cross_version_is_refused(tmp_path):
    fake = tmp_path / "mpy-cross"
    fake.write_text("#!/bin/sh\n"
                    "echo 'MicroPython v1.22.2 on 2024-02-22; mpy-cross emitting mpy v6.2'\n")
    fake.chmod(0o755)
    with pytest.raises(bundle.BundleError, match="1.29"):
        bundle.mpy_cross_version(str(fake))


def test_bundle_command(tmp_path):
    r = run_tool("tools.bundle", "--dest", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    n = len(modules("firmware")) + len(modules("hal")) + 4   # + boot, main, config, manifest
    assert "mpy-cross: MicroPython v1.29" in r.stdout and "ESP32" in r.stdout
    assert "%d files" % n in r.stdout
    assert (tmp_path / "b.tar").is_file()


@needs_mp
def test_bundle_romfs_image_holds_every_module_and_imports_from_it(tmp_path):
    r = run_tool("tools.bundle", "--dest", str(tmp_path / "b"), "--romfs")
    assert r.returncode == 0, r.stderr
    image = str(tmp_path / "b.romfs")
    assert "romfs: %s, %d bytes" % (image, os.path.getsize(image)) in r.stdout
    code = ("import os, sys, vfs\n"
            "vfs.mount(vfs.VfsRom(open(%r, 'rb').read()), '/rom')\n"
            "sys.path.insert(0, '/rom')\n"
            "import firmware.chargepoint, hal.sim\n"
            "print(firmware.chargepoint.__file__)\n"
            "print(sorted(os.listdir('/rom/firmware')), sorted(os.listdir('/rom/hal')))" % image)
    out = run_mp(code, cwd=tmp_path, timeout=30)
    assert out.returncode == 0, out.stderr
    where, listing = out.stdout.strip().splitlines()
    assert where == "/rom/firmware/chargepoint.mpy"
    assert listing == str(rom_listing("firmware")) + " " + str(rom_listing("hal"))


def test_bundle_romfs_needs_compiled_modules(tmp_path):
    r = run_tool("tools.bundle", "--dest", str(tmp_path / "b"), "--source", "--romfs")
    assert r.returncode == 2 and "--romfs needs compiled modules" in r.stderr


def test_makefile_targets():
    r = subprocess.run(["make", "-n", "-C", ROOT, "bundle"], capture_output=True, text=True)
    assert r.returncode == 0 and "-m tools.bundle" in r.stdout
    r = subprocess.run(["make", "-n", "-C", ROOT, "deploy", "PORT=/dev/ttyUSB7",
                        "DEPLOY_ARGS=--dry-run"], capture_output=True, text=True)
    assert r.returncode == 0 and "-m tools.deploy --port /dev/ttyUSB7 --dry-run" in r.stdout


# -- deploy ---------------------------------------------------------------------------

def _listed(out):
    """Paths of the "would copy [i/n] PATH (N B)" lines."""
    return [line.split()[3] for line in out.splitlines() if line.startswith("would copy [")]


@pytest.mark.parametrize("no_config", [False, True])
def test_dry_run_without_a_board_lists_every_file(tmp_path, no_config):
    args = ["tools.deploy", "--dry-run", "--dest", str(tmp_path / "b"),
            "--port", str(tmp_path / "ttyNONE")]
    r = run_tool(*(args + (["--no-config"] if no_config else [])))
    assert r.returncode == 0, r.stderr
    listed = _listed(r.stdout)
    assert "no board reachable" in r.stdout
    for name in ["boot.py", "main.py"] + ["firmware/%s.mpy" % m for m in modules("firmware")]:
        assert name in listed
    assert ("config.json" in listed) is not no_config
    assert listed[-1] == "manifest.json" and listed[-3:-1] == ["boot.py", "main.py"]
    assert not (tmp_path / "ttyNONE").exists()


def test_deploy_copies_only_what_changed(tmp_path):
    board = tmp_path / "flash"
    board.mkdir()
    lines = []
    dest = str(tmp_path / "b")
    p = deploy.deploy(deploy.Folder(str(board)), dest, out=lines.append)
    manifest = json.load(open(os.path.join(dest, "manifest.json")))
    assert p["mkdir"] == ["firmware", "hal", "hal/boards"] and p["unchanged"] == []
    assert sorted(p["copy"]) == sorted(list(manifest["files"]) + ["manifest.json"])
    assert sha(str(board / "firmware" / "ws.mpy")) == sha(os.path.join(dest, "firmware", "ws.mpy"))
    first = "[1/%d] firmware/" % len(p["copy"])
    assert any(line.startswith(first) and line.endswith(" B)") for line in lines)

    p = deploy.deploy(deploy.Folder(str(board)), dest, out=lines.append)
    assert p["copy"] == [] and p["remove"] == []

    (board / "hal" / "sim.mpy").write_bytes(b"old")
    (board / "firmware" / "ws.py").write_text("print('stale source')\n")   # would win over ws.mpy
    (board / "firmware" / "gone.mpy").write_bytes(b"x")
    del lines[:]
    p = deploy.deploy(deploy.Folder(str(board)), dest, out=lines.append)
    assert p["copy"] == ["hal/sim.mpy"]
    assert [rel for rel, _ in p["remove"]] == ["firmware/ws.py"]
    assert not (board / "firmware" / "ws.py").exists()
    assert (board / "firmware" / "gone.mpy").exists()
    assert p["extra"] == ["firmware/gone.mpy"]
    size = os.path.getsize(os.path.join(dest, "hal", "sim.mpy"))
    assert "[1/1] hal/sim.mpy (%d B)" % size in lines
    assert any("remove firmware/ws.py" in line for line in lines)


class RomFolder(deploy.Folder):
    """A folder with a ROMFS partition standing in: the image written lands in `image`."""

    def __init__(self, path, events):
        super().__init__(path)
        self.image = None
        self.events = events

    def romfs(self, image):
        with open(image, "rb") as f:
            self.image = f.read()
        self.events.append("image written")


def test_deploy_romfs_writes_the_image_first_then_clears_the_modules_from_flash(tmp_path):
    board = tmp_path / "flash"
    board.mkdir()
    dest = str(tmp_path / "b")
    deploy.deploy(deploy.Folder(str(board)), dest, out=lambda s: None)   # modules on flash first
    (board / "firmware" / "ws.py").write_text("print('stale source')\n")
    events = []
    p = deploy.deploy(RomFolder(str(board), events), dest, out=events.append, romfs=True)
    with open(dest + ".romfs", "rb") as f:
        image = f.read()
    first_removal = min(i for i, e in enumerate(events) if str(e).startswith("remove"))
    assert events.index("image written") < first_removal
    assert p["copy"] == []   # boot.py, main.py, config.json and the manifest are unchanged
    removed = [rel for rel, _ in p["remove"]]
    assert {"firmware/ws.py", "firmware/ws.mpy", "hal/sim.mpy"} <= set(removed)
    # An empty firmware/ would still be imported (as a namespace package) before /rom/firmware.
    assert p["rmdir"] == ["hal/boards", "firmware", "hal"]   # deepest first
    assert not (board / "firmware").exists() and not (board / "hal").exists()
    assert (board / "main.py").is_file() and (board / "config.json").is_file()
    assert events[-1].startswith("copied 0 files") and image.startswith(b"\xd2\xcd\x31")


def test_deploy_romfs_to_a_board_without_a_partition_keeps_its_modules(tmp_path):
    board = tmp_path / "flash"
    board.mkdir()
    dest = str(tmp_path / "b")
    deploy.deploy(deploy.Folder(str(board)), dest, out=lambda s: None)
    with pytest.raises(deploy.BoardError, match="no ROMFS partition"):
        deploy.deploy(deploy.Folder(str(board)), dest, out=lambda s: None, romfs=True)
    assert (board / "firmware" / "ws.mpy").is_file()


def test_deploy_romfs_dry_run_lists_the_image_and_the_removals(tmp_path):
    board = tmp_path / "flash"
    board.mkdir()
    dest = str(tmp_path / "b")
    deploy.deploy(deploy.Folder(str(board)), dest, out=lambda s: None)
    lines = []
    deploy.deploy(deploy.Folder(str(board)), dest, out=lines.append, romfs=True, dry_run=True)
    assert any(line.startswith("would write ROMFS image %s.romfs" % dest) for line in lines)
    assert "would remove folder firmware" in lines and "would remove folder hal" in lines
    assert (board / "firmware" / "ws.mpy").is_file()   # nothing written


def test_no_config_keeps_the_boards_config(tmp_path):
    board = tmp_path / "flash"
    board.mkdir()
    (board / "config.json").write_text('{"site": "theirs"}')
    p = deploy.deploy(deploy.Folder(str(board)), str(tmp_path / "b"), include_config=False,
                      out=lambda s: None)
    assert "config.json" not in p["copy"]
    assert (board / "config.json").read_text() == '{"site": "theirs"}'


@needs_mp
def test_board_hash_script_runs_on_micropython(built, tmp_path):
    dest, manifest = built
    board = tmp_path / "flash"
    (board / "firmware").mkdir(parents=True)
    with open(os.path.join(dest, "firmware", "ws.mpy"), "rb") as f:
        (board / "firmware" / "ws.mpy").write_bytes(f.read())
    (board / "firmware" / "ws.py").write_text("")
    states = [deploy.board_state(deploy.Folder(str(board), python=py), manifest)
              for py in (sys.executable, MICROPYTHON)]
    assert states[0] == states[1]
    assert states[1]["hashes"]["firmware/ws.mpy"] == manifest["files"]["firmware/ws.mpy"]["sha256"]
    assert states[1]["hashes"]["boot.py"] is None
    assert states[1]["dirs"] == {"firmware": ["ws.mpy", "ws.py"], "hal": None, "hal/boards": None}


def test_unreachable_board_fails_a_real_deploy(tmp_path):
    r = run_tool("tools.deploy", "--dest", str(tmp_path / "b"),
                 "--port", str(tmp_path / "ttyNONE"))
    assert r.returncode == 1 and "cannot read the board" in r.stderr


# A board on a pseudo-terminal: the raw REPL protocol mpremote speaks (with raw-paste), in
# front of a MicroPython unix process that executes what mpremote sends inside a folder
# standing in for the board's flash. `machine.reset()` fails there and is only recorded.
DEVICE_LOOP = r"""
import sys
g = {}
while True:
    n = sys.stdin.readline()
    if not n:
        break
    code = sys.stdin.buffer.read(int(n)).decode()
    err = None
    try:
        exec(code, g)
    except BaseException as e:
        err = e
    sys.stdout.write(chr(4))
    if err is not None:
        sys.print_exception(err, sys.stdout)
    sys.stdout.write(chr(4))
"""


class PtyBoard:
    WINDOW = 256

    def __init__(self, folder):
        import pty
        import threading
        import tty
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.execs = []
        self.dev = subprocess.Popen([MICROPYTHON, "-c", DEVICE_LOOP], cwd=folder,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _run(self, code):
        self.execs.append(code.decode())
        self.dev.stdin.write(b"%d\n" % len(code) + code)
        self.dev.stdin.flush()
        out = b""
        while out.count(b"\x04") < 2:
            c = self.dev.stdout.read(1)
            if not c:
                break
            out += c
        return out + b">"

    def _serve(self):
        raw, paste, code = False, False, b""

        def send(b):
            try:
                os.write(self.master, b)
            except OSError:
                pass   # the test is over
        while not self.stopped:
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            i = 0
            while i < len(data):
                b = data[i:i + 1]
                i += 1
                if b == b"\x01" and not paste:   # Ctrl-A: (re)enter the raw REPL
                    raw, code = True, b""
                    send(b"raw REPL; CTRL-B to exit\r\n>")
                elif not raw:
                    pass
                elif paste:
                    if b == b"\x04":       # end of the pasted code: acknowledge, run
                        send(b"\x04")
                        send(self._run(code))
                        paste, code = False, b""
                    else:
                        code += b
                        if len(code) % self.WINDOW == 0:
                            send(b"\x01")   # room for one more window
                elif b == b"\x05" and not code:   # "\x05A\x01": raw-paste request
                    i += 2
                    send(b"R\x01" + self.WINDOW.to_bytes(2, "little"))
                    paste = True
                elif b == b"\x02":
                    raw = False
                elif b == b"\x03":
                    code = b""
                elif b == b"\x04":
                    send(b"OK")
                    send(self._run(code))
                    code = b""
                else:
                    code += b

    def close(self):
        # Stop the thread before closing: a reused descriptor number must not be read by it.
        self.stopped = True
        self.dev.kill()
        self.dev.wait()
        self.thread.join(5)
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def pty_board(tmp_path):
    if not os.access(MICROPYTHON, os.X_OK) or not hasattr(os, "openpty"):
        pytest.skip("needs micropython and a pseudo-terminal")
    folder = tmp_path / "flash"
    folder.mkdir()
    board = PtyBoard(str(folder))
    yield board, folder
    board.close()


def test_deploy_through_mpremote(pty_board, tmp_path):
    board, flash = pty_board
    dest = str(tmp_path / "b")
    r = run_tool("tools.deploy", "--port", board.port, "--dest", dest)
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.load(open(os.path.join(dest, "manifest.json")))
    for rel in list(manifest["files"]) + ["manifest.json"]:
        assert sha(str(flash / rel)) == sha(os.path.join(dest, rel)), rel
    n = len(manifest["files"]) + 1
    assert "[1/%d] firmware/__init__.mpy (35 B)" % n in r.stdout.splitlines()
    assert "[%d/%d] manifest.json" % (n, n) in r.stdout
    assert "machine.reset()" in board.execs[-1]
    # The hashes come from one exec; the session copies, then resets.
    assert sum("hashlib.sha256()" in c and "json.dumps" in c for c in board.execs) == 1

    (flash / "firmware" / "ws.py").write_text("print('stale source')\n")   # would win over ws.mpy
    (flash / "hal" / "sim.mpy").write_bytes(b"old")
    del board.execs[:]
    r = run_tool("tools.deploy", "--port", board.port, "--dest", dest)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "board %s: 1 of %d files differ" % (board.port, n) in r.stdout
    assert "[1/1] hal/sim.mpy (%d B)" % manifest["files"]["hal/sim.mpy"]["size"] in r.stdout
    assert not (flash / "firmware" / "ws.py").exists()
    assert sha(str(flash / "hal" / "sim.mpy")) == manifest["files"]["hal/sim.mpy"]["sha256"]
    writes = [c for c in board.execs if "open(" in c and "'wb'" in c]
    assert len(writes) == 1 and "hal/sim.mpy" in writes[0]

    before = dict((p, sha(str(p))) for p in flash.rglob("*") if p.is_file())
    (flash / "boot.py").write_text("# changed on the board\n")
    before[flash / "boot.py"] = sha(str(flash / "boot.py"))
    del board.execs[:]
    r = run_tool("tools.deploy", "--port", board.port, "--dest", dest, "--dry-run")
    assert r.returncode == 0 and "would copy [1/1] boot.py" in r.stdout
    assert dict((p, sha(str(p))) for p in flash.rglob("*") if p.is_file()) == before
    assert "machine.reset()" in board.execs[-1]


def test_logs_through_mpremote(pty_board, tmp_path):
    board, flash = pty_board
    fabricate(flash)
    r = run_tool("tools.logs", "--port", board.port)
    assert r.returncode == 0, r.stderr
    reset = "(board reset: the charger starts again)\n"
    assert r.stdout == logs.read(deploy.Folder(str(flash))) + reset
    assert "machine.reset()" in board.execs[-1]
    r = run_tool("tools.logs", "--port", board.port, "--no-restart")
    assert "machine.reset()" not in board.execs[-1] and "board reset" not in r.stdout


# -- config ---------------------------------------------------------------------------

def good_text():
    with open(os.path.join(ROOT, "config.json")) as f:
        return f.read()


def mutated(path, value=None, delete=False):
    cfg = json.loads(good_text())
    node = cfg
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    if delete:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return json.dumps(cfg, indent=2)


BAD_CONFIGS = [
    ("trailing comma", good_text().replace('"phases": 1\n', '"phases": 1,\n'), "line 18:"),
    ("single quotes", good_text().replace('"CP_1"', "'CP_1'"), "line 4:"),
    ("missing comma", good_text().replace('"CP_1",', '"CP_1"'), "line 5:"),
    ("bad URL", mutated("csms.url", "http://csms/ocpp"), "csms.url"),
    ("missing required", mutated("csms.id", delete=True), "csms.id is missing"),
    ("wrong type string for number", mutated("station.max_current", "32"), "station.max_current"),
    ("wrong type string for bool", mutated("csms.verify_tls", "yes"), "csms.verify_tls"),
    ("out of range", mutated("station.connectors", 9), "station.connectors"),
    ("string too long", mutated("station.vendor", "v" * 21), "station.vendor"),
    ("unknown key", mutated("csms.uri", "ws://x/y"), "csms.uri"),
    ("unknown section", mutated("netwrk", {}), "netwrk"),
    ("bad pin number", mutated("hardware.relay.pin", 40), "hardware.relay.pin"),
    ("pin as text", mutated("hardware.lock.sense_pin", "GPIO34"), "hardware.lock.sense_pin"),
    ("bad meter type", mutated("hardware.meter.type", "sdm230"), "hardware.meter.type"),
    ("bad parity", mutated("hardware.meter.parity", "mark"), "hardware.meter.parity"),
    ("ocpp out of range", mutated("ocpp.HeartbeatInterval", 0), "ocpp.HeartbeatInterval"),
    ("ocpp bad measurand", mutated("ocpp.MeterValuesSampledData", "Energy.Active"),
     "ocpp.MeterValuesSampledData"),
    ("ocpp unknown key", mutated("ocpp.HeartBeatInterval", 60), "ocpp.HeartBeatInterval"),
    ("ocpp read-only key", mutated("ocpp.GetConfigurationMaxKeys", 10),
     "ocpp.GetConfigurationMaxKeys"),
    ("bad log level", mutated("log.level", "verbose"), "log.level"),
    ("wifi timeout", mutated("wifi.timeout_s", 1), "wifi.timeout_s"),
    ("empty data_dir", mutated("data_dir", ""), "data_dir"),
    ("not an object", "[1, 2]", "one JSON object"),
]


@pytest.mark.parametrize("text,expected", [b[1:] for b in BAD_CONFIGS],
                         ids=[b[0] for b in BAD_CONFIGS])
def test_config_check_names_each_problem(tmp_path, capsys, text, expected):
    path = str(tmp_path / "config.json")
    with open(path, "w") as f:
        f.write(text)
    assert cfgtool.main(["check", path]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(path + ": ") and expected in line for line in out), out
    assert "problem" in out[-1]


def test_config_check_command(tmp_path):
    r = run_tool("tools.config", "check", "config.json")
    assert r.returncode == 0 and r.stdout.strip() == "config.json: OK"
    text = mutated("csms.url", "ftp://x").replace('"phases": 1', '"phases": 7')
    (tmp_path / "config.json").write_text(text)
    r = run_tool("tools.config", "check", cwd=str(tmp_path))
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1].startswith("config.json: 2 problems")
    r = run_tool("tools.config", "check", str(tmp_path / "missing.json"))
    assert r.returncode == 1 and "cannot read the file" in r.stdout


def test_config_show_fills_defaults(tmp_path, capsys):
    cfg = json.loads(good_text())
    del cfg["csms"]["verify_tls"], cfg["hardware"]["meter"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert cfgtool.main(["show", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["csms"]["verify_tls"] is True and shown["csms"]["max_message"] == 8192
    assert shown["hardware"]["meter"]["baudrate"] == 9600
    assert shown["ocpp"]["HeartbeatInterval"] == 300 and shown["ocpp"]["ResetRetries"] == 1
    assert "GetConfigurationMaxKeys" not in shown["ocpp"]   # read-only: not the technician's
    path.write_text(mutated("log.level", "loud"))
    assert cfgtool.main(["show", str(path)]) == 1


def _file(tmp_path, text=None):
    path = tmp_path / "config.json"
    path.write_text(text if text is not None else good_text())
    return path


def test_config_set_changes_one_line_and_keeps_the_format(tmp_path):
    path = _file(tmp_path)
    assert cfgtool.main(["set", "ocpp.HeartbeatInterval", "60", "--config", str(path)]) == 0
    before, after = good_text().splitlines(), path.read_text().splitlines()
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after) if a != b] == \
        [('    "HeartbeatInterval": 300,', '    "HeartbeatInterval": 60,')]
    assert path.read_text().endswith("}\n")
    assert cfgtool.main(["set", "csms.id", "0042", "--config", str(path)]) == 0
    assert cfgtool.main(["set", "hardware.relay.feedback_pin", "25", "--config", str(path)]) == 0
    assert cfgtool.main(["set", "hardware.lock.unlock_pin", "null", "--config", str(path)]) == 0
    # A board has no CA store: wss:// needs the CA file first.
    assert cfgtool.main(["set", "csms.url", "wss://csms.example.com/ocpp",
                         "--config", str(path)]) == 1
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert cfgtool.main(["set", "csms.ca_file", "ca.pem", "--config", str(path)]) == 0
    assert cfgtool.main(["set", "csms.url", "wss://csms.example.com/ocpp",
                         "--config", str(path)]) == 0
    cfg = json.loads(path.read_text())
    assert cfg["csms"]["id"] == "0042" and cfg["hardware"]["relay"]["feedback_pin"] == 25
    assert cfg["hardware"]["lock"]["unlock_pin"] is None
    assert cfg["csms"]["url"] == "wss://csms.example.com/ocpp"
    assert list(cfg) == list(json.loads(good_text()))
    assert sorted(os.listdir(str(tmp_path))) == ["ca.pem", "config.json"]  # no temporary file


@pytest.mark.parametrize("key,value,expected", [
    ("csms.url", "htp://csms/ocpp", "csms.url"),
    ("station.serial", "123", "quote it"),
    ("hardware.relay.pin", "99", "hardware.relay.pin"),
    ("ocpp.HeartbeatInterval", "0", "ocpp.HeartbeatInterval"),
    ("hardware.relay.pn", "5", "did you mean hardware.relay.pin"),
    ("csms.url.host", "x", "unknown key"),
])
def test_config_set_refuses_an_invalid_result(tmp_path, capsys, key, value, expected):
    path = _file(tmp_path)
    assert cfgtool.main(["set", key, value, "--config", str(path)]) == 1
    out = capsys.readouterr().out
    assert expected in out and "nothing changed" in out
    assert path.read_text() == good_text()
    assert os.listdir(str(tmp_path)) == ["config.json"]


def test_config_set_keeps_another_indentation_and_refuses_a_broken_file(tmp_path):
    path = _file(tmp_path, json.dumps(json.loads(good_text()), indent=4))
    assert cfgtool.main(["set", "log.level", "debug", "--config", str(path)]) == 0
    assert path.read_text() == json.dumps(json.loads(mutated("log.level", "debug")), indent=4)
    broken = good_text().replace('"CP_1",', '"CP_1"')
    path = _file(tmp_path, broken)
    assert cfgtool.main(["set", "log.level", "debug", "--config", str(path)]) == 1
    assert path.read_text() == broken


# -- logs -----------------------------------------------------------------------------

def fabricate(root, data_dir="store"):
    store = root / data_dir
    (store / "journal").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"data_dir": data_dir}))
    (root / "manifest.json").write_text(json.dumps({"version": "1.2.3", "files": {}}))
    (store / "log.1").write_text("10:00:00 I cp: older one\n10:00:01 I cp: older two\n")
    (store / "log.0").write_bytes(b"11:00:00 I cp: newer one\n11:00:01 W ws: \xff broken byte\n"
                                  b"11:00:02 E cp: newest")
    (store / "keys.json").write_text("{}")
    # seq 1 acked by "A 1", 3 acked out of order by "X 3", 2 and 4 pending, "5 to" is torn.
    (store / "journal" / "00000001.log").write_text(
        '1 aaaaaaaa [2,"1","StartTransaction",{}]\n'
        '2 bbbbbbbb [2,"2","MeterValues",{}]\n'
        'A 1 cccccccc\n')
    (store / "journal" / "00000003.log").write_text(
        '3 dddddddd [2,"3","MeterValues",{}]\n'
        'X 3 eeeeeeee\n'
        '4 ffffffff [2,"4","StopTransaction",{}]\n'
        '5 to')
    (store / "journal" / "meta.json").write_text('{"tx": 1}')
    return store


def _journal_bytes(store):
    return sum(os.path.getsize(str(p)) for p in (store / "journal").iterdir())


def test_logs_from_a_local_folder(tmp_path, capsys):
    store = fabricate(tmp_path)
    assert logs.main(["--local", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    order = [lines.index(s) for s in ("10:00:00 I cp: older one", "10:00:01 I cp: older two",
                                      "11:00:00 I cp: newer one", "11:00:02 E cp: newest")]
    assert order == sorted(order)
    assert "firmware version: 1.2.3" in lines and "data_dir: store" in lines
    assert "  keys.json 2 B" in lines and "  journal/" in lines
    journal = "== journal store/journal: 3 files, %d B, 2 records pending" % _journal_bytes(store)
    assert journal in lines
    assert "board reset" not in out


@needs_mp
def test_logs_board_script_runs_on_micropython(tmp_path):
    fabricate(tmp_path)
    cpython = logs.read(deploy.Folder(str(tmp_path)))
    micropython = logs.read(deploy.Folder(str(tmp_path), python=MICROPYTHON))
    assert micropython == cpython and "2 records pending" in micropython


def test_logs_of_a_charger_that_never_ran(tmp_path):
    (tmp_path / "config.json").write_text("{ broken")
    r = run_tool("tools.logs", "--local", str(tmp_path))
    assert r.returncode == 0
    assert "data_dir: data" in r.stdout and "== data/log.0: none" in r.stdout
    assert "== journal data/journal: none" in r.stdout
    r = run_tool("tools.logs", "--local", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and "cannot read" in r.stderr


def test_logs_prints_dates_not_raw_epochs(tmp_path, capsys):
    from firmware.log import Log
    store = fabricate(tmp_path)
    (store / "log.1").write_text("1764761310 11:28:30 I cp: from older firmware\n")
    (store / "log.0").unlink()
    log = Log("info", lambda: 1764761400, str(store))
    log.warn("ws", "a line of today")
    log.flush()
    assert logs.main(["--local", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2025-12-03T11:28:30Z I cp: from older firmware" in lines
    assert "2025-12-03T11:30:00Z W ws: a line of today" in lines
    assert not any(line.startswith("17647") for line in lines)


def test_csms_reports_a_port_in_use_in_one_line(capfd):
    import socket
    from tools import csms
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        assert csms.main(["--port", str(port), "--quiet"]) == 1
    finally:
        busy.close()
    err = capfd.readouterr().err
    assert err == ("csms: cannot listen on 127.0.0.1:%d: port %d is in use (another Central"
                   " System?); choose another with --port\n" % (port, port))


def test_csms_listens_on_this_machine_only_by_default():
    from tools import csms
    assert csms._parse_args([]).host == "127.0.0.1"


def test_deploy_names_a_missing_serial_device_plainly(capsys):
    assert deploy.main(["--port", "/dev/ttyNOSUCH0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("deploy: no serial device /dev/ttyNOSUCH0: is the board plugged in")
