"""The same model on ONNX Runtime CPU, LiteRT and PyTorch CPU computes the same outputs, so a
latency comparison across these backends compares the same computation.

Stated tolerance (fp32 files of one model): every output element agrees with ONNX Runtime's
within ``RELATIVE_TOLERANCE`` x max(1, max |output|). Differences come only from float
summation order and fused kernels; the committed suite measures below 1e-6.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.tflite_build import forward, random_mlp, write_mlp
from tippingpoint.backends.base import Backend, Session
from tippingpoint.backends.litert import LiteRtBackend
from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend
from tippingpoint.harness.accuracy import dequantize_output, prepare_input
from tippingpoint.models.datasets import load_eval_set
from tippingpoint.models.manifest import suite_manifests

RELATIVE_TOLERANCE = 1e-5
SAMPLES = 16
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_LITERT = importlib.util.find_spec("ai_edge_litert") is not None


def _suite_models() -> list[tuple[Path, str, str]]:
    return [
        (folder, entry.name, entry.dataset.eval.file)
        for folder, manifest in suite_manifests()
        for entry in manifest.models
    ]


def _outputs(session: Session, samples: list[list[np.ndarray]]) -> list[np.ndarray]:
    out = []
    for sample in samples:
        feeds = [prepare_input(a, s) for a, s in zip(sample, session.inputs, strict=True)]
        result = session.bind(feeds)()
        out.append(dequantize_output(result[0], session.outputs[0]))
    return out


def _assert_agree(reference: np.ndarray, other: np.ndarray, label: str) -> None:
    atol = RELATIVE_TOLERANCE * max(1.0, float(np.abs(reference).max()))
    np.testing.assert_allclose(other, reference, rtol=0, atol=atol, err_msg=label)


def _backends_for(folder: Path, name: str) -> list[tuple[str, Backend, Path]]:
    found: list[tuple[str, Backend, Path]] = [
        ("onnxruntime", OnnxRuntimeCpuBackend(), folder / f"{name}.fp32.onnx")
    ]
    if HAS_LITERT:
        found.append(("litert", LiteRtBackend(), folder / f"{name}.fp32.tflite"))
    pt2 = folder / f"{name}.fp32.pt2"
    if HAS_TORCH and pt2.is_file():
        from tippingpoint.backends.torch_backend import TorchBackend

        found.append(("torch", TorchBackend(), pt2))
    return found


@pytest.mark.parametrize(
    ("folder", "name", "eval_file"),
    _suite_models(),
    ids=[name for _, name, _ in _suite_models()],
)
def test_suite_model_agrees_across_backends(folder: Path, name: str, eval_file: str) -> None:
    eval_set = load_eval_set(folder / eval_file)
    samples = [eval_set.sample(i) for i in range(min(SAMPLES, eval_set.samples))]
    backends = [b for b in _backends_for(folder, name) if b[2].is_file()]
    if len(backends) < 2:
        pytest.skip(f"{name}: fewer than two of .onnx/.tflite/.pt2 fp32 files or runtimes here")
    results = {}
    for label, backend, path in backends:
        with backend.load(path, {}) as session:
            results[label] = _outputs(session, samples)
    reference = results.pop("onnxruntime")
    for label, outs in results.items():
        for i, (ref, out) in enumerate(zip(reference, outs, strict=True)):
            _assert_agree(ref, out, f"{name} sample {i}: {label} vs onnxruntime")


@pytest.mark.skipif(not (HAS_TORCH and HAS_LITERT), reason="needs torch and ai-edge-litert")
def test_one_torch_model_on_three_backends(tmp_path: Path) -> None:
    from tests.torch_build import export_onnx, export_pt2
    from tippingpoint.backends.torch_backend import TorchBackend

    layers = random_mlp([32, 64, 10], seed=11)
    files = {
        "onnxruntime": (OnnxRuntimeCpuBackend(), export_onnx(tmp_path / "m.onnx", layers)),
        "litert": (LiteRtBackend(), write_mlp(tmp_path / "m.tflite", layers, batch=None)),
        "torch": (TorchBackend(), export_pt2(tmp_path / "m.pt2", layers)),
    }
    feeds = [np.random.default_rng(9).standard_normal((8, 32)).astype(np.float32)]
    results = {}
    for label, (backend, path) in files.items():
        with backend.load(path, {}) as session:
            assert [s.shape for s in session.inputs] == [(None, 32)], label
            results[label] = session.bind(feeds)()[0]
    _assert_agree(forward(layers, feeds[0]), results["onnxruntime"], "onnxruntime vs numpy")
    _assert_agree(results["onnxruntime"], results["litert"], "litert vs onnxruntime")
    _assert_agree(results["onnxruntime"], results["torch"], "torch vs onnxruntime")
