# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when
# missing and installs the project with what it needs, at the versions requirements.lock
# pins (pyproject.toml keeps ranges; the lock is used as pip constraints).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-stamp
LOCK := requirements.lock
UV_VERSION := 0.13.8
# `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest release pyproject allows.
LOCK_FLAGS ?=

.PHONY: demo test lint format bench run clean lock

$(INSTALLED): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e '.[dev,demo]'
	@touch $(INSTALLED)

# Pin what pyproject.toml asks for (runtime, the dev and demo extras), for every platform and
# Python >= 3.11. Pins pyproject still allows are kept; new or changed ranges are resolved.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra demo --universal \
		--python-version 3.11 --custom-compile-command 'make lock' --quiet $(LOCK_FLAGS) \
		--output-file $(LOCK)

demo: $(INSTALLED)
	$(BIN)/emberwatch demo

test: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
