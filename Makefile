# Everything runs from a virtual environment this Makefile creates; only Python 3.11+ is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install run test bench asyncapi clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/loupe up $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

bench: install
	$(BIN)/python -m bench.gateway --quick

asyncapi: install
	$(BIN)/loupe asyncapi --out docs/asyncapi.json

clean:
	rm -rf $(VENV) .pytest_cache
