"""The backend plugin interface.

A backend turns a model file into a :class:`Session`; a session exposes its inputs and outputs,
binds a batch of inputs into a zero-argument callable (the only thing the timing loop calls),
describes itself for the report, and closes. Third parties implement :class:`Backend` and
register it under the ``tippingpoint.backends`` entry-point group::

    [project.entry-points."tippingpoint.backends"]
    mybackend = "mypkg.backend:MyBackend"

Usage::

    backend = get_backend("onnxruntime")()
    with backend.load(Path("model.onnx"), {"intra_op_threads": 1}) as session:
        call = session.bind(feeds)      # feeds: one numpy array per input, in order
        outputs = call()                # one inference; returns the outputs
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np

OptionValue = str | int | float | bool | None
"""A backend option value as recorded in the report."""


class Frozen(BaseModel):
    """Base for immutable, validated value objects that reject unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class QuantParams(Frozen):
    """Affine quantisation of an integer tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int


class TensorSpec(Frozen):
    """Name, shape, dtype and quantisation of one model input or output.

    ``shape`` holds ``None`` for a dynamic dimension; ``dtype`` is a numpy dtype name.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    quant: QuantParams | None = None

    @property
    def is_dynamic(self) -> bool:
        """Whether any dimension is unknown until run time."""
        return any(d is None for d in self.shape)


class Device(str, Enum):
    """Where a session runs its computation."""

    CPU = "cpu"
    CUDA = "cuda"
    REMOTE = "remote"
    ACCELERATOR = "accelerator"


class BackendDescription(Frozen):
    """What a session says of itself: runtime, version, device and every option in force."""

    name: str = Field(description="registered backend name, e.g. 'onnxruntime'")
    runtime: str = Field(description="the runtime package that executes, e.g. 'onnxruntime'")
    runtime_version: str
    device: Device
    device_name: str | None = None
    threads: int | None = Field(default=None, description="intra-op threads in force, if known")
    providers: tuple[str, ...] = Field(default=(), description="execution providers actually used")
    options: dict[str, OptionValue] = Field(
        default_factory=dict, description="every option, default or not, as in force"
    )


class Availability(Frozen):
    """Whether a backend's runtime is installed, without importing it."""

    installed: bool
    runtime: str
    version: str | None = None
    install_hint: str = ""


@runtime_checkable
class Session(Protocol):
    """A loaded model, ready to run. Close it, or use it as a context manager."""

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        """The model's inputs, in the order ``bind`` expects them."""
        ...

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        """The model's outputs, in the order a bound call returns them."""
        ...

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """Prepare one batch; the returned callable runs one inference on it, to completion."""
        ...

    def describe(self) -> BackendDescription:
        """Runtime, version, device, threads, providers and every option in force."""
        ...

    def close(self) -> None:
        """Release the runtime's resources."""
        ...

    def __enter__(self) -> Session: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A plugin that loads model files into sessions."""

    name: str
    """The name users select it by (the entry-point name)."""
    formats: tuple[str, ...]
    """File suffixes it loads, e.g. ('.onnx',)."""

    def availability(self) -> Availability:
        """Whether the runtime is installed; must not import it."""
        ...

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> Session:
        """Create a session for ``model`` with validated ``options``.

        Raises ``InvalidOptionError`` for a bad option, ``RuntimeNotInstalledError`` when the
        runtime is missing and ``ModelLoadError`` when the runtime rejects the file.
        """
        ...


class SessionBase:
    """Context-manager plumbing for sessions; subclasses implement the protocol's methods."""

    def close(self) -> None:
        """Release resources; the default does nothing."""

    def __enter__(self) -> SessionBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
