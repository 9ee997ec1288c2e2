"""The generative suite (tiny-llm) on onnxruntime-genai: files, head-to-tail agreement, timing
records, errors.

Head to tail: the fp32 export, run by onnxruntime-genai with its KV cache, reproduces the torch
model's greedy continuations (stored in the eval set at build time, torch recomputing the whole
sequence each step) token for token, and its perplexity within 1e-4. The int4 figures recorded
in the manifest are reproduced exactly (the runtime is deterministic on one thread).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is the genai extra")

from tippingpoint.backends.base import Backend
from tippingpoint.backends.genai import GenAiBackend, GenAiSession
from tippingpoint.backends.generative import GenerativeSession
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import (
    InvalidOptionError,
    InvalidShapeError,
    ModelFileError,
    ModelLoadError,
)
from tippingpoint.models.generative import (
    LLM_DIR,
    GenerativeEntry,
    GenerativeVariant,
    load_generative_manifest,
    resolve_generative,
    verify_artifact,
)
from tippingpoint.models.llm_build import EvalSet, check_budget, measure_variant
from tippingpoint.models.manifest import sha256_file

FP32, INT4 = GenerativeVariant.FP32, GenerativeVariant.INT4


@pytest.fixture(scope="module")
def entry() -> GenerativeEntry:
    return load_generative_manifest().model("tiny-llm")


@pytest.fixture(scope="module")
def evals(entry: GenerativeEntry) -> EvalSet:
    assert sha256_file(LLM_DIR / entry.eval.file) == entry.eval.sha256
    return EvalSet.load(LLM_DIR / entry.eval.file)


def _load(entry: GenerativeEntry, variant: GenerativeVariant) -> GenAiSession:
    config = verify_artifact(entry.artifact(variant))
    return GenAiBackend().load(config, {"intra_op_threads": 1})


@pytest.fixture(scope="module")
def fp32(entry: GenerativeEntry) -> Iterator[GenAiSession]:
    session = _load(entry, FP32)
    yield session
    session.close()


def test_manifest_files_hashes_and_budget(entry: GenerativeEntry) -> None:
    assert {a.variant for a in entry.artifacts} == {FP32, INT4}
    for art in entry.artifacts:
        names = {Path(f.file).name for f in art.files}
        assert {"genai_config.json", "model.onnx", "model.onnx.data", "tokenizer.json"} <= names
        for f in art.files:
            assert (LLM_DIR / f.file).stat().st_size == f.size_bytes
        assert verify_artifact(art) == LLM_DIR / art.folder / "genai_config.json"
    manifest = load_generative_manifest()
    assert manifest.size_bytes < 1 * 2**20  # "a few MB in all": under one
    assert check_budget(manifest) == []  # with the tensor suite, within 25 MiB
    # int4 is the smaller, and a real quantization (not a copy)
    assert entry.artifact(INT4).size_bytes < entry.artifact(FP32).size_bytes / 3
    assert entry.parameters == 131392 and entry.vocab_size == 512


def test_fp32_reproduces_the_torch_model_head_to_tail(
    entry: GenerativeEntry, evals: EvalSet, fp32: GenAiSession
) -> None:
    new = evals.reference.shape[1]
    for prompt, expected in zip(evals.probes(), evals.reference, strict=True):
        assert fp32.generate(prompt, new).tokens == tuple(int(t) for t in expected)
    quality = measure_variant(fp32, evals, entry.reference_perplexity)
    assert quality.relative_perplexity == pytest.approx(1.0, abs=1e-4)
    assert quality.probe_token_agreement == 1.0
    assert quality == entry.artifact(FP32).quality


def test_int4_figures_reproduce_exactly(entry: GenerativeEntry, evals: EvalSet) -> None:
    session = _load(entry, INT4)
    try:
        quality = measure_variant(session, evals, entry.reference_perplexity)
    finally:
        session.close()
    recorded = entry.artifact(INT4).quality
    assert quality.probe_token_agreement == recorded.probe_token_agreement
    assert quality.perplexity == pytest.approx(recorded.perplexity, rel=1e-6)
    assert quality.relative_perplexity < 1.01  # int4 blocks of 32 cost under 1% perplexity


def test_generation_record(fp32: GenAiSession) -> None:
    assert isinstance(fp32, GenerativeSession)
    gen = fp32.generate("the sensor reads", 24, scheduled_ns=5, decode=True)
    c = gen.completion
    assert len(gen.tokens) == 24 and c.output_tokens == 24 and c.output_tokens_client == 24
    assert (
        c.prompt_tokens_server == len(gen.prompt_tokens) == len(fp32.tokenize("the sensor reads"))
    )
    assert c.scheduled_ns == 5 and c.ok and c.error is None and c.finish_reason == "length"
    stamps = np.asarray(c.chunk_ns)
    assert len(stamps) == 24 and c.chunk_tokens == (1,) * 24
    assert c.start_ns < stamps[0] and np.all(np.diff(stamps) > 0) and c.end_ns == stamps[-1]
    assert gen.text == fp32.detokenize(gen.tokens) and gen.text
    # deterministic: the same prompt gives the same tokens, as ids or as text
    again = fp32.generate(gen.prompt_tokens, 24)
    assert again.tokens == gen.tokens and again.completion.scheduled_ns == again.completion.start_ns


def test_end_of_sequence_ignored_or_honoured(fp32: GenAiSession) -> None:
    eos = fp32.generative_info.eos_token_id
    fixed = fp32.generate("the cloud answers", 120)
    assert len(fixed.tokens) == 120 and eos not in fixed.tokens
    free = fp32.generate("the cloud answers", 120, ignore_eos=False)
    assert eos in free.tokens, "the model ends its passages with end-of-sequence"
    assert free.tokens[-1] == eos and free.completion.finish_reason == "stop"
    assert len(free.tokens) < 120 and free.completion.output_tokens == len(free.tokens)


def test_single_shot_bind_generates_the_option_count(entry: GenerativeEntry) -> None:
    config = verify_artifact(entry.artifact(FP32))
    with GenAiBackend().load(config.parent, {"max_new_tokens": 5}) as session:
        assert isinstance(session, GenAiSession)
        ids = np.asarray([session.tokenize("a camera sends")], dtype=np.int32)
        (out,) = session.bind([ids])()
        assert out.shape == (1, 5) and out.dtype == np.int32
        assert tuple(out[0]) == session.generate(tuple(ids[0]), 5).tokens
        desc = session.describe()
        assert desc.name == "onnxruntime-genai" and desc.options["max_new_tokens"] == 5


def test_registered_lazily_and_resolvable() -> None:
    cls = get_backend("onnxruntime-genai")
    assert cls is GenAiBackend and cls().availability().installed
    assert isinstance(cls(), Backend) and cls.network is False
    cls().validate_options({"intra_op_threads": 2, "provider": "cpu", "max_new_tokens": 8})
    entry, art, config = resolve_generative("tiny-llm", INT4)
    assert art.variant is INT4 and config.is_file() and entry.name == "tiny-llm"
    code = (
        "import sys\n"
        "import tippingpoint.backends.genai, tippingpoint.models.generative as g\n"
        "g.resolve_generative('tiny-llm')\n"
        "heavy = {'onnxruntime_genai', 'torch', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_errors_are_one_line_with_a_fix(
    entry: GenerativeEntry, fp32: GenAiSession, tmp_path: Path
) -> None:
    with pytest.raises(InvalidShapeError, match="exceed the model's context of 256"):
        fp32.generate(list(range(1, 200)), 100)
    with pytest.raises(InvalidShapeError, match="empty"):
        fp32.generate([], 4)
    with pytest.raises(InvalidOptionError, match="no_such"):
        GenAiBackend().validate_options({"no_such": 1})
    with pytest.raises(ModelFileError, match=r"genai_config\.json"):
        GenAiBackend().load(tmp_path, {})
    art = entry.artifact(FP32)
    broken = tmp_path / "broken"
    shutil.copytree(LLM_DIR / art.folder, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(ModelLoadError, match="could not load") as info:
        GenAiBackend().load(broken, {})
    assert "rebuild" in info.value.hint
    root = tmp_path / "root"
    shutil.copytree(LLM_DIR / art.folder, root / art.folder)
    data = root / art.folder / "model.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="the manifest says"):
        verify_artifact(art, root=root)
    with pytest.raises(ModelFileError, match="missing"):
        verify_artifact(art, root=tmp_path / "nowhere")
