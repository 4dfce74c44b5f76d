# Two commands on a fresh machine:  `make demo`  and  `make test`.  Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1

.PHONY: setup browser demo scaleout-demo test lint bench bench-reliability bench-locomo bench-prefeval bench-recall \
	bench-peers bench-server clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch 2.13.0 first: that exact version is the local CPU build; any other request pulls CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[local,dev,server,postgres,langchain,langchain-classic,llamaindex]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/python examples/quickstart.py

# A throwaway PostgreSQL cluster, a Chroma server and two memory servers: write through one, read through the other.
scaleout-demo: setup
	$(BIN)/python scripts/scaleout_demo.py

# The console's browser tests drive Debian's Chromium through its chromium-driver (CI runs as root on Debian);
# no test tool downloads a browser of its own.
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver)

test: setup browser
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

bench-server: setup
	$(BIN)/python benchmarks/server.py

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
