# mmkit: the commands that matter. `make demo` and `make test` work on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: install test test-unit lint typecheck bench bench-anchors demo services services-stop clean

$(STAMP): pyproject.toml setup.py $(wildcard mmkit/_speedups/*.pyx)
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## install: system packages (redis, postgresql), the virtualenv and mmkit in it
install:
	bash .ci/install-system
	@$(MAKE) --no-print-directory $(STAMP)

## services: private redis + postgresql for the tests (idempotent)
services:
	bash .ci/services start

services-stop:
	bash .ci/services stop

## test: the whole suite, with real Redis and PostgreSQL (CI=true makes missing servers a failure)
test: install services
	. var/services/env && CI=$${CI:-true} $(BIN)/pytest -q -p no:cacheprovider --durations=15

## test-unit: fast hermetic tests only
test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check mmkit connectors strategies tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(PYTHON) -m bench

## bench-anchors: mmkit against hftbacktest and NautilusTrader on the shared recording (installs the [anchors]
## extra into .venv; ANCHORS_ARGS="--quick --only book,replay" for a shorter run)
ANCHORS_STAMP := $(VENV)/.anchors-installed
$(ANCHORS_STAMP): $(STAMP) pyproject.toml
	$(PYTHON) -m pip install -q -e '.[dev,anchors]'
	touch $(ANCHORS_STAMP)

bench-anchors: $(ANCHORS_STAMP)
	PYTHONPATH=. $(PYTHON) -m bench.compare_anchors $(ANCHORS_ARGS)

## demo: simulated venue + replayed recording + a strategy quoting into it, then a report
demo: install
	$(BIN)/mmkit demo --duration $${DEMO_SECONDS:-30}

clean:
	rm -rf var reports strategies/var .pytest_cache .mypy_cache .ruff_cache
