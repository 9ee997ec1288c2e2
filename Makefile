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

.PHONY: venv bench test lint format models bench-overhead bench-calculator bench-loadgen clean

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

# The exporters (litert-torch, ai-edge-quantizer) live in their own venv: see pyproject's
# `export` extra for why. SUITE=full also builds resnet50 and mobilenetv2-100-224 (not committed).
EXPORT_VENV := .venv-export
EXPORT_PY := $(EXPORT_VENV)/bin/python
EXPORT_STAMP := $(EXPORT_VENV)/.installed
SUITE ?= core

$(EXPORT_STAMP): pyproject.toml
	test -x $(EXPORT_PY) || $(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_PY) -m pip install -q --upgrade pip
	$(EXPORT_PY) -m pip install -q $(TORCH_PIN)
	$(EXPORT_PY) -m pip install -q -e '.[export]'
	touch $(EXPORT_STAMP)

models: venv $(EXPORT_STAMP)
	$(PY) -m tippingpoint.models.builtin_build
	$(EXPORT_PY) -m tippingpoint.models.build --suite $(SUITE)

bench-overhead: venv
	$(PY) -m tippingpoint.harness.overhead

bench-calculator: venv
	$(PY) -m tippingpoint.calculator.bench

# nginx and wrk come from Debian's packages; the benchmark starts nginx on loopback itself
bench-loadgen: venv
	@command -v wrk >/dev/null && { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } \
		|| { apt-get update && apt-get install -y nginx wrk; }
	$(PY) -m tippingpoint.harness.loadgen_bench

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(RESULTS) .pytest_cache .ruff_cache

# emulated arm64 Debian (Raspberry Pi OS-like): install with [litert,onnx] only, bench, check
# accuracy against the manifest; needs root and ../shared/tools/arm64-env; about 5 minutes,
# plus 3 the first time to build the root filesystem
.PHONY: arm-check
arm-check:
	.ci/arm-check
