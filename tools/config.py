"""Check, show and change config.json with the firmware's own validator.

    python -m tools.config check [config.json]      every problem, exit code 1 when there is one
    python -m tools.config show [config.json]       the effective config, defaults filled in
    python -m tools.config set KEY VALUE [config.json]
    (each also takes --config FILE instead of the file at the end)

KEY is a dotted path (csms.url, ocpp.HeartbeatInterval, hardware.relay.pin). VALUE is read as
JSON when it parses (300, 8.5, true, null, "0042") and as text otherwise. `set` refuses a value
that makes the file invalid and leaves the file untouched; otherwise it replaces the file
atomically, keeping the key order and the indentation.

Secret values (configspec.SECRETS: the Basic auth password, the WiFi key) are never printed:
`show` masks them as "***" (an empty one stays empty, so a missing password shows), `set`
confirms them without the value, and errors name the key, not its value.
"""
import argparse
import difflib
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from firmware import config as fwconfig, configspec, keys  # noqa: E402  (one shared definition)
from firmware.redact import hide_credentials  # noqa: E402
from hal import hwspec  # noqa: E402

DEFAULT = "config.json"
MASK = "***"


def _read(path):
    """(text, None) or (None, problem)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), None
    except OSError as e:
        return None, "cannot read the file (%s)" % (e.strerror or e)
    except UnicodeDecodeError as e:
        return None, "not UTF-8 text (byte %d)" % e.start


def boards():
    """The board names hardware.board may take: the files in hal/boards/."""
    folder = os.path.join(ROOT, "hal", "boards")
    return sorted(n[:-3] for n in os.listdir(folder) if n.endswith(".py") and n != "__init__.py")


def _explain(problems):
    """The validator's problems, the board list added where the board is unknown and the
    nearest known names where a key or section is unknown."""
    out = []
    for p in problems:
        if p.startswith("hardware.board = "):
            p += " (here: %s)" % ", ".join(boards())
        name, _, why = p.partition(" - ")
        if why.startswith("unknown"):
            pool = (configspec.SECTIONS if why.startswith("unknown section")
                    else known_paths())
            near = difflib.get_close_matches(name, pool, n=3)
            if near:
                p += " (did you mean %s?)" % ", ".join(near)
        out.append(p)
    return out


def is_board(cfg):
    """Whether the config is for a real board (not the host simulator): a board has no CA
    store of its own, so wss:// needs csms.ca_file."""
    hw = cfg.get("hardware") if isinstance(cfg, dict) else None
    name = hw.get("board") if isinstance(hw, dict) else None
    return name != "sim"


def problems_of(path, text, warnings=None):
    """Every problem of the config text read from `path`, as the charger would see it."""
    cfg, problems = fwconfig.parse(text, warnings)
    if cfg is not None and not problems:
        base = os.path.dirname(os.path.abspath(path))
        problems = fwconfig.check_paths(cfg, base, is_board(cfg))
    return _explain(problems)


def check(path, out=print):
    """Print every problem of `path` and a closing line; returns the number of problems."""
    text, problem = _read(path)
    warnings = []
    problems = [problem] if problem else problems_of(path, text, warnings)
    for p in problems:
        out("%s: %s" % (path, p))
    for w in warnings:
        out("%s: warning: %s" % (path, w))
    if problems:
        out("%s: %d problem%s - the charger would not use this file (it keeps its last good"
            " config)" % (path, len(problems), "" if len(problems) == 1 else "s"))
    else:
        out("%s: OK" % path)
    return len(problems)


def effective(cfg):
    """A validated config with every default filled in, OCPP keys included."""
    cfg = json.loads(json.dumps(cfg))
    fwconfig.validate(cfg)   # fills the defaults of csms, station, log, hardware, wifi in place
    # The OCPP keys' defaults live in the key table; read them back through the keys object.
    nowhere = os.path.join(tempfile.gettempdir(), "no-such-dir", "keys.json")
    live = keys.Keys(cfg.get("ocpp", {}), nowhere, cfg["station"]["connectors"], None)
    listing, _ = live.listing()
    cfg["ocpp"] = dict((k["key"], live[k["key"]]) for k in listing if not k["readonly"])
    return cfg


def masked(cfg):
    """A copy of cfg with every set secret (configspec.SECRETS) replaced by MASK."""
    cfg = json.loads(json.dumps(cfg))
    for path in configspec.SECRETS:
        node = cfg
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(parts[-1]):
            node[parts[-1]] = MASK
    for name, value in cfg.get("csms", {}).items():  # a URL's password ("ws://u:***@h/")
        if isinstance(value, str) and "://" in value:
            cfg["csms"][name] = hide_credentials(value)
    return cfg


def known_paths():
    paths = [row[0] for row in configspec.SPEC] + [row[0] for row in hwspec.SPEC]
    return paths + ["ocpp." + name for name in keys.names()]


def _kind(key):
    """The spec type of a config key ("str", "int", ...), None for an OCPP key."""
    for row in configspec.SPEC + hwspec.SPEC:
        if row[0] == key:
            return row[1]
    return None


def parse_value(text):
    """JSON when it parses, else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _indent(text):
    """The indentation unit of a JSON text (2 when it cannot be told)."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped and len(stripped) < len(line):
            return len(line) - len(stripped)
    return 2


def set_value(path, key, raw, out=print):
    """Set `key` to `raw` (a command-line string) in the file at `path`; returns an exit code."""
    text, problem = _read(path)
    if problem:
        out("%s: %s" % (path, problem))
        return 1
    cfg, problems = fwconfig.parse(text)
    if cfg is None:
        for p in problems:
            out("%s: %s" % (path, p))
        out("%s: fix the syntax first; nothing changed" % path)
        return 1
    cfg = json.loads(text)   # parse() filled in defaults; the file keeps only what it had
    if key not in known_paths():
        near = difflib.get_close_matches(key, known_paths(), n=3)
        hint = " (did you mean %s?)" % ", ".join(near) if near else ""
        out("%s: %s - unknown key%s; nothing changed" % (path, key, hint))
        return 1
    value = parse_value(raw)
    node = cfg
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            out("%s: %s is %s, not a section; nothing changed"
                % (path, ".".join(parts[:i + 1]), json.dumps(child)))
            return 1
        node = child
    node[parts[-1]] = value
    warnings = []
    problems = problems_of(path, json.dumps(cfg), warnings)
    if problems:
        for p in problems:
            out("%s: %s" % (path, p))
        if (not isinstance(value, str) and _kind(key) == "str"
                and key not in configspec.SECRETS):
            out("%s: (to store %s as text, quote it: '\"%s\"')" % (path, raw, raw))
        out("%s: refused; nothing changed" % path)
        return 1
    for w in warnings:
        out("%s: warning: %s" % (path, w))
    new = json.dumps(cfg, indent=_indent(text), ensure_ascii=False)
    new += "\n" if text.endswith("\n") else ""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)   # readers see the old file or the new one, never half of it
    except BaseException:
        os.unlink(tmp)
        raise
    shown = (MASK if key in configspec.SECRETS
             else hide_credentials(json.dumps(value, ensure_ascii=False)))
    out("%s: %s = %s" % (path, key, shown))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.config",
                                 description="Check, show or change config.json.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    # Every command takes the file the same way: last on the line, or --config FILE.
    p = sub.add_parser("check", help="validate; exit code 1 when there is a problem")
    p.add_argument("file", nargs="?", help="config file (default config.json)")
    p.add_argument("--config", help="the same, as an option")
    p = sub.add_parser("show", help="print the effective config with defaults filled in")
    p.add_argument("file", nargs="?", help="config file (default config.json)")
    p.add_argument("--config", help="the same, as an option")
    p = sub.add_parser("set", help="change one key, e.g. set csms.url wss://csms.example.com/ocpp")
    p.add_argument("key", help="dotted path, e.g. ocpp.HeartbeatInterval")
    p.add_argument("value", help="JSON value (300, true, null, \"text\") or plain text")
    p.add_argument("file", nargs="?", help="config file to change (default config.json)")
    p.add_argument("--config", help="the same, as an option")
    args = ap.parse_args(argv)
    if args.file and args.config and args.file != args.config:
        ap.error("two config files given: %s and --config %s" % (args.file, args.config))
    path = args.file or args.config or DEFAULT
    if args.cmd == "check":
        return 1 if check(path) else 0
    if args.cmd == "set":
        return set_value(path, args.key, args.value)
    text, problem = _read(path)
    problems = problems_of(path, text) if text is not None else [problem]
    if problems:
        for p in problems:
            print("%s: %s" % (path, p), file=sys.stderr)
        return 1
    print(json.dumps(masked(effective(fwconfig.parse(text)[0])), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
