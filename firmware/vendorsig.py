"""The vendor's signature on an update bundle, checked by the installer before anything is
switched to and by the loader (main.py) before it imports an installed slot.

A bundle carries `manifest.json` (its kind, version and the size and sha256 of every file)
and `manifest.sig`, a detached signature over the manifest's exact bytes:

    {"alg": "ES256", "sig": "<base64 DER ECDSA P-256 over sha256(manifest.json)>",
     "chain": [{"key": "<hex 04|X|Y of a new vendor key>", "sig": "<base64 DER>"}, ...]}

The trusted keys are `vendor_keys.json` next to config.json (the board's root folder,
which an update never writes): {"keys": ["04<X><Y> hex", ...]}. A key rotation needs no
write there: a bundle signed with a new key carries the new key endorsed by a trusted one
(`chain`: each link's key signed, as sha256(b"vendor key " + 65-byte point), by the key
before it, the first by a trusted key). Everything here is read from flash and checked
anew every time; nothing that an update or another writer stores is trusted.

Imported only while installing and by the loader at a start of a slot (the loader drops
it again before the application is imported).
"""
import binascii
import hashlib
import os

from firmware import store
from firmware.compat import const

KEYS_FILE = "vendor_keys.json"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
KEY_TAG = b"vendor key "   # what a chain link signs, followed by the new key's point
ALG = "ES256"

_MAX_MANIFEST = const(32768)  # as install.py's
_MAX_SIG_FILE = const(4096)  # manifest.sig: a signature and a few endorsed keys
_MAX_CHAIN = const(4)        # rotations a bundle may carry
_MAX_KEYS = const(8)
_CHUNK = const(512)


def parse_key(text):
    """A hex "04|X|Y" (uncompressed P-256 point) -> (x, y); ValueError."""
    if not isinstance(text, str) or len(text) != 130 or not text.startswith("04"):
        raise ValueError("a vendor key is 130 hex digits starting 04")
    raw = binascii.unhexlify(text)
    return int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")


def point_bytes(key):
    x, y = key
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def keys_path(config_path):
    """vendor_keys.json in the folder of the config file."""
    i = config_path.rfind("/")
    return KEYS_FILE if i < 0 else config_path[:i + 1] + KEYS_FILE


def load_keys(path):
    """The trusted vendor keys from `path` -> list of (x, y); [] when there is no usable
    file (then no update verifies: a charger without a vendor key takes none)."""
    try:
        with open(path, "rb") as f:
            doc = store.loads(f.read())  # strict: a lenient parse could drop a key
        keys = doc["keys"][:_MAX_KEYS]
        return [parse_key(k) for k in keys]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _ecdsa(key, digest, sig_b64):
    from firmware import p256
    try:
        der = binascii.a2b_base64(sig_b64)
    except (ValueError, TypeError):
        return False
    try:
        return bool(p256.verify(key, digest, der))
    except (ValueError, IndexError, TypeError):
        return False


def parse_signature(text):
    """manifest.sig's text -> its dict; ValueError when malformed."""
    if len(text) > _MAX_SIG_FILE:
        raise ValueError("manifest.sig is over %d bytes" % _MAX_SIG_FILE)
    doc = store.loads(text)
    if not isinstance(doc, dict) or doc.get("alg") != ALG or not isinstance(doc.get("sig"), str):
        raise ValueError("manifest.sig is not an %s signature" % ALG)
    chain = doc.get("chain") or []
    if not isinstance(chain, list) or len(chain) > _MAX_CHAIN:
        raise ValueError("manifest.sig: chain must be a list of at most %d keys" % _MAX_CHAIN)
    return doc


def check(digest, sig, roots):
    """Why the manifest whose sha256 is `digest` is not signed by the vendor, or None when
    it is. `sig` is manifest.sig's dict, `roots` the trusted keys."""
    if not roots:
        return "no vendor key is installed (%s)" % KEYS_FILE
    signers = roots
    for link in sig.get("chain") or []:
        try:
            new = parse_key(link["key"])
            endorsement = link["sig"]
        except (KeyError, TypeError, ValueError):
            return "manifest.sig: malformed key in chain"
        h = hashlib.sha256(KEY_TAG + point_bytes(new)).digest()
        if not any(_ecdsa(k, h, endorsement) for k in signers):
            return "manifest.sig: a new vendor key is not endorsed by a trusted one"
        signers = [new]
    if not any(_ecdsa(k, digest, sig["sig"]) for k in signers):
        return "the vendor signature over manifest.json does not verify"
    return None


def _hash_file(path):
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    n = 0
    with open(path, "rb") as f:
        while True:
            k = f.readinto(buf)
            if not k:
                break
            h.update(buf if k == _CHUNK else memoryview(buf)[:k])
            n += k
    return n, binascii.hexlify(h.digest()).decode()


def _walk(folder, rel, out):
    for name in os.listdir(folder + "/" + rel if rel else folder):
        path = rel + "/" + name if rel else name
        if os.stat(folder + "/" + path)[0] & 0x4000:
            _walk(folder, path, out)
        else:
            out.append(path)


def check_slot(folder, roots):
    """Why the installed application in `folder` must not run, or None: manifest.json
    signed by the vendor, every file it lists for firmware/ and hal/ present with its size
    and sha256, and no other file there (a module written by anything else would run)."""
    try:
        n, digest = _hash_file(folder + "/" + MANIFEST)
        if n > _MAX_MANIFEST:  # read whole for the strict JSON check below
            raise ValueError("manifest.json is over %d bytes" % _MAX_MANIFEST)
        if os.stat(folder + "/" + SIGNATURE)[6] > _MAX_SIG_FILE:
            raise ValueError("manifest.sig is over %d bytes" % _MAX_SIG_FILE)
        with open(folder + "/" + SIGNATURE) as f:
            sig = parse_signature(f.read())
    except (OSError, ValueError) as e:
        return "no valid manifest and signature: %s" % e
    why = check(binascii.unhexlify(digest), sig, roots)
    if why:
        return why
    try:
        with open(folder + "/" + MANIFEST, "rb") as f:
            files = store.loads(f.read())["files"]
        present = []
        _walk(folder, "", present)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return "unreadable slot: %s" % e
    for path in present:
        if path in (MANIFEST, SIGNATURE):
            continue
        meta = files.get(path)
        if not isinstance(meta, dict):
            return "%s is not in the signed manifest" % path
        if _hash_file(folder + "/" + path) != (meta.get("size"), meta.get("sha256")):
            return "%s differs from the signed manifest" % path
    for path in files:
        if path.split("/")[0] in ("firmware", "hal") and path not in present:
            return "%s is missing" % path
    return None
