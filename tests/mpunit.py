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
