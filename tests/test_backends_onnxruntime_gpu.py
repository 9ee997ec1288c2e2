"""ONNX Runtime CUDA/TensorRT backends: CPU-fallback detection on a real CPU-only onnxruntime,
and GPU runs where onnxruntime-gpu and a GPU exist."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.backends.base import Backend
from tippingpoint.backends.onnxruntime_gpu import (
    CUDA_PROVIDER,
    TENSORRT_PROVIDER,
    OnnxRuntimeCudaBackend,
    OnnxRuntimeTensorRtBackend,
    OrtGpuOptions,
    ProviderFallbackError,
    ensure_provider,
    provider_options,
)
from tippingpoint.core.errors import InvalidOptionError, RuntimeFailure, RuntimeNotInstalledError
from tippingpoint.core.types import Device
from tippingpoint.harness.inputs import generate_feeds

ort = pytest.importorskip("onnxruntime", reason="onnxruntime(-gpu) is the onnx(-gpu) extra")

MLP = Path(__file__).parents[1] / "tippingpoint" / "models" / "builtin" / "mlp-tiny.onnx"
HAS_CUDA_EP = CUDA_PROVIDER in ort.get_available_providers()
needs_cuda_ep = pytest.mark.skipif(
    not HAS_CUDA_EP,
    reason="needs a CUDA GPU and onnxruntime-gpu: CUDAExecutionProvider is not available here",
)


@pytest.mark.parametrize("cls", [OnnxRuntimeCudaBackend, OnnxRuntimeTensorRtBackend])
def test_backends_satisfy_protocol(cls: type) -> None:
    backend = cls()
    assert isinstance(backend, Backend)
    assert backend.formats == (".onnx",)


def test_availability_needs_onnxruntime_gpu_and_imports_nothing() -> None:
    code = (
        "import sys; from tippingpoint.backends.onnxruntime_gpu import OnnxRuntimeCudaBackend;"
        "a = OnnxRuntimeCudaBackend().availability();"
        "print(a.installed, a.runtime, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    installed, runtime, imported = out.stdout.split()
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("onnxruntime-gpu")
        expected = "True"
    except PackageNotFoundError:
        expected = "False"
    assert (installed, runtime, imported) == (expected, "onnxruntime-gpu", "False")


@pytest.mark.skipif(HAS_CUDA_EP, reason="checks the CPU-only error; CUDA provider is present")
@pytest.mark.parametrize("cls", [OnnxRuntimeCudaBackend, OnnxRuntimeTensorRtBackend])
def test_missing_gpu_provider_is_a_clear_error(cls: type) -> None:
    with pytest.raises(RuntimeNotInstalledError, match="ExecutionProvider is not in") as info:
        cls().load(MLP, {})
    assert "CPUExecutionProvider" in info.value.message
    assert "onnx-gpu" in info.value.hint


def test_silent_cpu_fallback_is_detected_on_a_real_session() -> None:
    # what onnxruntime does when the CUDA provider cannot load: a CPU session and a warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sess = ort.InferenceSession(str(MLP), providers=[CUDA_PROVIDER, "CPUExecutionProvider"])
    notes = [str(w.message) for w in caught]
    if HAS_CUDA_EP:
        ensure_provider(sess, CUDA_PROVIDER, notes)  # a real GPU session passes
        return
    assert sess.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ProviderFallbackError, match="fell back to CPUExecutionProvider") as info:
        ensure_provider(sess, CUDA_PROVIDER, notes)
    assert isinstance(info.value, RuntimeFailure) and info.value.exit_code == 1
    assert "CPU figures as GPU figures" in info.value.hint


def test_tensorrt_falling_back_to_cuda_is_also_refused() -> None:
    sess = ort.InferenceSession(str(MLP), providers=["CPUExecutionProvider"])
    with pytest.raises(ProviderFallbackError, match=TENSORRT_PROVIDER):
        ensure_provider(sess, TENSORRT_PROVIDER)


def test_provider_options_are_strings_onnxruntime_accepts() -> None:
    opts = OrtGpuOptions(
        device_id=1, gpu_mem_limit_mb=512, trt_fp16=True, trt_engine_cache_dir="/tmp/trt"
    )
    cuda = provider_options(CUDA_PROVIDER, opts)
    assert cuda == {
        "device_id": "1",
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "gpu_mem_limit": str(512 * 1024 * 1024),
    }
    trt = provider_options(TENSORRT_PROVIDER, opts)
    assert trt["trt_fp16_enable"] == "True" and trt["trt_int8_enable"] == "False"
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_engine_cache_path"] == "/tmp/trt"


def test_invalid_option_names_the_option() -> None:
    with pytest.raises(InvalidOptionError, match="cudnn_conv_algo_search"):
        OnnxRuntimeCudaBackend().load(MLP, {"cudnn_conv_algo_search": "FASTEST"})


@pytest.mark.gpu
@needs_cuda_ep
def test_cuda_session_matches_cpu() -> None:
    cpu = ort.InferenceSession(str(MLP), providers=["CPUExecutionProvider"])
    with OnnxRuntimeCudaBackend().load(MLP, {}) as session:
        feeds = generate_feeds(session.inputs, 8, {}, seed=1)
        out = session.bind(feeds)()[0]
        desc = session.describe()
    ref = cpu.run(None, {"x": feeds[0]})[0]
    np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
    assert desc.providers[0] == CUDA_PROVIDER
    assert desc.device is Device.CUDA
    assert desc.options["timed_region"] == "h2d+compute+d2h"


@pytest.mark.skipif(
    HAS_CUDA_EP, reason="needs a CPU-only onnxruntime, where the session falls back"
)
def test_load_refuses_a_session_that_fell_back_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # onnxruntime-gpu whose CUDA libraries are missing: the provider is listed as available,
    # but the session it creates runs on the CPU; load() itself must refuse it
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: [CUDA_PROVIDER, "CPUExecutionProvider"]
    )
    with pytest.raises(ProviderFallbackError) as info:
        OnnxRuntimeCudaBackend().load(MLP, {})
    err = info.value
    assert err.message.startswith(
        f"onnxruntime fell back to CPUExecutionProvider instead of {CUDA_PROVIDER}"
    )
    assert "onnxruntime said:" in err.message  # the reason onnxruntime gave is quoted
    assert "CPU figures as GPU figures" in err.hint and err.exit_code == 1
    assert "\n" not in err.one_line()
