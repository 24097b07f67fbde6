# Two commands do all set-up: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.golive-installed

export DO_NOT_TRACK = 1
export PREFECT_SERVER_ANALYTICS_ENABLED = false
export GX_ANALYTICS_ENABLED = false

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make demo: venv + install, then build a sample app and migrate it into an embedded PostgreSQL
demo: $(STAMP)
	$(BIN)/golive demo

## make test: venv + install, then the whole test suite against the machine's PostgreSQL/MariaDB
## (two pytest-xdist workers: most tests wait on servers and subprocesses; TEST_WORKERS=0 runs them in one process)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

## make bench: throughput benchmark (see README "Benchmarks")
bench: $(STAMP)
	$(BIN)/python bench/migrate_bench.py $(BENCH_ARGS)

clean:
	-[ -d demo/pgdata ] && [ -x $(BIN)/golive ] && $(BIN)/golive embedded stop demo/pgdata
	rm -rf $(VENV) demo golive-runs .pytest_cache
