"""GPU facts for the host fingerprint: name, driver, CUDA and cuDNN versions, and torch's
cuDNN/TF32 settings.

NVML (``nvidia-ml-py``) supplies what the driver knows: name, driver, CUDA version, memory.
The cuDNN version comes from torch when torch is already imported in this process, else from
the cuDNN wheel's metadata; torch's cuDNN/TF32 settings are recorded only when torch is
already imported (a torch backend ran): the fingerprint must not pay for importing torch, and
settings of a torch that never ran describe nothing.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tippingpoint.core.schema import GpuInfo
from tippingpoint.core.types import OptionValue


def _cuda_version_text(code: int) -> str:
    """NVML/CUDA integer versions (12040) as text ('12.4')."""
    return f"{code // 1000}.{(code % 1000) // 10}"


def torch_cuda_settings(torch: Any | None = None) -> dict[str, OptionValue]:
    """torch's CUDA build, cuDNN version and the cuDNN/TF32 flags now in force.

    Uses the already imported torch (or the one given); empty when torch is not imported.
    """
    torch = torch if torch is not None else sys.modules.get("torch")
    if torch is None:
        return {}
    cudnn = torch.backends.cudnn
    cudnn_version = cudnn.version() if cudnn.is_available() else None
    return {
        "torch.version.cuda": torch.version.cuda,
        "cudnn.version": str(cudnn_version) if cudnn_version is not None else None,
        "cudnn.benchmark": bool(cudnn.benchmark),
        "cudnn.deterministic": bool(cudnn.deterministic),
        "cudnn.allow_tf32": bool(cudnn.allow_tf32),
        "cuda.matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "float32_matmul_precision": str(torch.get_float32_matmul_precision()),
    }


CUDNN_WHEELS = ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn-cu11")
"""pip distributions of cuDNN (what torch and onnxruntime-gpu load on Linux)."""


def cudnn_wheel_version() -> str | None:
    """The installed cuDNN wheel's version, from package metadata (imports nothing)."""
    for dist in CUDNN_WHEELS:
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def _nvml() -> Any | None:
    try:
        if importlib.util.find_spec("pynvml") is None:
            return None
    except (ImportError, ValueError):
        return None
    import pynvml

    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_info(nvml: Any | None = None) -> tuple[GpuInfo, ...]:
    """Every GPU NVML sees, with driver and CUDA versions; () without a driver or NVML.

    ``nvml`` is the ``pynvml`` module (``nvidia-ml-py``); tests pass a stand-in.
    """
    nvml = nvml if nvml is not None else _nvml()
    torch = sys.modules.get("torch")
    settings = torch_cuda_settings(torch) if torch is not None else {}
    cudnn = settings.pop("cudnn.version", None) or cudnn_wheel_version()
    if nvml is None:
        return ()
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:  # LibraryNotFound, DriverNotLoaded, ...: no usable GPU
        return ()
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        try:
            cuda: str | None = _cuda_version_text(int(nvml.nvmlSystemGetCudaDriverVersion_v2()))
        except (AttributeError, nvml.NVMLError):  # older bindings or drivers lack the call
            cuda = None
        gpus = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                GpuInfo(
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    index=index,
                    driver=driver,
                    cuda=cuda,
                    cudnn=str(cudnn) if cudnn is not None else None,
                    memory_total_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                    settings=dict(settings),
                )
            )
        return tuple(gpus)
    finally:
        nvml.nvmlShutdown()


def with_torch_settings(gpus: tuple[GpuInfo, ...], torch: Any | None = None) -> tuple[GpuInfo, ...]:
    """``gpus`` with torch's cuDNN version and cuDNN/TF32 settings as they are now.

    The host fingerprint is taken before any backend loads, when torch is usually not imported
    yet; the runner calls this once a session has loaded (a torch backend imported torch and set
    its flags) so the report says what was in force. Unchanged when torch is not imported or
    there is no GPU.
    """
    settings = torch_cuda_settings(torch)
    if not gpus or not settings:
        return gpus
    cudnn = settings.pop("cudnn.version", None)
    return tuple(
        g.model_copy(
            update={
                "settings": {**g.settings, **settings},
                "cudnn": str(cudnn) if cudnn is not None else g.cudnn,
            }
        )
        for g in gpus
    )
