"""ONNX Runtime on the CPU execution provider."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.base import SessionBase, TensorSpec
from tippingpoint.backends.options import TypedOptions, module_availability
from tippingpoint.core.errors import ModelFileError, ModelLoadError, RuntimeNotInstalledError
from tippingpoint.core.types import Availability, BackendDescription, Device, OptionValue

if TYPE_CHECKING:
    import numpy as np

ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


class GraphOptimization(str, Enum):
    """ONNX Runtime graph optimisation levels."""

    DISABLE = "disable"
    BASIC = "basic"
    EXTENDED = "extended"
    ALL = "all"


def ort_graph_level(ort: Any, level: GraphOptimization) -> Any:
    """The ``onnxruntime.GraphOptimizationLevel`` of ``level`` (``ort`` is the module)."""
    return {
        GraphOptimization.DISABLE: ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        GraphOptimization.BASIC: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        GraphOptimization.EXTENDED: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        GraphOptimization.ALL: ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]


class ExecutionMode(str, Enum):
    """Whether operators run one after another or in parallel."""

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"


class OrtCpuOptions(BaseModel):
    """Options of the ONNX Runtime CPU backend; all are recorded in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intra_op_threads: int = Field(default=0, ge=0, description="0 lets ONNX Runtime choose")
    inter_op_threads: int = Field(default=0, ge=0, description="0 lets ONNX Runtime choose")
    graph_optimization: GraphOptimization = GraphOptimization.ALL
    execution_mode: ExecutionMode = ExecutionMode.SEQUENTIAL
    enable_cpu_mem_arena: bool = True
    enable_mem_pattern: bool = True
    allow_spinning: bool = True


def _ort_spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in arg.shape)
    dtype = ORT_TYPES.get(arg.type, arg.type)
    return TensorSpec(name=arg.name, shape=shape, dtype=dtype)


class OrtSession(SessionBase):
    """An ``onnxruntime.InferenceSession`` behind the Session protocol."""

    def __init__(self, sess: Any, description: BackendDescription) -> None:
        # ONNX graph inputs carry no quantisation parameters: QDQ models quantise inside
        super().__init__(
            [_ort_spec(a) for a in sess.get_inputs()],
            [_ort_spec(a) for a in sess.get_outputs()],
            description,
        )
        self._sess = sess

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """A zero-argument call of ``InferenceSession.run`` on these feeds."""
        from functools import partial

        if len(feeds) != len(self._inputs):
            raise ValueError(f"expected {len(self._inputs)} inputs, got {len(feeds)}")
        feed_dict = {spec.name: arr for spec, arr in zip(self._inputs, feeds, strict=True)}
        return partial(self._sess.run, None, feed_dict)

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees it with the last reference)."""
        self._sess = None


class OnnxRuntimeCpuBackend(TypedOptions[OrtCpuOptions]):
    """ONNX Runtime with the CPU execution provider."""

    name = "onnxruntime"
    formats = (".onnx",)
    runtime = "onnxruntime"
    network = False
    options_model = OrtCpuOptions

    def availability(self) -> Availability:
        """Installed or not, from package metadata."""
        return module_availability(
            "onnxruntime",
            ("onnxruntime", "onnxruntime-gpu"),
            self.runtime,
            "pip install 'tippingpoint[onnx]'",
        )

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> OrtSession:
        """Create an InferenceSession restricted to the CPU provider."""
        opts = self.parse_options(options)
        if not model.is_file():
            raise ModelFileError(f"model file not found: {model}", "check the path")
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeNotInstalledError(
                "onnxruntime is not installed", "pip install 'tippingpoint[onnx]'"
            ) from None
        so = ort.SessionOptions()
        so.intra_op_num_threads = opts.intra_op_threads
        so.inter_op_num_threads = opts.inter_op_threads
        so.graph_optimization_level = ort_graph_level(ort, opts.graph_optimization)
        so.execution_mode = {
            ExecutionMode.SEQUENTIAL: ort.ExecutionMode.ORT_SEQUENTIAL,
            ExecutionMode.PARALLEL: ort.ExecutionMode.ORT_PARALLEL,
        }[opts.execution_mode]
        so.enable_cpu_mem_arena = opts.enable_cpu_mem_arena
        so.enable_mem_pattern = opts.enable_mem_pattern
        so.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if opts.allow_spinning else "0"
        )
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several private exception types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(
                f"onnxruntime could not load {model.name}: {first[:300]}",
                "check that the file is a complete, valid ONNX model (re-export or re-download it)",
            ) from exc
        threads = opts.intra_op_threads or None
        description = BackendDescription(
            name=self.name,
            runtime=self.runtime,
            runtime_version=ort.__version__,
            device=Device.CPU,
            threads=threads,
            providers=tuple(sess.get_providers()),
            options=opts.model_dump(mode="json"),
        )
        return OrtSession(sess, description)
