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

# full size (~1 hour on 2 cores); QUICK=1 for a smoke run of a few minutes
bench: $(BIN)/recon
	for b in startup ingest night reconcile scaleout; do $(BIN)/python -m bench.$$b $(if $(QUICK),--quick) || exit 1; done

clean:
	rm -rf $(VENV) warehouse/demo
