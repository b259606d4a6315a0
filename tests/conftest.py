"""Shared fixtures: the local Central System, the interpreters and the
charger process factory."""

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# `tools` and `tests` are imported as packages from the repository root, also
# when pytest is started as a bare `pytest` from elsewhere.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.harness import Charger, CsmsThread, write_config  # noqa: E402
from tests.mp import INTERPRETERS  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true", default=False,
                     help="run long soak scenarios at full length")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: scenario taking more than a few seconds")


@pytest.fixture(autouse=True)
def _device_modules_kept():
    """The firmware unloads modules after use (transfer.release, ChargePoint.drop) and the next
    import makes a fresh copy, with classes of its own (net.NetError...). Put back the copies
    loaded before each test, so that a test never sees another's fresh copies instead of the
    ones it imported."""
    from firmware import compat
    mods = sys.modules
    saved = [(k, v) for k, v in mods.items() if k.startswith(("firmware.", "hal."))]
    unload = compat.unload  # an in-process fleet keeps modules loaded (tools/fleet/run.py)
    yield
    compat.unload = unload
    for name, mod in saved:
        if mods.get(name) is not mod:
            mods[name] = mod
            package, _, leaf = name.rpartition(".")
            if package in mods:
                setattr(mods[package], leaf, mod)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the charger output to every failing phase (including a
    teardown that failed on protocol violations)."""
    report = yield
    if report.failed:
        for charger in getattr(item, "_chargers", ()):
            report.sections.append(
                (f"charger {charger.cp_id} output (last 80 lines, full log "
                 f"{charger.log_path})", charger.tail(80)))
    return report


@pytest.fixture(params=["micropython", "python3"], ids=["mp", "cpy"])
def interpreter(request):
    path = INTERPRETERS[request.param]
    if not os.access(path, os.X_OK):
        pytest.skip(f"{request.param} not found at {path}")
    return path


@pytest.fixture
def csms():
    """A started CsmsThread; fails the test if the charger broke the protocol."""
    server = CsmsThread().start()
    yield server
    server.stop()
    found = list(server.violations)
    assert found == [], "protocol violations:\n  " + "\n  ".join(found)


@pytest.fixture
def charger(request, csms, interpreter, tmp_path):
    """Factory: charger(ocpp={...}, station={...}, csms_config={...},
    cp_id=None, start=True) -> Charger. The n-th charger of a test is CP_n
    with its config and data under tmp_path/CP_n."""
    made = []
    request.node._chargers = made

    def factory(ocpp=None, station=None, csms_config=None, cp_id=None, start=True):
        cp_id = cp_id or f"CP_{len(made) + 1}"
        config = write_config(tmp_path / cp_id, csms.url, cp_id, ocpp=ocpp,
                              station=station, csms=csms_config)
        unit = Charger(interpreter, config, REPO_ROOT)
        made.append(unit)
        if start:
            unit.start()
        return unit

    yield factory
    for unit in made:
        try:
            unit.stop()
        except Exception:
            unit.kill()


REPORTS = REPO_ROOT / "build" / "reports"


def report_figure(line):
    """A figure a test measured (fault-injection counts...): printed at the end of the run."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    with open(REPORTS / "figures.txt", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controller, not an xdist worker
        (REPORTS / "figures.txt").unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    path = REPORTS / "figures.txt"
    if path.exists():
        terminalreporter.section("figures")
        for line in path.read_text(encoding="utf-8").splitlines():
            terminalreporter.write_line(line)
