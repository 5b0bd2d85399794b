# The README's two commands are `make run` and `make test`; both create the
# virtual environment on first use. `make run` installs the runtime only; `make test`
# (and lint, bench) add the test and benchmark tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLER := $(VENV)/.installed-uv
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
# Coverage costs the suite two thirds more time under Python 3.11's trace function: `make test`
# measures the fast layer against its floor, `make coverage` the whole suite against the
# floor in pyproject.toml. The fast layer (with the in-process stack of tests/support/stack.py
# and the emulators' own contract tests) measures 92.2 %; the floor leaves a margin for what
# hypothesis draws.
UNIT_FLOOR := 91
# The integration layer waits about a third of its time, in bursts (subprocesses starting, the
# emulators' rate limits, deadlines, slow clients): two workers a core keep the cores busy.
INTEGRATION_WORKERS = $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')
# What a fresh clone installs is what was tested: every package pinned with its hashes, for
# every platform and Python 3.11+ (uv's universal resolution). `make lock` moves the pins on
# purpose; `make test-latest` tries the newest releases pyproject.toml's ranges allow.
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt
LOCK_INPUTS := pyproject.toml requirements/build.in
# uv installs the locks, checking every hash as pip does, in a few seconds where pip took a
# minute. It comes first, through the venv's own pip, from a lock of its own: the dev lock's pin.
UV_LOCK := requirements/uv.txt
UV := $(BIN)/uv
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# Bytecode compiled once, on every core, at install: the suite starts dozens of Python processes.
UV_PIP := $(UV) pip install --quiet --compile-bytecode
LATEST := .venv-latest

.PHONY: install install-dev run test test-latest lint lock unit integration coverage bench schema clean

# The test runs write bytecode even where PYTHONDONTWRITEBYTECODE is set: pytest keeps its
# rewritten test modules only then, and each of the suite's fifty-odd Python processes (its
# workers, the CLI as a subprocess) would otherwise compile the same modules anew.
test test-latest unit integration coverage: export PYTHONDONTWRITEBYTECODE :=

install: $(RUNTIME)

install-dev: $(DEV)

$(INSTALLER): $(UV_LOCK)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) --require-hashes -r $(UV_LOCK)
	touch $(INSTALLER)

# The project itself goes in without its dependencies (the lock has them all) and is built
# by the locked setuptools, not by whatever release is newest that day.
$(RUNTIME): pyproject.toml $(RUNTIME_LOCK) $(INSTALLER)
	$(UV_PIP) --python $(BIN)/python --require-hashes -r $(RUNTIME_LOCK)
	$(UV_PIP) --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(RUNTIME)

$(DEV): $(RUNTIME) $(DEV_LOCK)
	$(UV_PIP) --python $(BIN)/python --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip check
	touch $(DEV)

# `make lock` keeps every pin that still fits pyproject.toml; `make lock UPGRADE=1` moves them
# all to the newest releases. The dev lock resolves first and the runtime's takes its pins, so
# the two never disagree.
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	$(if $(UPGRADE),--upgrade)
lock: $(DEV)
	$(UV_COMPILE) --extra test --extra bench --extra lock $(LOCK_INPUTS) -o $(DEV_LOCK)
	$(UV_COMPILE) -c $(DEV_LOCK) $(LOCK_INPUTS) -o $(RUNTIME_LOCK)
	$(UV_COMPILE) -c $(DEV_LOCK) requirements/uv.in -o $(UV_LOCK)

run: install
	$(BIN)/crm-gateway serve --demo

lint: install-dev
	$(BIN)/ruff check gateway schema resolvers emulators tests bench scripts
	$(BIN)/ruff format --check gateway schema resolvers emulators tests bench scripts
	$(BIN)/mypy

test: lint
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		echo "No chromium found: the GraphiQL browser test will be SKIPPED (apt-get install chromium)."
	$(BIN)/pytest -q -n auto -m "not integration" --cov --cov-fail-under=$(UNIT_FLOOR)
	$(BIN)/pytest -q -n $(INTEGRATION_WORKERS) --dist loadgroup -m integration

# The suite on the newest releases the ranges allow, in a venv of its own: drift shows up here
# as a report (CI runs it without blocking), not as a broken main on the next fresh clone.
test-latest: $(INSTALLER)
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(UV_PIP) --python $(LATEST)/bin/python --upgrade pip setuptools -e '.[test,bench]'
	$(LATEST)/bin/python scripts/lock_drift.py $(DEV_LOCK)
	$(LATEST)/bin/pytest -q -n auto -p no:cacheprovider -m "not integration"
	$(LATEST)/bin/pytest -q -n $(INTEGRATION_WORKERS) -p no:cacheprovider --dist loadgroup -m integration

coverage: install-dev
	$(BIN)/pytest -q -n auto --dist loadgroup --cov --cov-report=term

# The fast layer alone (no servers, no coverage floor: that is the whole suite's).
unit: install-dev
	$(BIN)/pytest -q -m "not integration"

integration: install-dev
	$(BIN)/pytest -q -m integration

bench: install-dev
	$(BIN)/python -m bench

schema: install
	$(BIN)/crm-gateway schema > schema.graphql

clean:
	rm -rf $(VENV) $(LATEST) .mypy_cache .pytest_cache .ruff_cache bench/results
