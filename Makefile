# Fold: `make run` serves the demo, `make test` runs every check. Both install first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck unit bench-smoke clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: install
	$(BIN)/fold migrate
	$(BIN)/fold demo --bucket demo --if-empty
	@echo "Admin key for bucket 'demo' (shown once):"
	@$(BIN)/fold keys create --bucket demo --policy admin --name "make run" | tail -n 1
	$(BIN)/fold serve

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
