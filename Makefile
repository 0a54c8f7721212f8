PYTHON ?= python3
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test lint perf bench

install:
	$(PYTHON) -m pip install -e ".[test]"

test:
	$(PYTHON) -m pytest -q tests

lint:
	$(PYTHON) -m ruff check --line-length 120 --select E,F,W,I,UP idgi_tf tests benchmarks examples

perf:
	$(PYTHON) benchmarks/perf_integrators.py
	$(PYTHON) benchmarks/perf_metrics.py
	$(PYTHON) benchmarks/perf_methods.py

# The README's main command: the paper's tables for ResNet50V2 on the sample photos
# (needs the ImageNet weights in the Keras cache; see README).
bench:
	$(PYTHON) -m idgi_tf.bench --model ResNet50V2
