"""Input generation from tensor specs: the right dtype, shape and quantisation, seeded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tippingpoint.backends.base import TensorSpec
from tippingpoint.errors import InvalidShapeError

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


def resolve_shape(
    spec: TensorSpec, batch_size: int, overrides: Mapping[str, tuple[int, ...]]
) -> tuple[int, ...]:
    """The concrete shape of an input for ``batch_size``.

    A dynamic first dimension is the batch; any other dynamic dimension needs ``--shape``.
    A static first dimension of 1 with batch_size > 1 is an error: the model is not batchable.
    """
    if spec.name in overrides:
        shape = overrides[spec.name]
        if len(shape) != len(spec.shape) or any(
            d is not None and d != s for d, s in zip(spec.shape, shape, strict=False)
        ):
            raise InvalidShapeError(
                f"--shape {spec.name}={'x'.join(map(str, shape))} does not match the model's "
                f"input shape {_fmt(spec.shape)}",
                "give a shape with the same rank that agrees with the fixed dimensions",
            )
        return shape
    dims: list[int] = []
    for i, d in enumerate(spec.shape):
        if d is None:
            if i == 0:
                dims.append(batch_size)
                continue
            raise InvalidShapeError(
                f"input '{spec.name}' has dynamic dimension {i} in shape {_fmt(spec.shape)}",
                f"pass --shape {spec.name}="
                + "x".join("N" if x is None else str(x) for x in spec.shape),
            )
        dims.append(d)
    if dims and spec.shape[0] is not None and batch_size != spec.shape[0]:
        if spec.shape[0] == 1 and batch_size > 1:
            raise InvalidShapeError(
                f"input '{spec.name}' has a fixed batch of 1, cannot run batch size {batch_size}",
                "use --batch-sizes 1 for this model, or export it with a dynamic batch dimension",
            )
    return tuple(dims)


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def generate_input(
    spec: TensorSpec, shape: tuple[int, ...], rng: np.random.Generator
) -> np.ndarray:
    """Random data of the spec's dtype: floats ~ N(0,1); quantised ints cover the range of real
    values ~ N(0,1) mapped through scale/zero-point; other ints are token ids; bools are coin flips.
    """
    dtype = np.dtype(spec.dtype)
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
) -> list[np.ndarray]:
    """One array per input spec, in order, for one query of ``batch_size``."""
    rng = np.random.default_rng(seed)
    return [generate_input(s, resolve_shape(s, batch_size, overrides), rng) for s in specs]


def match_feeds(specs: Sequence[TensorSpec], arrays: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Order user-supplied arrays by the model's inputs, checking names, ranks and dtypes."""
    missing = [s.name for s in specs if s.name not in arrays]
    if missing:
        raise InvalidShapeError(
            f"--inputs has no array for input '{missing[0]}' (it has: {', '.join(arrays)})",
            "save one array per model input, named as the input",
        )
    out: list[np.ndarray] = []
    for s in specs:
        arr = arrays[s.name]
        fixed_ok = all(d is None or d == a for d, a in zip(s.shape, arr.shape, strict=False))
        if arr.ndim != len(s.shape) or not fixed_ok:
            raise InvalidShapeError(
                f"--inputs array '{s.name}' has shape {list(arr.shape)}, the model expects "
                f"{_fmt(s.shape)}",
                "reshape the array to the model's input shape",
            )
        if arr.dtype != np.dtype(s.dtype):
            raise InvalidShapeError(
                f"--inputs array '{s.name}' is {arr.dtype}, the model expects {s.dtype}",
                f"save it as {s.dtype}",
            )
        out.append(arr)
    return out
