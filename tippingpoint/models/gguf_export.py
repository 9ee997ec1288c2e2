"""The generative suite as GGUF, for llama.cpp: converted from the committed fp32 ONNX folder.

Usage::

    python -m tippingpoint.models.gguf_export                  # -> build/llm/tiny-llm.fp32.gguf
    python -m tippingpoint.models.gguf_export --out /tmp/gguf  # elsewhere

The source is the committed ``onnxruntime-genai`` fp32 folder, hashed against
``models/artifacts/llm/manifest.json`` first, so the GGUF holds the very weights the
onnxruntime-genai backend runs (no torch, no retraining, nothing downloaded). The ONNX
initializers are ``[in, out]`` matrices; GGUF wants ``[out, in]`` rows, and llama.cpp's
``llama`` architecture rotates interleaved pairs while the export (like transformers) rotates
halves, so the query and key rows are permuted as llama.cpp's own ``convert_hf_to_gguf.py``
permutes them. The fused ``qkv_proj`` is split into ``attn_q``/``attn_k``/``attn_v``; the tied
output layer is left out (llama.cpp then uses ``token_embd``). The byte-level BPE tokenizer goes
in as llama.cpp's ``gpt2`` model with the ``gpt-2`` pre-tokenizer (the same regex as the
``tokenizers`` ByteLevel pre-tokenizer it was trained with), its merges, and the
end-of-sequence token as a control token; no BOS is added, as the source tokenizer adds none.

The file is written by the ``gguf`` package (``GGUFWriter``), all tensors fp32, and is
byte-for-byte deterministic for a given ``gguf`` version. Beside it, ``<name>.gguf.json``
records its sha256 and size, the source files' hashes and the package versions (the GGUF format
of the committed suite manifest has no place for it, and the file is built, not committed).
Needs ``onnx`` and ``gguf``: the ``llamacpp`` extra (``make test-llamacpp``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from tippingpoint.core.errors import ModelFileError, RuntimeNotInstalledError
from tippingpoint.core.types import Frozen
from tippingpoint.models.generative import (
    GenerativeVariant,
    ModelFile,
    load_generative_manifest,
    verify_artifact,
)
from tippingpoint.models.manifest import package_versions, sha256_file
from tippingpoint.models.suite.llm import GENERATIVE_SUITE, LlmDefinition

DEFAULT_OUT = Path("build") / "llm"
"""Where ``make test-llamacpp`` writes the GGUF files (ignored by git)."""
INSTALL_HINT = "pip install 'tippingpoint[llamacpp]' (or run make test-llamacpp)"
_PACKAGES = ("gguf", "onnx", "numpy")


class GgufRecord(Frozen):
    """What one conversion wrote, and from what (the ``.gguf.json`` beside the file)."""

    name: str
    variant: GenerativeVariant
    file: ModelFile
    source: tuple[ModelFile, ...] = Field(description="the verified onnxruntime-genai folder")
    generated_by: dict[str, str]
    conversion: str


def gguf_path(name: str, out: Path = DEFAULT_OUT) -> Path:
    """Where :func:`export_gguf` writes ``name``'s fp32 GGUF under ``out``."""
    return out / f"{name}.{GenerativeVariant.FP32.value}.gguf"


def _permute(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a query/key projection from rotate-half to llama.cpp's interleaved order."""
    split: np.ndarray = w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:])
    rows: np.ndarray = split.swapaxes(1, 2).reshape(w.shape)
    return rows


def _initializers(model_file: Path) -> dict[str, np.ndarray]:
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise RuntimeNotInstalledError("onnx is not installed", INSTALL_HINT) from None
    graph = onnx.load(str(model_file), load_external_data=True).graph
    return {
        t.name: np.asarray(numpy_helper.to_array(t), dtype=np.float32) for t in graph.initializer
    }


def _check_rope(cos_cache: np.ndarray, head_dim: int, theta: float) -> None:
    """The export's rotary table must be the definition's (default rope, ``theta``)."""
    inv = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    expected = np.cos(np.arange(cos_cache.shape[0], dtype=np.float64)[:, None] * inv[None, :])
    if cos_cache.shape[1] != head_dim // 2 or not np.allclose(cos_cache, expected, atol=1e-5):
        raise ModelFileError(
            "the ONNX rotary table is not default rope with the definition's theta",
            "rebuild the suite with 'make models'",
        )


def tensors(defn: LlmDefinition, init: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """GGUF tensor name -> ``[out, in]`` fp32 array, from the builder's ONNX initializers."""
    a = defn.architecture
    head = a.hidden_size // a.num_attention_heads
    q_rows = a.num_attention_heads * head
    kv_rows = a.num_key_value_heads * head
    _check_rope(init["cos_cache"], head, a.rope_theta)
    out = {"token_embd.weight": init["lm_head.MatMul.weight"].T}
    for i in range(a.num_hidden_layers):
        p = f"model.layers.{i}."
        qkv = init[p + "attn.qkv_proj.MatMul.weight"].T
        if qkv.shape != (q_rows + 2 * kv_rows, a.hidden_size):
            raise ModelFileError(
                f"layer {i}'s qkv_proj has shape {qkv.shape}, not the definition's",
                "rebuild the suite with 'make models'",
            )
        out |= {
            f"blk.{i}.attn_norm.weight": init[p + "input_layernorm.weight"],
            f"blk.{i}.attn_q.weight": _permute(qkv[:q_rows], a.num_attention_heads),
            f"blk.{i}.attn_k.weight": _permute(
                qkv[q_rows : q_rows + kv_rows], a.num_key_value_heads
            ),
            f"blk.{i}.attn_v.weight": qkv[q_rows + kv_rows :],
            f"blk.{i}.attn_output.weight": init[p + "attn.o_proj.MatMul.weight"].T,
            f"blk.{i}.ffn_norm.weight": init[p + "post_attention_layernorm.weight"],
            f"blk.{i}.ffn_gate.weight": init[p + "mlp.gate_proj.MatMul.weight"].T,
            f"blk.{i}.ffn_up.weight": init[p + "mlp.up_proj.MatMul.weight"].T,
            f"blk.{i}.ffn_down.weight": init[p + "mlp.down_proj.MatMul.weight"].T,
        }
    final = f"model.layers.{a.num_hidden_layers}.final_norm_layernorm.weight"
    out["output_norm.weight"] = init[final]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def vocabulary(tokenizer_json: Path) -> tuple[list[str], list[int], list[str]]:
    """(tokens by id, their GGUF token types, merges as ``"a b"``) of a byte-level BPE
    ``tokenizer.json``."""
    data: dict[str, Any] = json.loads(tokenizer_json.read_text())
    model = data["model"]
    if model.get("type") != "BPE" or data.get("pre_tokenizer", {}).get("type") != "ByteLevel":
        raise ModelFileError(
            f"{tokenizer_json} is not a byte-level BPE tokenizer",
            "only the suite's byte-level BPE converts to GGUF",
        )
    vocab: dict[str, int] = model["vocab"]
    tokens = [""] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    special = {int(t["id"]) for t in data.get("added_tokens", []) if t.get("special")}
    types = [3 if i in special else 1 for i in range(len(tokens))]  # CONTROL, NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, types, merges


def export_gguf(defn: LlmDefinition, out: Path = DEFAULT_OUT) -> GgufRecord:
    """Convert ``defn``'s committed fp32 folder to ``out/<name>.fp32.gguf`` (and its record)."""
    try:
        import gguf
    except ImportError:
        raise RuntimeNotInstalledError("the gguf package is not installed", INSTALL_HINT) from None
    art = load_generative_manifest().model(defn.name).artifact(GenerativeVariant.FP32)
    folder = verify_artifact(art).parent
    raw = json.loads((folder / "genai_config.json").read_text())["model"]
    a = defn.architecture
    if (raw["vocab_size"], raw["decoder"]["num_hidden_layers"]) != (
        a.vocab_size,
        a.num_hidden_layers,
    ):
        raise ModelFileError(
            f"{folder} does not match the definition of {defn.name}",
            "rebuild the suite with 'make models'",
        )
    arrays = tensors(defn, _initializers(folder / "model.onnx"))
    tokens, types, merges = vocabulary(folder / "tokenizer.json")
    eos = int(raw["eos_token_id"])

    target = gguf_path(defn.name, out)
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(target), "llama")
    writer.add_name(defn.name)
    writer.add_description(defn.description)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(a.vocab_size)
    writer.add_context_length(a.max_position_embeddings)
    writer.add_embedding_length(a.hidden_size)
    writer.add_block_count(a.num_hidden_layers)
    writer.add_feed_forward_length(a.intermediate_size)
    writer.add_head_count(a.num_attention_heads)
    writer.add_head_count_kv(a.num_key_value_heads)
    writer.add_rope_dimension_count(a.hidden_size // a.num_attention_heads)
    writer.add_rope_freq_base(a.rope_theta)
    writer.add_layer_norm_rms_eps(a.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    writer.add_pad_token_id(eos)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    for name, array in arrays.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    record = GgufRecord(
        name=defn.name,
        variant=GenerativeVariant.FP32,
        file=ModelFile(
            file=target.name, sha256=sha256_file(target), size_bytes=target.stat().st_size
        ),
        source=art.files,
        generated_by=package_versions(_PACKAGES),
        conversion="fp32 ONNX initializers -> GGUF llama (query/key rows permuted to "
        "interleaved rope, qkv split, tied output), tokenizer as gpt2 BPE",
    )
    target.with_name(target.name + ".json").write_text(record.model_dump_json(indent=2) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: convert every generative suite model."""
    parser = argparse.ArgumentParser(prog="python -m tippingpoint.models.gguf_export")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for defn in GENERATIVE_SUITE:
        try:
            rec = export_gguf(defn, args.out)
        except (ModelFileError, RuntimeNotInstalledError) as exc:
            print(f"error: {exc.one_line()}", file=sys.stderr)
            return exc.exit_code
        print(f"wrote {args.out / rec.file.file} ({rec.file.size_bytes} bytes, "
              f"sha256 {rec.file.sha256[:12]})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
