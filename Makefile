# Two commands on a fresh machine: `make demo` (the main job on bundled real data) and
# `make test`. Both create and reuse a local virtual environment in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUT ?= results/demo

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/streamgrad lob --out $(OUT) --force
	@echo "Demo results are in $(OUT)/ (open $(OUT)/report.html)"

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache .hypothesis
