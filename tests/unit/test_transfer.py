"""firmware.transfer (over firmware.httpc, firmware.ftp and firmware.net) against local HTTP(S)
and FTP servers, in-process on CPython and under the MicroPython unix port."""
import asyncio
import base64
import hashlib
import http.server
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings

import pytest

from firmware import ftp, httpc, net, transfer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(os.path.dirname(sys.executable), "micropython")


def blob(n, seed):
    """n deterministic, non-repeating-looking bytes."""
    out, block = b"", seed.to_bytes(4, "big")
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:n]


def sha(data):
    return hashlib.sha256(data).hexdigest()


BODY = blob(5000, 1)        # several 1 KB chunks plus a tail
CHUNKS = [blob(700, 2), blob(1500, 3), b"x"]
PRIVATE = blob(33, 4)
USER, PASSWORD = "us@er", "p:ss/w%rd"
USERINFO = "us%40er:p%3Ass%2Fw%25rd"  # both percent-encoded


# ---- HTTP server ------------------------------------------------------------------------

class HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, status, location):
        self._send(status, b"moved", [("Location", location)])

    def _chunked(self, parts, extension=""):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in parts:
            self.wfile.write(b"%x%s\r\n%s\r\n" % (len(part), extension.encode(), part))
            self.wfile.flush()
        self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")

    def do_GET(self):
        self.server.seen.append(("GET", self.path, self.headers))
        port = self.server.server_address[1]
        path = self.path
        if path in ("/file.bin", "/sub/data.bin"):
            self._send(200, BODY)
        elif path == "/empty":
            self._send(200)
        elif path == "/chunked.bin":
            self._chunked(CHUNKS, ";name=value")
        elif path == "/big-chunked":  # no length up front: the client must stop by itself
            self._chunked([blob(1000, 5)] * 8)
        elif path == "/close.bin":  # delimited by closing the connection
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        elif path == "/redirect":
            self._redirect(302, "/file.bin")
        elif path == "/redirect-abs":
            self._redirect(301, "http://127.0.0.1:%d/sub/redirect-rel" % port)
        elif path == "/sub/redirect-rel":
            self._redirect(308, "data.bin")
        elif path == "/loop":
            self._redirect(307, "/loop")
        elif path == "/private":
            cred = base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
            if self.headers.get("Authorization") == "Basic " + cred:
                self._send(200, PRIVATE)
            else:
                self._send(401, b"who?", [("WWW-Authenticate", 'Basic realm="x"')])
        elif path == "/slow":  # headers and a few bytes, then nothing
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"abc")
            self.wfile.flush()
            time.sleep(1.5)
        else:
            self.send_error(404)

    def _store(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.uploads[self.path] = (self.command, self.headers, body)
        if self.path.startswith("/forbidden"):
            self._send(403, b"no")
        else:
            self._send(201 if self.command == "PUT" else 200, b"stored")

    do_PUT = _store
    do_POST = _store


class HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), HttpHandler)
        self.seen, self.uploads = [], {}
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.server_address[1])
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def web():
    server = HttpServer()
    yield server
    server.stop()


# ---- FTP server ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ftpd(tmp_path_factory):
    with warnings.catch_warnings():  # asyncore/asynchat deprecation on CPython 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        pytest.importorskip("pyftpdlib")
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler
        from pyftpdlib.servers import FTPServer

    class Handler(FTPHandler):
        passive_ports = list(range(61000, 61100))  # above Linux's ephemeral range
        # An unroutable address in every PASV reply: clients must use the control host.
        masquerade_address = "192.0.2.1"
        auth_failed_timeout = 0.05

        def ftp_PASV(self, line):
            if self.username == "nopasv":  # drives the client to its EPSV fallback
                self.respond("502 PASV disabled.")
            else:
                super().ftp_PASV(line)

    root = tmp_path_factory.mktemp("ftp")
    home, pub = root / "home", root / "pub"
    (home / "fw").mkdir(parents=True)
    (home / "fw" / "image.bin").write_bytes(BODY)
    (home / "big.bin").write_bytes(blob(3000, 6))
    (home / "up").mkdir()
    pub.mkdir()
    (pub / "hello.txt").write_bytes(b"hello anonymous\n")
    auth = DummyAuthorizer()
    auth.add_user(USER, PASSWORD, str(home), perm="elradfmw")
    auth.add_user("nopasv", "pw", str(home), perm="elradfmw")
    auth.add_anonymous(str(pub))  # read-only
    Handler.authorizer = auth
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    server = FTPServer(("127.0.0.1", 0), Handler)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        server.close_all()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield {"port": server.address[1], "home": home, "pub": pub,
           "url": "ftp://%s@127.0.0.1:%d" % (USERINFO, server.address[1]),
           "anon": "ftp://127.0.0.1:%d" % server.address[1]}
    stop.set()
    thread.join(2)


# ---- the two clients ------------------------------------------------------------------------
# Both take a list of [kind, args, kwargs] and give one ["ok", result] or ["error", text] each.

MP_DRIVER = r"""
import sys, json, asyncio
from firmware import net, transfer

async def main():
    for kind, args, kw in json.loads(sys.stdin.read()):
        try:
            if kind == "parse":
                u = net.Url(args[0])
                res = [u.scheme, u.user, u.password, u.host, u.port, u.path, u.target]
            else:
                if kind == "upload" and isinstance(args[1], dict):
                    args[1] = bytes.fromhex(args[1]["hex"])
                res = list(await getattr(transfer, kind)(*args, **kw))
            print(json.dumps(["ok", res]))
        except net.NetError as e:
            print(json.dumps(["error", str(e)]))

asyncio.run(main())
"""


def run_micropython(ops):
    # The operations go in on stdin: the 1.29 unix port aborts on a -c argument over ~256 bytes.
    out = subprocess.run([MICROPYTHON, "-c", MP_DRIVER], input=json.dumps(ops), cwd=ROOT,
                         capture_output=True, text=True, timeout=15)
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == len(ops), out.stdout + out.stderr
    return [json.loads(line) for line in lines]


def run_cpython(ops):
    async def main():
        results = []
        for kind, args, kw in ops:
            try:
                if kind == "parse":
                    u = net.Url(args[0])
                    res = [u.scheme, u.user, u.password, u.host, u.port, u.path, u.target]
                else:
                    if kind == "upload" and isinstance(args[1], dict):
                        args = [args[0], bytes.fromhex(args[1]["hex"])]
                    res = list(await getattr(transfer, kind)(*args, **kw))
                results.append(["ok", res])
            except net.NetError as e:
                results.append(["error", str(e)])
        return results
    return asyncio.run(asyncio.wait_for(main(), 15))


@pytest.fixture(params=["mp", "cpy"])
def client(request):
    if request.param == "mp":
        if not os.access(MICROPYTHON, os.X_OK):
            pytest.skip("micropython not next to python")
        return run_micropython
    return run_cpython


def down(url, dest, **kw):
    return ["download", [url, str(dest)], kw]


def up(url, src, **kw):
    src = {"hex": src.hex()} if isinstance(src, bytes) else str(src)  # bytes or a file path
    return ["upload", [url, src], kw]


def ok(data):
    return ["ok", [len(data), sha(data)]]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- URL parsing --------------------------------------------------------------------------

def test_url_parsing(client):
    got = client([["parse", [u], {}] for u in (
        "ftp://" + USERINFO + "@Example.com:2121/fw/a%20b.bin",
        "ftp://h/%2Fabs/x;type=i",
        "https://[::1]/p?q=1 2#frag",
        "HTTP://host",
        "http://h:0/", "http://h:99999/", "http://u:secret@h:x/", "http://:80/",
        "gopher://h/", "ftp://h/a%0D%0ADELE%20b",
        "ftp://u:p%zz@h/", "http://h/caf%C3%A9",
    )])
    assert got == [
        ["ok", ["ftp", USER, PASSWORD, "Example.com", 2121, "fw/a b.bin", "/fw/a%20b.bin"]],
        ["ok", ["ftp", None, None, "h", 21, "/abs/x;type=i", "/%2Fabs/x;type=i"]],
        ["ok", ["https", None, None, "::1", 443, "p", "/p?q=1%202"]],
        ["ok", ["http", None, None, "host", 80, "", "/"]],
        ["error", "bad host or port in URL: h:0"],
        ["error", "bad host or port in URL: h:99999"],
        ["error", "bad host or port in URL: h:x"],  # credentials never show up in messages
        ["error", "bad host or port in URL: :80"],
        ["error", "unsupported URL scheme (http, https or ftp): gopher"],
        ["error", "control character in URL path"],   # no FTP command injection
        ["error", "bad percent escape in URL"],
        ["ok", ["http", None, None, "h", 80, "café", "/caf%C3%A9"]],
    ]


def test_url_helpers():
    base = net.Url("http://u:p@h:8080/a/b/c.bin?x=1")
    assert base.host_header() == "h:8080"
    assert net.Url("https://[::1]:443/").host_header() == "[::1]"
    rel = httpc._redirect(base, "d.bin")
    assert (rel.host, rel.port, rel.target, rel.user) == ("h", 8080, "/a/b/d.bin", "u")
    other = httpc._redirect(base, "https://elsewhere/x")
    assert (other.scheme, other.host, other.user) == ("https", "elsewhere", None)  # no leak
    assert httpc._redirect(base, "//h:8080/y").user == "u"
    with pytest.raises(net.NetError, match="redirect to ftp"):
        httpc._redirect(base, "ftp://h/x")
    assert net.quote("diag 1/ä.zip") == "diag%201%2F%C3%A4.zip"
    assert ftp.pasv_port("227 Entering Passive Mode (192,0,2,1,238,145).") == 61073
    assert ftp.pasv_port("227 =10,0,0,1,0,21") == 21
    assert ftp.epsv_port("229 Entering Extended Passive Mode (|||61001|)") == 61001
    assert ftp.epsv_port("229 ok (!!!21!)") == 21
    for bad in ("227 (1,2,3,4,5)", "227 (1,2,3,4,0,0)", "227 (300,2,3,4,5,6)"):
        with pytest.raises(net.NetError, match="bad PASV reply"):
            ftp.pasv_port(bad)
    with pytest.raises(net.NetError, match="bad EPSV reply"):
        ftp.epsv_port("229 no port here")


def test_in_folder_location_is_a_directory():
    """OCPP 1.6: GetDiagnostics' location (and GetLog's) is a directory, "/" at its end or not."""
    name = "CP_1-20260101T000000Z.log"
    for location, url in (
            ("ftp://root:12345@localhost:34117", "ftp://root:12345@localhost:34117/" + name),
            ("ftp://h/up", "ftp://h/up/" + name),
            ("ftp://h/up/", "ftp://h/up/" + name),
            ("http://h:8080/a/b", "http://h:8080/a/b/" + name),
            ("https://h/a/?sig=x/y", "https://h/a/" + name + "?sig=x/y")):
        assert transfer.in_folder(location, name) == url
        assert net.Url(url).path.endswith(name)
    assert transfer.in_folder("ftp://h", "a b.log") == "ftp://h/a%20b.log"


# ---- HTTP ---------------------------------------------------------------------------------

def test_http_download(client, web, tmp_path):
    names = ["len", "chunked", "close", "redir", "redir2", "private", "empty"]
    got = client([
        down(web.url + "/file.bin", tmp_path / "len"),
        down(web.url + "/chunked.bin", tmp_path / "chunked"),
        down(web.url + "/close.bin", tmp_path / "close"),
        down(web.url + "/redirect", tmp_path / "redir"),
        down(web.url + "/redirect-abs", tmp_path / "redir2"),  # 301 absolute, then 308 relative
        down(web.url.replace("//", "//%s@" % USERINFO) + "/private", tmp_path / "private"),
        down(web.url + "/empty", tmp_path / "empty"),
    ])
    chunked = b"".join(CHUNKS)
    assert got == [ok(BODY), ok(chunked), ok(BODY), ok(BODY), ok(BODY), ok(PRIVATE), ok(b"")]
    contents = [BODY, chunked, BODY, BODY, BODY, PRIVATE, b""]
    assert [(tmp_path / n).read_bytes() for n in names] == contents
    get = [h for h in web.seen if h[1] == "/file.bin"][-1][2]
    assert get["Host"] == web.url.split("//")[1] and get["Connection"] == "close"


def test_http_download_errors(client, web, tmp_path):
    keep = tmp_path / "keep"
    keep.write_bytes(b"previous firmware")
    port = free_port()
    got = client([
        down(web.url + "/missing", tmp_path / "missing"),
        down(web.url + "/private", tmp_path / "private"),
        down(web.url + "/loop", tmp_path / "loop"),
        down(web.url + "/file.bin", keep, max_bytes=4999),         # refused on Content-Length
        down(web.url + "/big-chunked", tmp_path / "big", max_bytes=5500),  # stopped mid-way
        down(web.url + "/slow", tmp_path / "slow", timeout_ms=300),
        down("http://127.0.0.1:%d/x" % port, tmp_path / "refused"),
        down(web.url + "/file.bin", tmp_path / "nodir" / "f"),
    ])
    assert got == [
        ["error", "HTTP 404 Not Found"],
        ["error", "HTTP 401 Unauthorized"],
        ["error", "more than 3 redirects"],
        ["error", "file larger than max_bytes (5000 > 4999)"],
        ["error", "file larger than max_bytes (6000 > 5500)"],
        ["error", "read timeout after 300 ms (127.0.0.1:%d)" % web.server_address[1]],
        ["error", "cannot connect to 127.0.0.1:%d: ECONNREFUSED" % port],
        got[7],
    ]
    assert got[7][1].startswith("cannot write %s: " % (tmp_path / "nodir" / "f")), got[7]
    assert keep.read_bytes() == b"previous firmware"  # nothing was written over it
    assert sorted(os.listdir(tmp_path)) == ["keep"]  # partial files were removed


def test_http_upload(client, web, tmp_path):
    log = tmp_path / "diag.log"
    log.write_bytes(BODY)
    data = blob(1025, 7)
    got = client([
        up(web.url + "/put/one.bin", data),
        up(web.url + "/post/", log, method="POST"),  # folder URL: the file's name is appended
        up(web.url + "/put/", data, filename="diag 2.zip"),
        up(web.url + "/forbidden", data),
        up(web.url + "/put/", data),
        up("http://127.0.0.1:%d/x" % free_port(), data),
        up(web.url + "/put/", tmp_path / "absent.log"),
    ])
    assert got[6][1].startswith("cannot read %s: [Errno 2] " % (tmp_path / "absent.log")), got[6]
    assert got[:5] == [ok(data), ok(BODY), ok(data), ["error", "HTTP 403 Forbidden"],
                       ["error", "URL names a folder and no filename was given"]]
    assert got[5][1].startswith("cannot connect to 127.0.0.1:"), got[5]
    method, headers, body = web.uploads.pop("/put/one.bin")
    assert (method, body, headers["Content-Type"]) == ("PUT", data, "application/octet-stream")
    method, headers, body = web.uploads.pop("/post/diag.log")
    assert (method, body, headers["Content-Length"]) == ("POST", BODY, "5000")
    assert web.uploads.pop("/put/diag%202.zip")[2] == data
    assert web.uploads.pop("/forbidden")[2] == data
    assert web.uploads == {}


def test_connect_timeout(monkeypatch, tmp_path):
    async def hang(*args):
        await asyncio.sleep(5)
    monkeypatch.setattr(net.compat, "open_connection", hang)
    got = run_cpython([down("http://127.0.0.1:1/x", tmp_path / "x", timeout_ms=100),
                       down("ftp://127.0.0.1:1/x", tmp_path / "y", timeout_ms=100)])
    assert got == [["error", "connect timeout after 100 ms (127.0.0.1:1)"]] * 2


# ---- HTTPS --------------------------------------------------------------------------------

def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, an unrelated CA, and a server certificate for 127.0.0.1 signed by the first."""
    if not shutil.which("openssl"):
        pytest.skip("openssl not found")
    d = str(tmp_path_factory.mktemp("certs"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other_ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{d}/{ca}.key", "-out", f"{d}/{ca}.pem",
                 "-days", "2", "-subj", f"/CN=Test {ca}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-new", *ec, "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr",
             "-subj", "/CN=127.0.0.1")
    with open(f"{d}/server.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem", "-CAkey",
             f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/server.pem", "-days", "2",
             "-extfile", f"{d}/server.cnf")
    return d


def test_https_download_verifies_server(client, certs, tmp_path):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(f"{certs}/server.pem", f"{certs}/server.key")
    server = HttpServer(tls)
    try:
        got = client([
            down(server.url + "/redirect", tmp_path / "good", ca_file=f"{certs}/ca.pem"),
            down(server.url + "/file.bin", tmp_path / "bad", ca_file=f"{certs}/other_ca.pem"),
            down(server.url + "/file.bin", tmp_path / "unverified",
                 ca_file=f"{certs}/other_ca.pem", verify=False),
            up(server.url + "/put/tls.bin", PRIVATE, ca_file=f"{certs}/ca.pem"),
        ])
    finally:
        server.stop()
    assert got[0] == ok(BODY) and got[2] == ok(BODY) and got[3] == ok(PRIVATE), got
    assert got[1][0] == "error" and "certificate" in got[1][1].lower(), got[1]
    assert (tmp_path / "good").read_bytes() == BODY and not (tmp_path / "bad").exists()
    assert server.uploads["/put/tls.bin"][2] == PRIVATE


# ---- FTP ----------------------------------------------------------------------------------

def test_ftp_download(client, ftpd, tmp_path):
    got = client([
        down(ftpd["url"] + "/fw/image.bin", tmp_path / "user"),
        down(ftpd["anon"] + "/hello.txt", tmp_path / "anon"),
        down("ftp://nopasv:pw@127.0.0.1:%d/fw/image.bin" % ftpd["port"], tmp_path / "epsv"),
    ])
    assert got == [ok(BODY), ok(b"hello anonymous\n"), ok(BODY)]
    assert (tmp_path / "user").read_bytes() == BODY
    assert (tmp_path / "epsv").read_bytes() == BODY


def test_ftp_upload(client, ftpd, tmp_path):
    log = tmp_path / "diag.log"
    log.write_bytes(BODY)
    data = blob(2500, 8)
    got = client([
        up(ftpd["url"] + "/up/", log),
        up(ftpd["url"] + "/up/named.bin", data),
        up(ftpd["url"] + "/up/", data, filename="diag 3.zip"),
        up(ftpd["anon"] + "/", data, filename="x.bin"),   # anonymous is read-only
        up(ftpd["url"] + "/nodir/x.bin", data),
    ])
    assert got[:3] == [ok(BODY), ok(data), ok(data)]
    assert got[3][1].startswith("ftp: 550 "), got[3]
    assert got[4][1].startswith("ftp: 550 "), got[4]
    up_dir = ftpd["home"] / "up"
    assert (up_dir / "diag.log").read_bytes() == BODY
    assert (up_dir / "named.bin").read_bytes() == data
    assert (up_dir / "diag 3.zip").read_bytes() == data
    assert not (ftpd["pub"] / "x.bin").exists()
    for name in ("diag.log", "named.bin", "diag 3.zip"):
        (up_dir / name).unlink()


def test_ftp_errors(client, ftpd, tmp_path):
    port = free_port()
    got = client([
        down(ftpd["url"] + "/fw/missing.bin", tmp_path / "missing"),
        down("ftp://%s:wrong@127.0.0.1:%d/fw/image.bin" % ("us%40er", ftpd["port"]),
             tmp_path / "login"),
        down(ftpd["url"] + "/fw/image.bin", tmp_path / "max", max_bytes=4999),  # SIZE says no
        down(ftpd["url"] + "/", tmp_path / "nofile"),
        down("ftp://127.0.0.1:%d/x" % port, tmp_path / "refused"),
    ])
    assert got[0] == ["error", "ftp: 550 No such file or directory."]
    assert got[1] == ["error", "ftp: 530 Authentication failed."]
    assert got[2] == ["error", "file larger than max_bytes (5000 > 4999)"]
    assert got[3] == ["error", "ftp: no file name in URL"]
    assert got[4] == ["error", "cannot connect to 127.0.0.1:%d: ECONNREFUSED" % port]
    assert os.listdir(tmp_path) == []


def test_ftp_max_bytes_while_streaming(ftpd, tmp_path, monkeypatch):
    # A server without SIZE: the limit must hold on the data stream itself.
    real = ftp.command

    async def no_size(channel, text, ok):
        if text.startswith("SIZE"):
            text = "XSIZ"
        return await real(channel, text, ok)
    monkeypatch.setattr(ftp, "command", no_size)
    got = run_cpython([down(ftpd["url"] + "/big.bin", tmp_path / "big", max_bytes=2000),
                       down(ftpd["url"] + "/big.bin", tmp_path / "fits", max_bytes=3000)])
    assert got[1] == ok(blob(3000, 6))
    assert re.fullmatch(r"file larger than max_bytes \(\d{4} > 2000\)", got[0][1]), got[0]
    assert os.listdir(tmp_path) == ["fits"]


def test_cancelled_download_leaves_no_file(web, tmp_path):
    dest = tmp_path / "f"

    async def main():
        task = asyncio.create_task(transfer.download(web.url + "/slow", str(dest)))
        for _ in range(100):  # until the first bytes are on disk
            await asyncio.sleep(0.01)
            if dest.exists():
                break
        assert dest.exists()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert not dest.exists()


def test_tls_only_refuses_plain_transfers_before_connecting(client, web, tmp_path):
    """At SecurityProfile 2 and 3 (transfer.settings: tls_only) http:// and ftp:// are refused
    without a byte on the wire; https:// goes on to the server."""
    keep = tmp_path / "keep"
    keep.write_bytes(b"previous firmware")
    port = free_port()  # nothing listens: a connect attempt would say ECONNREFUSED
    seen = len(web.seen)
    got = client([
        down(web.url + "/file.bin", keep, tls_only=True),
        down("ftp://127.0.0.1:%d/fw.bin" % port, tmp_path / "f", tls_only=True),
        up(web.url + "/up.log", b"log lines", tls_only=True),
        up("ftp://127.0.0.1:%d/up.log" % port, b"log lines", tls_only=True),
        down("https://127.0.0.1:%d/fw.bin" % port, tmp_path / "s", tls_only=True),
    ])
    refused = "{}:// refused at SecurityProfile 2 and 3: https:// only"
    assert got == [["error", refused.format("http")], ["error", refused.format("ftp")],
                   ["error", refused.format("http")], ["error", refused.format("ftp")],
                   ["error", "cannot connect to 127.0.0.1:%d: ECONNREFUSED" % port]]
    assert len(web.seen) == seen and keep.read_bytes() == b"previous firmware"


def test_transfer_settings_follow_the_security_profile():
    class Keys(dict):
        pass

    class Cp:
        cfg = {"_dir": "/cfg", "csms": {"ca_file": "ca.pem", "verify_tls": False}}
        keys = Keys(SecurityProfile=1)

    cp = Cp()
    assert transfer.settings(cp) == {"ca_file": "/cfg/ca.pem", "verify": False,
                                     "tls_only": False}
    cp.keys["SecurityProfile"] = 2
    assert transfer.settings(cp) == {"ca_file": "/cfg/ca.pem", "verify": True, "tls_only": True}
