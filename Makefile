# One-command entry points. Everything installs into .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run cluster chaos test unit bench lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench,lint]'
	touch $(STAMP)

install: $(STAMP)

## make run: start Postgres, NATS and every service; seed a demo account; print its token
run: $(STAMP)
	$(BIN)/sched run

## make cluster: the same as a cluster on one machine: 3 NATS nodes, 2 instances of every service
cluster: $(STAMP)
	$(BIN)/sched run --cluster

## make chaos: the fault run against cluster mode (about 5 minutes); prints the table of checks (a)-(g)
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos.run

## make test: every test tier against real Postgres and NATS (started by the fixtures)
test: $(STAMP)
	@# the browser tests drive Debian's Chromium; install it when missing and possible (they fail loudly without it)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium) || true
	$(BIN)/python -m pytest -q tests

## make unit: the fast tier only (no servers)
unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

## make bench: every benchmark; results are printed and appended, dated, to tests/benchmarks/RESULTS.md
bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.run_all

lint: $(STAMP)
	$(BIN)/ruff check shared services projections tests
	$(BIN)/mypy shared services projections

clean:
	rm -rf .sched
