"""The README documents every console command `help` lists, and the "What is in the box"
table every module, once."""
import collections
import os
import re

from firmware import console
from tools.driver import ROOT


def _readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def _table_after(text, heading):
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows


def test_help_and_the_readme_console_table_list_the_same_commands():
    rows = _table_after(_readme(), "| command | effect |")[1:]
    documented = set()
    for row in rows:
        for cell in re.findall(r"`([^`]+)`", row.split("|")[1]):
            word = cell.split()[0]
            if word.islower():  # not the "F" of `pilot N A`...`F`
                documented.add(word)
    in_help = set(c.split()[0] for c in console.COMMANDS)
    assert documented == in_help
    assert console.HELP == "commands: " + " | ".join(console.COMMANDS)


def test_what_is_in_the_box_names_every_module_once_and_has_no_duplicate_rows():
    rows = _table_after(_readme(), "| Layer | File | Job |")[1:]
    assert len(rows) == len(set(rows))
    files = "\n".join(row.split("|")[2] for row in rows)
    named = collections.Counter(re.findall(r"`((?:firmware|hal|tools)/[\w/]*\.py|main\.py"
                                           r"|boot\.py|hal/boards/)`", files))
    assert [n for n in named if named[n] > 1] == []
    modules = ["main.py", "boot.py"]
    for folder in ("firmware", "hal", "tools"):
        modules += ["%s/%s" % (folder, n) for n in os.listdir(os.path.join(ROOT, folder))
                    if n.endswith(".py") and n != "__init__.py"]
    missing = [m for m in modules if m not in named
               and not (m.startswith("hal/boards/") and "hal/boards/" in named)]
    assert missing == []
