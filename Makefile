PYTHON ?= python3
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test lint perf

install:
	$(PYTHON) -m pip install -e ".[test]"

test:
	$(PYTHON) -m pytest -q tests

lint:
	$(PYTHON) -m ruff check --line-length 120 --select E,F,W,I,UP idgi_tf tests benchmarks

perf:
	$(PYTHON) benchmarks/perf_integrators.py
