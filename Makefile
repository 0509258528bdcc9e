# Two commands on a fresh machine with python3: `make demo` and `make test`.
# Each one creates or refreshes .venv and installs what it needs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test lint typecheck unit bench services clean

# The virtualenv is rebuilt when pyproject.toml changes (the stamp is older).
$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.runtime: $(BIN)/activate pyproject.toml
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/activate pyproject.toml
	$(PY) -m pip install -q -e '.[dev,postgres,redis,notebook]'
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(PY) -m examples.research_team
	@echo
	$(PY) -m examples.research_pipeline
	@echo
	$(PY) -m examples.checkpoint_failover
	@echo
	$(PY) -m examples.multi_agent

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Postgres and Redis for the store tests: scripts/services.sh installs them from the
# OS packages when missing (as root), starts them on loopback and prints their URLs.
unit: $(VENV)/.dev
	@set -e; \
	if out="$$(bash scripts/services.sh)"; then eval "$$out"; export LGR_PG_URI LGR_REDIS_URL; \
	elif [ "$$CI" = "true" ]; then echo "services failed to start (CI=true: this is an error)"; exit 1; \
	else echo "warning: Postgres/Redis not available; their tests will be skipped"; fi; \
	$(PY) -m pytest

test: lint typecheck unit

bench: $(VENV)/.dev
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .services
