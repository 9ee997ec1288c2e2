"""One-at-a-time sensitivity (tornado) of the edge saving, PV(cloud) - PV(edge).

Each input is set to its low and to its high with every other input at base; the swing is
|f(high) - f(low)|; rows are sorted by swing, largest first. All 2k + 1 cases are evaluated
in one vectorised call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tippingpoint.calculator.model import ModelSpec
from tippingpoint.calculator.params import Param, ParamSet
from tippingpoint.calculator.result import Tornado, TornadoRow
from tippingpoint.calculator.tco import present_costs


def savings(values: dict[Param, np.ndarray], spec: ModelSpec) -> np.ndarray:
    """PV(cloud) - PV(edge) for every row of ``values``."""
    edge, cloud = present_costs(values, spec)
    return cloud - edge


def tornado(params: ParamSet, spec: ModelSpec, varied: Sequence[Param]) -> Tornado:
    """The tornado over the inputs in ``varied``."""
    k = len(varied)
    values = {p: np.full(2 * k + 1, iv.value) for p, iv in params.items()}
    for i, p in enumerate(varied):
        values[p][1 + 2 * i] = params[p].low
        values[p][2 + 2 * i] = params[p].high
    f = savings(values, spec)
    rows = [
        TornadoRow(
            param=p,
            unit=params[p].unit,
            base_value=params[p].value,
            low=params[p].low,
            high=params[p].high,
            metric_low=float(f[1 + 2 * i]),
            metric_high=float(f[2 + 2 * i]),
            swing=float(abs(f[2 + 2 * i] - f[1 + 2 * i])),
        )
        for i, p in enumerate(varied)
    ]
    rows.sort(key=lambda r: r.swing, reverse=True)
    return Tornado(base=float(f[0]), rows=tuple(rows))
