# Portail — the README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint unit integration browser interop postgres bench install clean

# `make run` installs what Portail needs to serve, nothing more; `make test` adds the test tools.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e .
	@touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test]'
	@touch $(TEST_STAMP)

install: $(STAMP)

## Start the portal on the embedded default (SQLite under ./var, demo instances, printed admin).
run: $(STAMP)
	$(BIN)/portail serve --host $(HOST) --port $(PORT)

## Install everything the tests need, then lint and run the whole suite (SQLite and PostgreSQL).
test: $(TEST_STAMP)
	@bash scripts/ensure-test-deps.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -p no:cacheprovider --cov=portail --cov-report=term:skip-covered -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check portail tests bench
	$(BIN)/ruff format --check portail tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	@cat bench/README.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
