"""The tipping point: the daily volume at which edge and cloud cost the same over the horizon.

One basis with every other decision figure: the NPV of choosing edge, PV(cloud) - PV(edge),
from the same monthly discounted cash flows as the NPV, the paybacks and the Monte Carlo. It is
swept over a log-spaced grid of daily volumes (three decades either side of the workload's),
with every step function in place (whole devices, whole instances, egress tiers); each sign
change between two grid volumes brackets a root of NPV(volume) = 0, refined by bisection. A
step (a device or an instance added) can make the root a jump rather than a zero: the root is
then the volume at the jump, and the bracket the sweep found is reported with it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tippingpoint.calculator.finance import FloatArray
from tippingpoint.calculator.model import ModelSpec, Placement
from tippingpoint.calculator.params import Param
from tippingpoint.calculator.result import Crossing, TippingPoint
from tippingpoint.calculator.tco import present_costs

GRID_POINTS = 241
DECADES = 3.0
BISECTIONS = 50


def pv_costs(
    base: Mapping[Param, float], spec: ModelSpec, volumes: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Present value of edge and of cloud costs over the horizon at each daily volume."""
    v = np.asarray(volumes, dtype=float)
    values = {p: np.full(v.shape, x) for p, x in base.items()}
    values[Param.VOLUME] = v
    return present_costs(values, spec)


def npv(base: Mapping[Param, float], spec: ModelSpec, volume: float) -> float:
    """The NPV of choosing edge, PV(cloud) - PV(edge), at one daily volume."""
    edge, cloud = pv_costs(base, spec, np.array([volume]))
    return float(cloud[0] - edge[0])


def crossings(
    base: Mapping[Param, float], spec: ModelSpec, volumes: FloatArray, gap: FloatArray
) -> list[Crossing]:
    """Each root of NPV(volume) = 0 the sweep brackets, refined by bisection (in log volume)."""
    out: list[Crossing] = []
    edge_better = gap >= 0
    for i in np.nonzero(edge_better[1:] != edge_better[:-1])[0]:
        lo, hi = float(volumes[i]), float(volumes[i + 1])
        lo_better = bool(edge_better[i])
        for _ in range(BISECTIONS):
            mid = (lo * hi) ** 0.5
            if (npv(base, spec, mid) >= 0) == lo_better:
                lo = mid
            else:
                hi = mid
        out.append(
            Crossing(
                volume_per_day=hi,
                edge_cheaper_above=not lo_better,
                bracket_low=float(volumes[i]),
                bracket_high=float(volumes[i + 1]),
            )
        )
    return out


def tipping_point(base: Mapping[Param, float], spec: ModelSpec) -> TippingPoint:
    """The tipping volume, all crossings, and the present-value curves to plot."""
    v0 = base[Param.VOLUME]
    volumes = np.logspace(np.log10(v0) - DECADES, np.log10(v0) + DECADES, GRID_POINTS)
    edge, cloud = pv_costs(base, spec, volumes)
    found = crossings(base, spec, volumes, cloud - edge)
    headline: float | None = None
    if cloud[-1] - edge[-1] >= 0:
        ups = [c for c in found if c.edge_cheaper_above]
        headline = ups[-1].volume_per_day if ups else None
    throughout = None
    if not found:
        throughout = Placement.EDGE if cloud[0] - edge[0] >= 0 else Placement.CLOUD
    return TippingPoint(
        basis="pv-horizon",
        volume_per_day=headline,
        crossings=tuple(found),
        cheaper_throughout=throughout,
        base_volume_per_day=v0,
        curve_volume_per_day=tuple(float(v) for v in volumes),
        curve_edge=tuple(float(v) for v in edge),
        curve_cloud=tuple(float(v) for v in cloud),
    )
