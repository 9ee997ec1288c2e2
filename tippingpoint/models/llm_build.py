"""``make models``: build the generative suite (``tiny-llm``) offline, export it, measure it.

Usage::

    python -m tippingpoint.models.llm_build                  # -> models/artifacts/llm/
    python -m tippingpoint.models.llm_build --out /tmp/llm   # elsewhere (the rebuild test)

Steps, all offline (``HF_HUB_OFFLINE=1``; nothing is downloaded at any point):

1. generate the training passages from the definition's seeded grammar
   (:mod:`tippingpoint.models.suite.llm`), and held-out passages and probe prompts under other
   seeds;
2. train a byte-level BPE tokenizer on the training passages with ``tokenizers``;
3. instantiate ``LlamaForCausalLM`` from a ``LlamaConfig`` (no pretrained weights) under the
   seed and train it briefly (AdamW, single-threaded, deterministic algorithms);
4. save it as a Hugging Face folder (safetensors + tokenizer) in a temporary directory and
   export it with onnxruntime-genai's model builder (``python -m
   onnxruntime_genai.models.builder``) to fp32 and int4 (weight-only ``MatMulNBits``, blocks of
   32, symmetric, the builder's CPU defaults), embeddings shared with the output layer;
5. measure each variant through the ``onnxruntime-genai`` backend: perplexity on the held-out
   passages, and its greedy continuations of the probe prompts against the torch model's;
6. write the evaluation set (``.npz``) and ``models/artifacts/llm/manifest.json``.

Needs torch, transformers, tokenizers, onnx, onnx-ir and onnxruntime-genai: the ``export`` extra
(``.venv-export``). Takes about a minute on two cores.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tippingpoint.backends.genai import GenAiBackend, GenAiSession
from tippingpoint.models.generative import (
    LLM_DIR,
    MANIFEST_NAME,
    GenerativeArtifact,
    GenerativeEntry,
    GenerativeManifest,
    GenerativeQuality,
    GenerativeVariant,
    ModelFile,
)
from tippingpoint.models.manifest import (
    ARTIFACTS_DIR,
    EvalFile,
    load_manifest,
    package_versions,
    sha256_file,
)
from tippingpoint.models.suite.llm import (
    GENERATIVE_SUITE,
    LlmDefinition,
    corpus,
    probe_texts,
)

MAX_TOTAL_BYTES = 25 * 1024 * 1024
"""The committed suite's budget: the tensor suite and the generative suite together."""
BUILDER_OPTIONS = ("shared_embeddings=true", "hf_token=false")
VARIANTS: dict[GenerativeVariant, str | None] = {
    GenerativeVariant.FP32: None,
    GenerativeVariant.INT4: "onnxruntime-genai model builder, precision int4 for the CPU: "
    "weight-only MatMulNBits, symmetric, blocks of 32, accuracy level 4 (int8 activations in "
    "the matmuls); embeddings and output layer shared and quantized (GatherBlockQuantized)",
}
REPRODUCIBILITY = (
    "Regenerating with the same commit, seed and package versions (generated_by) on x86-64 "
    "gives byte-identical files (checked by building twice; tests/test_models_llm_build.py "
    "rebuilds and compares the hashes where the export extra is installed). The fp32 export "
    "run by onnxruntime-genai reproduces the torch model's greedy probe continuations token "
    "for token and its perplexity within 1e-4 (relative), checked by the tests on every run."
)
_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "onnx",
    "onnx-ir",
    "onnxruntime",
    "onnxruntime-genai",
    "numpy",
)


@dataclass(frozen=True)
class EvalSet:
    """Held-out token windows and probe prompts, with the torch model's figures on them."""

    windows: np.ndarray
    """``[passages, window]`` int32 token ids."""
    probe_flat: np.ndarray
    probe_offsets: np.ndarray
    """Probe prompt ``i`` is ``probe_flat[probe_offsets[i]:probe_offsets[i + 1]]``."""
    reference: np.ndarray
    """``[probes, new_tokens]`` the torch model's greedy continuation (end-of-sequence
    suppressed, as the benchmark's ``ignore_eos``)."""

    def probes(self) -> list[tuple[int, ...]]:
        """The probe prompts as token tuples."""
        o = self.probe_offsets
        return [tuple(int(t) for t in self.probe_flat[o[i] : o[i + 1]]) for i in range(len(o) - 1)]

    def save(self, path: Path) -> None:
        """Write the arrays to an uncompressed ``.npz`` (byte-stable)."""
        with path.open("wb") as f:
            np.savez(
                f,
                windows=self.windows,
                probe_flat=self.probe_flat,
                probe_offsets=self.probe_offsets,
                reference=self.reference,
            )

    @classmethod
    def load(cls, path: Path) -> EvalSet:
        """Read an evaluation set written by :meth:`save`."""
        with np.load(path) as data:
            return cls(
                windows=data["windows"],
                probe_flat=data["probe_flat"],
                probe_offsets=data["probe_offsets"],
                reference=data["reference"],
            )


def perplexity_from_logits(logits: Sequence[np.ndarray], windows: np.ndarray) -> float:
    """exp of the mean next-token cross-entropy over every window (positions 1..n-1)."""
    total = 0.0
    count = 0
    for lg, ids in zip(logits, windows, strict=True):
        x = lg[:-1].astype(np.float64)
        x = x - x.max(axis=1, keepdims=True)
        logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
        total -= float(logp[np.arange(len(ids) - 1), ids[1:]].sum())
        count += len(ids) - 1
    return math.exp(total / count)


def agreement(generated: Sequence[Sequence[int]], reference: np.ndarray) -> tuple[float, int]:
    """(fraction of positions equal to the reference, count of identical continuations)."""
    same = [np.asarray(g) == reference[i] for i, g in enumerate(generated)]
    return float(np.mean(same)), sum(bool(s.all()) for s in same)


def measure_variant(
    session: GenAiSession, evals: EvalSet, reference_perplexity: float
) -> GenerativeQuality:
    """Perplexity and greedy-probe agreement of one exported variant, through the backend."""
    logits = [session.prompt_logits(tuple(int(t) for t in w)) for w in evals.windows]
    ppl = perplexity_from_logits(logits, evals.windows)
    new = evals.reference.shape[1]
    generated = [session.generate(p, new).tokens for p in evals.probes()]
    token_agreement, identical = agreement(generated, evals.reference)
    desc = session.describe()
    return GenerativeQuality(
        runtime=f"{desc.runtime} {desc.runtime_version}",
        perplexity=ppl,
        relative_perplexity=ppl / reference_perplexity,
        probe_token_agreement=token_agreement,
        probes_identical=identical,
        probes=len(generated),
    )


def _deterministic(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def train_tokenizer(defn: LlmDefinition, texts: Sequence[str]) -> Any:
    """A byte-level BPE of ``vocab_size`` tokens (the end-of-sequence token is id 0)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=defn.architecture.vocab_size,
        special_tokens=[defn.eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def _config(defn: LlmDefinition, eos_id: int) -> Any:
    from transformers import LlamaConfig

    a = defn.architecture
    return LlamaConfig(
        vocab_size=a.vocab_size,
        hidden_size=a.hidden_size,
        intermediate_size=a.intermediate_size,
        num_hidden_layers=a.num_hidden_layers,
        num_attention_heads=a.num_attention_heads,
        num_key_value_heads=a.num_key_value_heads,
        max_position_embeddings=a.max_position_embeddings,
        rms_norm_eps=a.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": a.rope_theta},
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )


def train(defn: LlmDefinition, stream: np.ndarray, eos_id: int) -> tuple[Any, float]:
    """The trained ``LlamaForCausalLM`` and its last-50-step mean loss."""
    import torch
    from transformers import LlamaForCausalLM

    _deterministic(defn.seed)
    model = LlamaForCausalLM(_config(defn, eos_id))
    r = defn.recipe
    data = torch.from_numpy(stream.astype(np.int64))
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr)
    gen = torch.Generator().manual_seed(defn.seed)
    losses: list[float] = []
    model.train()
    for _ in range(r.steps):
        starts = torch.randint(0, len(data) - r.window - 1, (r.batch,), generator=gen)
        x = torch.stack([data[s : s + r.window] for s in starts.tolist()])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.train(False)
    return model, float(np.mean(losses[-50:]))


def torch_greedy(model: Any, prompt: Sequence[int], new_tokens: int, eos_id: int) -> list[int]:
    """Greedy continuation with end-of-sequence suppressed, recomputing the whole sequence
    each step (no cache: the plainest reference)."""
    import torch

    ids = list(prompt)
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1].clone()
            logits[eos_id] = -math.inf
            ids.append(int(torch.argmax(logits)))
    return ids[len(prompt) :]


def torch_logits(model: Any, windows: np.ndarray) -> list[np.ndarray]:
    """The torch model's logits for each eval window."""
    import torch

    with torch.no_grad():
        return [
            model(input_ids=torch.from_numpy(w.astype(np.int64))[None]).logits[0].numpy()
            for w in windows
        ]


def make_eval_set(defn: LlmDefinition, tok: Any, model: Any, eos_id: int) -> EvalSet:
    """Held-out windows (seed + 1) and probe prompts (seed + 2), with torch's continuations."""
    r = defn.recipe
    held_out = corpus(defn.seed + 1, defn.eval_passages * r.per_passage * 4, r.per_passage)
    stream: list[int] = []
    for text in held_out:
        stream += [eos_id, *tok.encode(text).ids]
    need = defn.eval_passages * r.window
    if len(stream) < need:
        raise RuntimeError(f"held-out text gave {len(stream)} tokens, {need} needed")
    windows = np.asarray(stream[:need], dtype=np.int32).reshape(defn.eval_passages, r.window)
    prompts = [tok.encode(t).ids for t in probe_texts(defn.seed, defn.probe_prompts)]
    offsets = np.cumsum([0, *(len(p) for p in prompts)]).astype(np.int32)
    reference = np.asarray(
        [torch_greedy(model, p, defn.probe_new_tokens, eos_id) for p in prompts], dtype=np.int32
    )
    flat = np.asarray([t for p in prompts for t in p], dtype=np.int32)
    return EvalSet(windows, flat, offsets, reference)


def export_variant(hf_dir: Path, out: Path, variant: GenerativeVariant, cache: Path) -> None:
    """Run onnxruntime-genai's model builder for one precision into ``out``."""
    cmd = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "-i",
        str(hf_dir),
        "-o",
        str(out),
        "-p",
        variant.value,
        "-e",
        "cpu",
        "-c",
        str(cache),
        "--extra_options",
        *BUILDER_OPTIONS,
    ]
    # the builder stamps the ONNX file with `git rev-parse HEAD` run beside its package, which
    # inside a virtualenv in this repository is *our* commit: no git, so it stamps its own
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GIT_DIR": os.devnull}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"the model builder failed for {variant.value}:\n{tail}")


def _weight_macs(defn: LlmDefinition) -> int:
    a = defn.architecture
    head = a.hidden_size // a.num_attention_heads
    attn = a.hidden_size * (a.hidden_size + 2 * a.num_key_value_heads * head) + a.hidden_size**2
    mlp = 3 * a.hidden_size * a.intermediate_size
    return a.num_hidden_layers * (attn + mlp) + a.hidden_size * a.vocab_size


def build_model(defn: LlmDefinition, out: Path, work: Path) -> GenerativeEntry:
    """Train, export and measure one generative model; its files land under ``out``."""
    t0 = time.perf_counter()
    r = defn.recipe
    texts = corpus(defn.seed, r.sentences, r.per_passage)
    tok = train_tokenizer(defn, texts)
    eos_id = tok.token_to_id(defn.eos_token)
    if tok.get_vocab_size() > defn.architecture.vocab_size:
        raise RuntimeError(f"tokenizer has {tok.get_vocab_size()} tokens, more than the model")
    stream = [eos_id]
    for text in texts:
        stream += [*tok.encode(text).ids, eos_id]
    model, final_loss = train(defn, np.asarray(stream, dtype=np.int64), eos_id)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{defn.name}: {parameters} parameters, loss {final_loss:.3f} "
          f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip

    from transformers import PreTrainedTokenizerFast

    hf_dir = work / "hf"
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call, unused-ignore]  # unannotated in transformers; unused where transformers is absent
        tokenizer_object=tok,
        bos_token=defn.eos_token,
        eos_token=defn.eos_token,
        unk_token=defn.eos_token,
        pad_token=defn.eos_token,
    )
    fast.save_pretrained(hf_dir)
    model.save_pretrained(hf_dir, safe_serialization=True)

    evals = make_eval_set(defn, tok, model, eos_id)
    reference_ppl = perplexity_from_logits(torch_logits(model, evals.windows), evals.windows)
    out.mkdir(parents=True, exist_ok=True)
    eval_name = f"{defn.name}.eval.npz"
    evals.save(out / eval_name)

    artifacts = []
    for variant, how in VARIANTS.items():
        folder = f"{defn.name}.{variant.value}"
        target = out / folder
        staging = work / folder
        export_variant(hf_dir, staging, variant, work / "cache")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(staging, target)
        names = sorted(p.name for p in target.iterdir())
        files = tuple(
            ModelFile(
                file=f"{folder}/{n}",
                sha256=sha256_file(target / n),
                size_bytes=(target / n).stat().st_size,
            )
            for n in names
        )
        session = GenAiBackend().load(target, {"intra_op_threads": 1})
        try:
            quality = measure_variant(session, evals, reference_ppl)
        finally:
            session.close()
        print(f"{defn.name} {variant.value}: perplexity {quality.perplexity:.3f} "
              f"(torch {reference_ppl:.3f}), probe agreement "
              f"{quality.probe_token_agreement:.3f}")  # fmt: skip
        artifacts.append(
            GenerativeArtifact(
                variant=variant, folder=folder, files=files, quantization=how, quality=quality
            )
        )
    return GenerativeEntry(
        name=defn.name,
        description=defn.description,
        architecture="transformers.LlamaForCausalLM",
        parameters=int(parameters),
        weight_macs_per_token=_weight_macs(defn),
        vocab_size=defn.architecture.vocab_size,
        context_length=defn.architecture.max_position_embeddings,
        eos_token_id=int(eos_id),
        seed=defn.seed,
        training=f"AdamW lr {r.lr:g}, {r.steps} steps of {r.batch} windows of {r.window} tokens "
        f"from {len(texts)} generated passages ({r.sentences} clauses, seed {defn.seed}), "
        f"single-threaded; mean loss of the last 50 steps {final_loss:.4f}",
        tokenizer=f"byte-level BPE trained with tokenizers on the same passages, "
        f"{tok.get_vocab_size()} tokens, '{defn.eos_token}' = id {eos_id}",
        reference_perplexity=reference_ppl,
        eval=EvalFile(
            file=eval_name,
            sha256=sha256_file(out / eval_name),
            size_bytes=(out / eval_name).stat().st_size,
            samples=len(evals.windows),
        ),
        artifacts=tuple(artifacts),
    )


def check_budget(generative: GenerativeManifest) -> list[str]:
    """Problems with the committed budget: the tensor suite's files plus these <= 25 MiB."""
    tensor = 0
    if (ARTIFACTS_DIR / "manifest.json").is_file():
        m = load_manifest()
        tensor = sum(a.size_bytes for e in m.models for a in e.artifacts) + sum(
            e.dataset.eval.size_bytes for e in m.models
        )
    total = tensor + generative.size_bytes
    if total > MAX_TOTAL_BYTES:
        return [f"the committed suite holds {total / 2**20:.2f} MiB (limit 25 MiB)"]
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry of ``make models``."""
    parser = argparse.ArgumentParser(prog="python -m tippingpoint.models.llm_build")
    parser.add_argument("--out", type=Path, default=LLM_DIR)
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    entries = []
    with tempfile.TemporaryDirectory(prefix="tp-llm-") as tmp:
        for defn in GENERATIVE_SUITE:
            work = Path(tmp) / defn.name
            entries.append(build_model(defn, args.out, work))
    manifest = GenerativeManifest(
        generated_by=package_versions(_PACKAGES),
        reproducibility=REPRODUCIBILITY,
        models=tuple(entries),
    )
    (args.out / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=2) + "\n")
    problems = check_budget(manifest) if args.out == LLM_DIR else []
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print(f"wrote {args.out / MANIFEST_NAME} ({manifest.size_bytes / 2**20:.2f} MiB)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
