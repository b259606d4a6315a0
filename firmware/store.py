"""Small-file persistence on flash: atomic replace and safe reads."""
import json
import os


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    # littlefs commits on close and rename replaces atomically: readers see old or new, never half.
    os.rename(tmp, path)


def read_json(path, default=None):
    """The JSON in `path`, or `default` when the file is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
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
