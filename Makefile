# Fold: `make run` serves the demo, `make test` runs every check. Both install first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
NODE_STAMP := node_modules/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR := $(or $(FOLD_DATA_DIR),var)

.PHONY: install run test lint typecheck unit browser clean

install: $(STAMP) $(NODE_STAMP)

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

# The web interface's third-party files (htmx; axe-core for the tests), pinned in
# package-lock.json and served from node_modules.
$(NODE_STAMP): package.json package-lock.json
	command -v npm >/dev/null || (apt-get update && apt-get install -y --no-install-recommends nodejs npm)
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# The browser tests drive Debian's Chromium; installed only when missing.
browser:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y --no-install-recommends chromium fonts-dejavu-core)

run: $(RUN_STAMP) $(NODE_STAMP)
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

unit: install browser
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) node_modules var .pytest_cache .mypy_cache .ruff_cache
