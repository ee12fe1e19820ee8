# walletchaos — every target creates .venv and installs what it needs itself.
VENV    := .venv
PY      := $(VENV)/bin/python
WC      := $(VENV)/bin/walletchaos
PYTEST  := $(VENV)/bin/pytest

.PHONY: setup chaos test test-local test-fast detect detect-full bench up clean

setup:            ## .venv + packages + Toxiproxy server binary (idempotent)
	@bash scripts/setup.sh

chaos: setup      ## run the whole scenario catalog (short durations); exit 0 only if every invariant held
	$(WC) run all --parallel 2

test: setup docker-engine images docker-clean   ## everything CI runs: unit, real-process, catalog, docker, planted bugs
	$(PYTEST) -q
	$(WC) detect --mode quick --parallel 2 --report-dir reports/detect

test-local: setup ## the same without containers (no Docker engine needed)
	$(PYTEST) -q -m "not docker"

test-fast: setup  ## pure-logic unit tests only (seconds)
	$(PYTEST) -q -m "not slow and not docker"

detect: setup     ## planted-bug detection, quick (each bug against the scenario that should catch it)
	$(WC) detect --mode quick --parallel 2

detect-full: setup  ## every planted bug x every scenario + 20 seeds of the correct wallet (long)
	$(WC) detect --mode full --seeds 20 --parallel 2

bench: setup      ## benchmarks -> bench/results.md + bench/results.json
	$(PY) -m bench.run

up: setup         ## start the stack and stay up until Ctrl-C
	$(WC) up

clean:
	rm -rf reports .pytest_cache

include docker/images.mk
