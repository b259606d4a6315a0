"""firmware.install (ustar reader, vendor signature, install and manifest check), the OTA
image writer with hal/ota.py's file-backed partitions, and the loader in main.py (slot
choice, signature check, start counting, rollback, reload), each run under MicroPython
and CPython."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from tests import signing
from tools import bundle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTERPRETERS = {
    "mp": os.path.join(os.path.dirname(sys.executable), "micropython"),
    "cpy": sys.executable,
}

# Reads operations as JSON on stdin, prints one JSON result line per operation.
DRIVER = r"""
import sys, json, hashlib, binascii
from firmware import install, vendorsig
from firmware.compat import asyncio
import main as loader

def entries(path, max_file, max_entries, skip):
    out = []
    with open(path, "rb") as f:
        tar = install.TarReader(f, max_file, max_entries)
        while True:
            e = tar.next()
            if e is None:
                return out
            if e[0] in skip:
                out.append([e[0], e[1], e[2], None])
                continue
            h = hashlib.sha256()
            n = 0
            while True:
                b = tar.read()
                if not b:
                    break
                n += len(b)
                h.update(b)
            out.append([e[0], e[1], n, binascii.hexlify(h.digest()).decode()])

def run(op, args):
    if op == "tar":
        return entries(*args)
    if op == "install":
        roots = vendorsig.load_keys(args[3])
        return asyncio.run(install.install(args[0], args[1], roots, args[2]))
    if op == "image":
        from hal import ota
        Part = ota.partition_class({"_dir": args[0]})
        nxt = Part(Part.RUNNING).get_next_update()
        version = asyncio.run(install.install_image(args[1], nxt, args[2],
                                                    vendorsig.load_keys(args[3])))
        nxt.set_boot()
        return [version, nxt.info()[4]]
    if op == "slot":
        return vendorsig.check_slot(args[0], vendorsig.load_keys(args[1]))
    if op == "check":
        return install.check_manifest(args[0], args[1], *args[2:])
    if op == "decide":
        return list(loader.decide(args[0], lambda s: s in args[1]))
    if op == "data_dir":
        return loader.data_dir(args[0])
    if op == "select":
        return loader.select(args[0])
    if op == "keys":
        return len(vendorsig.load_keys(args[0]))
    if op == "otadata":
        from hal import ota
        try:
            return ota._read(args[0])
        except ValueError as e:
            return "ValueError: %s" % e

for op, args in json.loads(sys.stdin.read()):
    try:
        print(json.dumps(["ok", run(op, args)]))
    except install.InstallError as e:
        print(json.dumps(["error", str(e)]))
"""


@pytest.fixture(params=["mp", "cpy"])
def run(request):
    exe = INTERPRETERS[request.param]
    if not os.access(exe, os.X_OK):
        pytest.skip("%s not found" % exe)

    def call(ops):
        out = subprocess.run([exe, "-c", DRIVER], input=json.dumps(ops), cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        lines = out.stdout.splitlines()
        # loader.select() prints its own lines: keep only the results
        results = [json.loads(line) for line in lines if line.startswith('["')]
        assert out.returncode == 0 and len(results) == len(ops), out.stdout + out.stderr
        return results
    call.name = request.param
    return call


def sha(data):
    return hashlib.sha256(data).hexdigest()


# ---- tar building --------------------------------------------------------------------------

def header(name, size=0, kind=b"0", prefix=b"", size_field=None, checksum_delta=0):
    """One raw ustar header block, checksum computed (and optionally spoiled)."""
    h = bytearray(512)
    h[0:len(name)] = name if isinstance(name, bytes) else name.encode()
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = kind
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[345:345 + len(prefix)] = prefix
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % (sum(h) + checksum_delta)
    return bytes(h)


def member(name, data=b"", **kw):
    pad = (-len(data)) % 512
    return header(name, len(data), **kw) + data + b"\0" * pad


END = b"\0" * 1024


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ---- ustar reader --------------------------------------------------------------------------

def test_tar_reader_reads_files_folders_and_long_paths(run, tmp_path):
    long_dir = "firmware/" + "d" * 90
    files = {"firmware/a.py": b"print('a')\n" * 100, long_dir + "/" + "n" * 60 + ".py": b"x" * 512,
             "empty.txt": b"", "hal/b.bin": bytes(range(256)) * 7}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        d = tarfile.TarInfo("hal")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = write(tmp_path, "good.tar", buf.getvalue())
    # "firmware/a.py" is skipped without reading its data: the next header must still be found
    got = run([["tar", [path, 100000, 10, []]], ["tar", [path, 100000, 10, ["firmware/a.py"]]]])
    expect = [["hal", True, 0, sha(b"")]] + [[n, False, len(d), sha(d)] for n, d in files.items()]
    assert got[0] == ["ok", expect]
    assert got[1][1][1] == ["firmware/a.py", False, len(files["firmware/a.py"]), None]
    assert got[1][1][2:] == expect[2:]
    assert len(expect[2][0]) > 100  # the name really needed the ustar prefix field


def test_tar_reader_rejects_truncated_archives(run, tmp_path):
    good = member("firmware/a.py", b"y" * 1000) + member("hal/b.py", b"z" * 10) + END
    cases = {
        "in-data": good[:512 + 600],           # inside the first file's data
        "in-header": good[:1024 + 512 + 100],  # inside the second header
        "no-end": good[:-1024],                # the end-of-archive blocks are missing
        "empty": b"",
    }
    ops = [["tar", [write(tmp_path, k, v), 100000, 10, []]] for k, v in cases.items()]
    # the same, jumping over the data of the first file instead of reading it
    ops += [["tar", [str(tmp_path / k), 100000, 10, ["firmware/a.py"]]] for k in cases]
    ops.append(["tar", [write(tmp_path, "whole", good), 100000, 10, []]])
    got = run(ops)
    for name, result in zip(list(cases) * 2, got):
        assert result == ["error", "truncated tar"], name
    assert got[-1][0] == "ok" and [e[0] for e in got[-1][1]] == ["firmware/a.py", "hal/b.py"]


@pytest.mark.parametrize("name", ["../evil.py", "firmware/../../x.py", "/etc/passwd", "a\\b.py",
                                  "firmware//a.py", "firmware/./a.py", "firm\nware.py", "."])
def test_tar_reader_rejects_paths_leaving_the_slot(run, tmp_path, name):
    path = write(tmp_path, "t.tar", member("firmware/ok.py", b"ok") + member(name, b"bad") + END)
    got = run([["tar", [path, 1000, 10, []]]])
    assert got[0][0] == "error" and got[0][1].startswith("unsafe path in tar") or \
        got[0][1] == "control character in tar path", got


def test_tar_reader_accepts_dot_slash_and_folder_slash(run, tmp_path):
    path = write(tmp_path, "t.tar",
                 member("./firmware/", kind=b"5") + member("./firmware/x.py", b"1") + END)
    assert run([["tar", [path, 1000, 10, []]]]) == [
        ["ok", [["firmware", True, 0, sha(b"")], ["firmware/x.py", False, 1, sha(b"1")]]]]


@pytest.mark.parametrize("kind", [b"1", b"2", b"3", b"6", b"x", b"g", b"L"])
def test_tar_reader_accepts_only_files_and_folders(run, tmp_path, kind):
    path = write(tmp_path, "t.tar", member("firmware/link.py", kind=kind) + END)
    got = run([["tar", [path, 1000, 10, []]]])
    assert got == [["error", "firmware/link.py: tar entry type %r is not a file or folder"
                    % kind.decode()]]


def test_tar_reader_caps_sizes_counts_and_checks_headers(run, tmp_path):
    cases = [
        member("big.bin", b"x" * 1001) + END,
        header("huge.bin", size_field=b"\x80" + b"\0" * 7 + b"\x7f" * 4) + END,
        member("a", b"1") + member("b", b"2") + member("c", b"3") + END,
        header("sum.py", 0, checksum_delta=1) + END,
        header("sz.py", size_field=b"12x4\0\0\0\0\0\0\0\0") + END,
    ]
    got = run([["tar", [write(tmp_path, "c%d" % i, c), 1000, 2, []]] for i, c in enumerate(cases)])
    assert got == [
        ["error", "big.bin: 1001 bytes, over the 1000 limit"],
        ["error", "huge.bin: size over the limit"],
        ["error", "more than 2 entries in tar"],
        ["error", "tar header checksum mismatch"],
        ["error", "bad size field in tar header"],
    ]


# ---- install and manifest ------------------------------------------------------------------

@pytest.fixture(scope="module")
def source_bundle(tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("src") / "bundle")
    return dest, bundle.build(dest, source=True, key=signing.key())


@pytest.fixture
def keys(tmp_path):
    """vendor_keys.json trusting the test vendor key."""
    return signing.trust(tmp_path, signing.key())


def retar(folder, tar_path, files=None):
    """Re-tar a bundle folder, the manifest rewritten from `files` (and signed again)
    when given."""
    if files is not None:
        mpath = os.path.join(folder, "manifest.json")
        m = json.load(open(mpath))
        m["files"] = files
        with open(mpath, "w") as f:
            json.dump(m, f)
        signing.sign(folder)
    bundle.write_tar(folder, tar_path)
    return tar_path


def signed_members(manifest_bytes, k=None):
    """manifest.json and manifest.sig as tar members, signed by k (the vendor key)."""
    doc = {"alg": "ES256", "sig": signing.ecdsa_b64(k or signing.key(), manifest_bytes),
           "chain": []}
    return member("manifest.json", manifest_bytes) + member("manifest.sig",
                                                            json.dumps(doc).encode())


def test_install_writes_the_application_and_checks_every_file(run, source_bundle, tmp_path,
                                                               keys):
    dest, manifest = source_bundle
    slot = tmp_path / "app" / "a"
    slot.mkdir(parents=True)
    (slot / "stale.py").write_text("left from an older install")
    got = run([["install", [dest + ".tar", str(slot), run.name == "mp", keys]],
               ["slot", [str(slot), keys]]])
    assert got == [["ok", manifest["version"]], ["ok", None]]
    written = sorted(os.path.relpath(os.path.join(t, n), slot)
                     for t, _, ns in os.walk(slot) for n in ns)
    expect = sorted(["manifest.json", "manifest.sig"]
                    + [r for r in manifest["files"] if r.split("/")[0] in ("firmware", "hal")])
    assert written == expect  # no main.py, boot.py or config.json in a slot; no stale file
    for rel in expect:
        if not rel.startswith("manifest."):
            assert sha((slot / rel).read_bytes()) == manifest["files"][rel]["sha256"]
    assert json.loads((slot / "manifest.json").read_text()) == manifest
    assert manifest["kind"] == "mpy"


def test_install_refuses_unsigned_and_wrongly_signed_bundles(run, source_bundle, tmp_path,
                                                             keys):
    """Nothing of such a bundle reaches the slot: the signature is checked first."""
    dest, _ = source_bundle
    cases = {}
    unsigned = str(tmp_path / "unsigned")
    shutil.copytree(dest, unsigned)
    os.remove(os.path.join(unsigned, "manifest.sig"))
    cases["unsigned"] = unsigned
    other = str(tmp_path / "other")
    shutil.copytree(dest, other)
    signing.sign(other, signing.key("attacker"))
    cases["other"] = other
    tampered = str(tmp_path / "tampered")
    shutil.copytree(dest, tampered)
    mpath = os.path.join(tampered, "manifest.json")
    m = json.load(open(mpath))
    m["version"] = "evil-1.0"
    with open(mpath, "w") as f:
        json.dump(m, f)  # manifest.sig still the vendor's, over the old manifest
    cases["tampered"] = tampered
    # A rotation link that no trusted key endorsed
    forged = str(tmp_path / "forged")
    shutil.copytree(dest, forged)
    signing.sign(forged, signing.key("attacker"),
                 bundle.endorse(signing.key("attacker2"), signing.key("attacker")))
    cases["forged"] = forged
    ops = [["install", [retar(f, f + ".tar"), str(tmp_path / ("slot-" + k)), True, keys]]
           for k, f in cases.items()]
    ops.append(["install", [dest + ".tar", str(tmp_path / "slot-nokeys"), True,
                            str(tmp_path / "missing.json")]])
    got = run(ops)
    assert got == [
        ["error", "the bundle is not signed (no manifest.sig)"],
        ["error", "the vendor signature over manifest.json does not verify"],
        ["error", "the vendor signature over manifest.json does not verify"],
        ["error", "manifest.sig: a new vendor key is not endorsed by a trusted one"],
        ["error", "no vendor key is installed (vendor_keys.json)"],
    ]
    for k in list(cases) + ["nokeys"]:
        left = [n for _, _, ns in os.walk(tmp_path / ("slot-" + k)) for n in ns]
        assert not [n for n in left if n.endswith(".py")], (k, left)


def test_install_accepts_a_rotated_key_endorsed_by_a_trusted_one(run, source_bundle, tmp_path,
                                                                  keys):
    dest, manifest = source_bundle
    rotated = str(tmp_path / "rotated")
    shutil.copytree(dest, rotated)
    new, newer = signing.key("vendor-2027"), signing.key("vendor-2028")
    chain = bundle.endorse(signing.key(), new)
    signing.sign(rotated, new, chain)
    twice = str(tmp_path / "twice")
    shutil.copytree(dest, twice)
    signing.sign(twice, newer, bundle.endorse(new, newer, chain))
    skipped = str(tmp_path / "skipped")  # the newest key without the link before it
    shutil.copytree(dest, skipped)
    signing.sign(skipped, newer, bundle.endorse(new, newer))
    got = run([["install", [retar(f, f + ".tar"), str(tmp_path / ("s" + str(i))), True, keys]]
               for i, f in enumerate((rotated, twice, skipped))]
              + [["slot", [str(tmp_path / "s0"), keys]]])
    assert got == [["ok", manifest["version"]], ["ok", manifest["version"]],
                   ["error", "manifest.sig: a new vendor key is not endorsed by a trusted one"],
                   ["ok", None]]


def test_loader_check_refuses_a_slot_changed_after_install(run, source_bundle, tmp_path, keys):
    dest, _ = source_bundle
    slots = {n: tmp_path / n for n in ("added", "changed", "removed", "resigned")}
    ops = [["install", [dest + ".tar", str(p), True, keys]] for p in slots.values()]
    assert [r[0] for r in run(ops)] == ["ok"] * 4
    (slots["added"] / "firmware" / "evil.py").write_text("open('marker', 'w')\n")
    with open(slots["changed"] / "firmware" / "app.py", "a") as f:
        f.write("\nopen('marker', 'w')\n")
    os.remove(slots["removed"] / "hal" / "led.py")
    signing.sign(slots["resigned"], signing.key("attacker"))
    got = run([["slot", [str(p), keys]] for p in slots.values()])
    assert got == [["ok", "firmware/evil.py is not in the signed manifest"],
                   ["ok", "firmware/app.py differs from the signed manifest"],
                   ["ok", "hal/led.py is missing"],
                   ["ok", "the vendor signature over manifest.json does not verify"]]


def test_kind_decides_which_charger_takes_a_bundle(run):
    files = {"firmware/app.py": {"size": 3, "sha256": "ab" * 32}}
    image = {"firmware.bin": {"size": 3, "sha256": "ab" * 32}}
    got = run([
        ["check", [{"kind": "mpy", "version": "1", "files": files}, False, "image"]],
        ["check", [{"kind": "image", "version": "1", "files": image}, False, "mpy"]],
        ["check", [{"kind": "image", "version": "1", "files": image}, False, "image"]],
        ["check", [{"kind": "image", "version": "1", "files": dict(image, **files)}, False,
                   "image"]],
        ["check", [{"version": "1", "files": files}, False, "mpy"]],
    ])
    assert got == [
        ["error", "a bundle of kind mpy; this charger takes image"],
        ["error", "a bundle of kind image; this charger takes mpy"],
        ["ok", "1"],
        ["error", "an image bundle holds firmware.bin only"],
        ["error", "manifest kind must be one of mpy, image"],
    ]


def test_image_is_written_read_back_and_set_to_boot(run, tmp_path, keys):
    """install_image into hal/ota.py's file partitions; the bootloader then boots it once
    and goes back unless it is marked valid."""
    from hal import ota
    old = tmp_path / "old.bin"
    old.write_bytes(b"old image" * 100)
    new = bytes((i * 7) & 0xFF for i in range(300000))  # not a multiple of 512 or 4096
    (tmp_path / "new.bin").write_bytes(new)
    runs = {}
    for case in ("good", "rollback", "unsigned"):
        root = tmp_path / case
        ota.make(str(root / "ota"), str(old), size=512 * 1024)
        b = bundle.build_image(str(root / "b"), str(tmp_path / "new.bin"), "2.0.0",
                               key=None if case == "unsigned" else signing.key())
        assert b["kind"] == "image"
        work = root / "work"
        work.mkdir()
        runs[case] = run([["image", [str(root), str(root / "b.tar"), str(work), keys]]])
    assert runs["good"] == [["ok", ["2.0.0", "ota_1"]]]
    assert runs["unsigned"] == [["error", "the bundle is not signed (no manifest.sig)"]]
    good = str(tmp_path / "good" / "ota")
    assert open(good + "/ota_1.bin", "rb").read()[:len(new)] == new
    assert json.load(open(good + "/otadata.json"))["states"]["ota_1"] == "new"
    assert ota.bootloader(good).endswith("/ota_1.bin")  # first start of the new image
    ota.partition_class({"_dir": str(tmp_path / "good")}).mark_app_valid_cancel_rollback()
    assert ota.bootloader(good).endswith("/ota_1.bin")  # confirmed: it stays
    back = str(tmp_path / "rollback" / "ota")
    assert ota.bootloader(back).endswith("/ota_1.bin")  # new image starts once...
    assert ota.bootloader(back).endswith("/ota_0.bin")  # ...never confirmed: rolled back
    assert json.load(open(back + "/otadata.json"))["states"]["ota_1"] == "aborted"
    assert ota.bootloader(back).endswith("/ota_0.bin")
    unsigned = str(tmp_path / "unsigned" / "ota")
    assert json.load(open(unsigned + "/otadata.json"))["boot"] == "ota_0"


def test_install_refuses_a_file_that_differs_from_the_manifest(run, source_bundle, tmp_path,
                                                               keys):
    dest, manifest = source_bundle
    bad = str(tmp_path / "bad")
    shutil.copytree(dest, bad)
    with open(os.path.join(bad, "hal", "led.py"), "a") as f:
        f.write("# changed after the manifest was made\n")
    retar(bad, bad + ".tar")
    missing = str(tmp_path / "missing")
    shutil.copytree(dest, missing)
    os.remove(os.path.join(missing, "firmware", "ws.py"))
    retar(missing, missing + ".tar")  # the signed manifest still lists it
    extra = str(tmp_path / "extra")
    shutil.copytree(dest, extra)
    with open(os.path.join(extra, "firmware", "extra.py"), "w") as f:
        f.write("x = 1\n")
    retar(extra, extra + ".tar")
    got = run([["install", [p + ".tar", str(tmp_path / "slot"), True, keys]]
               for p in (bad, missing, extra)])
    assert got == [
        ["error", "hal/led.py does not match its size and sha256 in the manifest"],
        ["error", "firmware/ws.py is in the manifest but not in the bundle"],
        ["error", "firmware/extra.py is in the bundle but not in the manifest"],
    ]


def test_install_refuses_bundles_without_a_usable_manifest(run, source_bundle, tmp_path, keys):
    dest, manifest = source_bundle
    app = b"def main(path):\n    return 'quit'\n"
    entry = {"size": len(app), "sha256": sha(app)}
    good = json.dumps({"kind": "mpy", "version": "2",
                       "files": {"firmware/app.py": entry}}).encode()
    cases = {
        "none": member("firmware/app.py", app) + END,
        "not-json": signed_members(b"{nope") + member("firmware/app.py", app) + END,
        "twice": (signed_members(good)
                  + member("firmware/app.py", app) + member("firmware/app.py", app) + END),
        "last": member("firmware/app.py", app) + signed_members(good) + END,
    }
    got = run([["install", [write(tmp_path, k + ".tar", v), str(tmp_path / k), True, keys]]
               for k, v in cases.items()])
    assert got == [
        ["error", "the bundle has no manifest.json"],
        ["error", "manifest.json is not valid JSON: line 1: expected a key in double quotes"],
        ["error", "firmware/app.py is in the bundle but not in the manifest"],  # a second copy
        ["ok", "2"],                                              # order does not matter
    ]
    assert (tmp_path / "last" / "firmware" / "app.py").read_bytes() == app


def test_manifest_check(run):
    files = {"firmware/app.py": {"size": 3, "sha256": "ab" * 32},
             "hal/x.mpy": {"size": 1, "sha256": "cd" * 32}}
    mpy_only = {"firmware/app.mpy": {"size": 1, "sha256": "ef" * 32}}
    got = run([
        ["check", [{"kind": "mpy", "version": "9.9.9", "files": files}, False]],
        ["check", [{"kind": "mpy", "version": "", "files": files}, False]],
        ["check", [{"kind": "mpy", "version": "v" * 51, "files": files}, False]],
        ["check", [{"kind": "mpy", "version": 9, "files": files}, False]],
        ["check", [{"kind": "mpy", "version": "1", "files": {}}, False]],
        ["check", [[1, 2], False]],
        ["check", [{"kind": "mpy", "version": "1", "files": mpy_only}, False]],
        ["check", [{"kind": "mpy", "version": "1", "files": mpy_only}, True]],
    ])
    assert got == [
        ["ok", "9.9.9"],
        ["error", "manifest version must be a string of 1 to 50 characters"],
        ["error", "manifest version must be a string of 1 to 50 characters"],
        ["error", "manifest version must be a string of 1 to 50 characters"],
        ["error", "manifest.json lists no files"],
        ["error", "manifest.json lists no files"],
        ["error", "the bundle has no firmware/app this interpreter can load"],
        ["ok", "1"],
    ]


# ---- loader ------------------------------------------------------------------------------

def test_loader_decides_which_application_starts(run):
    fresh = {"slot": "a", "previous": "factory", "version": "2", "previous_version": None,
             "tries": 0, "confirmed": False, "report": "Installed"}
    rolled = {"slot": "factory", "previous": "factory", "version": None, "previous_version": None,
              "tries": 0, "confirmed": True, "report": "InstallationFailed", "failed": "a"}
    got = run([
        ["decide", [None, []]],
        ["decide", [{"slot": "factory"}, []]],
        ["decide", [fresh, ["a"]]],
        ["decide", [dict(fresh, tries=2), ["a"]]],
        ["decide", [dict(fresh, tries=3), ["a"]]],
        ["decide", [dict(fresh, tries=7, confirmed=True), ["a"]]],
        ["decide", [dict(fresh, confirmed=True), []]],
        ["decide", [dict(fresh, slot="b", previous="a", previous_version="1", tries=3),
                    ["a", "b"]]],
        ["decide", [dict(fresh, slot="b", previous="a", previous_version="1", tries=3), ["b"]]],
        ["decide", [dict(fresh, tries="x"), ["a"]]],
    ])
    assert [r[1] for r in got] == [
        ["factory", None],
        ["factory", None],
        ["a", dict(fresh, tries=1)],
        ["a", dict(fresh, tries=3)],
        ["factory", rolled],                        # a 4th start: 3 tries were enough
        ["a", None],                                # confirmed: never rolled back, nothing written
        ["factory", rolled],                        # the slot's files are gone
        ["a", dict(rolled, slot="a", previous="a", version="1", previous_version="1", failed="b")],
        ["factory", dict(rolled, failed="b")],      # the previous slot is gone too
        ["a", dict(fresh, tries=1)],
    ]


def test_loader_data_dir_follows_the_config(run, tmp_path):
    (tmp_path / "c1.json").write_text(json.dumps({"data_dir": "state"}))
    (tmp_path / "c2.json").write_text(json.dumps({"data_dir": "/abs/state"}))
    (tmp_path / "c3.json").write_text("{broken")
    got = run([["data_dir", [str(tmp_path / n)]]
               for n in ("c1.json", "c2.json", "c3.json", "missing.json")]
              + [["data_dir", ["config.json"]]])
    assert [r[1] for r in got] == [str(tmp_path / "state"), "/abs/state", str(tmp_path / "data"),
                                   str(tmp_path / "data"), "data"]


# Strict JSON (firmware/jsonlint.py) for every JSON file the loader and the installer read:
# MicroPython's json takes `{"a": 1 2}` as {"a": 1}; on both interpreters these are refused.
LENIENT_ONLY = b' 2}'  # appended to a JSON object whose closing brace was cut off


def lenient(doc):
    """JSON text of `doc` that only a lenient parser reads (as `doc`)."""
    return json.dumps(doc).encode()[:-1] + LENIENT_ONLY


def test_strict_json_in_manifests_signatures_keys_and_otadata(run, tmp_path, keys):
    app = b"def main(path):\n    return 'quit'\n"
    manifest = lenient({"kind": "mpy", "version": "2",
                        "files": {"firmware/app.py": {"size": len(app), "sha256": sha(app)}}})
    tar = write(tmp_path, "m.tar", signed_members(manifest) + member("firmware/app.py", app)
                + END)
    sig = lenient({"alg": "ES256", "sig": signing.ecdsa_b64(signing.key(), manifest)})
    good_manifest = json.dumps({"kind": "mpy", "version": "2", "files": {
        "firmware/app.py": {"size": len(app), "sha256": sha(app)}}}).encode()
    sig_tar = write(tmp_path, "s.tar", member("manifest.json", good_manifest)
                    + member("manifest.sig", sig) + member("firmware/app.py", app) + END)
    key_file = tmp_path / "k" / "vendor_keys.json"
    key_file.parent.mkdir()
    key_file.write_bytes(lenient(json.load(open(keys))))
    # A slot whose signed manifest is lenient-only: refused by the loader's check too.
    slot = tmp_path / "slot"
    (slot / "firmware").mkdir(parents=True)
    (slot / "firmware" / "app.py").write_bytes(app)
    (slot / "manifest.json").write_bytes(manifest)
    signing.sign(slot)
    ota = tmp_path / "ota"
    ota.mkdir()
    (ota / "otadata.json").write_bytes(lenient({"boot": 0, "states": ["valid", "new"]}))
    got = run([["install", [tar, str(tmp_path / "a"), True, keys]],
               ["install", [sig_tar, str(tmp_path / "b"), True, keys]],
               ["keys", [keys]], ["keys", [str(key_file)]],
               ["slot", [str(slot), keys]],
               ["otadata", [str(ota)]]])
    bad = "line 1: expected ',' or '}' after a value"
    assert got == [
        ["error", "manifest.json is not valid JSON: " + bad],
        ["error", bad],                  # manifest.sig: a SignatureError, nothing installed
        ["ok", 1], ["ok", 0],            # the lenient-only key file trusts no key
        ["ok", "unreadable slot: " + bad],
        ["ok", "ValueError: " + bad],
    ]
    assert not (tmp_path / "a" / "firmware").exists()
    assert not (tmp_path / "b" / "firmware").exists()


def test_loader_reads_active_json_and_the_config_strictly(run, tmp_path):
    """A lenient-only active.json naming slot "a" starts the factory application (and is
    left as it is); a lenient-only config's data_dir is not followed (the application
    refuses that config too and falls back to "data")."""
    config = tmp_path / "config.json"
    config.write_bytes(lenient({"data_dir": "state"}))
    (tmp_path / "good.json").write_text(json.dumps({"data_dir": "state"}))
    slot_app(tmp_path, "a", "")
    active = tmp_path / "data" / "app" / "active.json"
    text = lenient({"slot": "a", "previous": "factory", "version": "2", "tries": 0,
                    "confirmed": True, "report": None})
    active.write_bytes(text)
    got = run([["data_dir", [str(config)]], ["data_dir", [str(tmp_path / "good.json")]],
               ["select", [str(config)]]])
    assert [r[1] for r in got] == [str(tmp_path / "data"), str(tmp_path / "state"), None]
    assert active.read_bytes() == text


def slot_app(root, slot, body, k=None):
    """A stand-in application in data/app/<slot>: firmware/app.py with main(path), its
    manifest signed by the vendor key (or `k`), which root/vendor_keys.json trusts."""
    folder = root / "data" / "app" / slot
    fw = folder / "firmware"
    fw.mkdir(parents=True)
    (fw / "__init__.py").write_text("")
    (fw / "app.py").write_text(body)
    files = {"firmware/" + n: {"size": len(t.encode()), "sha256": sha(t.encode())}
             for n, t in (("__init__.py", ""), ("app.py", body))}
    (folder / "manifest.json").write_text(json.dumps({"kind": "mpy", "version": "x",
                                                      "files": files}))
    signing.sign(folder, k)
    signing.trust(root, signing.key())


def test_loader_select_counts_starts_and_rolls_back(run, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data_dir": "data"}))
    slot_app(tmp_path, "a", "")
    active = tmp_path / "data" / "app" / "active.json"
    active.write_text(json.dumps({"slot": "a", "previous": "factory", "version": "2", "tries": 0,
                                  "confirmed": False, "report": "Installed"}))
    got = run([["select", [str(config)]]] * 4)
    slot = str(tmp_path / "data" / "app" / "a")
    assert [r[1] for r in got] == [slot, slot, slot, None]
    state = json.loads(active.read_text())
    assert (state["slot"], state["report"], state["failed"]) == (
        "factory", "InstallationFailed", "a")


def test_loader_never_imports_a_slot_without_the_vendor_signature(run, tmp_path):
    """A slot written by anything else than the installer (here: signed by another key,
    and one confirmed slot whose code was changed) is refused before any import."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data_dir": "data"}))
    marker = tmp_path / "marker"
    evil = "open(%r, 'w').write('ran')\ndef main(path):\n    return 'quit'\n" % str(marker)
    slot_app(tmp_path, "a", evil, k=signing.key("attacker"))
    active = tmp_path / "data" / "app" / "active.json"
    active.write_text(json.dumps({"slot": "a", "previous": "factory", "version": "2",
                                  "tries": 0, "confirmed": True, "report": None}))
    assert run([["select", [str(config)]]]) == [["ok", None]]
    state = json.loads(active.read_text())
    assert (state["slot"], state["report"], state["failed"]) == (
        "factory", "InstallationFailed", "a")
    assert not marker.exists()


# As on the board: boot.py has imported the factory's firmware.compat before main.py runs.
AFTER_BOOT_PY = ("import sys\nsys.path.insert(0, %r)\nimport firmware.compat\n"
                 "sys.argv[:] = ['main.py', %r]\nexec(open(%r).read())\n")


def loader(exe, cwd, config, timeout=30):
    code = AFTER_BOOT_PY % (ROOT, str(config), os.path.join(ROOT, "main.py"))
    return subprocess.run([exe, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("name", ["mp", "cpy"])
def test_loader_reloads_a_new_slot_and_rolls_back_a_broken_one(name, tmp_path):
    exe = INTERPRETERS[name]
    if not os.access(exe, os.X_OK):
        pytest.skip("%s not found" % exe)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data_dir": "data"}))
    active = tmp_path / "data" / "app" / "active.json"
    # Slot a switches to b and asks for a reset, as an installed update does; b crashes at import.
    slot_app(tmp_path, "a", (
        "import json\n"
        "def main(path):\n"
        "    print('running a')\n"
        "    with open(%r) as f:\n"
        "        st = json.load(f)\n"
        "    if st['slot'] == 'a' and not st.get('report'):\n"
        "        st.update(slot='b', previous='a', version='3', previous_version='2', tries=0,\n"
        "                  confirmed=False, report='Installed')\n"
        "        with open(%r, 'w') as f:\n"
        "            f.write(json.dumps(st))\n"
        "        return 'hard'\n"
        "    return 'quit'\n") % (str(active), str(active)))
    slot_app(tmp_path, "b", "raise RuntimeError('broken build')\n")
    active.write_text(json.dumps({"slot": "a", "previous": "factory", "version": "2", "tries": 0,
                                  "confirmed": True, "report": None}))
    first = loader(exe, str(tmp_path), config)
    assert first.returncode == 1, first.stdout + first.stderr
    out = first.stdout
    assert out.index("running a") < out.index("application b, version 3, start 1 of 3")
    assert "loader: the application failed: RuntimeError('broken build'" in out
    assert "broken build" in out.split("the application failed")[1]  # the traceback follows
    starts = [loader(exe, str(tmp_path), config) for _ in range(3)]
    assert [r.returncode for r in starts] == [1, 1, 0]
    assert "start 3 of 3" in starts[1].stdout
    assert "application b did not come up; back to a" in starts[2].stdout
    assert "running a" in starts[2].stdout
    state = json.loads(active.read_text())
    assert state == {"slot": "a", "previous": "a", "version": "2", "previous_version": "2",
                     "tries": 0, "confirmed": True, "report": "InstallationFailed", "failed": "b"}
