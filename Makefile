# neurolearn — developer and user entry points.
# torch is installed first from a pinned spec: an open range lets pip pull a CUDA build of several GB.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo
DEMO_PARTICIPANTS ?= 8
PYTEST_ARGS ?=

.PHONY: install demo test bench completions lint clean

install:
	$(PYTHON) -m pip install --quiet "$(TORCH_SPEC)"
	$(PYTHON) -m pip install --quiet -e ".[test]"

demo: install
	rm -rf $(DEMO_DIR)
	neurolearn example-data $(DEMO_DIR)/bids --participants $(DEMO_PARTICIPANTS) --seed 0
	neurolearn $(DEMO_DIR)/bids $(DEMO_DIR)/derivatives participant --dry-run
	@echo "example dataset: $(DEMO_DIR)/bids"

test: install
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: install
	$(PYTHON) benchmarks/engine.py

completions: install
	$(PYTHON) -m neurolearn_cli.completions completions

lint: install
	$(PYTHON) -m ruff check neurolearn_cli tests benchmarks
	$(PYTHON) -m pytest -q tests/test_containers.py

clean:
	rm -rf $(DEMO_DIR) build *.egg-info .pytest_cache
