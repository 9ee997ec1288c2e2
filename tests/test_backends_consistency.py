"""The same model on ONNX Runtime CPU, LiteRT and PyTorch CPU computes the same outputs, so a
latency comparison across these backends compares the same computation.

Stated tolerance (fp32 files of one model): every output element agrees with ONNX Runtime's
within ``RELATIVE_TOLERANCE`` x max(1, max |output|). Differences come only from float
summation order and fused kernels; the committed suite measures below 1e-6.

Every fp32 file the manifest lists takes part: a listed file that is missing fails the test, and
so does a listed ``.pt2`` when torch is installed (only an absent runtime skips a leg). ONNX
Runtime's outputs are also checked against the fp32 torch outputs stored in each eval set, so
the test compares something even where only ONNX Runtime is installed.
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
from tippingpoint.models.accuracy import dequantize_output, prepare_input
from tippingpoint.models.datasets import load_eval_set
from tippingpoint.models.manifest import ModelFormat, SuiteEntry, Variant, suite_manifests

RELATIVE_TOLERANCE = 1e-5
TORCH_REFERENCE_ATOL = 1e-4
"""ONNX Runtime vs the fp32 torch outputs stored in the eval set (as tests/test_models_export)."""
SAMPLES = 16
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_LITERT = importlib.util.find_spec("ai_edge_litert") is not None


def _suite_models() -> list[tuple[Path, SuiteEntry]]:
    return [(folder, entry) for folder, manifest in suite_manifests() for entry in manifest.models]


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


def _backends_for(folder: Path, entry: SuiteEntry) -> list[tuple[str, Backend, Path]]:
    """(label, backend, file) for every fp32 file the manifest lists whose runtime is here."""
    files = {a.format: folder / a.file for a in entry.artifacts if a.variant is Variant.FP32}
    found: list[tuple[str, Backend, Path]] = [
        ("onnxruntime", OnnxRuntimeCpuBackend(), files[ModelFormat.ONNX])
    ]
    if HAS_LITERT and ModelFormat.TFLITE in files:
        found.append(("litert", LiteRtBackend(), files[ModelFormat.TFLITE]))
    if HAS_TORCH and ModelFormat.PT2 in files:
        from tippingpoint.backends.torch_backend import TorchBackend

        found.append(("torch", TorchBackend(), files[ModelFormat.PT2]))
    return found


@pytest.mark.parametrize(
    ("folder", "entry"), _suite_models(), ids=[e.name for _, e in _suite_models()]
)
def test_suite_model_agrees_across_backends(folder: Path, entry: SuiteEntry) -> None:
    name = entry.name
    eval_set = load_eval_set(folder / entry.dataset.eval.file)
    samples = [eval_set.sample(i) for i in range(min(SAMPLES, eval_set.samples))]
    backends = _backends_for(folder, entry)
    missing = [str(path) for _, _, path in backends if not path.is_file()]
    assert not missing, f"{name}: the manifest lists fp32 files that are missing: {missing}"
    results = {}
    for label, backend, path in backends:
        with backend.load(path, {}) as session:
            results[label] = _outputs(session, samples)
    reference = results.pop("onnxruntime")
    # ONNX Runtime is always here: it is checked against the fp32 torch outputs stored in the
    # eval set (the export tests' 1e-4), the other runtimes against it
    for i, out in enumerate(reference):
        torch_ref = eval_set.references[0][i : i + 1]
        np.testing.assert_allclose(out, torch_ref, rtol=0, atol=TORCH_REFERENCE_ATOL)
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
