"""Small-file persistence on flash: atomic replace and safe reads."""
import json
import os

from firmware.compat import unload


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    # littlefs commits on close and rename replaces atomically: readers see old or new, never half.
    os.rename(tmp, path)


def loads(text):
    """json.loads after the strict check (firmware/jsonlint.py), so that every interpreter
    refuses the same broken text with the same message: ValueError("line N: ...")."""
    from firmware import jsonlint
    try:
        where = jsonlint.check(text)
    finally:
        # Loaded per read (boot, first use of a feature): it costs no RAM in between.
        unload("firmware.jsonlint")
    if where:
        raise ValueError("line %d: %s" % where)
    return json.loads(text)  # str or UTF-8 bytes


def read_json(path, default=None):
    """The JSON in `path`, or `default` when the file is missing or unreadable. A file that
    is there but not strict JSON is named on the console (its content is not shown)."""
    try:
        with open(path, "rb") as f:
            text = f.read()  # bytes: the check and json.loads read the one copy
    except OSError:
        return default
    try:
        return loads(text)
    except ValueError as e:
        print("%s: %s; ignored" % (path, e))
        return default


def makedirs(path):
    parts = path.replace("\\", "/").split("/")
    cur = ""
    for p in parts:
        if not p:
            cur = "/" if not cur else cur
            continue
        cur = cur + p if cur.endswith("/") or not cur else cur + "/" + p
        try:
            os.mkdir(cur)
        except OSError:
            pass


def join(a, b):
    if not a or b.startswith("/"):
        return b
    return a.rstrip("/") + "/" + b


def dirname(path):
    i = path.rfind("/")
    return path[:i] if i > 0 else ("/" if i == 0 else "")


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def is_dir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False
