# The two quickstart commands: `make demo` (the main job) and `make test`. Both install first.
PYTHON ?= python3
DEMO_STEPS ?= 25000
DEMO_OUT ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: install demo test lint

install: .install-stamp
.install-stamp: pyproject.toml
	$(PYTHON) -m pip install --quiet -e ".[dev,ray]"
	touch .install-stamp

demo: install
	$(PYTHON) tools/demo.py --steps $(DEMO_STEPS) --out $(DEMO_OUT)

test: install
	$(PYTHON) -m pytest -q --durations=15

lint: install
	$(PYTHON) -m ruff check .
