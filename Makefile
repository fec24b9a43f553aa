# Thin wrapper over CMake. `make run` and `make test` install what they need on a fresh Debian
# machine (as root), so a clean clone needs nothing else.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
# Seconds per fuzz target: `make fuzz` (long runs, FUZZ_SECONDS=N) and `make fuzz-smoke` (in
# `make test`, so CI catches regressions).
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 25
FUZZ_TARGETS := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
PYTHON     := /usr/bin/python3
# Integration tests mostly wait on sockets; several run at once (pytest-xdist), each with its
# own broker on its own port.
PYTEST     := $(PYTHON) -m pytest -q -p no:cacheprovider -n 4

DEB_PACKAGES := build-essential cmake clang libcmocka-dev liblmdb-dev mosquitto mosquitto-clients \
                libmosquitto-dev libssl-dev python3-paho-mqtt python3-pytest python3-pytest-xdist \
                python3-prometheus-client libjansson-dev libhttp-parser-dev \
                chromium valgrind
# Node.js may come from elsewhere (with its own npm): Debian's are installed only when absent.
NODE_PACKAGES := $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm)

.PHONY: all deps run test test-unit test-integration test-js test-asan test-tsan fuzz fuzz-smoke \
        clean FORCE

all: $(BUILD)/petrel

# Install missing Debian packages when running as root; otherwise just say what is missing.
deps:
	@missing="$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done) $(NODE_PACKAGES)"; \
	missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages (run as root to install):" $$missing; exit 1; \
	  fi; \
	fi

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

$(BUILD)/petrel: deps $(BUILD)/Makefile FORCE
	$(MAKE) -C $(BUILD) -j$(JOBS) --no-print-directory

FORCE:

run: $(BUILD)/petrel
	$(BUILD)/petrel -c petrel.conf

test: test-unit test-js test-integration test-asan test-tsan fuzz-smoke

test-unit: $(BUILD)/petrel
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# One worker here; the ASan run below uses the default (one per core), the TSan run four.
test-integration: $(BUILD)/petrel
	PETREL_BIN=$(abspath $(BUILD)/petrel) PETREL_WORKERS=1 $(PYTEST) tests/integration

# MQTT.js (Node) tests; packages come from the lock file.
test-js: $(BUILD)/petrel
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	cd tests/js && PETREL_BIN=$(abspath $(BUILD)/petrel) node --test

# The integration suite with four workers on two cores under ThreadSanitizer: threads interleave
# and races show.
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPETREL_TSAN=ON >/dev/null
	$(MAKE) -C $(TSAN_BUILD) -j$(JOBS) --no-print-directory petrel
	PETREL_BIN=$(abspath $(TSAN_BUILD)/petrel) PETREL_SANITIZED=1 PETREL_WORKERS=4 \
	  $(PYTEST) tests/integration --ignore=tests/integration/test_bench.py

# The whole suite again with AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPETREL_SANITIZE=ON >/dev/null
	$(MAKE) -C $(ASAN_BUILD) -j$(JOBS) --no-print-directory
	cd $(ASAN_BUILD) && ctest --output-on-failure -j$(JOBS)
	PETREL_BIN=$(abspath $(ASAN_BUILD)/petrel) PETREL_SANITIZED=1 \
	  $(PYTEST) tests/integration --ignore=tests/integration/test_bench.py

# Every libFuzzer target (tests/fuzz/fuzz_*.c) for FUZZ_SECONDS each, from its seed corpus
# tests/fuzz/corpus/<name>/; what it learns stays in $(FUZZ_BUILD)/corpus-<name> for the next
# run, crashes land in $(FUZZ_BUILD)/ (see docs/testing.md for turning one into a unit test).
fuzz: FUZZ_RUN_SECONDS = $(FUZZ_SECONDS)
fuzz-smoke: FUZZ_RUN_SECONDS = $(FUZZ_SMOKE_SECONDS)
fuzz fuzz-smoke: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPETREL_FUZZ=ON >/dev/null
	$(MAKE) -C $(FUZZ_BUILD) -j$(JOBS) --no-print-directory $(FUZZ_TARGETS)
	@for name in $(FUZZ_TARGETS); do \
	  f=$(FUZZ_BUILD)/$$name; corpus=tests/fuzz/corpus/$${name#fuzz_}; mkdir -p $(FUZZ_BUILD)/corpus-$$name; \
	  echo "fuzz $$name for $(FUZZ_RUN_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_RUN_SECONDS) -timeout=25 -print_final_stats=0 \
	      -artifact_prefix=$(FUZZ_BUILD)/$$name- $(FUZZ_BUILD)/corpus-$$name \
	      $$( [ -d $$corpus ] && echo $$corpus ) 2>$(FUZZ_BUILD)/$$name.log \
	    || { tail -50 $(FUZZ_BUILD)/$$name.log; exit 1; }; \
	  grep -h "DONE" $(FUZZ_BUILD)/$$name.log | tail -1; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
