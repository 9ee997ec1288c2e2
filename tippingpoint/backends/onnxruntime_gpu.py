"""ONNX Runtime on NVIDIA GPUs: the CUDA and TensorRT execution providers (``onnxruntime-gpu``).

ONNX Runtime falls back to the CPU, with at most a log line, when a GPU provider cannot load
(a missing cuDNN, a driver too old). Reporting those CPU figures as GPU figures is the worst
error a benchmark can make, so :func:`ensure_provider` checks the session's actual providers
and fails with a clear error instead.

``InferenceSession.run`` with host (numpy) inputs and outputs copies the inputs to the GPU,
runs, copies the outputs back and returns when done: the timed call spans H2D, compute and
D2H, which the report states under ``backend.options.timed_region``.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.onnxruntime_cpu import GraphOptimization, OrtSession, ort_graph_level
from tippingpoint.backends.options import TypedOptions
from tippingpoint.backends.phases import TimedRegion
from tippingpoint.core.errors import (
    ModelFileError,
    ModelLoadError,
    RuntimeFailure,
    RuntimeNotInstalledError,
)
from tippingpoint.core.types import Availability, BackendDescription, Device, OptionValue

GPU_DIST = "onnxruntime-gpu"
INSTALL_HINT = "pip install 'tippingpoint[onnx-gpu]' in place of [onnx] (needs CUDA 12, cuDNN 9)"
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"


class ProviderFallbackError(RuntimeFailure):
    """ONNX Runtime created the session without the requested GPU provider (CPU fallback)."""


class ConvAlgoSearch(str, Enum):
    """cuDNN convolution algorithm search of the CUDA provider."""

    EXHAUSTIVE = "EXHAUSTIVE"
    HEURISTIC = "HEURISTIC"
    DEFAULT = "DEFAULT"


class OrtGpuOptions(BaseModel):
    """Options of the ONNX Runtime GPU backends; all are recorded in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: int = Field(default=0, ge=0)
    intra_op_threads: int = Field(default=0, ge=0, description="CPU threads for CPU-placed nodes")
    graph_optimization: GraphOptimization = GraphOptimization.ALL
    cudnn_conv_algo_search: ConvAlgoSearch = ConvAlgoSearch.EXHAUSTIVE
    gpu_mem_limit_mb: int = Field(default=0, ge=0, description="0 = no limit")
    trt_fp16: bool = Field(default=False, description="TensorRT: allow fp16 kernels")
    trt_int8: bool = Field(default=False, description="TensorRT: allow int8 (QDQ models)")
    trt_engine_cache_dir: str | None = Field(
        default=None, description="TensorRT: cache built engines here (cold start drops)"
    )
    trt_max_workspace_mb: int = Field(default=1024, ge=1)
    preload_dlls: bool = Field(
        default=True, description="onnxruntime.preload_dlls(): CUDA/cuDNN from nvidia-* wheels"
    )


def provider_options(provider: str, opts: OrtGpuOptions) -> dict[str, str]:
    """The provider-options dict ONNX Runtime takes for ``provider`` (all values strings)."""
    if provider == CUDA_PROVIDER:
        out = {
            "device_id": str(opts.device_id),
            "cudnn_conv_algo_search": opts.cudnn_conv_algo_search.value,
        }
        if opts.gpu_mem_limit_mb:
            out["gpu_mem_limit"] = str(opts.gpu_mem_limit_mb * 1024 * 1024)
        return out
    out = {
        "device_id": str(opts.device_id),
        "trt_fp16_enable": str(opts.trt_fp16),
        "trt_int8_enable": str(opts.trt_int8),
        "trt_max_workspace_size": str(opts.trt_max_workspace_mb * 1024 * 1024),
    }
    if opts.trt_engine_cache_dir:
        out["trt_engine_cache_enable"] = "True"
        out["trt_engine_cache_path"] = opts.trt_engine_cache_dir
    return out


def ensure_provider(session: Any, provider: str, notes: Sequence[str] = ()) -> None:
    """Raise ProviderFallbackError unless ``provider`` is among the session's actual providers.

    ``notes`` are warnings ONNX Runtime gave while creating the session, quoted in the error.
    """
    actual = list(session.get_providers())
    if provider in actual:
        return
    why = f"; onnxruntime said: {notes[0][:200]}" if notes else ""
    raise ProviderFallbackError(
        f"onnxruntime fell back to {', '.join(actual)} instead of {provider}{why}",
        "refusing to report CPU figures as GPU figures: check the CUDA/cuDNN/TensorRT "
        "libraries onnxruntime-gpu needs (ldconfig -p | grep -E 'cudnn|nvinfer') and the driver",
    )


def _gpu_dist_version() -> str | None:
    try:
        return version(GPU_DIST)
    except PackageNotFoundError:
        return None


class _OrtGpuBackend(TypedOptions[OrtGpuOptions]):
    """Shared loading of the CUDA and TensorRT backends."""

    name = ""
    provider = ""
    formats = (".onnx",)
    runtime = GPU_DIST
    network = False
    options_model = OrtGpuOptions

    def _providers(self, opts: OrtGpuOptions) -> list[tuple[str, dict[str, str]] | str]:
        raise NotImplementedError

    def availability(self) -> Availability:
        """Installed when the onnxruntime-gpu distribution is; imports nothing."""
        try:
            module = importlib.util.find_spec("onnxruntime") is not None
        except (ImportError, ValueError):
            module = False
        ver = _gpu_dist_version()
        return Availability(
            installed=module and ver is not None,
            runtime=self.runtime,
            version=ver,
            install_hint=INSTALL_HINT,
        )

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> OrtSession:
        """Create a session on the GPU provider; fail if ONNX Runtime put it elsewhere."""
        opts = self.parse_options(options)
        if not model.is_file():
            raise ModelFileError(f"model file not found: {model}", "check the path")
        if model.suffix not in self.formats:
            raise ModelFileError(
                f"the {self.name} backend loads .onnx files, not {model.name}",
                f"run this file on a backend for {model.suffix or 'its format'} "
                "(tippingpoint backends)",
            )
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeNotInstalledError("onnxruntime is not installed", INSTALL_HINT) from None
        if opts.preload_dlls and hasattr(ort, "preload_dlls"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ort.preload_dlls()
                except (OSError, RuntimeError):  # libraries not in wheels: the system's are used
                    pass
        available = ort.get_available_providers()
        if self.provider not in available:
            raise RuntimeNotInstalledError(
                f"{self.provider} is not in this onnxruntime {ort.__version__} "
                f"(available: {', '.join(available)})",
                INSTALL_HINT,
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = opts.intra_op_threads
        so.graph_optimization_level = ort_graph_level(ort, opts.graph_optimization)
        so.log_severity_level = 2  # warnings: why a GPU provider failed to load reaches stderr
        providers = self._providers(opts)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                sess = ort.InferenceSession(str(model), so, providers=providers)
            except Exception as exc:  # onnxruntime raises several private exception types
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ModelLoadError(
                    f"onnxruntime ({self.provider}) could not load {model.name}: {first[:300]}",
                    "check that the file is a complete, valid ONNX model (re-export it)",
                ) from exc
        ensure_provider(sess, self.provider, [str(w.message) for w in caught])
        recorded: dict[str, OptionValue] = dict(opts.model_dump(mode="json"))
        recorded["timed_region"] = TimedRegion.COPIES_AND_COMPUTE.value
        in_force = sess.get_provider_options().get(self.provider, {})
        for key in ("cudnn_conv_algo_search", "trt_fp16_enable", "trt_int8_enable"):
            if key in in_force:
                recorded[f"provider.{key}"] = str(in_force[key])
        description = BackendDescription(
            name=self.name,
            runtime=GPU_DIST,
            runtime_version=ort.__version__,
            device=Device.CUDA,
            device_name=_device_name(opts.device_id),
            threads=opts.intra_op_threads or None,
            providers=tuple(sess.get_providers()),
            options=recorded,
        )
        return OrtSession(sess, description)


def _device_name(index: int) -> str | None:
    from tippingpoint.backends.gpuinfo import gpu_info

    names = {g.index: g.name for g in gpu_info()}
    return names.get(index)


class OnnxRuntimeCudaBackend(_OrtGpuBackend):
    """ONNX Runtime with the CUDA execution provider."""

    name = "onnxruntime-cuda"
    provider = CUDA_PROVIDER

    def _providers(self, opts: OrtGpuOptions) -> list[tuple[str, dict[str, str]] | str]:
        return [(CUDA_PROVIDER, provider_options(CUDA_PROVIDER, opts)), CPU_PROVIDER]


class OnnxRuntimeTensorRtBackend(_OrtGpuBackend):
    """ONNX Runtime with the TensorRT execution provider (CUDA for nodes TensorRT declines)."""

    name = "onnxruntime-tensorrt"
    provider = TENSORRT_PROVIDER

    def _providers(self, opts: OrtGpuOptions) -> list[tuple[str, dict[str, str]] | str]:
        return [
            (TENSORRT_PROVIDER, provider_options(TENSORRT_PROVIDER, opts)),
            (CUDA_PROVIDER, provider_options(CUDA_PROVIDER, opts)),
            CPU_PROVIDER,
        ]
