"""config.json: load, validate against the shared spec, fall back to the last good copy.

Errors name the key path, what was found and what is expected, e.g.
`config.json: csms.url = "htp://x" - expected a ws:// or wss:// URL (...)`.
"""
import json

from firmware import keys, store
from firmware.compat import unload

_GOOD = "config.good.json"


def _hwspec():
    try:
        from hal import hwspec
        return hwspec
    except ImportError:
        return None


def _board(cfg):
    """(board module, problem): the board hardware.board names, whose pin rules and
    defaults apply; (None, None) without hal/, (None, problem) for an unknown name."""
    try:
        from hal import boards
    except ImportError:
        return None, None
    found, name = _lookup(cfg, "hardware.board")
    if not found or name is None:
        name = boards.DEFAULT
    elif not isinstance(name, str):
        return None, None  # the type check names it
    try:
        return boards.load(name), None
    except ImportError:
        return None, ("hardware.board = %s - no such board; expected the name of a file in"
                      " hal/boards/, e.g. \"esp32_devkit\" or \"sim\"" % json.dumps(name))


def _lookup(cfg, path):
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _put(cfg, path, value):
    parts = path.split(".")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _check(kind, rule, v):
    """None when v fits, else what was expected."""
    if kind == "bool":
        return None if isinstance(v, bool) else "expected true or false (no quotes)"
    if kind in ("int", "pin"):
        if kind == "pin" and v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            return "expected a whole number" if kind == "int" else "expected a GPIO number or null"
    elif kind == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "expected a number"
    elif kind in ("str", "url"):
        if not isinstance(v, str):
            return "expected a string in double quotes"
        if kind == "url" and (len(v) < 7 or not (v.startswith("ws://") or v.startswith("wss://"))):
            return "expected a ws:// or wss:// URL"
        if isinstance(rule, tuple) and len(rule) == 2 and isinstance(rule[0], int):
            if not rule[0] <= len(v) <= rule[1]:
                return "expected %d to %d characters" % rule
            return None
    if isinstance(rule, tuple) and rule and isinstance(rule[0], str):
        return None if v in rule else "expected one of " + ", ".join(rule)
    if isinstance(rule, tuple) and len(rule) == 2 and not (rule[0] <= v <= rule[1]):
        return "expected %s to %s" % rule
    return None


def validate(cfg, warnings=None):
    """Check a parsed config and fill defaults in place. Returns a list of problem strings;
    what works but is probably not meant is appended to the list `warnings` when given."""
    from firmware import configspec
    REQUIRED = configspec.REQUIRED
    if not isinstance(cfg, dict):
        return ["the file must hold one JSON object { ... }"]
    problems = []
    for name in cfg:
        if name not in configspec.SECTIONS:
            problems.append("%s - unknown section; expected one of %s"
                            % (name, ", ".join(configspec.SECTIONS)))
    board, problem = _board(cfg)
    if problem:
        problems.append(problem)
    pins = board.PINS if board else None
    defaults = dict(board.DEFAULTS) if board else {}
    known = set()
    hw = _hwspec()
    for spec in configspec.SPEC + (hw.SPEC if hw else ()):
        path, kind, default, rule, help = spec
        known.add(path)
        default = defaults.get(path, default)
        if kind == "pin":
            rule = pins  # the board's GPIO range (None: any number)
        found, v = _lookup(cfg, path)
        if not found or (v is None and kind != "pin"):
            if default == REQUIRED:
                problems.append("%s is missing - %s" % (path, help))
            else:
                _put(cfg, path, default)
            continue
        why = _check(kind, rule, v)
        if why:
            shown = "(hidden)" if path in configspec.SECRETS else json.dumps(v)
            problems.append("%s = %s - %s (%s)" % (path, shown, why, help))
    csms = cfg.get("csms")
    if isinstance(csms, dict) and bool(csms.get("client_cert")) != bool(csms.get("client_key")):
        has, lacks = ("client_cert", "client_key") if csms.get("client_cert") else (
            "client_key", "client_cert")
        problems.append("csms.%s is set but csms.%s is not - a client certificate and its "
                        "key go together: set both or none" % (has, lacks))
    for section in ("csms", "station", "log", "hardware", "wifi"):
        _unknown(cfg.get(section), section, known, problems)
    for path, why in keys.check_section(cfg.get("ocpp", {})):
        problems.append("%s - %s" % (path, why))
    if hw is not None and board is not None:
        problems += hw.dangers(cfg, board)
    _across(cfg, problems, warnings)
    return problems


def _across(cfg, problems, warnings):
    """Rules between keys (each key alone was fine). Only values of the right type are
    compared; a secret is never echoed."""
    csms = cfg.get("csms")
    if not isinstance(csms, dict):
        return
    cid, url = csms.get("id"), csms.get("url")
    if isinstance(cid, str) and ":" in cid and csms.get("password"):
        problems.append("csms.id = %s - must not contain ':' when csms.password is set (HTTP"
                        " Basic auth sends csms.id as the user name, and ':' ends it)"
                        % json.dumps(cid))
    lo, hi = csms.get("reconnect_min"), csms.get("reconnect_max")
    named = [p for p in problems if p.startswith("csms.reconnect_")]
    if _num(lo) and _num(hi) and lo > hi and not named:
        problems.append("csms.reconnect_min = %s - must not be above csms.reconnect_max (%s);"
                        " lower it or raise csms.reconnect_max" % (json.dumps(lo), json.dumps(hi)))
    ocpp, station = cfg.get("ocpp"), cfg.get("station")
    n = ocpp.get("NumberOfConnectors") if isinstance(ocpp, dict) else None
    want = station.get("connectors") if isinstance(station, dict) else None
    if _num(n) and _num(want) and n != want:
        problems.append("ocpp.NumberOfConnectors = %s - station.connectors (%s) sets it; remove"
                        " ocpp.NumberOfConnectors or set station.connectors to %s"
                        % (json.dumps(n), json.dumps(want), json.dumps(n)))
    if (warnings is not None and isinstance(cid, str) and isinstance(url, str) and cid
            and url.rstrip("/").endswith("/" + cid)):
        fixed = url.rstrip("/")[:-len(cid) - 1]
        warnings.append("csms.url = %s - already ends in the charger id %s; it is used as it"
                        " is, but must then change with csms.id; set csms.url to %s and the"
                        " charger adds the id" % (json.dumps(url), cid, json.dumps(fixed)))


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _has_roots(data):
    """Whether the certificate store (firmware/certificates.py) holds a Central System root,
    installed by the Central System: then the board needs no ca_file any more."""
    import os
    try:
        return any(n.startswith("csms-") for n in os.listdir(store.join(data, "certs")))
    except OSError:
        return False


def check_paths(cfg, base, board):
    """Problems of the files a validated config names, relative to its folder `base`: the CA
    file of wss:// (`board`: a real board, which has no CA store of its own) and data_dir."""
    problems = []
    csms = cfg["csms"]
    ca = csms["ca_file"]
    ocpp = cfg.get("ocpp")
    profile = ocpp.get("SecurityProfile", 0) if isinstance(ocpp, dict) else 0
    strict = isinstance(profile, int) and profile >= 2  # wss://, always verified
    if ((csms["url"].startswith("wss://") and csms["verify_tls"] or strict) and not ca and board
            and not _has_roots(store.join(base, cfg["data_dir"]))):
        problems.append("csms.ca_file is empty - a board needs the Central System's CA"
                        " certificate (PEM) for wss://; put it next to config.json and name"
                        " it here")
    if ca:
        parts = ca.replace("\\", "/").split("/")
        if board and (ca.startswith("/") or ".." in parts):  # a host may name any file
            problems.append("csms.ca_file = %s - must be a path inside the config folder (it"
                            " is copied to the board with config.json)" % json.dumps(ca))
        elif not store.exists(store.join(base, ca)):
            problems.append("csms.ca_file = %s - %s not found" % (json.dumps(ca),
                                                                  store.join(base, ca)))
    data = store.join(base, cfg["data_dir"])
    if store.exists(data) and not store.is_dir(data):
        problems.append("data_dir = %s - %s is a file, not a folder; name a folder (it is"
                        " created when missing)" % (json.dumps(cfg["data_dir"]), data))
    return problems


def _unknown(node, path, known, problems):
    """Flag keys (at any depth) that no spec entry names: usually a typo."""
    if not isinstance(node, dict):
        return
    for name in node:
        sub = path + "." + name
        if sub in known:
            continue
        if isinstance(node[name], dict) and any(k.startswith(sub + ".") for k in known):
            _unknown(node[name], sub, known, problems)
        else:
            problems.append("%s - unknown key; remove it or check the spelling" % sub)


def secrets(cfg):
    """The values of the secret keys (configspec.SECRETS) set in a checked config."""
    from firmware import configspec
    found = []
    for path in configspec.SECRETS:
        ok, v = _lookup(cfg, path)
        if ok and isinstance(v, str) and v:
            found.append(v)
    return found


def parse(text, warnings=None):
    """(cfg, problems) from the text of a config file; see validate() for `warnings`."""
    try:
        cfg = store.loads(text)  # strict on every interpreter (firmware/jsonlint.py)
    except ValueError as e:
        return None, [str(e)]
    return cfg, validate(cfg, warnings)


class ConfigError(Exception):
    pass


def load(path, log=None):
    try:
        return _load(path, log)
    finally:
        # The spec tables and the linter are needed once per boot: give their RAM back.
        for name in ("firmware.configspec", "firmware.jsonlint", "hal.hwspec"):
            unload(name)


def _load(path, log):
    """Load and validate `path`. When it is broken, report every problem and use the last good
    copy saved in data_dir; raises ConfigError only when there is none.

    Returns the config dict with `_dir` (folder of the config file) and `_data` (absolute
    data dir).
    """
    from firmware.compat import ON_DEVICE
    base = store.dirname(path)
    warnings = []
    try:
        with open(path, "rb") as f:
            text = f.read()  # bytes: the strict check reads them without a copy
        cfg, problems = parse(text, warnings)
    except OSError as e:
        cfg, problems = None, ["cannot read the file (%s)" % e]
    if cfg is not None and not problems:
        problems = check_paths(cfg, base, ON_DEVICE)
    if cfg is not None and not problems:
        data = store.join(base, cfg["data_dir"])
        problem = claim(data, cfg["csms"]["id"], ON_DEVICE, log)
        if problem is None:
            for w in warnings:
                _say(log, "warn", "%s: %s" % (path, w))
            good = store.join(data, _GOOD)
            if store.read_json(good) != cfg:
                store.write_atomic(good, json.dumps(cfg))
            cfg["_dir"], cfg["_data"] = base, data
            cfg["_secrets"] = secrets(cfg)  # for Log.hide(): never in a log line
            return cfg
        problems = [problem]
    for p in problems:
        _say(log, "error", "%s: %s" % (path, p))
    # The file is broken: keep charging with what worked last time.
    data_dir = cfg.get("data_dir") if isinstance(cfg, dict) else None
    if not isinstance(data_dir, str):
        data_dir = "data"
    good = store.join(store.join(base, data_dir), _GOOD)
    cfg = store.read_json(good)
    if cfg is None or validate(cfg):
        raise ConfigError("%s is invalid and no last good config exists in %s" % (path, good))
    data = store.join(base, cfg["data_dir"])
    problem = claim(data, cfg["csms"]["id"], ON_DEVICE, log)
    if problem:
        raise ConfigError("%s is invalid and the last good config in %s cannot run: %s"
                          % (path, good, problem))
    _say(log, "warn", "running with the last good config from " + good)
    cfg["_dir"], cfg["_data"] = base, data
    cfg["_invalid"] = True
    cfg["_secrets"] = secrets(cfg)
    return cfg


def _say(log, level, msg):
    if log:
        getattr(log, level)("config", msg)
    else:
        print(msg)


_LOCK = "charger.id"


def claim(data, cid, device, log=None):
    """Make data_dir usable for the charger `cid` -> None, or the problem naming the path.

    data_dir holds one charger's journal, keys and transactions: `data/charger.id` names
    the charger it belongs to, written at its first start and kept (a power cut leaves it
    as it is: the same charger starting again finds its own id). Another charger is refused
    on a host, where several may run side by side; a board runs one charger, so a new
    csms.id there takes the folder over, with a warning."""
    store.makedirs(data)
    if not store.is_dir(data):
        return ("data_dir %s is not a folder that can be created (a file, or a missing or"
                " read-only parent); name a writable folder in data_dir" % data)
    lock = store.join(data, _LOCK)
    try:
        with open(lock) as f:
            owner = f.read().strip()
    except OSError:
        owner = None
    if owner and owner != cid:
        if not device:
            return ("data_dir %s belongs to charger %s (%s): two chargers cannot share"
                    " one data_dir; give this one its own data_dir, or delete %s if this"
                    " charger was renamed (its pending messages then go out as %s)"
                    % (data, owner, lock, lock, cid))
        _say(log, "warn", "data_dir %s was charger %s's; it is now %s's" % (data, owner, cid))
    if owner != cid:
        try:
            store.write_atomic(lock, cid)
        except OSError as e:
            return "data_dir %s cannot be written (%s); name a writable folder" % (data, e)
    return None
