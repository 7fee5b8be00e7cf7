# The two commands README.md promises. Each bootstraps .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test lint bench soak clean

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/calsync serve

test: $(STAMP)
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/python -m bench.harness

# Long reliability runs (docs/reliability.md): >= 50 SIGKILLs incl. every crash point, then 20% provider faults.
soak: $(STAMP)
	$(VENV)/bin/python -m bench.soak
	$(VENV)/bin/python -m bench.faults
	CALSYNC_TEST_REDIS_DOWN_SECONDS=30 CALSYNC_TEST_PG_DOWN_SECONDS=15 $(VENV)/bin/pytest -q -s tests/e2e/test_dependency_outage.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
