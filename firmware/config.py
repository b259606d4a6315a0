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
        return hwspec.SPEC
    except ImportError:
        return ()


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


def validate(cfg):
    """Check a parsed config and fill defaults in place. Returns a list of problem strings."""
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
    for spec in configspec.SPEC + tuple(_hwspec()):
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
        problems.append("csms.client_cert and csms.client_key go together: set both or none")
    for section in ("csms", "station", "log", "hardware", "wifi"):
        _unknown(cfg.get(section), section, known, problems)
    for path, why in keys.check_section(cfg.get("ocpp", {})):
        problems.append("%s - %s" % (path, why))
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


def parse(text):
    """(cfg, problems) from the text of a config file."""
    try:
        cfg = json.loads(text)
    except ValueError:
        from firmware import jsonlint
        where = jsonlint.locate(text)
        if where:
            return None, ["line %d: %s" % where]
        return None, ["not valid JSON"]
    return cfg, validate(cfg)


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
    base = store.dirname(path)
    try:
        with open(path) as f:
            text = f.read()
        cfg, problems = parse(text)
    except OSError as e:
        cfg, problems = None, ["cannot read the file (%s)" % e]
    if cfg is not None and not problems:
        data = store.join(base, cfg["data_dir"])
        store.makedirs(data)
        good = store.join(data, _GOOD)
        if store.read_json(good) != cfg:
            store.write_atomic(good, json.dumps(cfg))
        cfg["_dir"], cfg["_data"] = base, data
        cfg["_secrets"] = secrets(cfg)  # for Log.hide(): never in a log line
        return cfg
    for p in problems:
        msg = "%s: %s" % (path, p)
        if log:
            log.error("config", msg)
        else:
            print(msg)
    # The file is broken: keep charging with what worked last time.
    data_dir = cfg.get("data_dir") if isinstance(cfg, dict) else None
    if not isinstance(data_dir, str):
        data_dir = "data"
    good = store.join(store.join(base, data_dir), _GOOD)
    cfg = store.read_json(good)
    if cfg is None or validate(cfg):
        raise ConfigError("%s is invalid and no last good config exists in %s" % (path, good))
    if log:
        log.warn("config", "running with the last good config from " + good)
    cfg["_dir"], cfg["_data"] = base, store.join(base, cfg["data_dir"])
    cfg["_invalid"] = True
    cfg["_secrets"] = secrets(cfg)
    return cfg
