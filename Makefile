# The two commands of the README: `make repro` and `make test`.
# Both bootstrap .venv from requirements.txt when it is missing or out of date
# (a stamp keyed on the hash of the dependency files).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat requirements.txt requirements-nodeps.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.deps-$(DEPS_HASH)

export DVC_NO_ANALYTICS := 1
export MLFLOW_DISABLE_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv repro repro-serial sweep test test-fast bench ui exp diff dvc-yaml clean-venv browser

venv: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.deps-*
	@touch $@

# `make repro` validates params.yaml first (one line and exit 2 on a bad value, before DVC expands
# any stage from it), regenerates dvc.yaml (the distillation families follow the datasets and
# grids params.yaml writes), then runs the stale stages of dvc.yaml as Ray tasks, as many at once as the
# machine has cores (python -m lowspike.sweep; it falls back to `dvc repro` if Ray cannot start;
# RAY_ADDRESS=HEAD:6379 runs them on an existing Ray cluster), and records its wall time and peak
# memory in reports/pipeline_run.json. `make repro-serial` is plain `dvc repro`.
repro: venv
	$(BIN)/python -m lowspike.config params.yaml
	$(BIN)/python -m lowspike.dvcyaml --write dvc.yaml
	$(BIN)/python benchmarks/timed.py reports/pipeline_run.json -- $(BIN)/python -m lowspike.sweep

repro-serial: venv
	$(BIN)/python -m lowspike.config params.yaml
	$(BIN)/python -m lowspike.dvcyaml --write dvc.yaml
	$(BIN)/python benchmarks/timed.py reports/pipeline_run.json -- $(BIN)/dvc repro

sweep: repro

# Headless Chromium renders the HTML reports in the tests (Debian's package; the tests skip
# with a reason where it cannot be installed).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } || echo "warning: no chromium; the HTML render tests will skip"

# Every test. `make test-fast` leaves out the integration tests (Ray clusters, whole DVC
# pipelines, browsers, killed and interrupted processes): the inner loop, under 2 minutes.
# Both run on two pytest-xdist workers, one test file per worker at a time (--dist loadfile keeps a
# module's fixtures, such as its Ray cluster, in one process).
PYTEST_WORKERS ?= 2
test: venv browser
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test-fast: venv
	$(BIN)/python -m pytest -m "not integration" -n $(PYTEST_WORKERS) --dist loadfile

bench: venv
	$(BIN)/python benchmarks/run.py

# The MLflow UI on the project's store: `make ui HOST=0.0.0.0 PORT=5001`; Ctrl-C or SIGTERM stops
# the server and every worker it started.
HOST ?= 127.0.0.1
PORT ?= 5000
ui: venv
	$(BIN)/python -m lowspike.tracking ui --host $(HOST) --port $(PORT)

# The experiments DVC knows (the workspace, main and `dvc exp run` results) side by side: the
# params that differ and each study's headline metrics (results/*/headline.json), one experiment
# per column. `make exp CSV=1` prints one experiment per row as CSV. `make diff REV=main` (a git
# revision or a dvc exp name): what changed in the headline metrics, workspace against REV.
exp: venv
	$(BIN)/python -m lowspike.report.experiments show $(if $(CSV),--csv,)

REV ?= HEAD
diff: venv
	$(BIN)/python -m lowspike.report.experiments diff $(REV)

# dvc.yaml is generated from the registries of src/lowspike and the datasets and grids of
# params.yaml (a test checks the committed one is up to date).
dvc-yaml: venv
	$(BIN)/python -m lowspike.dvcyaml --write dvc.yaml

clean-venv:
	rm -rf $(VENV)
