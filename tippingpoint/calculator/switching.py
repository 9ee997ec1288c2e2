"""Switching values: for each leading tornado input, the value at which the decision flips.

With every other input at base, the NPV of choosing edge, PV(cloud) - PV(edge), is a function
of one input. Its switching value is where that function changes sign: below it one placement
is cheaper, beyond it the other. The search runs over the input's physical limits (its range
and far beyond: down to the lower limit, up to the upper limit or a thousand times the larger
of its base and high), on a grid of 400 values; the sign change nearest the base is refined by
bisection. An input whose NPV keeps its sign over the whole search has no switching value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tippingpoint.calculator.finance import FloatArray
from tippingpoint.calculator.model import ModelSpec, Placement
from tippingpoint.calculator.params import Param, ParamSet, limits
from tippingpoint.calculator.result import SwitchingValue, Tornado
from tippingpoint.calculator.sensitivity import savings

LEADING = 8
"""How many tornado rows (largest swing first) get a switching value."""
GRID = 400
BISECTIONS = 60
REACH = 1000.0
"""How far beyond the base (a factor) the search goes when the input has no upper limit."""


def _grid(base: float, low: float, high: float, lo_lim: float, hi_lim: float) -> FloatArray:
    top = hi_lim if math.isfinite(hi_lim) else REACH * max(abs(base), abs(high), 1e-9)
    bottom = lo_lim
    if top <= bottom:
        return np.array([bottom])
    lin = np.linspace(bottom, top, GRID // 2)
    anchors = np.array([bottom, low, base, high, top])
    if bottom > 0:
        geo = np.geomspace(bottom, top, GRID // 2)
    else:
        start = max(min(abs(base), abs(high), top) * 1e-6, 1e-12)
        geo = np.geomspace(start, top, GRID // 2)
    pts = np.unique(np.concatenate([lin, geo, anchors]))
    return pts[(pts >= bottom) & (pts <= top)]


def switching_values(
    params: ParamSet, spec: ModelSpec, tornado: Tornado, leading: int = LEADING
) -> tuple[SwitchingValue, ...]:
    """The switching value of each of the ``leading`` tornado inputs with a swing."""
    rows = [r for r in tornado.rows if r.swing > 0][:leading]
    if not rows:
        return ()
    base_vals = {p: iv.value for p, iv in params.items()}
    grids = []
    for r in rows:
        lo_lim, hi_lim = limits(r.param)
        grids.append(_grid(r.base_value, r.low, r.high, lo_lim, hi_lim))
    sizes = [g.size for g in grids]
    total = sum(sizes)
    values = {p: np.full(total, v) for p, v in base_vals.items()}
    start = 0
    for r, g in zip(rows, grids, strict=True):
        values[r.param][start : start + g.size] = g
        start += g.size
    f = savings(values, spec)
    base_sign = tornado.base >= 0
    brackets: list[tuple[float, float] | None] = []
    start = 0
    for r, g in zip(rows, grids, strict=True):
        fg = f[start : start + g.size]
        start += g.size
        flips = np.nonzero((fg[1:] >= 0) != (fg[:-1] >= 0))[0]
        if not flips.size:
            brackets.append(None)
            continue
        mids = (g[flips] + g[flips + 1]) / 2
        i = int(flips[np.argmin(np.abs(mids - r.base_value))])
        brackets.append((float(g[i]), float(g[i + 1])))
    found = _refine([r.param for r in rows], brackets, base_vals, spec)
    beyond = Placement.CLOUD if base_sign else Placement.EDGE
    return tuple(
        SwitchingValue(
            param=r.param,
            unit=r.unit,
            base_value=r.base_value,
            value=value,
            change=(value / r.base_value - 1.0) if value is not None and r.base_value else None,
            within_range=value is not None and r.low <= value <= r.high,
            searched_low=float(g[0]),
            searched_high=float(g[-1]),
            cheaper_beyond=beyond if value is not None else None,
        )
        for r, g, value in zip(rows, grids, found, strict=True)
    )


def _refine(
    params: Sequence[Param],
    brackets: Sequence[tuple[float, float] | None],
    base_vals: dict[Param, float],
    spec: ModelSpec,
) -> list[float | None]:
    """Bisect every bracket at once: row k of each evaluation moves ``params[k]`` only."""
    todo = [(i, b) for i, b in enumerate(brackets) if b is not None]
    out: list[float | None] = [None] * len(brackets)
    if not todo:
        return out
    lo = np.array([b[0] for _, b in todo])
    hi = np.array([b[1] for _, b in todo])
    moved = [params[i] for i, _ in todo]
    n = len(todo)

    def at(x: FloatArray) -> np.ndarray:
        values = {p: np.full(n, v) for p, v in base_vals.items()}
        for k, p in enumerate(moved):
            values[p][k] = x[k]
        return savings(values, spec) >= 0

    lo_side = at(lo)
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        same = at(mid) == lo_side
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    for k, (i, _) in enumerate(todo):
        out[i] = float((lo[k] + hi[k]) / 2)
    return out
