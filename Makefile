# ichbook: `make test` and `make book` set everything up themselves on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STUDIES ?= 40
SEED ?= 0
MATRIX ?= 512
PROFILE ?= cpu

.PHONY: setup test book lab kernel app cohort bench clean

setup: $(VENV)/.installed

# PyTorch's CPU build comes from its own index: PyPI's Linux wheel is the CUDA build, with gigabytes of GPU
# libraries a CPU machine never uses. Only torch is looked up there (few retries: a machine that cannot reach
# it falls back to the other indexes quickly); everything else comes from PyPI.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH := $(shell sed -n 's/^ *"\(torch==[^"]*\)",/\1/p' pyproject.toml)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --retries 1 --extra-index-url $(TORCH_INDEX) '$(TORCH)'
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: setup
	$(PY) -m pytest

# The whole book: the cohort, every chapter executed by papermill on $(PROFILE), then jupyter-book build -W.
book: setup
	$(PY) -m ichlib book --profile $(PROFILE)

kernel: setup
	$(PY) -m ichlib kernel

# JupyterLab on the chapter sources, with the project's kernel (outputs are not committed: clear them before saving).
# As root (a container, a cloud notebook) JupyterLab refuses to start without --allow-root.
lab: kernel
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

# The reader app on localhost (Streamlit); its own options pass through: make app ARGS="--server.port 8600"
app: setup
	$(PY) -m ichlib app $(ARGS)

# The phantom alone, where the book looks for it (make book makes it too).
cohort: setup
	$(PY) -m ichlib cohort --studies $(STUDIES) --seed $(SEED) --matrix $(MATRIX)

bench: setup
	$(PY) benchmarks/bench_data.py

clean:
	rm -rf _build .pytest_cache book/chapters book/generated
