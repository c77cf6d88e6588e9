# The two commands: `make demo` (the main job, offline) and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch first, pinned to the CPU build this project tests with; TORCH_INDEX=<url> picks another wheel index
# (e.g. PyTorch's CPU-only index on a machine where PyPI's default torch is a multi-GB CUDA build).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: demo test lint format bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || \
		$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/scratchlm demo

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks.bench_tokenizer

clean:
	rm -rf $(VENV) build src/*.egg-info src/scratchlm/tokenizer/*.so .pytest_cache .ruff_cache
