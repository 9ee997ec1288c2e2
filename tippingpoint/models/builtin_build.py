"""Deterministic built-in ONNX models made with ``onnx.helper`` (no torch needed).

Two micro-models at the two ends of the harness's overhead budget, not stand-ins for the suite
(``tippingpoint run`` measures the suite by default): ``mlp-tiny`` (a few microseconds per query,
where a harness's own cost shows most) and ``conv-small`` (about a hundred microseconds). The
harness-overhead benchmark (``make bench-overhead``, :mod:`tippingpoint.harness.overhead`) holds
the harness to its targets on them; the tests use them for fast runs, serving and comparisons
with no suite file involved; the README's quick examples name them. The files are committed
under ``models/builtin/``; ``python -m tippingpoint.models.builtin_build`` rewrites them
byte-identically (a test checks this). Needs the ``onnx`` package (dev/export extras).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

BUILTIN_DIR = Path(__file__).parent / "builtin"
OPSET = 17
IR_VERSION = 8


def _init(rng: np.random.Generator, name: str, shape: tuple[int, ...], fan_in: int) -> Any:
    from onnx import numpy_helper

    w = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return numpy_helper.from_array(w, name)


def mlp_tiny() -> Any:
    """32 features -> 64 -> 10 logits, dynamic batch; a scoring MLP of ~2.7k parameters."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(1)
    inits = [
        _init(rng, "w1", (32, 64), 32),
        _init(rng, "b1", (64,), 32),
        _init(rng, "w2", (64, 10), 64),
        _init(rng, "b2", (10,), 64),
    ]
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp_tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    return _model(graph)


def conv_small() -> Any:
    """3x32x32 image -> 3 conv layers (32, 64, 64 channels) -> global pool -> 10 logits."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(2)
    inits = [
        _init(rng, "c1w", (32, 3, 3, 3), 27),
        _init(rng, "c1b", (32,), 27),
        _init(rng, "c2w", (64, 32, 3, 3), 288),
        _init(rng, "c2b", (64,), 288),
        _init(rng, "c3w", (64, 64, 3, 3), 576),
        _init(rng, "c3b", (64,), 576),
        _init(rng, "fw", (64, 10), 64),
        _init(rng, "fb", (10,), 64),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["a1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("Conv", ["r1", "c2w", "c2b"], ["a2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("Conv", ["r2", "c3w", "c3b"], ["a3"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["a3"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    return _model(graph)


def _model(graph: Any) -> Any:
    from onnx import checker, helper

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tippingpoint"
    )
    model.ir_version = IR_VERSION
    checker.check_model(model)
    return model


BUILDERS = {"mlp-tiny": mlp_tiny, "conv-small": conv_small}
MACS = {
    "mlp-tiny": 32 * 64 + 64 * 10,
    "conv-small": 32 * 27 * 1024 + 64 * 288 * 256 + 64 * 576 * 64 + 640,
}


def build(out_dir: Path = BUILTIN_DIR) -> dict[str, dict[str, Any]]:
    """Write the built-in models and their manifest; returns the manifest entries."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    for name, builder in BUILDERS.items():
        model = builder()
        data = model.SerializeToString(deterministic=True)
        path = out_dir / f"{name}.onnx"
        path.write_bytes(data)
        params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        entries[name] = {
            "file": path.name,
            "variant": "fp32",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_bytes": len(data),
            "parameters": params,
            "macs": MACS[name],
            "description": (builder.__doc__ or "").strip(),
        }
    (out_dir / "manifest.json").write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return entries


if __name__ == "__main__":
    for name, entry in build().items():
        print(f"{name}: {entry['file']} {entry['size_bytes']} bytes sha256={entry['sha256'][:12]}")
