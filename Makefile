# The two commands of the README: `make repro` and `make test`.
# Both bootstrap .venv from requirements.txt when it is missing or out of date
# (a stamp keyed on the hash of the dependency files).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)

export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv repro repro-serial sweep test test-all bench ui exp clean-venv browser

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.deps-*
	@touch $@

# `make repro` validates params.yaml first (one line and exit 2 on a bad value, before DVC expands
# any stage from it), then runs the stale stages of dvc.yaml as Ray tasks, as many at once as the
# machine has cores (python -m lowspike.sweep; it falls back to `dvc repro` if Ray cannot start;
# RAY_ADDRESS=HEAD:6379 runs them on an existing Ray cluster), and records its wall time and peak
# memory in reports/pipeline_run.json. `make repro-serial` is plain `dvc repro`.
repro: venv
	$(BIN)/python -m lowspike.config params.yaml
	$(BIN)/python benchmarks/timed.py reports/pipeline_run.json -- $(BIN)/python -m lowspike.sweep

repro-serial: venv
	$(BIN)/python -m lowspike.config params.yaml
	$(BIN)/python benchmarks/timed.py reports/pipeline_run.json -- $(BIN)/dvc repro

sweep: repro

# Headless Chromium renders the HTML reports in the tests (Debian's package; the tests skip
# with a reason where it cannot be installed).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } || echo "warning: no chromium; the HTML render tests will skip"

test: venv browser
	$(BIN)/python -m pytest -m "not slow"

test-all: venv browser
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python benchmarks/run.py

# The MLflow UI on the project's store: `make ui HOST=0.0.0.0 PORT=5001`; Ctrl-C or SIGTERM stops
# the server and every worker it started.
HOST ?= 127.0.0.1
PORT ?= 5000
ui: venv
	$(BIN)/python -m lowspike.tracking ui --host $(HOST) --port $(PORT)

# The experiments DVC knows (the workspace, main and `dvc exp run` results) with their params
# and metrics, without the dependency hashes that make the table unreadable.
exp: venv
	$(BIN)/dvc exp show --drop 'deps:.*' --drop 'Created'

clean-venv:
	rm -rf $(VENV)
