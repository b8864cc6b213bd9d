# Fold: `make run` serves the demo, `make test` runs every check. Both install first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR := $(or $(FOLD_DATA_DIR),var)

.PHONY: install run test lint typecheck unit clean

install: $(STAMP)

# What running needs; `make run` installs only this.
$(RUN_STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(RUN_STAMP)

# Everything: running, and the test and lint tools.
$(STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/fold migrate
	$(BIN)/fold demo --bucket demo --if-empty
	@echo "Admin key for bucket 'demo' (kept in $(DATA_DIR)/make-run.key; 'fold keys list' lists keys):"
	@$(BIN)/fold keys create --bucket demo --policy admin --name "make run" --save $(DATA_DIR)/make-run.key | tail -n 1
	$(BIN)/fold serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check fold tests
	$(BIN)/ruff format --check fold tests

typecheck: install
	$(BIN)/mypy fold

unit: install
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
