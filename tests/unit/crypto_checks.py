"""Checks of the firmware's crypto (der, x509, p256, rsa, csr, signature) against the vectors
of tests/unit/crypto_vectors.py. Runs on both interpreters: tests/unit/test_crypto.py calls
each check under CPython and runs this file on the MicroPython unix port:
    micropython tests/unit/crypto_checks.py FOLDER      # prints "crypto-ok N"
"""
import json
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the packages live in cwd

from hashlib import sha256  # noqa: E402
from binascii import unhexlify  # noqa: E402

from firmware import csr, der, p256, rsa, signature, x509  # noqa: E402


def load(folder):
    with open(folder + "/vectors.json") as f:
        return json.load(f)


def _one(v, name):
    return x509.pem_to_ders(v[name])[0]


def _digest(v):
    return sha256(unhexlify(v["message"])).digest()


def _leaf_key(v):
    f = v["leaf_fields"]
    return ("ec", f["x"], f["y"])


def _chain(v, *names):
    return [_one(v, n) for n in names]


# -- signatures --

def test_p256_signature_verifies(v):
    assert signature.verify(_leaf_key(v), _digest(v), unhexlify(v["ec_sig"]))
    assert signature.verify(_leaf_key(v), _digest(v), unhexlify(v["ec_sig"]),
                            signature.ECDSA_SHA256)


def test_p256_tampered_message_fails(v):
    assert not signature.verify(_leaf_key(v), sha256(b"other").digest(),
                                unhexlify(v["ec_sig"]))


def test_p256_tampered_signature_fails(v):
    sig = bytearray(unhexlify(v["ec_sig"]))
    sig[-1] ^= 1
    assert not signature.verify(_leaf_key(v), _digest(v), bytes(sig))
    assert not signature.verify(_leaf_key(v), _digest(v), b"\x30\x00")
    assert not signature.verify(_leaf_key(v), _digest(v), b"")


def test_p256_wrong_key_fails(v):
    assert not signature.verify(_leaf_key(v), _digest(v), unhexlify(v["ec_sig_other_key"]))


def test_p256_rfc6979_signature_equals_openssl_deterministic(v):
    assert p256.sign(v["leaf_d"], _digest(v)) == unhexlify(v["deterministic_sig"])


def test_p256_generated_key_signs_and_verifies(v):
    d, pub = p256.generate()
    assert p256.on_curve(pub) and p256.public(d) == pub
    sig = p256.sign(d, _digest(v))
    assert p256.verify(pub, _digest(v), sig)
    assert not p256.verify(pub, sha256(b"x").digest(), sig)


def test_p256_point_off_curve_refused(v):
    f = v["leaf_fields"]
    assert not p256.verify((f["x"], f["y"] + 1), _digest(v), unhexlify(v["ec_sig"]))


def test_rsa2048_signature_verifies(v):
    key = x509.Cert(_one(v, "rsa_leaf")).key
    assert key[0] == "rsa" and rsa.size(key[1]) == 256
    assert signature.verify(key, _digest(v), unhexlify(v["rsa2048_sig"]), signature.RSA_SHA256)


def test_rsa3072_signature_verifies(v):
    key = x509.Cert(_one(v, "rsa_root")).key
    assert rsa.size(key[1]) == 384
    assert signature.verify(key, _digest(v), unhexlify(v["rsa3072_sig"]))


def test_rsa_tampered_and_wrong_key_fail(v):
    key = x509.Cert(_one(v, "rsa_leaf")).key
    sig = bytearray(unhexlify(v["rsa2048_sig"]))
    assert not signature.verify(key, sha256(b"other").digest(), bytes(sig))
    sig[10] ^= 0x40
    assert not signature.verify(key, _digest(v), bytes(sig))
    other = x509.Cert(_one(v, "rsa_root")).key
    assert not signature.verify(other, _digest(v), unhexlify(v["rsa3072_sig"])[:256])
    assert not signature.verify(other, _digest(v), unhexlify(v["rsa2048_sig"]))


def test_algorithm_must_match_key(v):
    assert not signature.verify(_leaf_key(v), _digest(v), unhexlify(v["ec_sig"]),
                                signature.RSA_SHA256)
    assert not signature.verify(("other", "1.2.3"), _digest(v), unhexlify(v["ec_sig"]))


def test_rsa_small_modulus_refused(v):
    n = x509.Cert(_one(v, "rsa_leaf")).key[1] >> 1100  # about 948 bits
    assert not rsa.verify((n | 1, 65537), _digest(v), bytes(rsa.size(n)))


# -- certificates --

def test_certificate_fields(v):
    f = v["leaf_fields"]
    c = x509.Cert(_one(v, "leaf"))
    assert c.serial == f["serial"] and c.subject_cn == f["cn"]
    assert c.not_before == f["not_before"] and c.not_after == f["not_after"]
    assert c.key == ("ec", f["x"], f["y"])
    assert c.issuer == unhexlify(f["issuer"]) and c.subject == unhexlify(f["subject"])
    assert c.tbs == unhexlify(f["tbs"]) and c.signature == unhexlify(f["signature"])
    assert c.sig_alg == signature.RSA_SHA256
    assert not c.is_ca and c.key_usage == x509.KU_DIGITAL_SIGNATURE
    assert c.ext_key_usage == [x509.CODE_SIGNING]
    inter = x509.Cert(_one(v, "inter"))
    assert inter.is_ca and inter.path_len == 0
    assert inter.key == ("rsa", v["inter_fields"]["n"], v["inter_fields"]["e"])
    assert inter.key_usage & x509.KU_KEY_CERT_SIGN
    plain = x509.Cert(_one(v, "no_extensions"))
    assert plain.key_usage is None and plain.ext_key_usage is None and not plain.is_ca


def test_generalized_time_after_2049(v):
    assert x509.Cert(_one(v, "long_root")).not_after == v["long_root_after"]


def test_verify_with_issuer(v):
    leaf, inter, root = [x509.Cert(d) for d in _chain(v, "leaf", "inter", "root")]
    assert leaf.verify_with(inter) and inter.verify_with(root) and root.verify_with(root)
    assert not leaf.verify_with(root)
    assert not x509.Cert(_one(v, "tampered_leaf")).verify_with(inter)


def test_chain_of_three_trusted(v):
    chain = _chain(v, "leaf", "inter")
    assert x509.check_chain(chain, [_one(v, "root")], v["now"], x509.CODE_SIGNING) is None
    assert x509.check_chain(chain + [_one(v, "root")], [_one(v, "root")], v["now"]) is None


def test_rsa_chain_trusted(v):
    roots = [_one(v, "root"), _one(v, "rsa_root")]
    assert x509.check_chain([_one(v, "rsa_leaf")], roots, v["now"], x509.CODE_SIGNING) is None


def test_root_itself_trusted(v):
    assert x509.check_chain([_one(v, "root")], [_one(v, "root")], v["now"]) is None


def test_expired(v):
    assert x509.check_chain([_one(v, "expired")], [_one(v, "root")], v["now"]) == x509.EXPIRED


def test_not_yet_valid(v):
    why = x509.check_chain([_one(v, "not_yet_valid")], [_one(v, "root")], v["now"])
    assert why == x509.NOT_YET_VALID


def test_root_validity_checked(v):
    chain = _chain(v, "leaf", "inter")
    assert x509.check_chain(chain, [_one(v, "root")], v["now"] + 20 * 365 * 86400) == \
        x509.EXPIRED


def test_unknown_clock_skips_validity(v):
    assert x509.check_chain([_one(v, "expired")], [_one(v, "root")], None) is None


def test_wrong_extended_key_usage(v):
    why = x509.check_chain([_one(v, "server_eku")], [_one(v, "root")], v["now"],
                           x509.CODE_SIGNING)
    assert why == x509.WRONG_USAGE
    assert x509.check_chain([_one(v, "server_eku")], [_one(v, "root")], v["now"],
                            x509.SERVER_AUTH) is None


def test_wrong_key_usage(v):
    why = x509.check_chain([_one(v, "encipher_only")], [_one(v, "root")], v["now"],
                           x509.CODE_SIGNING)
    assert why == x509.WRONG_USAGE


def test_untrusted_issuer(v):
    assert x509.check_chain([_one(v, "too_deep")], [_one(v, "root")], v["now"]) == \
        x509.UNTRUSTED
    assert x509.check_chain(_chain(v, "leaf", "inter"), [_one(v, "rsa_root")], v["now"]) == \
        x509.UNTRUSTED
    assert x509.check_chain(_chain(v, "leaf", "inter"), [], v["now"]) == x509.UNTRUSTED


def test_same_name_other_key_is_bad_signature(v):
    why = x509.check_chain([_one(v, "other_leaf")], [_one(v, "root")], v["now"])
    assert why == x509.BAD_SIGNATURE
    assert x509.check_chain([_one(v, "other_leaf")], [_one(v, "other_root")], v["now"]) is None


def test_tampered_certificate_is_bad_signature(v):
    why = x509.check_chain(_chain(v, "tampered_leaf", "inter"), [_one(v, "root")], v["now"])
    assert why == x509.BAD_SIGNATURE


def test_issuer_that_is_not_a_ca_untrusted(v):
    chain = _chain(v, "under_not_ca", "not_ca")
    assert x509.check_chain(chain, [_one(v, "root")], v["now"]) == x509.UNTRUSTED


def test_path_length_constraint(v):
    chain = _chain(v, "too_deep", "sub_ca", "inter")
    assert x509.check_chain(chain, [_one(v, "root")], v["now"]) == x509.UNTRUSTED


def test_malformed_and_oversized_refused(v):
    leaf = _one(v, "leaf")
    assert x509.check_chain([leaf[:-5]], [_one(v, "root")], v["now"]) == x509.MALFORMED
    assert x509.check_chain([b"\x30\x03\x02\x01\x01"], [], v["now"]) == x509.MALFORMED
    assert x509.check_chain([], [_one(v, "root")], v["now"]) == x509.MALFORMED
    big = der.seq(b"\x04\x82\x10\x00" + bytes(4096))
    for bad in (big, leaf + b"\x00", leaf[:40]):
        try:
            x509.Cert(bad)
        except ValueError:
            continue
        raise AssertionError("accepted a malformed certificate")


def test_damaged_certificates_raise_only_value_error(v):
    # Every byte of a certificate flipped in turn, and every truncation: each either parses
    # or raises ValueError (what callers catch), and a damaged chain is never trusted.
    leaf, root = _one(v, "server_eku"), _one(v, "root")  # issued by root itself
    assert x509.check_chain([leaf], [root], v["now"]) is None
    trusted = 0
    for j in range(len(leaf)):
        for bad in (leaf[:j] + bytes((leaf[j] ^ 0xFF,)) + leaf[j + 1:], leaf[:j]):
            try:
                x509.Cert(bad).subject_cn
            except ValueError:
                pass
            if x509.check_chain([bad], [root], v["now"]) is None:
                trusted += 1
    assert trusted == 0


def test_hash_data_as_ocsp_certid(v):
    assert x509.hash_data(_one(v, "leaf"), _one(v, "inter")) == v["hash_leaf"]
    assert x509.hash_data(_one(v, "root")) == v["hash_root"]
    assert x509.hash_data(_one(v, "inter"), _one(v, "root")) == v["hash_inter"]


def test_a_revoked_certificate_anywhere_on_the_path_refuses_the_chain(v):
    chain, root = _chain(v, "leaf", "inter"), _one(v, "root")

    def entry(cert):
        h = x509.hash_data(cert)
        return (h["issuerNameHash"], int(h["serialNumber"], 16))
    assert x509.check_chain(chain, [root], v["now"], revoked=set()) is None
    for cert in chain + [root]:
        assert x509.check_chain(chain, [root], v["now"], revoked={entry(cert)}) == x509.REVOKED
    other = (entry(chain[0])[0], entry(chain[0])[1] + 1)
    assert x509.check_chain(chain, [root], v["now"], revoked={other}) is None


def test_hash_data_without_the_issuer_leaves_the_key_hash_unknown(v):
    """An intermediate installed as a trust anchor without its issuer: the issuer's key is
    unknown, so its hash is "" (not a hash of the intermediate's own key), and a Central
    System's hash data (computed with the issuer) still names it by issuer name + serial."""
    ours = x509.hash_data(_one(v, "inter"))
    theirs = v["hash_inter"]
    assert ours["issuerKeyHash"] == x509.KEY_UNKNOWN == ""
    assert dict(ours, issuerKeyHash=theirs["issuerKeyHash"]) == theirs
    assert x509.matches(ours, theirs)
    upper = dict((k, t.upper()) for k, t in theirs.items())
    upper["hashAlgorithm"] = "SHA256"
    assert x509.matches(ours, dict(upper, serialNumber="00" + upper["serialNumber"]))
    assert not x509.matches(ours, dict(theirs, serialNumber=theirs["serialNumber"] + "1"))
    assert not x509.matches(ours, dict(theirs, issuerNameHash="00" * 32))
    known = x509.hash_data(_one(v, "inter"), _one(v, "root"))
    assert x509.matches(known, theirs)
    assert not x509.matches(known, dict(theirs, issuerKeyHash="00" * 32))


def test_pem_round_trip(v):
    ders = x509.pem_to_ders(v["leaf"] + v["inter"] + v["root"])
    assert len(ders) == 3
    text = "".join(x509.der_to_pem(d) for d in ders)
    assert x509.pem_to_ders(text) == ders
    assert max(len(line) for line in text.splitlines()) == 64
    for bad in ("", "no pem here", v["leaf"][:-30], v["leaf"] * 6):
        try:
            x509.pem_to_ders(bad)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % bad[:40])


# -- keys and requests --

def test_parse_ec_key_sec1_and_pkcs8(v):
    f = v["leaf_fields"]
    for name in ("leaf_key_sec1", "leaf_key_pkcs8"):
        assert csr.parse_ec_key(v[name]) == (v["leaf_d"], (f["x"], f["y"]))


def test_ec_key_round_trip(v):
    d, pub = p256.generate()
    pem = x509.der_to_pem(csr.ec_key_der(d, pub), "EC PRIVATE KEY")
    assert pem.startswith("-----BEGIN EC PRIVATE KEY-----\n")
    assert csr.parse_ec_key(pem) == (d, pub)
    assert csr.parse_ec_key(csr.ec_key_der(d, pub)) == (d, pub)


def test_parse_ec_key_refuses_other_keys(v):
    for bad in (v["leaf"], "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
                b"\x30\x03\x02\x01\x01", b""):
        try:
            csr.parse_ec_key(bad)
        except ValueError as e:
            assert str(v["leaf_d"]) not in str(e)
            continue
        raise AssertionError("accepted a non-key")


def test_csr_is_signed_by_its_key(v):
    d, pub = p256.generate()
    req = csr.build(d, pub, "CP-0001", "Example CPO")
    s, e = der.expect(req, 0, len(req), der.SEQUENCE)
    info, alg, bits = der.items(req, s, e)
    digest = sha256(req[info[1]:info[3]]).digest()
    assert p256.verify(pub, digest, req[bits[2] + 1:bits[3]])
    assert b"CP-0001" in req and b"Example CPO" in req


def test_der_integers_and_oids(v):
    for n in (0, 1, 127, 128, 255, 256, 65535, 2 ** 255, 2 ** 256 - 1):
        enc = der.int_(n)
        s, e = der.expect(enc, 0, len(enc), der.INTEGER)
        assert der.integer(enc, s, e) == n and (e - s == 1 or enc[s] or enc[s + 1] & 0x80)
    for o in ("1.2.840.10045.4.3.2", "2.5.29.37.0", "1.3.6.1.5.5.7.3.3", "2.999.3"):
        enc = der.oid_(o)
        assert der.oid(enc, 2, len(enc)) == o


CHECKS = sorted(name for name in globals() if name.startswith("test_"))


def main():
    v = load(sys.argv[1])
    namespace = globals()
    for name in CHECKS:
        namespace[name](v)
    print("crypto-ok %d" % len(CHECKS))


if __name__ == "__main__":
    main()
