# `make demo` and `make test` set everything up from nothing (a .venv beside
# this file) and then run; later runs reuse the environment.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup demo test faults production slow screenshots layout lint typecheck unit e2e bench clean

setup: $(STAMP)

# torch is installed first and pinned to a CPU build where the machine has
# one on disk (pip's find-links); otherwise pip takes PyPI's build. Everything
# else installs at the versions in constraints.txt, the ones the suite passed
# with. Last, Prefect's database is migrated once for the installation, so a
# new home's first job need not.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet "torch==2.13.0" || $(BIN)/python -m pip install --quiet "torch>=2.4,<3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	$(BIN)/python -m unitrain.runtime.prefect_db_template
	touch $(STAMP)

demo: setup
	$(BIN)/unitrain run examples/demo.json

# mypy and import-linter read the package as it installs (flows/, tasks/ and
# plugins/ inside unitrain/): an editable install maps them with an import hook
# neither can see.
LAYOUT := build/layout

layout: setup
	rm -rf build  # setuptools keeps its own copy in build/lib too
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --target $(LAYOUT) .

# ruff, then the import contracts in pyproject.toml (the layers, no cycles).
lint: layout
	$(BIN)/ruff check unitrain flows tasks plugins tests bench docs
	cd $(LAYOUT) && ../../$(BIN)/lint-imports --no-cache ../../pyproject.toml

typecheck: layout
	cd $(LAYOUT) && ../../$(BIN)/mypy --config-file ../../pyproject.toml

test: setup lint typecheck
	$(BIN)/pytest -q -m "not slow"

unit: setup
	$(BIN)/pytest -q tests/unit

e2e: setup
	$(BIN)/pytest -q -m "not slow" tests/e2e

# Real faults (signals, killed processes, a held lock, a stopped MLflow server, a lost
# Ray node); slower, so a target of its own, which CI runs too. Prints the fault matrix.
faults: setup
	$(BIN)/pytest -q -n 0 tests/faults

# The production stack, owned by the test, on loopback: PostgreSQL (run as the postgres
# user), a Prefect server on it, an MLflow tracking server with proxied artifacts, and a
# two-node Ray cluster from `ray start`; jobs reach them by the README's variables only.
production: setup
	$(BIN)/pytest -q -n 0 tests/production

# What `make test` leaves out for its time (tests marked slow): the served stack's
# deployments (each flow run a process of its own), a second Ray node, the seed
# examples that train or search for minutes, the secrets audit, the README's pictures;
# then ten times as many generated jobs for the fuzz test (the same ones every run, so
# that a failure is reproduced by running it again), the faults, and the production
# stack. CI runs it after `make test`.
slow: setup
	$(BIN)/pytest -q -m slow tests/e2e
	FUZZ_EXAMPLES=20000 $(BIN)/pytest -q -n 0 --hypothesis-seed=0 tests/unit/test_fuzz_jobs.py
	$(BIN)/pytest -q -n 0 tests/faults
	$(BIN)/pytest -q -n 0 tests/production

bench: setup
	$(BIN)/python bench/tune_overhead.py

# The README's pictures, retaken from a served stack (needs Chromium: apt-get install chromium).
screenshots: setup
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
