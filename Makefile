# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REPORT ?= pgready-report
# CI runs the heavy drills with fewer trials; `make demo` and `make bench` run them at full strength.
PYTEST_ARGS ?=

.PHONY: all setup system demo test test-unit test-integration bench clean

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

system:
	@scripts/install-system.sh $(SYSTEM_ARGS)

demo: setup system
	@scripts/demo.sh $(REPORT)

test: SYSTEM_ARGS=--browser
test: setup system
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: setup system
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(REPORT) .pytest_cache build dist *.egg-info
