"""Value types shared by every layer: the frozen base model, tensor specs, backend descriptions.

These are part of the report contract (a report embeds them) and of the backend plugin API (a
session describes itself with them); they live here so that neither layer imports the other.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

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
