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
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tippingpoint.core.types import (
    Availability,
    BackendDescription,
    Device,
    Frozen,
    OptionValue,
    QuantParams,
    TensorSpec,
)

if TYPE_CHECKING:
    import numpy as np
    from typing_extensions import Self

__all__ = [
    "Availability",
    "Backend",
    "BackendDescription",
    "Device",
    "Frozen",
    "OptionValue",
    "QuantParams",
    "Session",
    "SessionBase",
    "TensorSpec",
]


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

    @property
    def resizes_fixed_batch(self) -> bool:
        """Whether the session runs batches other than a fixed batch dimension of 1 (by
        resizing the model's inputs); False when a fixed batch is fixed."""
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
    network: bool
    """True when its sessions reach a model over a network (they are
    :class:`~tippingpoint.backends.network.NetworkSession`): the model file is optional and the
    pre-run check validates options without loading."""

    def availability(self) -> Availability:
        """Whether the runtime is installed; must not import it."""
        ...

    def validate_options(self, options: Mapping[str, OptionValue]) -> None:
        """Check ``options`` without loading anything (the pre-run check calls it once per
        matrix group); raise ``InvalidOptionError`` naming the option and the valid ones."""
        ...

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> Session:
        """Create a session for ``model`` with validated ``options``.

        Raises ``InvalidOptionError`` for a bad option, ``RuntimeNotInstalledError`` when the
        runtime is missing and ``ModelLoadError`` when the runtime rejects the file.
        """
        ...


class SessionBase:
    """What every session shares: its specs and description, the context-manager plumbing.

    A subclass passes the model's inputs, outputs and its description to ``__init__`` and
    implements ``bind`` (and ``close`` when it holds resources).
    """

    def __init__(
        self,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        description: BackendDescription,
    ) -> None:
        self._inputs = tuple(inputs)
        self._outputs = tuple(outputs)
        self._description = description

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        """The model's inputs, in the order ``bind`` expects them."""
        return self._inputs

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        """The model's outputs, in the order a bound call returns them."""
        return self._outputs

    def describe(self) -> BackendDescription:
        """Runtime, version, device, threads, providers and every option in force."""
        return self._description

    @property
    def resizes_fixed_batch(self) -> bool:
        """A fixed batch dimension stays fixed unless a subclass says otherwise."""
        return False

    def close(self) -> None:
        """Release resources; the default does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
