"""LiteRT (TensorFlow Lite) on the CPU, with XNNPACK on or off and optional external delegates.

The runtime is ``ai_edge_litert`` (the maintained successor of ``tflite_runtime``); where only
``tflite_runtime`` is installed (older boards, e.g. Debian buster images of a Coral dev board)
it is used instead, and the report records which one ran and its version.

Usage::

    backend = LiteRtBackend()
    options = {"threads": 4, "delegate": "libedgetpu.so.1", "delegate_options": "device=usb"}
    with backend.load(Path("model_int8.tflite"), options) as session:
        call = session.bind(feeds)
        outputs = call()
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tippingpoint.backends.base import QuantParams, SessionBase, TensorSpec
from tippingpoint.backends.options import TypedOptions
from tippingpoint.core.errors import (
    FIXED_BATCH_HINT,
    FixedBatchError,
    InvalidOptionError,
    ModelFileError,
    ModelLoadError,
    RuntimeNotInstalledError,
)
from tippingpoint.core.types import Availability, BackendDescription, Device, OptionValue

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = "pip install 'tippingpoint[litert]' (or 'tflite-runtime' on boards without it)"


class LiteRuntime(str, Enum):
    """Which Python package provides the interpreter."""

    AUTO = "auto"
    AI_EDGE_LITERT = "ai-edge-litert"
    TFLITE_RUNTIME = "tflite-runtime"


RUNTIME_MODULES = {
    LiteRuntime.AI_EDGE_LITERT: "ai_edge_litert",
    LiteRuntime.TFLITE_RUNTIME: "tflite_runtime",
}
"""Distribution name -> import name; AUTO tries them in this order."""


class LiteRtOptions(BaseModel):
    """Options of the LiteRT backend; all are recorded in the report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threads: int = Field(default=0, ge=0, description="interpreter threads; 0 = runtime default")
    xnnpack: bool = Field(default=True, description="apply the default XNNPACK delegate")
    delegate: str | None = Field(
        default=None, description="external delegate library, e.g. libedgetpu.so.1"
    )
    delegate_options: str = Field(
        default="", description="delegate options as 'key=value;key=value'"
    )
    runtime: LiteRuntime = LiteRuntime.AUTO

    @field_validator("delegate_options")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        parse_delegate_options(value)
        return value


def parse_delegate_options(text: str) -> dict[str, str]:
    """Parse 'key=value;key=value' into a dict; raises ValueError on an item without '='."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"delegate option '{item}' is not key=value")
        out[key.strip()] = value.strip()
    return out


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _dist_version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def pick_runtime(choice: LiteRuntime) -> LiteRuntime | None:
    """The installed runtime to use for ``choice`` (AUTO prefers ai-edge-litert), or None."""
    if choice is not LiteRuntime.AUTO:
        return choice if _installed(RUNTIME_MODULES[choice]) else None
    for runtime, module in RUNTIME_MODULES.items():
        if _installed(module):
            return runtime
    return None


@dataclass(frozen=True)
class _Runtime:
    """The interpreter module of the chosen package."""

    kind: LiteRuntime
    module: Any

    @property
    def version(self) -> str:
        """The package version, from metadata or the module."""
        return _dist_version(self.kind.value) or str(getattr(self.module, "__version__", "?"))


def _import_runtime(choice: LiteRuntime) -> _Runtime:
    kind = pick_runtime(choice)
    if kind is None:
        wanted = "ai-edge-litert or tflite-runtime" if choice is LiteRuntime.AUTO else choice.value
        raise RuntimeNotInstalledError(f"{wanted} is not installed", INSTALL_HINT)
    if kind is LiteRuntime.TFLITE_RUNTIME:
        _require_numpy1()
    module = importlib.import_module(f"{RUNTIME_MODULES[kind]}.interpreter")
    return _Runtime(kind, module)


def _require_numpy1() -> None:
    """tflite-runtime (last release 2.14) is built against numpy 1 and fails obscurely on 2."""
    import numpy as np

    if int(np.__version__.split(".")[0]) >= 2:
        raise RuntimeNotInstalledError(
            f"tflite-runtime cannot run with numpy {np.__version__} (it needs numpy 1.x)",
            "pip install 'tippingpoint[tflite]' (pins numpy<2), or use ai-edge-litert: "
            "pip install 'tippingpoint[litert]'",
        )


def tensor_spec(detail: Mapping[str, Any]) -> TensorSpec:
    """A TensorSpec from one entry of ``get_input_details()``/``get_output_details()``.

    Dynamic dimensions (-1 in ``shape_signature``) become None; an integer tensor with a
    non-zero per-tensor scale carries its QuantParams.
    """
    import numpy as np

    signature = detail.get("shape_signature")
    dims = signature if signature is not None and len(signature) else detail["shape"]
    shape = tuple(int(d) if int(d) >= 0 else None for d in dims)
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    quant = None
    if dtype.kind in "iu" and scale:
        quant = QuantParams(scale=float(scale), zero_point=int(zero_point))
    return TensorSpec(name=str(detail["name"]), shape=shape, dtype=dtype.name, quant=quant)


class LiteRtSession(SessionBase):
    """A LiteRT ``Interpreter`` behind the Session protocol.

    A bound call copies the inputs into the interpreter, invokes it and copies the outputs
    out, as an application does for each new query.
    """

    def __init__(self, interpreter: Any, description: BackendDescription) -> None:
        self._in = list(interpreter.get_input_details())
        self._out = list(interpreter.get_output_details())
        super().__init__(
            [tensor_spec(d) for d in self._in], [tensor_spec(d) for d in self._out], description
        )
        self._interp = interpreter
        self._loaded_shapes = [[int(x) for x in d["shape"]] for d in self._in]

    resizes_fixed_batch = True
    """``bind`` tries to resize a fixed batch of 1 (see :meth:`bind`); input generation may ask
    for larger batches."""

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """Resize for these shapes if needed; the callable sets inputs, invokes, reads outputs.

        Dynamic dimensions resize strictly. A fixed batch of 1 is resized non-strictly, as
        LiteRT allows when the graph does not bake the batch in; when the runtime refuses (or an
        output does not follow the batch) the interpreter goes back to its original shapes and
        :class:`FixedBatchError` says the model needs a re-export with a dynamic batch.
        """
        if len(feeds) != len(self._in):
            raise ValueError(f"expected {len(self._in)} inputs, got {len(feeds)}")
        interp = self._interp
        resized = False
        batch: int | None = None
        for spec, detail, feed in zip(self._inputs, self._in, feeds, strict=True):
            shape = tuple(feed.shape)
            if tuple(detail["shape"]) == shape:
                continue
            fixed_batch = bool(spec.shape) and spec.shape[0] == 1 and len(shape) == len(spec.shape)
            if fixed_batch and shape[0] != 1:
                batch = shape[0]
            try:
                interp.resize_tensor_input(detail["index"], list(shape), strict=not fixed_batch)
            except (ValueError, RuntimeError) as exc:
                if batch is None:
                    raise
                self._refuse_batch(spec.name, batch, exc)
            resized = True
        if resized:
            try:
                interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                if batch is None:
                    raise
                self._refuse_batch(self._inputs[0].name, batch, exc)
            self._in = list(interp.get_input_details())
            self._out = list(interp.get_output_details())
            if batch is not None:
                follows = all(
                    len(d["shape"]) and int(d["shape"][0]) == batch
                    for spec, d in zip(self._outputs, self._out, strict=True)
                    if spec.shape and spec.shape[0] == 1
                )
                if not follows:
                    self._refuse_batch(self._inputs[0].name, batch, None)
        pairs = [(d["index"], feed) for d, feed in zip(self._in, feeds, strict=True)]
        out_idx = [d["index"] for d in self._out]
        set_tensor, invoke, get_tensor = interp.set_tensor, interp.invoke, interp.get_tensor

        def call() -> list[np.ndarray]:
            for index, feed in pairs:
                set_tensor(index, feed)
            invoke()
            return [get_tensor(i) for i in out_idx]

        return call

    def _refuse_batch(self, name: str, batch: int, exc: BaseException | None) -> NoReturn:
        """Back to the model's own shapes, then the one-line FixedBatchError."""
        interp = self._interp
        try:
            for detail, shape in zip(self._in, self._loaded_shapes, strict=True):
                interp.resize_tensor_input(detail["index"], shape, strict=False)
            interp.allocate_tensors()
        except (ValueError, RuntimeError):
            pass
        self._in = list(interp.get_input_details())
        self._out = list(interp.get_output_details())
        why = "an output keeps batch 1"
        if exc is not None:
            lines = str(exc).strip().splitlines()
            why = lines[0] if lines else type(exc).__name__
            cut = why.find("failed to prepare")  # the runtime repeats earlier errors after it
            why = (why[: cut + len("failed to prepare")] if cut >= 0 else why)[:160]
        raise FixedBatchError(
            f"model input '{name}' has a fixed batch of 1 and LiteRT cannot resize it to "
            f"{batch} ({why})",
            FIXED_BATCH_HINT,
        )

    def close(self) -> None:
        """Drop the interpreter (and with it any delegate)."""
        self._interp = None


class LiteRtBackend(TypedOptions[LiteRtOptions]):
    """LiteRT / TensorFlow Lite interpreter: ``.tflite`` files on CPU or an external delegate."""

    name = "litert"
    formats = (".tflite",)
    runtime = "ai-edge-litert"
    network = False
    options_model = LiteRtOptions

    def availability(self) -> Availability:
        """Installed or not (either package), from module specs and metadata; imports nothing."""
        kind = pick_runtime(LiteRuntime.AUTO)
        return Availability(
            installed=kind is not None,
            runtime=kind.value if kind is not None else self.runtime,
            version=_dist_version(kind.value) if kind is not None else None,
            install_hint=INSTALL_HINT,
        )

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> LiteRtSession:
        """Create an interpreter with the requested threads, XNNPACK setting and delegate."""
        opts = self.parse_options(options)
        if not model.is_file():
            raise ModelFileError(f"model file not found: {model}", "check the path")
        if model.suffix not in self.formats:
            raise ModelFileError(
                f"the {self.name} backend loads .tflite files, not {model.name}",
                f"run this file on a backend for {model.suffix or 'its format'} "
                "(tippingpoint backends)",
            )
        rt = _import_runtime(opts.runtime)
        delegates = []
        if opts.delegate:
            delegate_opts = parse_delegate_options(opts.delegate_options)
            _check_loadable(opts.delegate)
            try:
                delegates.append(rt.module.load_delegate(opts.delegate, delegate_opts or None))
            except (ValueError, RuntimeError, OSError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise InvalidOptionError(
                    f"cannot load LiteRT delegate '{opts.delegate}': {first[:200]}",
                    "check the library path (e.g. /usr/lib/libedgetpu.so.1), its options and "
                    "that the accelerator is attached",
                ) from None
        kwargs: dict[str, Any] = {
            "model_path": str(model),
            "experimental_delegates": delegates or None,
            "num_threads": opts.threads or None,
        }
        if not opts.xnnpack:
            kwargs["experimental_op_resolver_type"] = (
                rt.module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            )
        try:
            interpreter = rt.module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelLoadError(
                f"{rt.kind.value} could not load {model.name}: {first[:300]}",
                "check that the file is a complete, valid .tflite model (re-export it)",
            ) from exc
        description = BackendDescription(
            name=self.name,
            runtime=rt.kind.value,
            runtime_version=rt.version,
            device=Device.ACCELERATOR if opts.delegate else Device.CPU,
            device_name=Path(opts.delegate).name if opts.delegate else None,
            threads=opts.threads or None,
            providers=_delegate_names(opts, delegated_nodes(interpreter)),
            options=opts.model_dump(mode="json"),
        )
        return LiteRtSession(interpreter, description)


def _check_loadable(library: str) -> None:
    """dlopen the delegate first: a runtime's Delegate object that fails to open its library
    raises again from ``__del__``."""
    import ctypes

    try:
        ctypes.CDLL(library)
    except OSError as exc:
        raise InvalidOptionError(
            f"cannot load LiteRT delegate '{library}': {str(exc)[:200]}",
            "check the library path (e.g. /usr/lib/libedgetpu.so.1) and that its dependencies "
            "are installed",
        ) from None


def delegated_nodes(interpreter: Any) -> int | None:
    """How many nodes of the executed graph a delegate took over; None if the runtime hides it."""
    try:
        ops = interpreter._get_ops_details()
    except (AttributeError, ValueError, RuntimeError):
        return None
    return sum(1 for op in ops if op.get("op_name") == "DELEGATE")


def _delegate_names(opts: LiteRtOptions, delegated: int | None) -> tuple[str, ...]:
    """Delegates that run nodes, then the built-in kernels.

    XNNPACK is listed only when it took nodes (it declines graphs it cannot run); with an
    external delegate as well the two cannot be told apart, and both are listed.
    """
    names: list[str] = []
    if opts.delegate:
        names.append(Path(opts.delegate).name)
    if opts.xnnpack and (delegated is None or delegated > 0 or opts.delegate):
        names.append("xnnpack")
    names.append("builtin")
    return tuple(names)
