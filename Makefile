# Two commands set everything up from nothing: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export GIT_PYTHON_REFRESH := quiet
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: setup run test test-stack test-fast bench lint airflow stack stack-down clean help

help:
	@echo "make run    - set up (venv, pinned deps, DVC, MLflow on SQLite) and run the main job"
	@echo "make test   - set up the same way and run the test suite"
	@echo "make test-stack - the container stack test (podman; 15-25 min), not in make test"
	@echo "make bench  - stage timings and memory on the full data"
	@echo "make test-fast - the tiers that start no server and run no full pipeline (minutes)"
	@echo "make lint   - ruff (lint, format) and mypy; CI runs it before the tests"
	@echo "make airflow - start Airflow locally (SQLite, LocalExecutor) with the DAG loaded"
	@echo "make stack  - the container stack (PostgreSQL, Redis, MLflow, Airflow + 2 Celery workers,"
	@echo "              serving behind nginx): build offline, start in order, print URLs + logins"
	@echo "make stack-down - stop the container stack (volumes kept)"

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

# The workspace: a git repository (DVC needs one) with DVC's local remote folder.
setup: $(STAMP)
	@git rev-parse --git-dir >/dev/null 2>&1 || git init -q
	@mkdir -p .dvcstore

run: setup
	$(BIN)/retrain series
	$(BIN)/retrain demo-loop

# Two workers (pytest-xdist): much of the suite waits on servers and subprocesses, so two
# streams fill the 2 cores; a module, or a group of modules, stays on one worker
# (tests/conftest.py: GROUPS, pytest_xdist_make_scheduler).
# The slowest 25 tests are printed at the end: the suite's time is a budget like any other.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

test: setup
	$(PYTEST) --durations=25

# The container stack for real (tests/integration/test_stack.py, 15-25 min): not in `make test`.
test-stack: setup
	RETRAIN_TEST_STACK=1 $(BIN)/python -m pytest tests/integration/test_stack.py

test-fast: setup
	$(PYTEST) -m "not slow and not integration" --durations=10

bench: setup
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# ruff (lint + format) on everything; mypy on pipelines (strict), dags and tests (pyproject.toml)
lint: setup
	$(BIN)/ruff check pipelines dags tests benchmarks
	$(BIN)/ruff format --check pipelines dags tests benchmarks
	$(BIN)/mypy

# a demo loop killed while it ran leaves the workspace's params.yaml text beside it: put back
clean:
	test ! -f .params-before-loop.yaml || mv .params-before-loop.yaml params.yaml
	rm -rf data/raw data/prepared data/window data/landing data/accepted data/census data/live reports models mlflow.db mlartifacts .dvcstore airflow_home .bench

# Airflow on this machine (SQLite in airflow_home/, LocalExecutor), DAG loaded, login printed.
airflow: setup
	bash scripts/airflow.sh

# The container stack (docker-compose.yml) with podman or docker: .env with generated secrets,
# images built offline (the venv's pip makes the wheelhouse), services started in order and each
# one waited for; scripts/install-podman.sh installs the engine. stack-down keeps the volumes.
# the engine is looked for first: no two minutes of set-up before "no container engine"
stack:
	bash scripts/stack.sh engine
	$(MAKE) setup
	bash scripts/stack.sh up

stack-down:
	bash scripts/stack.sh down
