# tippingpoint: `make bench` runs the default suite, `make test` runs the tests.
# Both create and use .venv; torch is pinned first so pip takes the CPU build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TP := $(VENV)/bin/tippingpoint
STAMP := $(VENV)/.installed
TORCH_PIN := torch==2.13.0
RESULTS ?= results

.PHONY: venv bench test lint format models bench-overhead clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[all,dev]'
	touch $(STAMP)

bench: venv
	$(TP) run --out $(RESULTS)

test: venv
	$(VENV)/bin/ruff check tippingpoint tests
	$(VENV)/bin/ruff format --check tippingpoint tests
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check tippingpoint tests
	$(VENV)/bin/ruff format --check tippingpoint tests

format: venv
	$(VENV)/bin/ruff format tippingpoint tests
	$(VENV)/bin/ruff check --fix tippingpoint tests

models: venv
	$(PY) -m tippingpoint.models.builtin_build

bench-overhead: venv
	$(PY) -m tippingpoint.harness.overhead

clean:
	rm -rf $(VENV) $(RESULTS) .pytest_cache .ruff_cache
