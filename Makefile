# The two commands: `make demo` (the main job, offline) and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch first, pinned to the CPU build this project tests with; TORCH_INDEX=<url> picks another wheel index
# (e.g. PyTorch's CPU-only index on a machine where PyPI's default torch is a multi-GB CUDA build).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=

CODE := src tests benchmarks docs/make_figures.py

.PHONY: demo test lint format bench setup clean browser

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

# The browser tests (the chat page, the run report) drive Debian's chromium with chromedriver. As root with
# apt-get (CI, containers) they are installed once; elsewhere those tests are skipped with a notice.
browser:
	@command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium + chromedriver for the browser tests (apt-get)"; \
	    (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1)) || \
	    echo "could not install chromium: the browser tests will be skipped"; \
	  else echo "no chromedriver: the browser tests will be skipped (apt install chromium chromium-driver)"; fi; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(PY) -m pytest --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)

format: $(STAMP)
	$(VENV)/bin/ruff format $(CODE)

bench: $(STAMP)
	$(PY) -m benchmarks.bench_tokenizer

clean:
	rm -rf $(VENV) build src/*.egg-info src/scratchlm/tokenizer/*.so .pytest_cache .ruff_cache
