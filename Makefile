# Two commands on a fresh machine with only python3: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/recon: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/recon
	$(BIN)/recon demo

test: $(BIN)/recon
	$(BIN)/python -m pytest -q

lint: $(BIN)/recon
	$(BIN)/ruff check flows schemas tests bench
	$(BIN)/ruff format --check flows schemas tests bench
	$(BIN)/sqlfluff lint sql

bench: $(BIN)/recon
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_compare.py
	$(BIN)/python bench/bench_scaleout.py

clean:
	rm -rf $(VENV) warehouse/demo
