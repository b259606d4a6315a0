"""The README's reference tables, made from the code's own tables.

    python -m tools.readme_tables            # rewrite the generated blocks of README.md
    python -m tools.readme_tables --check    # exit 1 (and say which) when README.md is stale

A block stands between `<!-- generated: NAME -->` and `<!-- end: NAME -->`:
  profiles     feature profiles, their modules and requests (firmware/profiles.py)
  ocpp-keys    OCPP configuration keys (firmware/keys.py, owner profile from firmware/profiles.py)
  config-keys  config.json keys (firmware/configspec.py)
tests/unit/test_readme_tables.py fails when a block differs from what the code says.
"""
import json
import os
import re
import sys

from firmware import configspec, keys, profiles

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

_KIND = {"i": "integer", "b": "boolean", "c": "measurand list", "s": "string"}
_ACCESS = {"r": "read-only", "w": "read-write", "W": "read-write, reboot", "x": "write-only"}


def _owners():
    owner = {}
    for profile, _module, _actions, names, _file in profiles.FEATURES:
        for name in names.split():
            owner[name] = profile
    return owner


def profiles_table():
    rows = ["| profile | module | requests from the Central System | state file |",
            "|---|---|---|---|"]
    for profile, module, actions, _keys, state_file in profiles.FEATURES:
        rows.append("| %s | `firmware/%s.py` | %s | %s |" % (
            profile, module, ", ".join(actions.split()),
            "`%s`" % state_file if state_file else ""))
    return "\n".join(rows)


def ocpp_keys_table():
    owner = _owners()
    rows = ["| key | profile | access | type | default | allowed |", "|---|---|---|---|---|---|"]
    for name in keys.names():
        row = keys._row(name)
        kind, access, default = row[1], row[2], row[3]
        rule = row[4] if len(row) > 4 else ""
        if name == "SupportedFeatureProfiles":
            default = profiles.supported()
        elif name == "NumberOfConnectors":
            default = "`station.connectors`"
        if kind == "i" and rule:
            allowed = rule.replace("-", "–")
        elif kind == "c":
            allowed = "up to %s measurands (listed under MeterValues)" % rule
        elif kind == "s" and rule:
            allowed = "up to %s characters" % rule
        else:
            allowed = ""
        rows.append("| %s | %s | %s | %s | %s | %s |" % (
            name, owner.get(name, "?"), _ACCESS[access], _KIND[kind],
            default.replace(",", ", ") if default else "(empty)", allowed))
    return "\n".join(rows)


def config_keys_table():
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for path, _kind, default, _rule, meaning in configspec.SPEC:
        shown = "required" if default == configspec.REQUIRED else "`%s`" % json.dumps(default)
        rows.append("| `%s` | %s | %s |" % (path, shown, meaning.replace("|", "\\|")))
    return "\n".join(rows)


TABLES = {"profiles": profiles_table, "ocpp-keys": ocpp_keys_table,
          "config-keys": config_keys_table}


def _block(name):
    return re.compile(r"(<!-- generated: %s -->\n)(.*?)(<!-- end: %s -->)"
                      % (re.escape(name), re.escape(name)), re.S)


def render(text):
    """`text` with every generated block made anew; raises KeyError for a missing block."""
    for name, make in TABLES.items():
        pattern = _block(name)
        if not pattern.search(text):
            raise KeyError("README.md has no block %r" % name)
        text = pattern.sub(lambda m, t=make(): m.group(1) + t + "\n" + m.group(3), text)
    return text


def stale(text):
    """The names of the blocks whose text differs from the code's tables."""
    fresh = render(text)
    return [name for name in TABLES
            if _block(name).search(text).group(2) != _block(name).search(fresh).group(2)]


def main(argv):
    with open(README, encoding="utf-8") as f:
        text = f.read()
    if "--check" in argv:
        names = stale(text)
        if names:
            print("README.md is stale in: %s; run python -m tools.readme_tables"
                  % ", ".join(names))
            return 1
        print("README.md tables match the code")
        return 0
    with open(README, "w", encoding="utf-8") as f:
        f.write(render(text))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
