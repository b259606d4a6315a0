"""The certificate store: InstallCertificate, DeleteCertificate, GetInstalledCertificateIds
(OCPP 1.6 security whitepaper, edition 3) for CentralSystemRootCertificate and
ManufacturerRootCertificate.

Each certificate is one PEM file in `<data_dir>/certs/`, named `<kind>-<8 hex of the SHA-256
of its DER>.pem` (kind "csms" or "mfr"): an install is one atomic write, a delete one remove,
and a reset in between leaves the store whole. A file is read only when it is needed, so the
store costs no RAM between requests.

What `wss` trusts is the set of Central System roots in this store. config.json's
`csms.ca_file` is the technician's first root: its certificates are copied into the store when
the link opens and the file's content is new to the store (see seed()), so it works for the
first connection, a Central System can replace it later, and a deleted one does not come back
until the technician changes the file.

Public API for other modules: `cp.feature("certificates").ders(kind) -> [DER bytes]`.
"""
import hashlib
import os

from firmware import store
from firmware.compat import const, pem_certificates

CSMS_ROOT = "CentralSystemRootCertificate"
MFR_ROOT = "ManufacturerRootCertificate"
_PREFIX = {CSMS_ROOT: "csms-", MFR_ROOT: "mfr-"}
_MAX_PEM = const(5500)        # the schema's maxLength for one certificate
_SEED = "seed"                # SHA-256 of the ca_file content last copied in


def folder(data_dir):
    return store.join(data_dir, "certs")


def paths(data_dir, kind):
    """The PEM files of `kind` in the store, in name order (no parsing)."""
    d = folder(data_dir)
    prefix = _PREFIX[kind]
    try:
        names = os.listdir(d)
    except OSError:
        return []
    return [store.join(d, n) for n in sorted(names)
            if n.startswith(prefix) and n.endswith(".pem")]


def _der_of(path):
    with open(path, "rb") as f:
        ders = pem_certificates(f.read())
    if len(ders) != 1:
        raise ValueError("not one PEM certificate")
    return ders[0]


def _pem(der):
    import binascii
    b64 = binascii.b2a_base64(der).replace(b"\n", b"")
    lines = [b64[i:i + 64].decode() for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _add(data_dir, kind, der):
    """Write `der` into the store; False if it was there already."""
    d = folder(data_dir)
    store.makedirs(d)
    path = store.join(d, _PREFIX[kind] + hashlib.sha256(der).digest()[:4].hex() + ".pem")
    if store.exists(path):
        return False
    store.write_atomic(path, _pem(der))
    return True


def seed(cfg, log, limit):
    """Copy the certificates of csms.ca_file into the store when the file's content is new to
    it (first boot, or the technician changed the file). Never raises for a bad file: the
    TLS connect reports that."""
    csms = cfg["csms"]
    if not csms["ca_file"]:
        return
    try:
        with open(store.join(cfg["_dir"], csms["ca_file"]), "rb") as f:
            data = f.read()
        ders = pem_certificates(data) or [data]
    except (OSError, ValueError):
        return
    mark = hashlib.sha256(data).digest().hex()
    d = folder(cfg["_data"])
    marker = store.join(d, _SEED)
    if store.read_json(marker) == mark:
        return
    added = 0
    for der in ders:
        if _count(cfg["_data"]) >= limit:
            log.warn("cert", "certificate store full: not all of csms.ca_file was added")
            break
        added += _add(cfg["_data"], CSMS_ROOT, der)
    store.makedirs(d)
    store.write_atomic(marker, '"%s"' % mark)
    log.info("cert", "csms.ca_file: %d Central System root(s) added to the store" % added)


def _count(data_dir):
    return len(paths(data_dir, CSMS_ROOT)) + len(paths(data_dir, MFR_ROOT))


class Store:
    """The charger's installed root certificates (files, see the module docstring)."""

    def __init__(self, cp):
        self.cp = cp
        self._dir = cp.cfg["_data"]

    def paths(self, kind):
        return paths(self._dir, kind)

    def _read(self, kind):
        """[(path, DER)] of `kind`; a file that became unreadable is skipped and logged, never
        trusted."""
        out = []
        for p in self.paths(kind):
            try:
                out.append((p, _der_of(p)))
            except (OSError, ValueError) as e:
                self.cp.log.warn("cert", "skipping unreadable %s: %s" % (p, e))
        return out

    def ders(self, kind):
        """DER bytes of every installed certificate of `kind`."""
        return [der for _p, der in self._read(kind)]

    def count(self):
        return _count(self._dir)

    def hashes(self, kind):
        """[(path, CertificateHashData)] of the installed certificates of `kind`. The issuer
        of a certificate that is not self-issued is looked for among all installed ones (by
        name); when it is not installed its issuerKeyHash is x509.KEY_UNKNOWN ("")."""
        from firmware import x509
        items = self._read(kind)
        certs = [x509.Cert(der) for _p, der in items]
        pool = None  # (DER, Cert) of every installed certificate, read when first needed
        out = []
        for (path, der), c in zip(items, certs):
            issuer = None
            if not c.self_issued():
                if pool is None:
                    other = MFR_ROOT if kind == CSMS_ROOT else CSMS_ROOT
                    pool = [(d, x) for (_q, d), x in zip(items, certs)]
                    pool += [(d, x509.Cert(d)) for _q, d in self._read(other)]
                for o_der, o in pool:
                    if o is not c and o.subject == c.issuer:
                        issuer = o_der
                        break
            out.append((path, x509.hash_data(der, issuer)))
        return out


def load(cp):
    return Store(cp)


def _check(cp, der):
    """Why `der` cannot be a root certificate of this store, or None."""
    from firmware import clock, x509
    try:
        c = x509.Cert(der)
    except Exception:
        return "not an X.509 certificate"
    if not c.is_ca:
        return "not a CA certificate"
    now = cp.now()
    if clock.plausible(now) and c.not_after < now:
        return "expired"
    if c.issuer == c.subject and not c.verify_with(c):
        return "self-signature does not verify"
    return None


def InstallCertificate(cp, req):
    kind, text = req["certificateType"], req["certificate"]
    try:
        ders = pem_certificates(text.encode()) if len(text) <= _MAX_PEM else []
    except ValueError:
        ders = []
    why = "expected one PEM certificate" if len(ders) != 1 else _check(cp, ders[0])
    status = "Rejected"
    if why is None:
        st = cp.feature("certificates")
        if ders[0] in st.ders(kind):
            status = "Accepted"      # the same certificate again: nothing to do
        elif st.count() >= cp.keys["CertificateStoreMaxLength"]:
            why = "the store is full (CertificateStoreMaxLength)"
        else:
            try:
                _add(cp.cfg["_data"], kind, ders[0])
                status = "Accepted"
            except OSError as e:
                why, status = "cannot write: %s" % e, "Failed"
    cp.log.info("cert", "InstallCertificate %s: %s%s"
                % (kind, status, "" if why is None else " (%s)" % why))
    if status == "Accepted":
        cp.security_event("ReconfigurationOfSecurityParameters", "InstallCertificate " + kind)
    return {"status": status}


def DeleteCertificate(cp, req):
    want = req["certificateHashData"]
    from firmware.x509 import matches
    st = cp.feature("certificates")
    for kind in (CSMS_ROOT, MFR_ROOT):
        found = [p for p, h in st.hashes(kind) if matches(h, want)]
        if not found:
            continue
        # The whitepaper's DeleteCertificateStatus has no Rejected: a refusal is Failed.
        if (kind == CSMS_ROOT and len(found) >= len(st.paths(kind))
                and cp.keys["SecurityProfile"] >= 2):
            cp.log.warn("cert", "DeleteCertificate: Failed, the last Central System root "
                        "cannot go while SecurityProfile is 2 or 3")
            return {"status": "Failed"}
        try:
            for p in found:
                os.remove(p)
        except OSError as e:
            cp.log.warn("cert", "DeleteCertificate: Failed (%s)" % e)
            return {"status": "Failed"}
        cp.log.info("cert", "DeleteCertificate %s serial %s: Accepted"
                    % (kind, want["serialNumber"]))
        cp.security_event("ReconfigurationOfSecurityParameters", "DeleteCertificate " + kind)
        return {"status": "Accepted"}
    return {"status": "NotFound"}


def GetInstalledCertificateIds(cp, req):
    found = [h for _p, h in cp.feature("certificates").hashes(req["certificateType"])]
    if not found:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashData": found}
