"""PyTorch: ``torch.export`` programs (``.pt2``) in eager mode or through ``torch.compile``, on
the CPU or a CUDA GPU, in fp32, fp16 or bf16.

The model file is an ExportedProgram written by ``torch.export.save``, so this backend is
file-based like the others and needs no Python class of the model. The suite's small models
(``pt2=True`` in the catalogue) have a committed fp32 ``.pt2`` next to their ``.onnx`` and
``.tflite`` files (``tippingpoint.models.exporters.torch_export``); fp16 and bf16 are this
backend's ``dtype`` option applied to it, not separate files. TorchScript files carry no
input shapes and are refused with a hint to re-export.

On CUDA the bound call copies the inputs to the GPU, runs the forward pass, copies the outputs
back and returns only when the GPU has finished, so the wall-clock latency is the true one.
With ``phase_events`` on (the default) CUDA events time the three phases apart; the report
carries them under ``results.phases`` and says what the end-to-end latency spans.

Usage::

    backend = TorchBackend()
    with backend.load(Path("resnet.pt2"), {"device": "cuda", "dtype": "fp16"}) as session:
        call = session.bind(feeds)
        outputs = call()
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.base import SessionBase, TensorSpec
from tippingpoint.backends.options import TypedOptions
from tippingpoint.backends.phases import PhaseSamples, TimedRegion
from tippingpoint.backends.torch_cuda import timing_events
from tippingpoint.core.errors import (
    InvalidOptionError,
    ModelFileError,
    ModelLoadError,
    RuntimeNotInstalledError,
)
from tippingpoint.core.types import Availability, BackendDescription, Device, OptionValue

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = "pip install 'tippingpoint[torch]'"


class TorchDeviceKind(str, Enum):
    """Where the forward pass runs."""

    CPU = "cpu"
    CUDA = "cuda"


class Precision(str, Enum):
    """Parameter and activation precision; inputs and outputs stay in the model's own dtypes."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


class ExecMode(str, Enum):
    """Eager execution of the exported graph, or ``torch.compile`` of it."""

    EAGER = "eager"
    COMPILE = "compile"


class CompileMode(str, Enum):
    """``torch.compile`` modes."""

    DEFAULT = "default"
    REDUCE_OVERHEAD = "reduce-overhead"
    MAX_AUTOTUNE = "max-autotune"
    MAX_AUTOTUNE_NO_CUDAGRAPHS = "max-autotune-no-cudagraphs"


class TorchOptions(BaseModel):
    """Options of the PyTorch backend; all are recorded in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: TorchDeviceKind = TorchDeviceKind.CPU
    device_index: int = Field(default=0, ge=0)
    dtype: Precision = Precision.FP32
    mode: ExecMode = ExecMode.EAGER
    compile_mode: CompileMode = CompileMode.DEFAULT
    compile_backend: str = Field(default="inductor", description="a torch._dynamo backend name")
    threads: int = Field(default=0, ge=0, description="torch.set_num_threads; 0 leaves it")
    cudnn_benchmark: bool = Field(default=False, description="torch.backends.cudnn.benchmark")
    tf32: bool = Field(default=False, description="allow TF32 in matmul and cuDNN convolutions")
    phase_events: bool = Field(default=True, description="time H2D/compute/D2H with CUDA events")


TORCH_TO_NUMPY = {
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "float64": "float64",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}


def _installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def _torch_dtype(torch: Any, precision: Precision) -> Any:
    return {
        Precision.FP32: torch.float32,
        Precision.FP16: torch.float16,
        Precision.BF16: torch.bfloat16,
    }[precision]


def _spec(name: str, value: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in value.shape)
    dtype = str(value.dtype).removeprefix("torch.")
    return TensorSpec(name=name, shape=shape, dtype=TORCH_TO_NUMPY.get(dtype, dtype))


def exported_specs(program: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Input and output TensorSpecs of an ExportedProgram, from its graph's fake tensors.

    Symbolic (dynamic) dimensions become None.
    """
    signature = program.graph_signature
    user_inputs = list(signature.user_inputs)
    nodes = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = tuple(_spec(name, nodes[name].meta["val"]) for name in user_inputs)
    output_node = next(n for n in program.graph.nodes if n.op == "output")
    values = output_node.args[0]
    n_out = len(signature.user_outputs)
    user_values = list(values)[-n_out:] if n_out else []
    outputs = tuple(
        _spec(str(name), node.meta["val"])
        for name, node in zip(signature.user_outputs, user_values, strict=True)
    )
    return inputs, outputs


def _flatten(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flatten(item)]
    if isinstance(out, dict):
        return [t for key in out for t in _flatten(out[key])]
    return [out]


@dataclass(frozen=True)
class _GlobalFlags:
    """Process-wide torch settings a session changes, to restore on close."""

    threads: int
    cudnn_benchmark: bool
    matmul_tf32: bool
    cudnn_tf32: bool

    @classmethod
    def read(cls, torch: Any) -> _GlobalFlags:
        """The settings now in force."""
        return cls(
            threads=torch.get_num_threads(),
            cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
            matmul_tf32=bool(torch.backends.cuda.matmul.allow_tf32),
            cudnn_tf32=bool(torch.backends.cudnn.allow_tf32),
        )

    def apply(self, torch: Any) -> None:
        """Put these settings in force."""
        torch.set_num_threads(self.threads)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = self.matmul_tf32
        torch.backends.cudnn.allow_tf32 = self.cudnn_tf32


class TorchSession(SessionBase):
    """An exported torch program on one device, behind the Session protocol."""

    def __init__(
        self,
        module: Any,
        opts: TorchOptions,
        specs: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]],
        description: BackendDescription,
        saved_flags: _GlobalFlags,
    ) -> None:
        super().__init__(*specs, description)
        self._module = module
        self._opts = opts
        self._saved_flags = saved_flags
        self._phases: PhaseSamples | None = (
            PhaseSamples() if opts.device is TorchDeviceKind.CUDA and opts.phase_events else None
        )

    @property
    def timed_region(self) -> TimedRegion:
        """What a bound call spans."""
        if self._opts.device is TorchDeviceKind.CUDA:
            return TimedRegion.COPIES_AND_COMPUTE
        return TimedRegion.COMPUTE

    def phase_samples(self) -> PhaseSamples | None:
        """Per-query H2D/compute/D2H times since the last reset (CUDA with phase_events)."""
        return self._phases

    def reset_phases(self) -> None:
        """Forget phase samples, e.g. those of the warm-up."""
        if self._phases is not None:
            self._phases.clear()

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """Stage the feeds; the callable runs one forward pass and returns numpy outputs."""
        import torch

        if len(feeds) != len(self._inputs):
            raise ValueError(f"expected {len(self._inputs)} inputs, got {len(feeds)}")
        compute_dtype = _torch_dtype(torch, self._opts.dtype)
        out_dtypes = [getattr(torch, s.dtype, None) for s in self._outputs]
        module = self._module

        def restore(outs: list[Any]) -> list[Any]:
            # back to the exported output dtypes (fp16/bf16 runs return what fp32 ones do)
            return [
                o.to(dt) if dt is not None and o.dtype != dt else o
                for o, dt in zip(outs, out_dtypes, strict=False)
            ]

        def cast(t: Any) -> Any:
            return t.to(compute_dtype) if t.is_floating_point() else t

        if self._opts.device is TorchDeviceKind.CPU:
            host = [cast(torch.from_numpy(f)) for f in feeds]

            def call_cpu() -> list[np.ndarray]:
                with torch.inference_mode():
                    outs = restore(_flatten(module(*host)))
                return [o.numpy() for o in outs]

            return call_cpu

        device = torch.device("cuda", self._opts.device_index)
        sources = [torch.from_numpy(f) for f in feeds]
        pinned = [torch.empty_like(s).pin_memory() for s in sources]
        on_device = [torch.empty_like(s, device=device) for s in sources]
        stream = torch.cuda.current_stream(device)
        phases = self._phases

        if phases is None:

            def call_cuda() -> list[np.ndarray]:
                with torch.inference_mode():
                    for src, pin, dev in zip(sources, pinned, on_device, strict=True):
                        pin.copy_(src)
                        dev.copy_(pin, non_blocking=True)
                    outs = restore(_flatten(module(*[cast(d) for d in on_device])))
                    host_outs = [o.to("cpu") for o in outs]
                stream.synchronize()
                return [o.numpy() for o in host_outs]

            return call_cuda

        events = timing_events(4)
        h2d, compute, d2h = phases.h2d_ns.append, phases.compute_ns.append, phases.d2h_ns.append

        def call_cuda_timed() -> list[np.ndarray]:
            with torch.inference_mode():
                events[0].record(stream)
                for src, pin, dev in zip(sources, pinned, on_device, strict=True):
                    pin.copy_(src)
                    dev.copy_(pin, non_blocking=True)
                events[1].record(stream)
                outs = restore(_flatten(module(*[cast(d) for d in on_device])))
                events[2].record(stream)
                host_outs = [o.to("cpu") for o in outs]
                events[3].record(stream)
            events[3].synchronize()
            h2d(int(events[0].elapsed_time(events[1]) * 1e6))
            compute(int(events[1].elapsed_time(events[2]) * 1e6))
            d2h(int(events[2].elapsed_time(events[3]) * 1e6))
            return [o.numpy() for o in host_outs]

        return call_cuda_timed

    def close(self) -> None:
        """Drop the module and restore the process-wide torch settings changed by load()."""
        if self._module is None:
            return
        import torch

        self._module = None
        self._saved_flags.apply(torch)
        if self._opts.device is TorchDeviceKind.CUDA:
            torch.cuda.empty_cache()


class TorchBackend(TypedOptions[TorchOptions]):
    """PyTorch on CPU or CUDA: ExportedProgram files (``torch.export.save``), eager or compiled."""

    name = "torch"
    formats = (".pt2", ".pt")
    runtime = "torch"
    network = False
    options_model = TorchOptions

    def availability(self) -> Availability:
        """Installed or not, from the module spec and package metadata; imports nothing."""
        try:
            ver: str | None = version("torch")
        except PackageNotFoundError:
            ver = None
        return Availability(
            installed=_installed(), runtime=self.runtime, version=ver, install_hint=INSTALL_HINT
        )

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> TorchSession:
        """Load the exported program, move it to the device and precision, compile if asked."""
        opts = self.parse_options(options)
        if not model.is_file():
            raise ModelFileError(f"model file not found: {model}", "check the path")
        if model.suffix not in self.formats:
            raise ModelFileError(
                f"the torch backend loads torch.export files (.pt2), not {model.name}",
                "export the model with torch.export.save(), or run this file on a backend "
                f"for {model.suffix or 'its format'} (tippingpoint backends)",
            )
        if not _installed():
            raise RuntimeNotInstalledError("torch is not installed", INSTALL_HINT)
        import torch

        if opts.device is TorchDeviceKind.CUDA:
            _require_cuda(torch, opts.device_index)
        if opts.mode is ExecMode.COMPILE:
            _require_compile_backend(torch, opts.compile_backend)
        program = _load_program(torch, model)
        specs = exported_specs(program)
        if opts.device is TorchDeviceKind.CUDA:
            from torch.export.passes import move_to_device_pass

            program = move_to_device_pass(program, f"cuda:{opts.device_index}")
        module = program.module()
        module = module.to(_torch_dtype(torch, opts.dtype))
        for p in module.parameters():
            p.requires_grad_(False)

        saved = _GlobalFlags.read(torch)
        _GlobalFlags(
            threads=opts.threads or saved.threads,
            cudnn_benchmark=opts.cudnn_benchmark,
            matmul_tf32=opts.tf32,
            cudnn_tf32=opts.tf32,
        ).apply(torch)
        if opts.mode is ExecMode.COMPILE:
            with warnings.catch_warnings():
                # inductor's import touches torch.jit, which torch itself deprecates
                warnings.filterwarnings(
                    "ignore",
                    message=r".*torch\.jit\.\w+.* is deprecated",
                    category=DeprecationWarning,
                )
                module = torch.compile(
                    module, mode=opts.compile_mode.value, backend=opts.compile_backend
                )
        description = _describe(torch, opts, self.name)
        return TorchSession(module, opts, specs, description, saved)


def _load_program(torch: Any, model: Path) -> Any:
    import zipfile

    if not zipfile.is_zipfile(model):
        raise ModelLoadError(
            f"torch could not load {model.name}: not a torch archive",
            "check that the file is a complete torch.export.save() file (re-export it)",
        )
    with zipfile.ZipFile(model) as zf:
        names = zf.namelist()
    if not any(n.endswith("/archive_format") for n in names):
        kind = "a TorchScript archive" if any("/code/" in n for n in names) else "a torch pickle"
        raise ModelLoadError(
            f"{model.name} is {kind}, not a torch.export program (no input shapes to read)",
            "export the model with torch.export.export() and torch.export.save() to a .pt2",
        )
    try:
        return torch.export.load(str(model))
    except Exception as exc:  # torch raises many private exception types for a bad archive
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(
            f"torch could not load {model.name}: {first[:300]}",
            "check that the file is a complete torch.export.save() file (re-export it)",
        ) from exc


def _require_cuda(torch: Any, index: int) -> None:
    if not torch.cuda.is_available():
        build = "a CPU-only torch build" if torch.version.cuda is None else "no usable GPU/driver"
        raise RuntimeNotInstalledError(
            f"torch cannot use CUDA here ({build}, torch {torch.__version__})",
            "install a CUDA build of torch on a machine with an NVIDIA driver, "
            "or use --opt torch.device=cpu",
        )
    if index >= torch.cuda.device_count():
        raise InvalidOptionError(
            f"torch option device_index={index} but only {torch.cuda.device_count()} GPU(s)",
            "pick an index below the GPU count",
        )


def _require_compile_backend(torch: Any, backend: str) -> None:
    known = torch._dynamo.list_backends(exclude_tags=())
    if backend not in known:
        raise InvalidOptionError(
            f"unknown torch compile_backend '{backend}'", f"known: {', '.join(sorted(known))}"
        )


def _describe(torch: Any, opts: TorchOptions, name: str) -> BackendDescription:
    recorded: dict[str, OptionValue] = dict(opts.model_dump(mode="json"))
    region = (
        TimedRegion.COPIES_AND_COMPUTE
        if opts.device is TorchDeviceKind.CUDA
        else TimedRegion.COMPUTE
    )
    recorded["timed_region"] = region.value
    device_name = None
    if opts.device is TorchDeviceKind.CUDA:
        from tippingpoint.backends.gpuinfo import torch_cuda_settings

        recorded.update(torch_cuda_settings())
        device_name = torch.cuda.get_device_name(opts.device_index)
    return BackendDescription(
        name=name,
        runtime="torch",
        runtime_version=str(torch.__version__),
        device=Device.CUDA if opts.device is TorchDeviceKind.CUDA else Device.CPU,
        device_name=device_name,
        threads=torch.get_num_threads(),
        providers=(f"{opts.mode.value}:{opts.compile_backend}",)
        if opts.mode is ExecMode.COMPILE
        else ("eager",),
        options=recorded,
    )
