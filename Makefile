# The two commands of the README: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
REPORT ?= pgready-report
# CI runs the heavy drills with fewer trials; `make demo` and `make bench` run them at full strength.
# Two xdist workers: most of a test's time is spent waiting on servers, so 2 cores carry two streams
# (every cluster has its own ports and run dir; timing-sensitive checks calibrate against the machine).
PYTEST_ARGS ?= -n 2 --durations=25

.PHONY: all setup system demo test test-unit test-integration bench flakes clean

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
	$(BIN)/python -m pytest tests/unit -n 2

bench: setup system
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

flakes: setup system
	$(BIN)/python scripts/flakes.py --runs 5

clean:
	rm -rf $(REPORT) pgready-flakes .pytest_cache build dist *.egg-info
