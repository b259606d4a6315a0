"""Security profiles 0-3 (OCPP 1.6 security whitepaper, edition 3): how the link connects,
the keys SecurityProfile and AuthorizationKey, and the charge point certificate
(SignCertificate / CertificateSigned).

    profile 0  csms.url as configured; HTTP Basic with the password if one is set
    profile 1  HTTP Basic (AuthorizationKey, else csms.password) over ws:// or wss://
    profile 2  HTTP Basic over wss://, the server certificate verified against the
               Central System roots of the certificate store (firmware/certificates.py)
    profile 3  wss:// with a client certificate, verified as in 2, no Basic

Basic auth over plain ws:// is refused unless config.json says `csms.allow_plain_basic_auth`:
the password would cross the network readable. Profiles 2 and 3 connect to `csms.tls_url`
(default: csms.url with ws:// made wss://) and always verify the server, whatever
`csms.verify_tls` says.

Changes are tried before they are kept: ChangeConfiguration SecurityProfile=N (never lower,
and only when what N needs is in place) or AuthorizationKey=K stores a *trial* (profile and
key) and closes the link; the next connection uses the trial, and keeps it when the
websocket opens, or else drops it and connects at once with the previous profile and key.
AuthorizationKey lives in `<data_dir>/authkey.json`, a file of its own: GetConfiguration
never lists it, no log line holds it, and diagnostics and log uploads carry log lines only.

The charge point certificate: technician-provisioned files (csms.client_cert and
csms.client_key, PEM) or the chain a Central System signed after our SignCertificate, kept
with its key in `<data_dir>/client.pem`; the latter wins. The key pair is made here (ECDSA
P-256, firmware/p256.py) and never leaves the charger.
"""
from firmware import store
from firmware.compat import asyncio, const

_KEY_FILE = "authkey.json"       # {"key": current or None, "try": {"profile", "key"} or None}
_CLIENT = "client.pem"           # CertificateSigned chain + our key
_PENDING = "client.key.pending"  # the key of the CSR sent last, until its chain arrives
_HEX = "0123456789abcdefABCDEF"
_KEY_MIN = const(32)             # AuthorizationKey: 16..20 bytes as hex (whitepaper)
_KEY_MAX = const(40)
_MAX_CHAIN_CERTS = const(4)
_APPLY_S = const(2)              # a changed profile or key is tried after this on a new link
_RENEW_S = const(2592000)        # 30 days: a client certificate this close to its end is renewed
_ONLINE_WAIT_S = const(120)      # how long a renewal waits for the boot to be accepted


def _event(cp, kind, info=None):
    """A security event (firmware/secevents.py); cp is None in some tests."""
    if cp is not None:
        cp.security_event(kind, info)


def _state(data):
    st = store.read_json(store.join(data, _KEY_FILE), None)
    return st if isinstance(st, dict) else {"key": None, "try": None}


def _save(data, st):
    import json
    store.write_atomic(store.join(data, _KEY_FILE), json.dumps(st))


# ---- what a connection needs -------------------------------------------------------------

def client_files(cfg):
    """(cert_file, key_file) of our client certificate, or None; key_file None: the key is in
    cert_file."""
    own = store.join(cfg["_data"], _CLIENT)
    if store.exists(own):
        return own, None
    csms = cfg["csms"]
    if csms["client_cert"] and csms["client_key"]:
        return (store.join(cfg["_dir"], csms["client_cert"]),
                store.join(cfg["_dir"], csms["client_key"]))
    return None


def tls_url(csms):
    url = csms["tls_url"] or csms["url"]
    return "wss://" + url[5:] if url.startswith("ws://") else url


def _password(cfg, key):
    return key or cfg["csms"]["password"]


def options(cfg, keys, log, profile, key):
    """(url, ws.connect options) for connecting at `profile` with AuthorizationKey `key`;
    ValueError says what is missing."""
    from firmware import certificates
    csms = cfg["csms"]
    url = tls_url(csms) if profile >= 2 else csms["url"]
    secure = url.startswith("wss://")
    if profile >= 2 and not secure:
        raise ValueError("SecurityProfile %d needs a wss:// URL (csms.tls_url)" % profile)
    password = _password(cfg, key)
    if profile in (1, 2) and not password:
        raise ValueError("SecurityProfile %d needs a password (AuthorizationKey or "
                         "csms.password)" % profile)
    if password and hasattr(log, "hide"):
        log.hide(password)  # an AuthorizationKey from flash: never in a log line either
    auth = (csms["id"], password) if password and profile != 3 else None
    if auth and not secure and not csms["allow_plain_basic_auth"]:
        raise ValueError("refusing to send the Basic auth password over plain ws:// "
                         "(set csms.allow_plain_basic_auth to true to allow it)")
    opts = {"auth": auth, "verify": csms["verify_tls"] or profile >= 2}
    if secure and opts["verify"]:
        certificates.seed(cfg, log, keys["CertificateStoreMaxLength"])
        roots = certificates.paths(cfg["_data"], certificates.CSMS_ROOT)
        if profile >= 2 and not roots:
            raise ValueError("SecurityProfile %d needs a Central System root certificate"
                             % profile)
        opts["ca_file"] = roots or None
    if profile == 3:
        client = client_files(cfg)
        if client is None:
            raise ValueError("SecurityProfile 3 needs a client certificate")
        opts["cert_file"], opts["key_file"] = client
    return url, opts


async def connect(cfg, keys, log, cp, **extra):
    """The link's websocket: with the trial profile/key if there is one (kept when it opens,
    else dropped), then with the current ones. Raises WsError. `cp` (None in some tests)
    receives the security events; `extra`: more ws.connect options (the link's DNS cache)."""
    from firmware import ws
    data = cfg["_data"]
    st = _state(data)
    trial = st.get("try")
    if trial:
        p = trial["profile"]
        try:
            conn = await _open(cfg, keys, log, cp, p, trial["key"] or st["key"], extra)
        except ws.WsError as e:
            st["try"] = None
            _save(data, st)
            log.warn("sec", "SecurityProfile %d with the new settings failed (%s); back to "
                     "SecurityProfile %d" % (p, e, keys["SecurityProfile"]))
        else:
            if trial["key"]:
                st["key"] = trial["key"]
            st["try"] = None
            _save(data, st)
            if p != keys["SecurityProfile"]:
                keys.change("SecurityProfile", str(p))
            log.info("sec", "SecurityProfile %d in use%s"
                     % (p, ", new AuthorizationKey" if trial["key"] else ""))
            _event(cp, "ReconfigurationOfSecurityParameters", "SecurityProfile %d" % p)
            _renewal(cfg, cp, p)
            return conn
    conn = await _open(cfg, keys, log, cp, keys["SecurityProfile"], st["key"], extra)
    _renewal(cfg, cp, keys["SecurityProfile"])
    return conn


def _renewal(cfg, cp, profile):
    """Whitepaper A03: a client certificate less than 30 days from its end makes the charger
    ask for a new one (SignCertificate), once per power cycle."""
    if profile != 3 or cp is None or getattr(cp, "cert_renewal_asked", False):
        return
    from firmware import clock, x509
    now = cp.now()
    try:
        with open(client_files(cfg)[0]) as f:
            leaf = x509.Cert(x509.pem_to_ders(f.read())[0])
    except (OSError, ValueError, TypeError) as e:
        cp.log.warn("sec", "cannot read the client certificate: %s" % e)
        return
    if not clock.plausible(now) or leaf.not_after - now > _RENEW_S:
        return
    cp.cert_renewal_asked = True  # the ChargePoint carries it: one charger, one flag
    cp.log.info("sec", "client certificate ends %s: asking for a new one"
                % clock.iso(leaf.not_after))

    async def renew():
        for _ in range(_ONLINE_WAIT_S):
            if cp.online():
                try:
                    await sign_request(cp)
                except Exception as e:
                    cp.log.warn("sec", "SignCertificate for the renewal failed: %s" % e)
                return
            await asyncio.sleep(1)
    asyncio.create_task(renew())


async def _open(cfg, keys, log, cp, profile, key, extra):
    from firmware import ws
    csms = cfg["csms"]
    try:
        url, opts = options(cfg, keys, log, profile, key)
    except ValueError as e:
        raise ws.WsError(str(e))
    url = ws.join_url(url, csms["id"])
    log.info("ws", "connecting to %s (SecurityProfile %d)" % (shown(url), profile))
    if url.startswith("wss://") and not opts["verify"]:
        # Said at every connection: a test setting must not stay on in the field unseen.
        log.warn("ws", "TLS certificate NOT verified (csms.verify_tls false): anyone on the"
                       " network path can pose as the Central System")
    timeout_ms = csms["connect_timeout"] * 1000
    try:
        # connect_timeout is the network's deadline: the connect, the handshake, and then
        # each frame sent or begun to arrive (ws.py).
        return await ws.connect(url, protocol="ocpp1.6", max_message=csms["max_message"],
                                wait_ms=timeout_ms, connect_timeout_ms=timeout_ms,
                                handshake_timeout_ms=timeout_ms, **opts, **extra)
    except ws.WsError as e:
        kind = event_for(str(e), bool(opts.get("cert_file")))
        if kind:
            _event(cp, kind, str(e))
        raise


def shown(url):
    """`url` without user:password@ (wsopen refuses such a URL, but the log line comes
    first)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return scheme + sep + netloc.rpartition("@")[2] + slash + path


# What a failed TLS handshake says, on CPython (OpenSSL reason codes) and on MicroPython
# (mbedtls error names, and their codes for builds without mbedtls_strerror). Upper case.
_TLS_VERSION = ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "WRONG_SSL_VERSION",
                "VERSION_TOO_LOW", "BAD_PROTOCOL_VERSION", "BAD_HS_PROTOCOL_VERSION",
                "(-28288,")  # -0x6E80, mbedtls 2 and 3
_TLS_CIPHER = ("NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "WRONG_CIPHER_RETURNED",
               "SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_USABLE_CIPHERSUITE", "NO_CIPHER_CHOSEN",
               "MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE", "(-28160,")  # -0x6E00
# mbedtls gives every fatal alert of the server the same error (-0x7780), whichever it is.
_TLS_ALERT = ("MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE", "(-30592,")
# The websocket upgrade answer (firmware/wsopen.py) did not prove the server is the OCPP
# Central System we asked for: no valid Sec-WebSocket-Accept, or no ocpp1.6.
_WS_NOT_CSMS = ("BAD SEC-WEBSOCKET-ACCEPT", "DID NOT AGREE TO SUBPROTOCOL")


def event_for(why, client_cert=False):
    """The security event a failed connect's text stands for, or None. client_cert: we
    offered a client certificate (profile 3).

    A handshake_failure alert (OpenSSL SSLV3_ALERT_HANDSHAKE_FAILURE, and mbedtls's unnamed
    fatal alert) is what a server sends when no cipher suite is shared, and also what a
    TLS 1.2 server sends when it requires a client certificate: with one offered it is read
    as our certificate refused (FailedToAuthenticateAtCentralSystem), without one as
    InvalidTLSCipherSuite; the TLS error text goes with the event either way."""
    up = why.upper()
    if any(w in up for w in _TLS_VERSION):
        return "InvalidTLSVersion"
    alert = any(w in up for w in _TLS_ALERT)
    # The server refused us: Basic auth (HTTP), or our certificate (a TLS alert).
    if ("HTTP 401" in up or "HTTP 403" in up or ("ALERT" in up and "CERTIFICATE" in up)
            or (client_cert and (alert or "SSLV3_ALERT_HANDSHAKE_FAILURE" in up))):
        return "FailedToAuthenticateAtCentralSystem"
    if alert or any(w in up for w in _TLS_CIPHER):
        return "InvalidTLSCipherSuite"
    # CPython: "[SSL: CERTIFICATE_VERIFY_FAILED] ..."; mbedtls: "The certificate is not
    # correctly signed by the trusted CA", "... validity has expired"...
    if "CERTIFICATE" in up:
        return "InvalidCentralSystemCertificate"
    if any(w in up for w in _WS_NOT_CSMS):
        return "CentralSystemFailedToAuthenticate"
    return None


# ---- ChangeConfiguration ---------------------------------------------------------------

def _valid_key(value):
    return (_KEY_MIN <= len(value) <= _KEY_MAX and len(value) % 2 == 0
            and all(c in _HEX for c in value))


def change(cp, name, value):
    """ChangeConfiguration of SecurityProfile or AuthorizationKey -> reply or (reply, after).
    The value of AuthorizationKey is never logged."""
    data = cp.cfg["_data"]
    st = _state(data)
    trial = st.get("try") or {"profile": cp.keys["SecurityProfile"], "key": None}
    if name == "AuthorizationKey":
        why = None if _valid_key(value) else "expected 32 to 40 hex digits (16 to 20 bytes)"
        shown = "(not shown)"
        if why is None:
            trial["key"] = value
    else:
        shown, why = value, None
        try:
            n = int(value)
        except ValueError:
            n, why = -1, "expected 0 to 3"
        now = cp.keys["SecurityProfile"]
        if why is None and not 0 <= n <= 3:
            why = "expected 0 to 3"
        elif why is None and n < now:
            why = "no downgrade from SecurityProfile %d" % now
        elif why is None and n == now and trial["profile"] == now:
            cp.log.info("cp", "ChangeConfiguration SecurityProfile=%d: Accepted (in use)" % n)
            return {"status": "Accepted"}
        elif why is None:
            try:
                options(cp.cfg, cp.keys, cp.log, n, trial["key"] or st["key"])
            except ValueError as e:
                why = str(e)
            trial["profile"] = n
    if why is not None:
        cp.log.info("cp", "ChangeConfiguration %s=%s: Rejected (%s)" % (name, shown, why))
        return {"status": "Rejected"}
    if trial["profile"] == 3 and trial["profile"] == cp.keys["SecurityProfile"]:
        # Profile 3 sends no password: the key is kept for later, there is nothing to try.
        st["key"], st["try"] = trial["key"], None
        _save(data, st)
        cp.log.info("cp", "ChangeConfiguration %s=%s: Accepted" % (name, shown))
        return {"status": "Accepted"}
    st["try"] = trial
    _save(data, st)
    cp.log.info("cp", "ChangeConfiguration %s=%s: Accepted, reconnecting to try it"
                % (name, shown))

    async def reconnect():
        # A Central System may follow with a Reset (OCTT TC_083): give it the chance on this
        # link; the trial is on flash, so a reboot tries it as well.
        link = cp.link.conn
        await asyncio.sleep(_APPLY_S)
        if cp.link.conn is link:
            await cp.link.close(1000, "security parameters changed")
    return {"status": "Accepted"}, reconnect


def ChangeConfiguration(cp, req):
    return change(cp, req["key"], req["value"])


# ---- the charge point certificate ------------------------------------------------------

async def sign_request(cp):
    """Make a key pair and a CSR, send SignCertificate -> its status ("Accepted"...).
    The key waits in data_dir until CertificateSigned brings its certificate."""
    from firmware import csr, p256, x509
    csms, station = cp.cfg["csms"], cp.cfg["station"]
    d, pub = p256.generate()
    org = cp.keys["CpoName"] or None
    # The whitepaper's subject: CN the charge point (its serial number when it has one,
    # else its identity), O the CPO.
    der = csr.build(d, pub, station["serial"] or csms["id"], org)
    store.write_atomic(store.join(cp.cfg["_data"], _PENDING),
                       x509.der_to_pem(csr.ec_key_der(d, pub), "EC PRIVATE KEY"))
    reply = await cp.rpc.call("SignCertificate",
                              {"csr": x509.der_to_pem(der, "CERTIFICATE REQUEST")})
    cp.log.info("sec", "SignCertificate: %s" % reply["status"])
    return reply["status"]


def _check_chain(cp, text):
    """(reason, ders) for a CertificateSigned chain; reason None when it may be installed."""
    from firmware import certificates, csr, x509
    if len(text) > cp.keys["CertificateSignedMaxChainSize"]:
        return "longer than CertificateSignedMaxChainSize", None
    try:
        ders = x509.pem_to_ders(text)
    except Exception:
        return "not PEM certificates", None
    if not ders or len(ders) > _MAX_CHAIN_CERTS:
        return "expected 1 to %d certificates" % _MAX_CHAIN_CERTS, None
    pending = store.join(cp.cfg["_data"], _PENDING)
    try:
        with open(pending) as f:
            _d, pub = csr.parse_ec_key(f.read())
    except (OSError, ValueError):
        return "no certificate request is pending", None
    try:
        leaf = x509.Cert(ders[0])
    except Exception:
        return "not an X.509 certificate", None
    if leaf.key != ("ec", pub[0], pub[1]):
        return "the certificate is not for our key", None
    from firmware.clock import plausible
    roots = cp.feature("certificates").ders(certificates.CSMS_ROOT)
    # Whitepaper: valid now, and part of the Central System root certificate chain. A clock
    # not set yet cannot judge validity periods: then only the chain is checked.
    now = cp.now()
    try:
        revoked = x509.load_revoked(store.join(cp.cfg["_dir"], x509.REVOKED_FILE))
    except ValueError as e:
        return "revocation list unusable: %s" % e, None
    why = x509.check_chain(ders, roots, now if plausible(now) else None, revoked=revoked)
    return why, ders


def CertificateSigned(cp, req):
    why, ders = _check_chain(cp, req["certificateChain"])
    if why is not None:
        cp.log.warn("sec", "CertificateSigned: Rejected (%s)" % why)
        _event(cp, "InvalidChargePointCertificate", why)
        return {"status": "Rejected"}
    from firmware import x509
    data = cp.cfg["_data"]
    pending = store.join(data, _PENDING)
    with open(pending) as f:
        key_pem = f.read()
    pem = "".join(x509.der_to_pem(d, "CERTIFICATE") for d in ders)
    store.write_atomic(store.join(data, _CLIENT), pem + key_pem)
    import os
    os.remove(pending)
    cp.log.info("sec", "CertificateSigned: Accepted, charge point certificate installed")
    _event(cp, "ReconfigurationOfSecurityParameters", "CertificateSigned")

    async def reconnect():
        await cp.link.close(1000, "new client certificate")
    if cp.keys["SecurityProfile"] == 3:
        return {"status": "Accepted"}, reconnect
    return {"status": "Accepted"}
