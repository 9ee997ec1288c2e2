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

.PHONY: venv bench test test-export lint format models bench-overhead bench-calculator bench-loadgen bench-links clean
.PHONY: test-campaign bench-campaign

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[all,dev]'
	touch $(STAMP)

# The main job: the suite on the local backends (fp32, and int8 against it with accuracy),
# batched throughput, the same model through the HTTP backend against the reference server on
# loopback (a local stand-in for a cloud endpoint, flagged so in its reports), plain and under
# a mobile link profile, a split of the model across that link (head here, tail on the
# stand-in) and a hybrid router over it (its measured offload rate is the cost's hybrid
# share), the cost calculator on the default profiles, and one self-contained HTML report.
BENCH_DIR := $(RESULTS)/bench-$(shell date -u +%Y%m%dT%H%M%SZ)
BENCH_MODELS := -m tabular-mlp -m digits-cnn -m ds-cnn-kws
# --proxy-host: this machine's runs are costed as a Pi 5, and every figure says so; the
# executive summary opens with "illustrative" (the endpoint is a loopback stand-in too)
COST_ARGS := -m digits-cnn --device rpi5 --proxy-host --cloud gpu-t4-ondemand \
	--cloud cpu-c6i-xlarge --workload camera-analytics

# Compared cells run as groups of short interleaved runs (README: "Repeated runs"): 5 runs of
# 1 s each, of fixed length so that the rounds stay aligned, instead of one 10 s run; the A/A
# step runs one configuration as two interleaved groups and compares them (no verdict is due)
BENCH_REPEAT := --repeat 5 --min-duration 1 --warmup-duration 0.3 --stop fixed
# single runs converge (the default stop) in 1 s windows after 5 s, within a 30 s cap, after a
# warm-up that lasts until its windows agree (README: "When a run stops")
BENCH_STOP := --min-duration 5 --max-duration 30 --warmup-until-steady

bench: venv
	$(TP) run $(BENCH_MODELS) -b onnxruntime -b litert -s single-stream --variant fp32 \
		--accuracy $(BENCH_REPEAT) --out $(BENCH_DIR)
	$(TP) run -m digits-cnn -b onnxruntime -b litert -s single-stream --variant int8 \
		--accuracy $(BENCH_REPEAT) --out $(BENCH_DIR)
	$(TP) run -m digits-cnn -b onnxruntime -s offline --batch-sizes 1,8,32 $(BENCH_STOP) \
		--out $(BENCH_DIR)
	$(TP) run -m digits-cnn --endpoint local -s single-stream -s server --rate 200 \
		--latency-bound 25 --min-duration 2 --min-queries 300 --max-duration 30 \
		--warmup-until-steady --out $(BENCH_DIR)
	$(TP) run -m digits-cnn --endpoint local --network lighthouse-mobile-slow-4g -s single-stream \
		--min-queries 20 --min-duration 2 --stop fixed --out $(BENCH_DIR)/mobile-slow-4g
	$(TP) run -m digits-cnn --split /head/head.1/Gemm_output_0 --network lighthouse-mobile-slow-4g \
		-s single-stream --stop fixed --min-queries 20 --min-duration 3 --max-duration 10 \
		--warmup-queries 3 --warmup-duration 0 --split-queries 5 --idle-s 0 \
		--out $(BENCH_DIR)
	$(TP) run -m digits-cnn -b hybrid --endpoint local --network lighthouse-mobile-slow-4g \
		-s single-stream --opt policy=network-aware --opt rtt_max_ms=200 --opt fallback=true \
		--opt slo_ms=250 --min-queries 20 --min-duration 2 --stop fixed --out $(BENCH_DIR)
	$(TP) run -m digits-cnn -b onnxruntime -b onnxruntime -s single-stream $(BENCH_REPEAT) \
		--out $(BENCH_DIR)/aa
	$(TP) compare $(BENCH_DIR)/aa
	$(TP) cost --reports $(BENCH_DIR) $(COST_ARGS) --brief --out $(BENCH_DIR)/cost.json
	$(TP) report $(BENCH_DIR) --cost $(BENCH_DIR)/cost.json --out $(BENCH_DIR)/report.html
	@echo "HTML report: $(BENCH_DIR)/report.html"

# lint (ruff, ruff format, mypy --strict over tippingpoint/) gates the tests
test: lint
	$(PY) -m pytest -q -m "not interop" || { rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc; }

# interop with independent servers from PyPI (the dev extra): Seldon's MLServer serving a suite
# model over KServe v2 REST and gRPC on loopback; slow to start, so not in make test (CI runs it)
.PHONY: test-interop probe
test-interop: venv
	$(PY) -m pytest -q -p no:cacheprovider -m interop tests/test_interop_mlserver.py

# interop with an independent streaming client: NVIDIA's AIPerf (PyPI) against `tippingpoint
# serve --llm-stub` on loopback agrees with tippingpoint's client on TTFT and output tokens/s
# within 5%. AIPerf lives in its own venv so that its pins cannot move .venv's; about 2 minutes
AIPERF_VENV := .venv-aiperf
AIPERF_STAMP := $(AIPERF_VENV)/.installed
AIPERF_PIN := aiperf==0.13.0

$(AIPERF_STAMP): Makefile
	test -x $(AIPERF_VENV)/bin/python || $(PYTHON) -m venv $(AIPERF_VENV)
	$(AIPERF_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIPERF_VENV)/bin/python -m pip install -q $(AIPERF_PIN)
	touch $(AIPERF_STAMP)

.PHONY: test-aiperf
test-aiperf: venv $(AIPERF_STAMP)
	TIPPINGPOINT_AIPERF=$(CURDIR)/$(AIPERF_VENV)/bin/aiperf $(PY) -m pytest -q -rs \
		-p no:cacheprovider -m interop tests/test_interop_aiperf.py

# llama.cpp in process (the llama-cpp backend): PyPI has only the source of llama-cpp-python,
# so this compiles llama.cpp (CPU only, no tests, examples or tools: 22 minutes on the shared
# 2-core VM at nice 19, 21 CPU-minutes; once, the venv keeps it) into its own .venv-llamacpp,
# with the project, the llamacpp and genai extras (onnxruntime-genai is what it is compared
# with) and llama-cpp-python's own OpenAI-compatible server (its [server] extra, which
# tippingpoint's streaming client is pointed at on loopback); then it converts tiny-llm to
# GGUF (build/llm/) and runs tests/test_llamacpp.py, where nothing skips. GGML_NATIVE=OFF: a
# portable build, not tuned to this CPU; set LLAMACPP_CMAKE_ARGS to measure a native one.
# Not in .ci/run: the build alone is longer than a CI step's 15-minute budget here.
LLAMACPP_VENV := .venv-llamacpp
LLAMACPP_PY := $(LLAMACPP_VENV)/bin/python
LLAMACPP_STAMP := $(LLAMACPP_VENV)/.installed
LLAMACPP_PIN := llama-cpp-python==0.3.36
LLAMACPP_SERVER_PIN := llama-cpp-python[server]==0.3.36
LLAMACPP_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
	-DLLAMA_BUILD_SERVER=OFF

$(LLAMACPP_STAMP): pyproject.toml Makefile
	test -x $(LLAMACPP_PY) || $(PYTHON) -m venv $(LLAMACPP_VENV)
	$(LLAMACPP_PY) -m pip install -q --upgrade pip
	CMAKE_ARGS="$(LLAMACPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(LLAMACPP_PY) -m pip install -q '$(LLAMACPP_PIN)'
	$(LLAMACPP_PY) -m pip install -q -e '.[llamacpp,genai,http]' \
		'$(LLAMACPP_SERVER_PIN)' pytest
	touch $(LLAMACPP_STAMP)

.PHONY: test-llamacpp
test-llamacpp: $(LLAMACPP_STAMP)
	$(LLAMACPP_PY) -m tippingpoint.models.gguf_export
	$(LLAMACPP_PY) -m pytest -q -rs -p no:cacheprovider tests/test_llamacpp.py

# the probe's categories (CLI misuse, reports, interrupts, server abuse, endpoint faults,
# secrets) replayed as tests; prints tried / passed per category
PROBE_TESTS := tests/test_probe_cli.py tests/test_http_overload.py tests/test_http_faults.py \
	tests/test_http_remote.py tests/test_http_secrets.py tests/test_probe_server.py
probe: venv
	$(PY) -m pytest -q -p no:cacheprovider -p tests.probe_tally -m "not interop" $(PROBE_TESTS)

lint: venv
	$(VENV)/bin/ruff check tippingpoint tests
	$(VENV)/bin/ruff format --check tippingpoint tests
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format tippingpoint tests
	$(VENV)/bin/ruff check --fix tippingpoint tests

# The exporters (litert-torch, ai-edge-quantizer) live in their own venv: see pyproject's
# `export` extra for why; it also builds the generative suite (tiny-llm, models/llm_build.py,
# offline: transformers, tokenizers, onnxruntime-genai's model builder). SUITE=full also
# builds resnet50 and mobilenetv2-100-224 (not committed).
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
	$(EXPORT_PY) -m tippingpoint.models.llm_build

# the LiteRT export round trip needs litert-torch, which lives in .venv-export (see pyproject)
test-export: $(EXPORT_STAMP)
	$(EXPORT_PY) -m pip install -q pytest
	$(EXPORT_PY) -m pytest -q -p no:cacheprovider -p no:anyio tests/test_models_export.py \
		tests/test_models_llm_build.py

bench-overhead: venv
	$(PY) -m tippingpoint.harness.overhead

bench-calculator: venv
	$(PY) -m tippingpoint.calculator.bench

# campaigns: a real Ray cluster of several nodes on this machine, inside a network namespace
# (unshare -n, loopback only; needs root), about two minutes on 2 cores
test-campaign: venv
	TIPPINGPOINT_CLUSTER_TESTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_campaign_cluster.py || { rc=$$?; if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc; }

# per-cell scheduling overhead (target < 1 s) and each node's wall time against its cells'
bench-campaign: venv
	$(PY) -m tippingpoint.campaign.bench

# nginx and wrk come from Debian's packages (apt-get install -y nginx wrk; without them the
# benchmark says so in one line); it starts nginx on loopback itself, answering {"ok":true}
bench-loadgen: venv
	$(PY) -m tippingpoint.harness.loadgen_bench

# the network shaper: the user-space proxy's added p50 at a zero-delay profile (target 50 us),
# the open loop at 2,000 requests/s through it, and a 50 ms profile's accuracy, as ratios
bench-links: venv
	$(PY) -m tippingpoint.harness.links.bench

# the OpenAI streaming client against `tippingpoint serve --llm-stub` on loopback: streams held
# at once (target >= 500), what it adds to each chunk's timestamp and its parse cost per chunk
# (target <= 50 us), printed with PASS/FAIL; about a minute
.PHONY: bench-streams
bench-streams: venv
	$(PY) -m tippingpoint.server.openai_bench

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(AIPERF_VENV) $(LLAMACPP_VENV) $(RESULTS) .pytest_cache .ruff_cache

# emulated arm64 Debian (Raspberry Pi OS-like): install with [litert,onnx,genai] only, bench, check
# accuracy against the manifest, run the suite LLM once on onnxruntime-genai (.ci/arm_genai.py);
# needs root and ../shared/tools/arm64-env; about 5 minutes, plus 3 the first time to build the
# root filesystem
.PHONY: arm-check
arm-check:
	.ci/arm-check
