"""Run a test module's plain `test_` functions without pytest, on the MicroPython unix port:

    if __name__ == "__main__":
        run_tests(globals(), "hal-contract-ok")

prints "<label> N" when every test passed (a failing one raises), which the pytest twin of the
module checks for in the output of `run_mp("tests/unit/<module>.py")`.
"""


def run_tests(namespace, label):
    """Call every `test_*` function of `namespace` that takes no argument, in name order; the
    pytest-only ones (named `..._on_micropython`) are skipped. Then `cleanup()` if defined."""
    n = 0
    for name in sorted(namespace):
        if name.startswith("test_") and not name.endswith("_on_micropython"):
            namespace[name]()
            n += 1
    if "_cleanup" in namespace:
        namespace["_cleanup"]()
    print("%s %d" % (label, n))


class TempDirs:
    """Folders made for one test module, removed (with what is in them) by cleanup(); the unix
    port has no tempfile, so there they go under /tmp with a random name."""

    def __init__(self, prefix):
        self._prefix = prefix
        self._made = []

    def make(self):
        try:
            import tempfile
            path = tempfile.mkdtemp(prefix=self._prefix)
        except ImportError:  # MicroPython
            from firmware import store
            from firmware.compat import urandom
            path = "/tmp/%s%s" % (self._prefix, "".join("%02x" % b for b in urandom(4)))
            store.makedirs(path)
        self._made.append(path)
        return path

    def cleanup(self):
        while self._made:
            _remove(self._made.pop())


def _remove(path):
    import os
    try:
        names = os.listdir(path)
    except OSError:
        os.remove(path)
        return
    for name in names:
        _remove(path + "/" + name)
    os.rmdir(path)
