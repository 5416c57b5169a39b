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

# One pytest worker per core (pytest-xdist): the tests are independent, most of them on one core each.
test: install
	$(PYTHON) -m pytest -q -n auto --durations=15

lint: install
	$(PYTHON) -m ruff check .
