# Everything runs from a virtual environment this Makefile creates; only Python 3.11+ is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
LINTED := proto shared services

.PHONY: install run lint test bench asyncapi clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/loupe up $(ARGS)

# Lint, format and types of the code that ships (settings in pyproject.toml), then every test.
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(ARGS)

bench: install
	$(BIN)/python -m bench.gateway --quick

asyncapi: install
	$(BIN)/loupe asyncapi --out docs/asyncapi.json

clean:
	rm -rf $(VENV) .pytest_cache
