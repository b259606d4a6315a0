"""Firmware Management: UpdateFirmware and SignedUpdateFirmware (download, signature checks,
install into an app slot, reboot, rollback) and GetDiagnostics (log upload), against local
HTTP and FTP servers. Every bundle is signed with a throwaway vendor key (tests/signing.py)
that the charger's vendor_keys.json trusts; the unsigned and wrongly signed ones write a
marker file if any of their code is ever imported."""
import calendar
import datetime
import http.server
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import warnings

import pytest
from ocpp.v16 import call

from tests import signing
from tests.scenarios.steps import FAST, booted, start_session
from tools import bundle

NEW_VERSION = "9.9.9"
OLD_VERSION = "0.1.0"   # station.firmware_version of the repository's config.json
MARK = "running the 9.9.9 bundle"
FTP_USER, FTP_PASSWORD = "fw", "secret"


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- servers ---------------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.gets.append((time.monotonic(), self.path))
        body = self.server.files.get(self.path)
        if body is None:
            self._reply(404, b"not here")
        else:
            self._reply(200, body)

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.puts.append((time.monotonic(), self.path))
        if self.path.startswith("/slow/"):  # held until the test lets it go
            self.server.release.wait(10)
        if self.path.startswith("/forbidden/"):
            self._reply(403, b"no")
            return
        self.server.uploads[self.path] = body
        self._reply(201, b"stored")


class Web(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files, self.uploads, self.gets, self.puts = {}, {}, [], []
        self.release = threading.Event()
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture(scope="module")
def web():
    server = Web()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def ftpd(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pytest.importorskip("pyftpdlib")
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer

    home = tmp_path_factory.mktemp("ftp")
    (home / "fw").mkdir()
    (home / "up").mkdir()
    auth = DummyAuthorizer()
    auth.add_user(FTP_USER, FTP_PASSWORD, str(home), perm="elradfmw")

    class Ftp(FTPHandler):
        authorizer = auth
        passive_ports = list(range(61100, 61200))

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    server = FTPServer(("127.0.0.1", 0), Ftp)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    url = "ftp://%s:%s@127.0.0.1:%d" % (FTP_USER, FTP_PASSWORD, server.address[1])
    yield {"home": home, "url": url}
    stop.set()
    thread.join(2)


# ---- bundles ---------------------------------------------------------------------------------

def _replace(folder, rel, text, mpy):
    """Put `text` as module `rel` (e.g. "firmware/app") into a bundle folder, source or
    compiled, and update the manifest entry."""
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    src = os.path.join(folder, rel + ".py.src")
    with open(src, "w") as f:
        f.write(text)
    if mpy:
        target = rel + ".mpy"
        subprocess.run([bundle.mpy_cross_path(), "-s", rel + ".py",
                        "-o", os.path.join(folder, target), src], check=True)
        os.remove(src)
    else:
        target = rel + ".py"
        os.replace(src, os.path.join(folder, target))
    path = os.path.join(folder, target)
    manifest["files"][target] = {"size": os.path.getsize(path), "sha256": bundle.sha256_file(path)}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    signing.sign(folder)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """kind ("micropython" / "python3") -> {"good", "bad_hash", "broken_app", "unsigned",
    "wrong_key": tar bytes}; bundles.marker(interpreter): the file the unsigned and wrongly
    signed bundles' firmware/app writes when it is imported.

    MicroPython gets the .mpy bundle the board gets; CPython, which cannot load .mpy, the
    source bundle. The good one says MARK when it starts, so a test sees the new code run."""
    root = tmp_path_factory.mktemp("bundles")
    with open(os.path.join(bundle.ROOT, "config.json")) as f:
        cfg = json.load(f)
    cfg["station"]["firmware_version"] = NEW_VERSION  # the bundle's version comes from here
    config = root / "config.json"
    config.write_text(json.dumps(cfg))
    with open(os.path.join(bundle.ROOT, "firmware", "app.py")) as f:
        app = f.read()
    marked = app.replace('log.info("main", _startup_line(',
                         'log.info("main", "' + MARK + ': " + _startup_line(')
    assert marked != app
    cache = {}

    def get(interpreter):
        kind = "micropython" if "micropython" in os.path.basename(interpreter) else "python3"
        if kind in cache:
            return cache[kind]
        mpy = kind == "micropython"
        base = str(root / kind / "bundle")
        bundle.build(base, include_config=False, config=str(config), source=not mpy,
                     key=signing.key())
        out = {}
        evil = base + "-evil"
        shutil.copytree(base, evil)
        _replace(evil, "firmware/app", "open(%r, 'w').write('ran')\n" % marker(kind) + marked,
                 mpy)
        unsigned = base + "-unsigned"
        shutil.copytree(evil, unsigned)
        os.remove(os.path.join(unsigned, "manifest.sig"))
        wrong = base + "-wrong"
        shutil.copytree(evil, wrong)
        signing.sign(wrong, signing.key("attacker"))
        good = base + "-good"
        shutil.copytree(base, good)
        _replace(good, "firmware/app", marked, mpy)
        bad = base + "-bad"
        shutil.copytree(good, bad)
        victim = os.path.join(bad, "hal", "led." + ("mpy" if mpy else "py"))
        with open(victim, "ab") as f:
            f.write(b"\n# changed after the manifest was made\n")
        broken = base + "-broken"
        shutil.copytree(base, broken)
        _replace(broken, "firmware/app", "raise RuntimeError('this build is broken')\n", mpy)
        for name, folder in (("good", good), ("bad_hash", bad), ("broken_app", broken),
                             ("unsigned", unsigned), ("wrong_key", wrong)):
            with open(bundle.write_tar(folder, folder + ".tar"), "rb") as f:
                out[name] = f.read()
        cache[kind] = out
        return out

    def marker(interpreter):
        kind = "micropython" if "micropython" in os.path.basename(interpreter) else "python3"
        return str(root / ("marker-" + kind))
    get.marker = marker
    return get


@pytest.fixture
def charger(charger):
    """The charger factory, each charger trusting the test vendor key (vendor_keys.json
    next to its config.json) before it starts."""
    def factory(start=True, **kw):
        cp = charger(start=False, **kw)
        signing.trust(os.path.dirname(cp.config_path), signing.key())
        if start:
            cp.start()
        return cp
    return factory


def data_dir(cp):
    return os.path.join(os.path.dirname(cp.config_path), "data")


def active(cp):
    try:
        with open(os.path.join(data_dir(cp), "app", "active.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def statuses(csms, *expected, timeout=15):
    for s in expected:
        csms.wait_for("FirmwareStatusNotification", {"status": s}, timeout=timeout)


def update(csms, location, **kw):
    # UpdateFirmware.conf has no fields; the strict CSMS checks it is exactly that.
    at = kw.pop("at", iso(time.time()))
    csms.call(call.UpdateFirmware(location=location, retrieve_date=at, **kw))


def trigger(csms, message):
    """TriggerMessage for `message` -> its status."""
    return csms.call(call.TriggerMessage(requested_message=message)).status


def serve_http(web, name, data):
    web.files["/" + name] = data
    return web.url + "/" + name


def serve_bundle(web, bundles, interpreter, kind, prefix):
    """The URL of the `kind` bundle for `interpreter`, named `prefix`-<interpreter>.tar."""
    return serve_http(web, "%s-%s.tar" % (prefix, os.path.basename(interpreter)),
                      bundles(interpreter)[kind])


def serve_ftp(ftpd, name, data):
    (ftpd["home"] / "fw" / name).write_bytes(data)
    return ftpd["url"] + "/fw/" + name


# ---- UpdateFirmware --------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["http", "ftp"])
def test_tc_044_1_firmware_update(csms, charger, interpreter, web, ftpd, bundles, scheme, request):
    tar = bundles(interpreter)["good"]
    name = "%s-%s.tar" % (request.node.callspec.id.replace("/", "_"), scheme)
    url = serve_http(web, name, tar) if scheme == "http" else serve_ftp(ftpd, name, tar)
    cp = charger()
    booted(csms)
    assert csms.messages("BootNotification")[-1]["firmwareVersion"] == OLD_VERSION
    update(csms, url)
    statuses(csms, "Downloading", "Downloaded", "Installing")
    boot = csms.wait_for("BootNotification", timeout=20)
    assert boot["firmwareVersion"] == NEW_VERSION
    statuses(csms, "Installed")
    cp.wait_log("loader: application a, version 9.9.9, start 1 of 3")
    cp.wait_log(MARK)  # the code from the bundle runs, not just its version number
    deadline = time.monotonic() + 5
    while active(cp).get("report") is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    state = active(cp)
    assert (state["slot"], state["previous"], state["version"]) == ("a", "factory", NEW_VERSION)
    assert state["confirmed"] is True and state["tries"] == 0 and state["report"] is None
    assert not os.path.exists(os.path.join(data_dir(cp), "update.tar"))
    # Out of the update, a triggered status is Idle.
    assert trigger(csms, "FirmwareStatusNotification") == "Accepted"
    statuses(csms, "Idle")
    assert [m["status"] for m in csms.messages("FirmwareStatusNotification")] == [
        "Downloading", "Downloaded", "Installing", "Installed", "Idle"]


def test_tc_044_1_update_waits_for_the_transaction_to_end(csms, charger, interpreter, web, bundles,
                                                           tmp_path):
    url = serve_bundle(web, bundles, interpreter, "good", "tx")
    cp = charger(ocpp=FAST)
    booted(csms)
    tx_id = start_session(csms, cp)
    update(csms, url)
    statuses(csms, "Downloading", "Downloaded")
    assert trigger(csms, "FirmwareStatusNotification") == "Accepted"
    statuses(csms, "Downloaded")  # what it is doing now: waiting with the download
    # A second request meanwhile is answered and ignored.
    ignored = "/%s.tar" % tmp_path.name
    update(csms, web.url + ignored)
    csms.expect_none("FirmwareStatusNotification", 2, match={"status": "Installing"})
    assert not [p for _, p in web.gets if p == ignored]
    cp.wait_log("UpdateFirmware ignored: an update is already under way")
    assert csms.call(call.RemoteStopTransaction(transaction_id=tx_id)).status == "Accepted"
    stop = csms.wait_for("StopTransaction", {"transactionId": tx_id})
    assert stop["reason"] == "Remote"
    statuses(csms, "Installing")
    assert csms.wait_for("BootNotification", timeout=20)["firmwareVersion"] == NEW_VERSION
    statuses(csms, "Installed")


def test_tc_044_2_download_failed(csms, charger, web):
    cp = charger()
    booted(csms)
    # 404, two attempts a second apart, starting at retrieveDate (2 s from now)
    t0 = time.monotonic()
    update(csms, web.url + "/missing.tar", at=iso(time.time() + 2), retries=2, retry_interval=1)
    csms.expect_none("FirmwareStatusNotification", 0.8)  # nothing before retrieveDate
    statuses(csms, "Downloading", "DownloadFailed")
    gets = [t for t, path in web.gets if path == "/missing.tar" and t > t0]
    assert len(gets) == 2 and gets[1] - gets[0] >= 0.9 and gets[0] - t0 >= 0.9
    # connection refused, then a URL the charger cannot use
    update(csms, "http://127.0.0.1:%d/fw.tar" % free_port())
    statuses(csms, "Downloading", "DownloadFailed")
    update(csms, "ftp://127.0.0.1:99999/fw.tar")
    statuses(csms, "Downloading", "DownloadFailed")
    cp.wait_log("download 1 of 1 failed: bad host or port in URL")
    assert "Installing" not in [m["status"] for m in csms.messages("FirmwareStatusNotification")]
    # Still the same charger, running and answering.
    assert trigger(csms, "FirmwareStatusNotification") == "Accepted"
    statuses(csms, "Idle")
    assert trigger(csms, "Heartbeat") == "Accepted"
    csms.wait_for("Heartbeat")
    assert len(csms.messages("BootNotification")) == 1 and cp.running
    assert active(cp) is None


def test_tc_044_3_installation_failed_on_a_hash_mismatch(csms, charger, interpreter, web, bundles):
    url = serve_bundle(web, bundles, interpreter, "bad_hash", "bad")
    cp = charger()
    booted(csms)
    update(csms, url)
    statuses(csms, "Downloading", "Downloaded", "Installing", "InstallationFailed")
    cp.wait_log("installation failed: hal/led.")  # signed, but a file differs
    csms.expect_none("BootNotification", 1.5)
    assert active(cp) is None
    assert not os.path.exists(os.path.join(data_dir(cp), "app", "a"))
    assert not os.path.exists(os.path.join(data_dir(cp), "update.tar"))
    assert trigger(csms, "Heartbeat") == "Accepted"
    csms.wait_for("Heartbeat")


def test_tc_044_3_broken_update_is_rolled_back(csms, charger, interpreter, web, bundles):
    url = serve_bundle(web, bundles, interpreter, "broken_app", "broken")
    cp = charger()
    booted(csms)
    update(csms, url)
    statuses(csms, "Downloading", "Downloaded", "Installing")
    # The new application dies at every start; restart it as a watchdog would.
    restarts = 0
    while True:
        cp.wait(15)
        assert cp.returncode == 1
        restarts += 1
        assert restarts <= 3, "still not rolled back"
        cp.start()
        if "did not come up" in cp.wait_log("loader: application", timeout=10):
            break
    assert restarts == 3
    log = "\n".join(cp.output())
    for n in (1, 2, 3):
        assert "loader: application a, version 9.9.9, start %d of 3" % n in log
    assert "loader: application a did not come up; back to factory" in log
    boot = csms.wait_for("BootNotification", timeout=20)
    assert boot["firmwareVersion"] == OLD_VERSION
    statuses(csms, "InstallationFailed")
    cp.wait_log("removing unused application a")
    assert not os.path.exists(os.path.join(data_dir(cp), "app", "a"))
    state = active(cp)
    assert state["slot"] == "factory" and state["confirmed"] is True


# ---- vendor signature and SignedUpdateFirmware -----------------------------------------------

@pytest.mark.parametrize("kind", ["unsigned", "wrong_key"])
def test_update_firmware_never_installs_a_bundle_without_the_vendor_signature(
        csms, charger, interpreter, web, bundles, kind):
    url = serve_bundle(web, bundles, interpreter, kind, kind)
    cp = charger()
    booted(csms)
    update(csms, url)
    statuses(csms, "Downloading", "Downloaded", "Installing", "InstallationFailed")
    why = ("the bundle is not signed (no manifest.sig)" if kind == "unsigned"
           else "the vendor signature over manifest.json does not verify")
    cp.wait_log("installation refused: " + why)
    event = csms.wait_for("SecurityEventNotification", {"type": "InvalidFirmwareSignature"})
    assert why in event["techInfo"]
    csms.expect_none("BootNotification", 1.5)
    assert active(cp) is None
    assert not os.path.exists(os.path.join(data_dir(cp), "app", "a"))
    assert not os.path.exists(os.path.join(data_dir(cp), "update.tar"))
    assert not os.path.exists(bundles.marker(interpreter))  # no code of the bundle ran
    assert trigger(csms, "Heartbeat") == "Accepted"
    csms.wait_for("Heartbeat")
    assert len(csms.messages("BootNotification")) == 1 and cp.running


def test_update_firmware_refuses_an_image_bundle_on_an_mpy_charger(csms, charger, interpreter,
                                                                    web, tmp_path):
    """This charger runs firmware/ from files: a whole MicroPython image, even one signed by
    the vendor, is the wrong kind for it."""
    src = tmp_path / "image.bin"
    src.write_bytes(b"\xe9" + b"an image" * 1000)
    dest = str(tmp_path / "image")
    bundle.build_image(dest, str(src), NEW_VERSION, key=signing.key())
    with open(dest + ".tar", "rb") as f:
        url = serve_http(web, "%s-%s.tar" % (tmp_path.name, os.path.basename(interpreter)),
                         f.read())
    cp = charger()
    booted(csms)
    update(csms, url)
    statuses(csms, "Downloading", "Downloaded", "Installing", "InstallationFailed")
    cp.wait_log("installation failed: a bundle of kind image; this charger takes mpy")
    csms.expect_none("BootNotification", 1.5)
    assert active(cp) is None


def signed_update(csms, location, signature, request_id=7, cert=None, **kw):
    """SignedUpdateFirmware -> its reply's status."""
    root_pem, signer_pem, _ = signing.manufacturer()
    firmware = {"location": location, "retrieveDateTime": kw.pop("at", iso(time.time())),
                "signingCertificate": cert or signer_pem, "signature": signature}
    if "install_at" in kw:
        firmware["installDateTime"] = kw.pop("install_at")
    return csms.call(call.SignedUpdateFirmware(request_id=request_id, firmware=firmware,
                                               **kw)).status


def signed_statuses(csms, *expected, request_id=7, timeout=15):
    for s in expected:
        csms.wait_for("SignedFirmwareStatusNotification",
                      {"status": s, "requestId": request_id}, timeout=timeout)


def install_manufacturer_root(csms):
    root_pem, _, _ = signing.manufacturer()
    assert csms.call(call.InstallCertificate(
        certificate_type="ManufacturerRootCertificate", certificate=root_pem)).status == "Accepted"


def test_signed_update_firmware_installs_and_reports_with_request_id(
        csms, charger, interpreter, web, bundles):
    tar = bundles(interpreter)["good"]
    url = serve_http(web, "signed-good-%s.tar" % os.path.basename(interpreter), tar)
    _, _, signer = signing.manufacturer()
    cp = charger()
    booted(csms)
    install_manufacturer_root(csms)
    assert signed_update(csms, url, signing.ecdsa_b64(signer, tar), request_id=11,
                         at=iso(time.time() + 2)) == "Accepted"
    signed_statuses(csms, "DownloadScheduled", "Downloading", "Downloaded", "SignatureVerified",
                    "Installing", "InstallRebooting", request_id=11)
    boot = csms.wait_for("BootNotification", timeout=20)
    assert boot["firmwareVersion"] == NEW_VERSION
    signed_statuses(csms, "Installed", request_id=11)
    assert csms.wait_for("SecurityEventNotification",
                         {"type": "FirmwareUpdated"})["techInfo"] == "version " + NEW_VERSION
    cp.wait_log(MARK)
    assert active(cp)["slot"] == "a"
    assert [m["status"] for m in csms.messages("SignedFirmwareStatusNotification")] == [
        "DownloadScheduled", "Downloading", "Downloaded", "SignatureVerified", "Installing",
        "InstallRebooting", "Installed"]
    assert not csms.messages("FirmwareStatusNotification")


@pytest.mark.parametrize("case", ["bad_signature", "unsigned", "wrong_key"])
def test_signed_update_firmware_never_installs_an_unproven_bundle(
        csms, charger, interpreter, web, bundles, case):
    """A signature by the Central System's signer over the file is not enough: the vendor
    signature inside must hold too, and the other way round."""
    kind = "good" if case == "bad_signature" else case
    tar = bundles(interpreter)[kind]
    url = serve_http(web, "signed-%s-%s.tar" % (case, os.path.basename(interpreter)), tar)
    _, _, signer = signing.manufacturer()
    sig = signing.ecdsa_b64(signing.key("attacker") if case == "bad_signature" else signer, tar)
    cp = charger()
    booted(csms)
    install_manufacturer_root(csms)
    assert signed_update(csms, url, sig) == "Accepted"
    if case == "bad_signature":
        signed_statuses(csms, "Downloading", "Downloaded", "InvalidSignature")
    else:
        signed_statuses(csms, "Downloading", "Downloaded", "SignatureVerified", "Installing",
                        "InstallVerificationFailed")
    csms.wait_for("SecurityEventNotification", {"type": "InvalidFirmwareSignature"})
    csms.expect_none("BootNotification", 1.5)
    statuses_seen = [m["status"] for m in csms.messages("SignedFirmwareStatusNotification")]
    assert "Installing" not in statuses_seen or case != "bad_signature"
    assert "InstallRebooting" not in statuses_seen
    assert active(cp) is None
    assert not os.path.exists(os.path.join(data_dir(cp), "app", "a"))
    assert not os.path.exists(bundles.marker(interpreter))  # no code of the bundle ran


def test_signed_update_firmware_pauses_replaces_and_schedules(csms, charger, interpreter, web,
                                                               bundles):
    """DownloadPaused between attempts, AcceptedCanceled for a request that replaces a
    scheduled one, InstallScheduled until installDateTime."""
    tar = bundles(interpreter)["good"]
    url = serve_http(web, "scheduled-%s.tar" % os.path.basename(interpreter), tar)
    _, _, signer = signing.manufacturer()
    sig = signing.ecdsa_b64(signer, tar)
    cp = charger()
    booted(csms)
    install_manufacturer_root(csms)
    assert signed_update(csms, web.url + "/missing-signed.tar", sig, request_id=1, retries=2,
                         retry_interval=1) == "Accepted"
    signed_statuses(csms, "Downloading", "DownloadPaused", "Downloading", "DownloadFailed",
                    request_id=1, timeout=20)
    assert signed_update(csms, url, sig, request_id=2, at=iso(time.time() + 600)) == "Accepted"
    signed_statuses(csms, "DownloadScheduled", request_id=2)
    install_at = int(time.time()) + 4
    assert signed_update(csms, url, sig, request_id=3,
                         install_at=iso(install_at)) == "AcceptedCanceled"
    signed_statuses(csms, "Downloading", "Downloaded", "SignatureVerified", "InstallScheduled",
                    request_id=3)
    line = cp.wait_log("signed firmware status Installing (request 3)", timeout=15)
    # The line's time is the charger's clock, ISO 8601 UTC (firmware/log.py).
    logged = calendar.timegm(time.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%SZ"))
    assert logged >= install_at  # not before installDateTime
    signed_statuses(csms, "Installing", "InstallRebooting", request_id=3)
    signed_statuses(csms, "Installed", request_id=3, timeout=20)
    assert not [m for m in csms.messages("SignedFirmwareStatusNotification")
                if m.get("requestId") == 2 and m["status"] != "DownloadScheduled"]


def test_signed_update_firmware_refuses_an_untrusted_signing_certificate(
        csms, charger, interpreter, web, bundles):
    tar = bundles(interpreter)["good"]
    name = "/untrusted-%s.tar" % os.path.basename(interpreter)
    url = serve_http(web, name[1:], tar)
    _, other_pem, other_signer = signing.manufacturer("Someone Else")
    cp = charger()
    booted(csms)
    sig = signing.ecdsa_b64(other_signer, tar)
    # No ManufacturerRootCertificate installed yet, then one that did not issue the signer.
    assert signed_update(csms, url, sig, cert=other_pem) == "InvalidCertificate"
    install_manufacturer_root(csms)
    assert signed_update(csms, url, sig, cert=other_pem) == "InvalidCertificate"
    assert signed_update(csms, url, sig, cert="not a certificate") == "InvalidCertificate"
    events = [m for m in csms.messages("SecurityEventNotification")
              if m["type"] == "InvalidFirmwareSigningCertificate"]
    deadline = time.monotonic() + 10
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        events = [m for m in csms.messages("SecurityEventNotification")
                  if m["type"] == "InvalidFirmwareSigningCertificate"]
    assert [e["techInfo"][:40] for e in events] == [
        "no ManufacturerRootCertificate is installed"[:40], "untrusted",
        "unreadable signing certificate: expected"]
    csms.expect_none("SignedFirmwareStatusNotification", 1.5)
    assert not [p for _, p in web.gets if p == name]  # nothing was downloaded
    assert active(cp) is None


def revoked_json(*pems):
    """revoked.json naming the certificates `pems` (issuer name hash and serial)."""
    import hashlib
    from cryptography import x509 as cx509
    out = []
    for pem in pems:
        c = cx509.load_pem_x509_certificate(pem.encode())
        out.append({"issuerNameHash": hashlib.sha256(c.issuer.public_bytes()).hexdigest(),
                    "serialNumber": "%x" % c.serial_number})
    return json.dumps({"revoked": out})


def test_signed_update_firmware_refuses_a_revoked_signing_certificate(
        csms, charger, interpreter, web, bundles):
    """revoked.json next to config.json (the technician's revocation list) naming the signing
    certificate, then its root: RevokedCertificate, nothing downloaded; a list that is not
    strict JSON refuses every signer (InvalidCertificate) rather than trusting them all."""
    tar = bundles(interpreter)["good"]
    name = "/revoked-%s.tar" % os.path.basename(interpreter)
    url = serve_http(web, name[1:], tar)
    root_pem, signer_pem, signer = signing.manufacturer()
    sig = signing.ecdsa_b64(signer, tar)
    cp = charger()
    booted(csms)
    install_manufacturer_root(csms)
    listed = os.path.join(os.path.dirname(cp.config_path), "revoked.json")
    for pems in ((signer_pem,), (root_pem,)):
        with open(listed, "w") as f:
            f.write(revoked_json(*pems))
        assert signed_update(csms, url, sig) == "RevokedCertificate"
    with open(listed, "w") as f:
        f.write(revoked_json(signer_pem)[:-1] + " 2}")  # only a lenient parser reads it
    assert signed_update(csms, url, sig) == "InvalidCertificate"
    events = []
    deadline = time.monotonic() + 10
    while len(events) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        events = [m["techInfo"] for m in csms.messages("SecurityEventNotification")
                  if m["type"] == "InvalidFirmwareSigningCertificate"]
    assert events[:2] == ["revoked", "revoked"]
    assert events[2].startswith("revocation list unusable: line 1: expected ','")
    csms.expect_none("SignedFirmwareStatusNotification", 1.5)
    assert not [p for _, p in web.gets if p == name]
    assert active(cp) is None


# ---- GetDiagnostics --------------------------------------------------------------------------

def diagnostics(csms, location, **kw):
    return csms.call(call.GetDiagnostics(location=location, **kw)).file_name


def diag_statuses(csms, *expected, timeout=15):
    for s in expected:
        csms.wait_for("DiagnosticsStatusNotification", {"status": s}, timeout=timeout)


def test_tc_045_1_diagnostics_over_http_with_time_window(csms, charger, web, tmp_path):
    base = web.url + "/" + tmp_path.name  # the server outlives the test: a folder of its own
    cp = charger()
    booted(csms)
    name = diagnostics(csms, base + "/all/", start_time=iso(time.time() - 3600))
    assert re.fullmatch(r"CP_1-\d{8}T\d{6}Z\.log", name), name
    diag_statuses(csms, "Uploading", "Uploaded")
    everything = web.uploads["/%s/all/%s" % (tmp_path.name, name)].decode()
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ I boot: BootNotification Accepted",
                     everything, re.M)
    # A window after the boot: the charger's clock is the CSMS's, truncated to the second.
    time.sleep(3)
    start = int(time.time()) - 1
    cp.console("plug 1")
    csms.wait_for_status(1, "Preparing")
    name = diagnostics(csms, base + "/window", start_time=iso(start))
    diag_statuses(csms, "Uploading", "Uploaded")
    # No "/" at the end: still a directory (OCPP 1.6), the file name goes into it.
    text = web.uploads["/%s/window/%s" % (tmp_path.name, name)].decode()
    assert "connector 1 Preparing" in text and "BootNotification Accepted" not in text
    name = diagnostics(csms, base + "/before/", stop_time=iso(start - 1))
    diag_statuses(csms, "Uploading", "Uploaded")
    text = web.uploads["/%s/before/%s" % (tmp_path.name, name)].decode()
    assert "BootNotification Accepted" in text and "connector 1 Preparing" not in text
    # Nothing logged in the window: no file name, no upload.
    assert diagnostics(csms, base + "/none/", start_time=iso(time.time() - 7200),
                       stop_time=iso(time.time() - 3600)) is None
    csms.expect_none("DiagnosticsStatusNotification", 1)
    assert not [p for p in web.uploads if p.startswith("/%s/none/" % tmp_path.name)]


def test_tc_045_1_diagnostics_over_ftp(csms, charger, ftpd, tmp_path):
    folder = ftpd["home"] / "up" / tmp_path.name
    folder.mkdir()
    charger()
    booted(csms)
    name = diagnostics(csms, "%s/up/%s/" % (ftpd["url"], tmp_path.name))
    diag_statuses(csms, "Uploading", "Uploaded")
    assert os.listdir(folder) == [name]
    assert "BootNotification Accepted" in (folder / name).read_text()


def test_tc_045_1_diagnostics_location_is_a_directory(csms, charger, ftpd, web, tmp_path):
    """The location names a directory, with or without a "/" at its end, even a server's
    root (no path at all): the file name of GetDiagnostics.conf is appended to it."""
    folder = ftpd["home"] / "up" / tmp_path.name
    folder.mkdir()
    charger()
    booted(csms)
    names = []
    for location in ("%s/up/%s" % (ftpd["url"], tmp_path.name), ftpd["url"]):
        name = diagnostics(csms, location)
        diag_statuses(csms, "Uploading", "Uploaded")
        names.append(name)
        time.sleep(1.1)  # the next file gets a name of its own (one per second)
    assert os.listdir(folder) == [names[0]]
    assert "BootNotification Accepted" in (ftpd["home"] / names[1]).read_text()
    os.remove(ftpd["home"] / names[1])
    base = "%s/%s" % (web.url, tmp_path.name)
    for location, where in ((base + "/h", "/%s/h/" % tmp_path.name),
                            (base + "/q?sig=1", "/%s/q/" % tmp_path.name)):
        name = diagnostics(csms, location)
        diag_statuses(csms, "Uploading", "Uploaded")
        wanted = where + name + ("?sig=1" if "?" in location else "")
        assert wanted in web.uploads, (wanted, sorted(web.uploads))
        time.sleep(1.1)


def test_tc_045_2_upload_failed_and_triggered_statuses(csms, charger, web):
    charger()
    booted(csms)
    assert trigger(csms, "DiagnosticsStatusNotification") == "Accepted"
    diag_statuses(csms, "Idle")
    t0 = time.monotonic()
    assert diagnostics(csms, web.url + "/forbidden/", retries=2, retry_interval=1)
    diag_statuses(csms, "Uploading", "UploadFailed")
    puts = [t for t, path in web.puts if path.startswith("/forbidden/") and t > t0]
    assert len(puts) == 2 and puts[1] - puts[0] >= 0.9
    # While an upload is under way, a trigger reports it.
    web.release.clear()
    assert diagnostics(csms, web.url + "/slow/")
    diag_statuses(csms, "Uploading")
    assert trigger(csms, "DiagnosticsStatusNotification") == "Accepted"
    diag_statuses(csms, "Uploading")
    assert diagnostics(csms, web.url + "/other/") is None  # one upload at a time
    web.release.set()
    diag_statuses(csms, "Uploaded")
    assert not [p for _, p in web.puts if p.startswith("/other/")]
    assert trigger(csms, "DiagnosticsStatusNotification") == "Accepted"
    diag_statuses(csms, "Idle")
