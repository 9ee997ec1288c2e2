"""Where a remote model's tensors come from, for every network transport (HTTP, gRPC).

A model behind an endpoint may exist only there (``-m NAME --endpoint URL``). Its input and
output specs come from, in order: the server's metadata when it lists inputs; else a local model
file, when one is given (read by the first installed local backend that loads its format);
else ``--opt inputs=NAME:DTYPE:SHAPE``. With none of these the run cannot build a request, a
usage error naming all three ways. Where the server's metadata and a local file disagree, the
server's specs are used and a warning names both.

Usage::

    local = local_specs(Path("mlp-tiny.onnx"))            # None without a file
    chosen = choose_specs("mlp", meta, local, option_specs, has_metadata=True)
    chosen.inputs, chosen.source, chosen.warning
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.schema import SpecSource
from tippingpoint.core.types import TensorSpec

Specs = tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]
"""Input and output specs."""
LOCAL_READERS = ("onnxruntime", "litert", "torch")
"""Local backends that may read a model file's tensors, in order of preference."""


@dataclass(frozen=True)
class ChosenSpecs:
    """The specs a network session sends and decodes with, where they came from, and the
    warning when the server and a local file disagree."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    source: SpecSource
    warning: str | None = None


def local_specs(model: Path) -> Specs | None:
    """The tensors of the local model file ``model``, read by the first installed local backend
    that loads its format; None when there is no such file or no backend reads it."""
    if not model.is_file():
        return None
    from tippingpoint.backends.registry import backend_names, get_backend

    for name in LOCAL_READERS:
        if name not in backend_names():
            continue
        cls = get_backend(name)
        plugin = cls()
        if model.suffix not in cls.formats or not plugin.availability().installed:
            continue
        try:
            session = plugin.load(model, {})
        except Exception:  # a file this runtime cannot read: try the next, else no specs
            continue
        try:
            return tuple(session.inputs), tuple(session.outputs)
        finally:
            session.close()
    return None


def describe_specs(specs: tuple[TensorSpec, ...]) -> str:
    """``a:float32[-1,4], b:int64[1,2]`` for a warning."""
    return ", ".join(
        f"{s.name}:{s.dtype}[{','.join('-1' if d is None else str(d) for d in s.shape)}]"
        for s in specs
    )


def _agree(a: tuple[TensorSpec, ...], b: tuple[TensorSpec, ...]) -> bool:
    """Same names, dtypes and ranks, and equal dimensions where both are fixed."""
    if [(s.name, s.dtype, len(s.shape)) for s in a] != [(s.name, s.dtype, len(s.shape)) for s in b]:
        return False
    return all(
        x is None or y is None or x == y
        for sa, sb in zip(a, b, strict=True)
        for x, y in zip(sa.shape, sb.shape, strict=True)
    )


def choose_specs(
    model_name: str,
    metadata: Specs | None,
    local: Specs | None,
    option: tuple[TensorSpec, ...],
    *,
    local_path: Path | None = None,
    has_metadata: bool = True,
) -> ChosenSpecs:
    """The specs of a remote model by the order above. ``metadata`` is None when the protocol
    has no metadata (then an empty spec list is allowed: a template may take no input)."""
    if metadata is not None and metadata[0]:
        warning = None
        if local is not None and not _agree(metadata[0], local[0]):
            warning = (
                f"the server's metadata for '{model_name}' ({describe_specs(metadata[0])}) does "
                f"not match the local file {local_path} ({describe_specs(local[0])}); the "
                "server's specs are used"
            )
        elif option and not _agree(metadata[0], option):
            warning = (
                f"--opt inputs= ({describe_specs(option)}) is not used: the server's metadata "
                f"for '{model_name}' lists {describe_specs(metadata[0])}"
            )
        return ChosenSpecs(metadata[0], metadata[1], SpecSource.METADATA, warning)
    if local is not None and local[0]:
        outputs = metadata[1] if metadata is not None and metadata[1] else local[1]
        return ChosenSpecs(local[0], outputs, SpecSource.FILE)
    if option or not has_metadata:
        outputs = metadata[1] if metadata is not None else ()
        return ChosenSpecs(option, outputs, SpecSource.OPTION)
    raise InvalidOptionError(
        f"the server's metadata for '{model_name}' lists no inputs, and there is no local file "
        "or inputs option to take them from",
        "pass a local copy of the model (-m path/to/model.onnx with --opt model_name="
        f"{model_name}), or --opt inputs=NAME:DTYPE:SHAPE (e.g. x:FP32:1x16), or serve the "
        "model with metadata that lists its inputs",
    )
