# azeros: every target sets itself up on a fresh machine (scripts/setup.sh).
SHELL := /bin/bash
PY    := .venv/bin/python

.DEFAULT_GOAL := help
.PHONY: help setup test demo clean

help:
	@echo "azeros make targets:"
	@echo "  make setup  - system packages (apt, when root), .venv with torch CPU, azeros, test deps, real weights"
	@echo "  make test   - setup, then run the test suite (pytest)"
	@echo "  make demo   - setup, then run the demo (python examples/demo.py)"
	@echo "  make clean  - remove .venv and caches"

setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q --durations=15

demo: setup
	$(PY) examples/demo.py

clean:
	rm -rf .venv .pytest_cache .hypothesis build src/*.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
