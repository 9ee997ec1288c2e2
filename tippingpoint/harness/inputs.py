"""Input generation from tensor specs: the right dtype, shape and quantisation, seeded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tippingpoint.core.errors import FIXED_BATCH_HINT, FixedBatchError, InvalidShapeError
from tippingpoint.core.types import TensorSpec

TOKEN_ID_RANGE = (0, 1000)
"""Integer inputs that are not quantised activations are treated as token ids in this range."""


def parse_shape_overrides(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Parse ``name=1x3x224x224`` strings from ``--shape`` into a mapping."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            shape = tuple(int(d) for d in dims.lower().split("x"))
            if any(d <= 0 for d in shape):
                raise ValueError
        except ValueError:
            raise InvalidShapeError(
                f"cannot parse --shape '{item}'",
                "write it as NAME=DIMxDIMx..., e.g. input=1x3x224x224",
            ) from None
        out[name] = shape
    return out


def _batch_dim(spec: TensorSpec, batch_size: int, resizable: bool) -> int | None:
    """Dimension 0 for ``batch_size``: a dynamic one is the batch; a fixed 1 becomes the batch
    only on a session that can resize it (``resizable``). None for a scalar input."""
    if not spec.shape:
        return None
    first = spec.shape[0]
    if first is None:
        return batch_size
    if first == 1 and batch_size > 1:
        if not resizable:
            raise FixedBatchError(
                f"model input '{spec.name}' has a fixed batch of 1; batch size {batch_size} "
                "cannot run",
                FIXED_BATCH_HINT,
            )
        return batch_size
    return first


def resolve_shape(
    spec: TensorSpec,
    batch_size: int,
    overrides: Mapping[str, tuple[int, ...]],
    *,
    resizable: bool = False,
) -> tuple[int, ...]:
    """The concrete shape of an input for ``batch_size``.

    A dynamic first dimension is the batch and always takes ``batch_size``, also under a
    ``--shape`` override; any other dynamic dimension needs ``--shape``, whose other dimensions
    must agree with the fixed ones. A static first dimension of 1 with batch_size > 1 is a
    :class:`FixedBatchError` unless the session can resize it (``resizable``).
    """
    over = overrides.get(spec.name)
    if over is not None and (
        len(over) != len(spec.shape)
        or any(d is not None and d != s for d, s in zip(spec.shape, over, strict=False))
    ):
        raise InvalidShapeError(
            f"--shape {spec.name}={'x'.join(map(str, over))} does not match the model's "
            f"input shape {_fmt(spec.shape)}",
            "give a shape with the same rank that agrees with the fixed dimensions",
        )
    dims: list[int] = []
    for i, d in enumerate(spec.shape):
        if d is not None or i == 0:
            dims.append(d if d is not None else batch_size)
        elif over is not None:
            dims.append(over[i])
        else:
            raise InvalidShapeError(
                f"input '{spec.name}' has dynamic dimension {i} in shape {_fmt(spec.shape)}",
                f"pass --shape {spec.name}="
                + "x".join("N" if x is None else str(x) for x in spec.shape),
            )
    first = _batch_dim(spec, batch_size, resizable)
    if first is not None:
        dims[0] = first
    return tuple(dims)


def check_unknown_overrides(
    overrides: Mapping[str, tuple[int, ...]], input_names: Sequence[str]
) -> None:
    """A ``--shape`` name that is no input of the models in the run is a usage error."""
    unknown = [name for name in overrides if name not in input_names]
    if unknown:
        raise InvalidShapeError(
            f"--shape names input '{unknown[0]}', which no model in this run has",
            "model inputs: " + ", ".join(dict.fromkeys(input_names)),
        )


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


BYTES_ELEMENT_LEN = 16
"""Bytes in each generated element of a BYTES (string) input."""


def input_dtype(spec: TensorSpec) -> np.dtype:
    """The numpy dtype of ``spec``; a string (or other non-numeric) input is a usage error
    naming the fix, where numpy would raise a bare TypeError ('not understood')."""
    try:
        dtype = np.dtype(spec.dtype)
    except TypeError:
        dtype = np.dtype(object)
    if spec.dtype == "object":  # a remote model's BYTES input (--opt inputs=x:BYTES:N)
        return dtype
    if dtype.kind not in "fbiu":
        kind = "a string tensor" if "string" in spec.dtype or dtype.kind in "OSU" else ""
        what = kind or "not a float, integer or bool type"
        raise InvalidShapeError(
            f"input '{spec.name}' has dtype {spec.dtype} ({what}): tippingpoint feeds local "
            "runtimes numeric tensors only",
            "benchmark a model whose inputs are numeric (e.g. token ids as int64 in place of "
            "text), with any string preprocessing moved out of the graph",
        )
    return dtype


def generate_input(
    spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Random data of the spec's dtype: floats ~ N(0,1); quantised ints cover the range of real
    values ~ N(0,1) mapped through scale/zero-point; other ints are token ids; bools are coin flips.
    """
    dtype = input_dtype(spec)
    if dtype.kind == "O":  # BYTES: seeded lower-case ASCII strings
        count = int(np.prod(shape, dtype=np.int64))
        letters = rng.integers(97, 123, size=(count, BYTES_ELEMENT_LEN), dtype=np.uint8)
        values = np.empty(count, dtype=object)
        values[:] = [row.tobytes() for row in letters]
        return values.reshape(shape)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if spec.quant is not None:
            real = rng.standard_normal(shape)
            q = np.round(real / spec.quant.scale + spec.quant.zero_point)
            return np.clip(q, info.min, info.max).astype(dtype)
        if dtype.itemsize == 1:
            return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)
        lo, hi = TOKEN_ID_RANGE
        return rng.integers(lo, hi, size=shape).astype(dtype)
    raise InvalidShapeError(
        f"input '{spec.name}' has dtype {spec.dtype}, which tippingpoint cannot generate",
        "supply inputs with --inputs data.npz",
    )


def generate_feeds(
    specs: Sequence[TensorSpec],
    batch_size: int,
    overrides: Mapping[str, tuple[int, ...]],
    seed: int,
    *,
    resizable: bool = False,
) -> list[np.ndarray]:
    """One array per input spec, in order, for one query of ``batch_size``."""
    rng = np.random.default_rng(seed)
    return [
        generate_input(s, resolve_shape(s, batch_size, overrides, resizable=resizable), rng)
        for s in specs
    ]


def check_input_array(arr: np.ndarray, spec: TensorSpec) -> None:
    """An ``--inputs`` array fits ``spec``: rows (samples) along the first axis, the other axes
    agreeing with the fixed dimensions, and a dtype that converts without changing kind (floats
    also quantise for quantised integer inputs)."""
    target = input_dtype(spec)
    rest = all(d is None or d == a for d, a in zip(spec.shape[1:], arr.shape[1:], strict=False))
    if arr.ndim != len(spec.shape) or not rest or (arr.ndim and arr.shape[0] < 1):
        raise InvalidShapeError(
            f"--inputs array '{spec.name}' has shape {list(arr.shape)}, the model expects "
            f"{_fmt(spec.shape)} (rows are samples)",
            "save one row per sample along the first axis, the other axes as the model's",
        )
    quantise = arr.dtype.kind == "f" and target.kind in "iu" and spec.quant is not None
    if arr.dtype != target and not quantise and not np.can_cast(arr.dtype, target, "same_kind"):
        raise InvalidShapeError(
            f"--inputs array '{spec.name}' is {arr.dtype}, the model expects {spec.dtype}",
            f"save it as {spec.dtype}"
            + (" (or as float values, quantised on the way in)" if spec.quant is not None else ""),
        )


def match_feeds(
    specs: Sequence[TensorSpec],
    arrays: Mapping[str, np.ndarray],
    batch_size: int = 1,
    *,
    resizable: bool = False,
) -> list[np.ndarray]:
    """One query of ``batch_size`` from user-supplied arrays, in the model's input order.

    Rows of each array are samples: a query takes the first ``batch_size`` rows, cycling when
    the array has fewer. Values go through the accuracy pass's conversion
    (:func:`tippingpoint.models.accuracy.prepare_input`): floats are quantised for quantised
    integer inputs, other dtypes converted within their kind.
    """
    from tippingpoint.models.accuracy import prepare_input

    missing = [s.name for s in specs if s.name not in arrays]
    if missing:
        raise InvalidShapeError(
            f"--inputs has no array for input '{missing[0]}' (it has: {', '.join(arrays)})",
            "save one array per model input, named as the input",
        )
    rows = {len(arrays[s.name]) for s in specs if arrays[s.name].ndim}
    if len(rows) > 1:
        raise InvalidShapeError(
            "--inputs arrays have different numbers of rows", "give every input the same rows"
        )
    out: list[np.ndarray] = []
    for s in specs:
        arr = np.asarray(arrays[s.name])
        check_input_array(arr, s)
        first = _batch_dim(s, batch_size, resizable)
        if first is not None:
            arr = arr[np.arange(first) % len(arr)]
        out.append(np.ascontiguousarray(prepare_input(arr, s)))
    return out


def query_feeds(
    specs: Sequence[TensorSpec],
    batch_size: int,
    overrides: Mapping[str, tuple[int, ...]],
    seed: int,
    arrays: Mapping[str, np.ndarray] | None = None,
    *,
    resizable: bool = False,
) -> list[np.ndarray]:
    """The inputs of one query: rows of the ``--inputs`` arrays when given, generated otherwise."""
    if arrays is not None:
        return match_feeds(specs, arrays, batch_size, resizable=resizable)
    return generate_feeds(specs, batch_size, overrides, seed, resizable=resizable)
