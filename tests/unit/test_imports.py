"""The import graph of the device code (firmware/*.py, hal/*.py), function-level imports
included: no cycles, and nothing that MicroPython does not have.

    python tests/unit/test_imports.py     prints every module's imports and any cycle
"""
import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("firmware", "hal")

# What MicroPython (the ESP32 and unix ports) has; anything else is CPython-only here.
MICROPYTHON_MODULES = {
    "array", "asyncio", "binascii", "bluetooth", "collections", "cryptolib", "deflate", "errno",
    "esp", "esp32", "framebuf", "gc", "hashlib", "heapq", "io", "json", "machine", "math",
    "micropython", "neopixel", "network", "ntptime", "os", "random", "re", "select", "socket",
    "ssl", "struct", "sys", "time", "uasyncio", "uctypes", "vfs",
}
# firmware/compat.py is where the interpreters differ: its CPython branch may use these.
CPYTHON_BRANCH = {"firmware.compat": {"traceback"}}


def device_modules():
    """{"firmware.ws": path, ...} for every device module."""
    found = {}
    for package in PACKAGES:
        folder = os.path.join(ROOT, package)
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                mod = package if name == "__init__.py" else package + "." + name[:-3]
                found[mod] = os.path.join(folder, name)
    return found


def imports(mod, path, known):
    """(device modules `mod` imports, other modules it imports), wherever the import is."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    inside, outside = set(), set()

    def add(name):
        if name in known:
            inside.add(name)
        elif name.split(".")[0] not in PACKAGES:
            outside.add(name.split(".")[0])

    package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upwards
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:  # `from firmware import ws` imports firmware.ws
                if base + "." + alias.name in known:
                    add(base + "." + alias.name)
            if base not in PACKAGES:
                add(base)
    inside.discard(mod)
    return inside, outside


def graph():
    known = device_modules()
    return {mod: imports(mod, path, known) for mod, path in known.items()}


def cycles(edges):
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_cycles_among_device_modules():
    edges = {mod: inside for mod, (inside, _) in graph().items()}
    assert cycles(edges) == []


def test_device_code_imports_only_what_micropython_has():
    wrong = {}
    for mod, (_, outside) in graph().items():
        bad = outside - MICROPYTHON_MODULES - CPYTHON_BRANCH.get(mod, set())
        if bad:
            wrong[mod] = sorted(bad)
    assert wrong == {}


def test_cycles_are_found():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]


if __name__ == "__main__":
    g = graph()
    for mod, (inside, outside) in g.items():
        print(mod, "->", " ".join(sorted(inside)) or "-", "|", " ".join(sorted(outside)))
    found = cycles({mod: inside for mod, (inside, _) in g.items()})
    print("cycles:", found or "none")
    sys.exit(1 if found else 0)
