"""The llama.cpp backend (backends/llamacpp.py) and the suite's tiny-llm as GGUF
(models/gguf_export.py).

llama-cpp-python builds from source, so it is not in ``.venv``: ``make test-llamacpp`` builds
it into ``.venv-llamacpp`` (with the project, the ``llamacpp`` and ``genai`` extras), converts
tiny-llm to GGUF and runs this file, where nothing skips. In ``make test`` only the tests that
need neither llama_cpp nor gguf run (the conversion's rope permutation, the vocabulary, the
install hint); the rest skip, saying so.

The GGUF holds the weights of the committed fp32 ONNX folder, so llama.cpp and
onnxruntime-genai run the same network with different kernels: greedy continuations of the
evaluation set's probes are compared token for token (the reference is the torch model's,
which the fp32 ONNX export reproduces exactly), and perplexity on the held-out windows within
1e-4 relative (measured: 1e-6). llama.cpp keeps its KV cache in fp16 by default, so its logits
differ from onnxruntime-genai's fp32 ones by a few 1e-3; with ``kv_cache=f32`` they agree within
1e-4 (measured 6e-6).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tippingpoint.backends.generative import GenerativeSession, request_timings
from tippingpoint.backends.llamacpp import LlamaCppBackend, LlamaCppSession
from tippingpoint.core import io as report_io
from tippingpoint.core.errors import InvalidShapeError, ModelFileError, ModelLoadError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import Report, StopMode
from tippingpoint.core.token_metrics import e2el_ns, tpot_ns, ttft_ns
from tippingpoint.harness.execute import ExecuteOptions, ExitStatus, execute
from tippingpoint.harness.generative import GenerationSettings
from tippingpoint.harness.matrix import BackendOption, RunRequest, expand
from tippingpoint.models.generative import LLM_DIR, GenerativeVariant, load_generative_manifest
from tippingpoint.models.gguf_export import _permute, vocabulary
from tippingpoint.models.suite.llm import TINY_LLM

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(
    not HAVE_LLAMA, reason="llama_cpp not installed: run make test-llamacpp"
)
FP32 = LLM_DIR / f"{TINY_LLM.name}.fp32"


def rope_half(x: np.ndarray, pos: int, theta: float) -> np.ndarray:
    """transformers' rotary embedding (rotate_half) of one head vector."""
    d = len(x)
    inv = theta ** (-np.arange(0, d, 2) / d)
    ang = np.concatenate([pos * inv, pos * inv])
    rot = np.concatenate([-x[d // 2 :], x[: d // 2]])
    return x * np.cos(ang) + rot * np.sin(ang)


def rope_interleaved(x: np.ndarray, pos: int, theta: float) -> np.ndarray:
    """llama.cpp's rotary embedding for the llama architecture: adjacent pairs."""
    d = len(x)
    inv = theta ** (-np.arange(0, d, 2) / d)
    out = x.copy()
    c, s = np.cos(pos * inv), np.sin(pos * inv)
    out[0::2] = x[0::2] * c - x[1::2] * s
    out[1::2] = x[0::2] * s + x[1::2] * c
    return out


def test_permuted_rows_give_the_same_attention_scores_under_interleaved_rope() -> None:
    # a query and key projection in transformers' layout, permuted as the GGUF stores them:
    # q.k after interleaved rope must equal q.k after rotate-half rope, head by head
    rng = np.random.default_rng(0)
    heads, head, hidden = 4, 16, 64
    wq = rng.standard_normal((heads * head, hidden))
    wk = rng.standard_normal((heads * head, hidden))
    x1, x2 = rng.standard_normal(hidden), rng.standard_normal(hidden)
    pq, pk = _permute(wq, heads), _permute(wk, heads)
    assert sorted(map(tuple, pq)) == sorted(map(tuple, wq))  # rows only reordered
    for h in range(heads):
        rows = slice(h * head, (h + 1) * head)
        hf = rope_half(wq[rows] @ x1, 7, 1e4) @ rope_half(wk[rows] @ x2, 3, 1e4)
        gg = rope_interleaved(pq[rows] @ x1, 7, 1e4) @ rope_interleaved(pk[rows] @ x2, 3, 1e4)
        assert gg == pytest.approx(hf, rel=1e-9)


def test_vocabulary_of_the_suite_tokenizer() -> None:
    tokens, types, merges = vocabulary(FP32 / "tokenizer.json")
    raw = json.loads((FP32 / "tokenizer.json").read_text())
    assert len(tokens) == len(types) == TINY_LLM.architecture.vocab_size
    assert tokens[0] == TINY_LLM.eos_token and types[0] == 3  # control
    assert set(types[1:]) == {1} and len(merges) == len(raw["model"]["merges"])
    assert all(len(m.split(" ")) == 2 for m in merges)


def test_availability_says_how_to_install() -> None:
    avail = LlamaCppBackend().availability()
    assert avail.installed is HAVE_LLAMA
    assert "tippingpoint[llamacpp]" in avail.install_hint
    assert "source" in avail.install_hint and "make test-llamacpp" in avail.install_hint


def test_a_file_that_is_not_gguf_is_refused_before_the_runtime(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no GGUF file"):
        LlamaCppBackend().load(FP32 / "model.onnx", {})
    with pytest.raises(ModelFileError, match="no GGUF file"):
        LlamaCppBackend().load(tmp_path / "missing.gguf", {})


# ---------------------------------------------------------------- with llama_cpp and gguf


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tippingpoint.models.gguf_export import export_gguf

    out = tmp_path_factory.mktemp("gguf")
    record = export_gguf(TINY_LLM, out)
    return out / record.file.file


@pytest.fixture(scope="module")
def session(gguf_file: Path) -> Iterator[LlamaCppSession]:
    with LlamaCppBackend().load(gguf_file, {"threads": 1}) as s:
        yield s


@needs_llama
def test_export_is_deterministic_and_recorded(gguf_file: Path, tmp_path: Path) -> None:
    from tippingpoint.models.gguf_export import export_gguf
    from tippingpoint.models.manifest import sha256_file

    again = export_gguf(TINY_LLM, tmp_path)
    assert (tmp_path / again.file.file).read_bytes() == gguf_file.read_bytes()
    assert again.file.sha256 == sha256_file(gguf_file)
    stored = json.loads(gguf_file.with_name(gguf_file.name + ".json").read_text())
    assert stored["file"]["sha256"] == again.file.sha256
    art = load_generative_manifest().model(TINY_LLM.name).artifact(GenerativeVariant.FP32)
    assert tuple(again.source) == art.files  # converted from the verified committed folder


@needs_llama
def test_a_corrupt_gguf_is_a_load_error(gguf_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(gguf_file.read_bytes()[:4096])
    with pytest.raises(ModelLoadError, match=r"llama\.cpp could not load"):
        LlamaCppBackend().load(bad, {})


@needs_llama
def test_session_describes_the_model(session: LlamaCppSession) -> None:
    assert isinstance(session, GenerativeSession)
    info = session.generative_info
    a = TINY_LLM.architecture
    assert (info.vocab_size, info.context_length) == (a.vocab_size, a.max_position_embeddings)
    assert info.eos_token_id == 0 and info.model_type == "llama"
    desc = session.describe()
    assert desc.runtime == "llama.cpp" and desc.runtime_version and desc.threads == 1


@needs_llama
def test_tokens_match_the_suite_tokenizer(session: LlamaCppSession) -> None:
    tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is the genai extra")
    tok = tokenizers.Tokenizer.from_file(str(FP32 / "tokenizer.json"))
    from tippingpoint.models.suite.llm import probe_texts

    texts = [*probe_texts(TINY_LLM.seed, 8), "the board's 42 readings, at 3.5 kHz!"]
    for text in texts:
        ids = session.tokenize(text)
        assert list(ids) == tok.encode(text).ids
        assert session.detokenize(ids) == text


@needs_llama
def test_generation_times_every_token(session: LlamaCppSession) -> None:
    gen = session.generate("the sensor reads", 24, decode=True)
    c = gen.completion
    prompt = session.tokenize("the sensor reads")
    assert gen.prompt_tokens == prompt and len(gen.tokens) == 24
    assert c.prompt_tokens_client == c.prompt_tokens_server == len(prompt)
    assert c.output_tokens_client == c.output_tokens_server == c.output_tokens == 24
    assert c.chunk_tokens == (1,) * 24 and len(c.chunk_ns) == 24
    assert c.start_ns < c.chunk_ns[0] and all(np.diff(c.chunk_ns) > 0)
    assert c.end_ns == c.chunk_ns[-1] and c.finish_reason == "length" and c.ok
    assert gen.text is not None and gen.text == session.detokenize(gen.tokens)
    # the metrics module's TTFT and TPOT from this record: positive, and TPOT is the mean gap
    # between token timestamps
    t = request_timings([c])
    ttft = ttft_ns(np.asarray([c.first_token_ns]), np.asarray([c.start_ns]))
    tpot = tpot_ns(e2el_ns(np.asarray([c.end_ns]), np.asarray([c.start_ns])), ttft, [24])
    assert ttft[0] > 0 and tpot[0] > 0
    assert tpot[0] == pytest.approx(float(np.mean(np.diff(c.chunk_ns))), rel=1e-12)
    assert t.output_tokens_server is not None


@needs_llama
def test_end_of_sequence_stops_unless_ignored(session: LlamaCppSession) -> None:
    eos = session.generative_info.eos_token_id
    free = session.generate("the sensor reads", 200, ignore_eos=False)
    if eos in free.tokens:  # the tiny model ends its sentences: the stream stops there
        assert free.tokens[-1] == eos and free.completion.finish_reason == "stop"
        assert free.tokens.index(eos) == len(free.tokens) - 1
    forced = session.generate("the sensor reads", 200)
    assert len(forced.tokens) == 200 and eos not in forced.tokens


@needs_llama
def test_too_long_a_request_is_refused(session: LlamaCppSession) -> None:
    with pytest.raises(InvalidShapeError, match="exceed the model's context of 256"):
        session.generate([1] * 250, 10)
    with pytest.raises(InvalidShapeError, match="prompt is empty"):
        session.generate([], 4)


@needs_llama
def test_greedy_probes_match_onnxruntime_genai_and_torch(session: LlamaCppSession) -> None:
    # the same weights through another runtime: the torch model's greedy continuations (the
    # evaluation set's reference, which the fp32 export reproduces token for token)
    from tippingpoint.models.llm_build import EvalSet

    evals = EvalSet.load(LLM_DIR / f"{TINY_LLM.name}.eval.npz")
    new = evals.reference.shape[1]
    ours = np.asarray([session.generate(p, new).tokens for p in evals.probes()])
    assert np.array_equal(ours, evals.reference)
    og = pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is the genai extra")
    assert og is not None
    from tippingpoint.backends.genai import GenAiBackend

    with GenAiBackend().load(FP32, {"intra_op_threads": 1}) as genai:
        theirs = np.asarray([genai.generate(p, new).tokens for p in evals.probes()])
    assert np.array_equal(ours, theirs)


@needs_llama
def test_perplexity_matches_the_torch_reference(session: LlamaCppSession) -> None:
    from tippingpoint.models.llm_build import EvalSet, perplexity_from_logits

    evals = EvalSet.load(LLM_DIR / f"{TINY_LLM.name}.eval.npz")
    logits = [session.prompt_logits(tuple(int(t) for t in w)) for w in evals.windows]
    assert logits[0].shape == (evals.windows.shape[1], TINY_LLM.architecture.vocab_size)
    ppl = perplexity_from_logits(logits, evals.windows)
    reference = load_generative_manifest().model(TINY_LLM.name).reference_perplexity
    assert ppl == pytest.approx(reference, rel=1e-4)


@needs_llama
def test_logits_match_onnxruntime_genai(gguf_file: Path) -> None:
    pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is the genai extra")
    from tippingpoint.backends.genai import GenAiBackend
    from tippingpoint.models.llm_build import EvalSet

    windows = EvalSet.load(LLM_DIR / f"{TINY_LLM.name}.eval.npz").windows[:4]
    with GenAiBackend().load(FP32, {"intra_op_threads": 1}) as genai:
        theirs = [genai.prompt_logits(tuple(int(t) for t in w)) for w in windows]
    for kv, tolerance in (("f32", 1e-4), ("f16", 0.05)):  # f16: the cache's rounding only
        with LlamaCppBackend().load(gguf_file, {"threads": 1, "kv_cache": kv}) as s:
            ours = [s.prompt_logits(tuple(int(t) for t in w)) for w in windows]
        worst = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))
        assert worst < tolerance, (kv, worst)


def run_one(out: Path, **request: Any) -> Report:
    """One single-stream cell of ``tippingpoint run`` with a fixed stop, executed into
    ``out``: its report (the run must complete)."""
    fixed = RunRequest(
        scenarios=(ScenarioKind.SINGLE_STREAM,),
        stop=StopMode.FIXED,
        min_duration_s=0.2,
        warmup_queries=2,
        warmup_s=0.0,
        idle_s=0.0,
        **request,
    )
    result = execute(expand(fixed), ExecuteOptions(out=out, sigterm_as_interrupt=False))
    assert result.status is ExitStatus.COMPLETE
    (written,) = result.written
    return report_io.read_report(written.path)


@needs_llama
def test_run_measures_the_gguf_like_any_generative_backend(gguf_file: Path, tmp_path: Path) -> None:
    report = run_one(
        tmp_path,
        models=(str(gguf_file),),
        backends=("llama-cpp",),
        options=(),
        generation=GenerationSettings(output_tokens=12),
        min_queries=8,
    )
    assert report.backend is not None and report.backend.name == "llama-cpp"
    assert report.backend.runtime == "llama.cpp" and report.model.sha256
    gen = report.generation
    assert gen is not None
    m = gen.metrics
    assert m.succeeded == m.requests >= 8 and m.output_tokens == 12 * m.succeeded
    assert m.token_counts.difference == 0 and m.token_counts.compared == m.succeeded
    assert m.tokens_per_chunk == 1.0 and not m.multi_token_chunks
    assert m.ttft is not None and m.tpot is not None and m.chunk_gap is not None
    assert m.ttft.p50 > 0 and m.tpot.p50 > 0
    # TPOT is the mean gap between a request's token timestamps: the pooled gaps' mean is
    # the TPOTs' mean (every request has the same number of tokens)
    assert m.chunk_gap.mean == pytest.approx(m.tpot.mean, rel=1e-6)


# ------------------------------------- llama-cpp-python's own OpenAI-compatible server

HAVE_SERVER = HAVE_LLAMA and all(
    importlib.util.find_spec(m) is not None
    for m in ("fastapi", "uvicorn", "sse_starlette", "starlette_context", "aiohttp")
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server(gguf_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` (llama-cpp-python[server], independent of tippingpoint)
    serving the GGUF as ``tiny-llm`` on loopback."""
    import urllib.request

    port = _free_port()
    log = (tmp_path_factory.mktemp("llama-server") / "server.log").open("w")
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file)]
    cmd += ["--model_alias", "tiny-llm", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--n_threads", "1", "--n_ctx", "256"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=1) as r:
                    assert b"tiny-llm" in r.read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llama_cpp.server did not start: see {log.name}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.mark.skipif(
    not HAVE_SERVER,
    reason="llama-cpp-python[server] or aiohttp not installed: run make test-llamacpp",
)
def test_openai_client_against_llama_cpp_python_server(llama_server: str, tmp_path: Path) -> None:
    # the server streams one token per event but reports no usage in a stream (even with
    # stream_options.include_usage) and ignores ignore_eos: the server's count stays unknown,
    # the client counts each chunk with the suite tokenizer, and a stream may stop at
    # end-of-sequence before max_tokens
    report = run_one(
        tmp_path,
        endpoint=f"openai+{llama_server}",
        models=("tiny-llm",),
        options=(
            BackendOption("api", "completions"),
            BackendOption("tokenizer", str(FP32 / "tokenizer.json")),
        ),
        generation=GenerationSettings(output_tokens=16),
        min_queries=10,
    )
    gen = report.generation
    assert gen is not None
    m = gen.metrics
    assert m.succeeded == m.requests >= 10 and not m.failed
    assert m.token_counts.server_total is None and m.token_counts.compared == 0
    assert m.token_counts.client_total == m.output_tokens
    assert m.succeeded <= m.output_tokens <= 16 * m.succeeded
    assert m.tokens_per_chunk == 1.0 and not m.multi_token_chunks
    assert m.ttft is not None and m.ttft.p50 > 0 and m.tpot is not None and m.tpot.p50 > 0
