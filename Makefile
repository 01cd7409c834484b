# Everything runs from a virtual environment this Makefile creates; only Python 3.11+ is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
LINTED := proto shared services

.PHONY: install run lint test test-chaos system-packages bench compat asyncapi clean

# The local stack's pgvector is compiled here for any CPU (loupe/pgvector.py): the wheel's needs AVX-512.
$(VENV)/.installed: pyproject.toml third_party/pgvector/Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m loupe.pgvector
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/loupe up $(ARGS)

# Lint, format and types of the code that ships (settings in pyproject.toml), then every test.
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

test: lint system-packages
	$(BIN)/python -m pytest $(ARGS)

# The chaos suite (tests/chaos/): two replicas of each service under load, SIGKILLs and restarts of NATS, Postgres
# and S3, then a check that nothing accepted was lost or done twice; it prints its report. CHAOS=quick is the short
# form (about 45 s of load); full (the default) runs 3 minutes of load. CHAOS_SEED=n replays a run's victims.
CHAOS ?= full
test-chaos: install
	CHAOS_PROFILE=$(CHAOS) $(BIN)/python -m pytest -s tests/chaos $(ARGS)

# What the tests need from Debian besides Python: Chromium for the console's browser tests (Playwright's own
# download is not used) and Mosquitto, the MQTT broker the pipeline tests publish to. Installed with apt when
# missing, through sudo unless already root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-packages:
	@missing="$$(command -v chromium >/dev/null || echo chromium) $$(command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || echo mosquitto)"; \
	if [ -n "$$(echo $$missing)" ]; then $(SUDO) apt-get update && $(SUDO) apt-get install -y $$missing; fi

# The real Segments.ai and Hasty SDKs (tests/compat/sdk.py) against a stack `make run` started with the
# default data folder and ports.
GATEWAY ?= http://127.0.0.1:7400
SEGMENTS ?= http://127.0.0.1:7420
KEY ?= $(shell cat .loupe/admin-key 2>/dev/null)
compat: install
	$(BIN)/python -m tests.compat.sdk --gateway $(GATEWAY) --segments $(SEGMENTS) --key $(KEY)

bench: install
	$(BIN)/python -m bench.gateway --quick

asyncapi: install
	$(BIN)/loupe asyncapi --out docs/asyncapi.json

clean:
	rm -rf $(VENV) .pytest_cache
