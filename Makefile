# walletchaos — every target creates .venv and installs what it needs itself.
VENV    := .venv
PY      := $(VENV)/bin/python
WC      := $(VENV)/bin/walletchaos
PYTEST  := $(VENV)/bin/pytest

.PHONY: setup chaos test test-fast bench images clean up

setup:            ## .venv + packages + Toxiproxy server binary (idempotent)
	@bash scripts/setup.sh

chaos: setup      ## run the whole scenario catalog with short durations; exit 0 only if every invariant held
	$(WC) run all

test: setup       ## unit + integration tests against real PostgreSQL, Toxiproxy, Locust and HTTP
	$(PYTEST) -q

test-fast: setup  ## pure-logic unit tests only
	$(PYTEST) -q -m "not slow and not docker"

bench: setup      ## benchmarks -> bench/results.md + bench/results.json
	$(PY) -m bench.run

up: setup         ## start the stack and stay up until Ctrl-C
	$(WC) up

clean:
	rm -rf reports .pytest_cache
