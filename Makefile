# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
PYTEST_ARGS ?=

.PHONY: setup demo test test-long bench clean

setup: $(VENV)/.ready

$(VENV)/.ready: requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "python3 >= 3.11 is needed (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

demo: setup
	$(PY) -m tools.demo

test: setup
	$(PY) -m pytest -q -n 2 tests $(PYTEST_ARGS)

test-long: setup
	$(PY) -m pytest -q -n 2 tests --long $(PYTEST_ARGS)

bench: setup
	$(PY) -m tools.bench

clean:
	rm -rf $(VENV) .pytest_cache build
