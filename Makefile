PYTHON ?= python3
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test lint perf bench docs

# The development install: the package (editable) with the test and docs extras. A user needs only
# `pip install .` (README, Install).
install:
	$(PYTHON) -m pip install -e ".[test,docs]"

# Two worker processes, each taking whole test files (module fixtures are built once).
test:
	$(PYTHON) -m pytest -q -n 2 --dist loadfile tests

# The documentation site in site/ (git-ignored); --strict: a broken link or anchor, or an API entry that does
# not resolve, fails the build.
docs:
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --site-dir site

lint:
	$(PYTHON) -m ruff check --line-length 120 --select E,F,W,I,UP idgi_tf tests benchmarks examples

perf:
	$(PYTHON) benchmarks/perf_integrators.py
	$(PYTHON) benchmarks/perf_metrics.py
	$(PYTHON) benchmarks/perf_methods.py

# The README's main command: the paper's tables for EfficientNet-Lite0 (trained ImageNet weights that
# install with the package) on the 11 shipped photos, with the paper's protocol.
bench:
	$(PYTHON) -m idgi_tf.bench run --model EfficientNetLite0
