# rcetl — common tasks. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(BIN)/pip
# Parallel test workers: the machines have 2 cores; tests are mostly I/O-bound.
WORKERS ?= 4

.PHONY: help install install-test install-bench mutate demo test test-spark test-fast typecheck lint format bench bench-quick services clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s '	'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/activate
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py | $(BIN)/activate
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps --no-build-isolation -e examples/rcetl-parquet-sink 2>/dev/null || true
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed  ## create .venv and install rcetl (embedded defaults only)

install-test: $(VENV)/.installed-test  ## install rcetl with every integration and the test tools

$(VENV)/.installed-bench: pyproject.toml setup.py $(VENV)/.installed-test
	$(PIP) install --quiet -e '.[bench]'
	touch $@

install-bench: $(VENV)/.installed-bench  ## install-test plus what the benchmarks compare with (dlt)

demo: install  ## archive the embedded RingCentral sandbox into SQLite + a local folder
	$(BIN)/rcetl run pipelines/demo.yaml
	@echo
	@echo "The archive is in pipelines/demo-archive/: archive.db (SQLite: sqlite3 pipelines/demo-archive/archive.db) and files/ (recordings, faxes, voicemail, MMS)."
	@echo "Run report: pipelines/demo-archive/reports/latest.html; state: rcetl state show pipelines/demo.yaml"
	@echo "Find, hear and read it: $(BIN)/rcetl browse pipelines/demo.yaml   (then open http://127.0.0.1:8765/)"

test: install-test  ## run the whole test suite (starts nothing: see .ci/run for services)
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup --timeout 600 -q -m "not timing"
	@# wall-clock bounds are measured on a machine the rest of the suite is not loading
	$(BIN)/pytest --timeout 600 -q -m timing

SPARK_VENV ?= .venv-spark

$(SPARK_VENV)/.installed:
	$(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install --quiet "pyspark>=4,<5"
	touch $@

test-spark: install-test $(SPARK_VENV)/.installed  ## Spark reads the lake sink's dataset (pyspark ~690 MB in its own venv, kept)
	RCETL_TEST_SPARK=1 RCETL_SPARK_PYTHON=$(SPARK_VENV)/bin/python $(BIN)/pytest -q -p no:cacheprovider tests/sinks_lake/test_spark.py

test-fast:  install-test ## the suite without integration tests against external services
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup -q -m "not integration"

# mypy finds modules by import name; rcetl's folders are mapped to import names by setuptools'
# package-dir, which mypy does not read, so it checks a tree of links named like the packages.
TYPECHECK := build/typecheck
typecheck: install-test  ## mypy: strict on rcetl's public API, default on plugins/ and sandbox/
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/rcetl
	for f in core/*; do ln -s "$(CURDIR)/$$f" $(TYPECHECK)/rcetl/; done
	ln -s "$(CURDIR)/plugins" $(TYPECHECK)/rcetl/plugins
	ln -s "$(CURDIR)/sandbox" $(TYPECHECK)/rcetl/sandbox
	cd $(TYPECHECK) && MYPYPATH=. $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p rcetl

lint: install-test  ## ruff
	$(BIN)/ruff check .

format: install-test
	$(BIN)/ruff format core plugins sandbox tests bench

bench: install-bench  ## the full benchmark suite (about 40 minutes); writes bench/results/ (tracked)
	$(PY) -m bench.run --full

bench-quick: install-bench  ## a few minutes of ratios (CI): missed targets printed, a regression fails it; writes bench/results/tmp/
	$(PY) -m bench.run --quick

mutate: install-test  ## break the core invariants on purpose (in a temp copy) and check a test fails for each
	$(PY) -m tests.mutation.run

services:  ## start PostgreSQL, MariaDB, Redis, RabbitMQ, pouchdb-server (CouchDB) if they are down (root, no systemd)
	bash .ci/services.sh

clean:
	rm -rf build dist *.egg-info pipelines/demo-archive pipelines/.rcetl .pytest_cache
