# Two commands on a fresh machine:  `make run` (set up + main job)  and  `make test` (set up + tests).
VENV ?= .venv
HARNESS := $(VENV)/bin/harness
PYTEST := $(VENV)/bin/pytest

.PHONY: setup run test test-fast bench bench-compare

setup:
	bash scripts/setup.sh

run: setup
	$(HARNESS) run

test: setup
	$(PYTEST) -q -n auto --maxprocesses 4

test-fast: setup
	$(PYTEST) -q -n auto --maxprocesses 4 -m "not mpi and not slow"

# Hot-path regression timing (see docs/regression.md): save a baseline, then compare against it.
bench: setup
	$(PYTEST) tests/performance --benchmark-enable --benchmark-autosave -p no:randomly

bench-compare: setup
	$(PYTEST) tests/performance --benchmark-enable --benchmark-compare --benchmark-compare-fail=median:25%
