# Two commands on a fresh machine:  `make demo`  and  `make test`.  Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1

.PHONY: setup demo test lint bench bench-reliability bench-locomo bench-prefeval bench-recall bench-peers clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch 2.13.0 first: that exact version is the local CPU build; any other request pulls CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[local,dev,server,langchain,langchain-classic,llamaindex]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/python examples/quickstart.py

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy adapters/langchain_memory_plugin adapters/llama_index_memory_plugin

bench: setup
	$(BIN)/python benchmarks/engine.py

bench-reliability: setup
	$(BIN)/python benchmarks/reliability.py

bench-locomo: setup
	$(BIN)/python benchmarks/locomo.py --data ../shared/data/locomo

bench-prefeval: setup
	$(BIN)/python benchmarks/prefeval.py --data ../shared/data/prefeval

bench-recall: setup
	$(BIN)/python benchmarks/vector_recall.py --data ../shared/data

# torch is named again so that pip keeps the local CPU build while resolving the peers' dependencies.
$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0 -e ".[bench]"
	touch $@

bench-peers: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/peers.py --data ../shared/data/locomo --prefeval ../shared/data/prefeval

clean:
	rm -rf $(VENV) .memory_plugin .pytest_cache .mypy_cache .ruff_cache
