# ichbook: `make test` and `make book` set everything up themselves on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STUDIES ?= 40
SEED ?= 0

.PHONY: setup test cohort bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: setup
	$(PY) -m pytest

cohort: setup
	$(PY) -m ichlib cohort --out data/phantom --studies $(STUDIES) --seed $(SEED)

bench: setup
	$(PY) benchmarks/bench_data.py

clean:
	rm -rf _build .pytest_cache
