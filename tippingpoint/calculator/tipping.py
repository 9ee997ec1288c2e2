"""The tipping point: the daily volume at which edge and cloud cost the same.

The year-one annual cost of each placement is evaluated over a log-spaced grid of daily
volumes (three decades either side of the workload's), with every step function in place
(whole devices, whole instances, egress tiers); each sign change of (cloud - edge) is refined
by bisection. The linear estimate V* = (F_edge - F_cloud) / (v_cloud - v_edge) is reported
beside it: fixed and marginal costs of one device and of perfectly divisible cloud capacity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from tippingpoint.calculator.finance import (
    FloatArray,
    annual_capital_charge,
    annualise_one_time,
)
from tippingpoint.calculator.model import (
    DAYS_PER_MONTH,
    J_PER_KWH,
    ModelSpec,
    Placement,
    api_price_per_request,
    cash_flows,
    tiered_cost,
)
from tippingpoint.calculator.params import Param
from tippingpoint.calculator.result import Crossing, TippingPoint
from tippingpoint.calculator.tco import summarise
from tippingpoint.profiles.schema import CloudKind

GRID_POINTS = 241
DECADES = 3.0
BISECTIONS = 40


def annual_costs(
    base: Mapping[Param, float], spec: ModelSpec, volumes: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Year-one annual cost of edge and of cloud at each daily volume."""
    values: dict[Param, FloatArray | float] = dict(base)
    values[Param.VOLUME] = np.asarray(volumes, dtype=float)
    spec1 = dataclasses.replace(spec, months=12)
    out = []
    for placement in (Placement.EDGE, Placement.CLOUD):
        flows = cash_flows(placement, values, spec1)
        out.append(summarise(flows, values, spec1).annual)
    return out[0], out[1]


def _gap(base: Mapping[Param, float], spec: ModelSpec, volume: float) -> float:
    edge, cloud = annual_costs(base, spec, np.array([volume]))
    return float(cloud[0] - edge[0])


def crossings(
    base: Mapping[Param, float], spec: ModelSpec, volumes: FloatArray, gap: FloatArray
) -> list[Crossing]:
    """Each volume where the sign of (cloud - edge) changes, refined by bisection."""
    out: list[Crossing] = []
    edge_better = gap >= 0
    for i in np.nonzero(edge_better[1:] != edge_better[:-1])[0]:
        lo, hi = float(volumes[i]), float(volumes[i + 1])
        lo_better = bool(edge_better[i])
        for _ in range(BISECTIONS):
            mid = (lo * hi) ** 0.5
            if (_gap(base, spec, mid) >= 0) == lo_better:
                lo = mid
            else:
                hi = mid
        out.append(Crossing(volume_per_day=hi, edge_cheaper_above=not lo_better))
    return out


def linear_tipping(base: Mapping[Param, float], spec: ModelSpec) -> tuple[float | None, str]:
    """V* per day from fixed and marginal costs; None when edge's marginal cost is not lower."""
    r = base[Param.DISCOUNT_RATE]
    price, life = base[Param.DEVICE_PRICE], base[Param.DEVICE_LIFE]
    x = base[Param.EDGE_THROUGHPUT]
    idle_w = base[Param.DEVICE_IDLE_W]
    kwh_price = base[Param.ELECTRICITY_PRICE] * base[Param.SITE_PUE]
    charge = float(annual_capital_charge(price, base[Param.DEVICE_RESIDUAL], life, r, spec.use_crf))
    fixed_edge = (
        charge
        + price * base[Param.MAINTENANCE_SHARE]
        + base[Param.DEVICE_OPS]
        + idle_w * 8760.0 / 1000.0 * kwh_price
        + float(
            annualise_one_time(base[Param.EDGE_INTEGRATION], r, spec.horizon_years, spec.use_crf)
        )
    )
    joules = base[Param.DEVICE_ACTIVE_W] / x if spec.energy_from_power else base[Param.EDGE_JOULES]
    v_edge = (joules - idle_w / x) / J_PER_KWH * kwh_price
    fixed_cloud = (
        12.0 * base[Param.CLOUD_STORAGE]
        + base[Param.CLOUD_OPS]
        + float(
            annualise_one_time(base[Param.CLOUD_INTEGRATION], r, spec.horizon_years, spec.use_crf)
        )
    )
    if spec.cloud_kind is CloudKind.INSTANCE:
        v_cloud = base[Param.CLOUD_PRICE_HOUR] / (
            3600.0 * base[Param.CLOUD_CAPACITY] * base[Param.CLOUD_UTILISATION]
        )
    else:
        v_cloud = float(api_price_per_request(base, spec)[0, 0])
    gb_month = base[Param.VOLUME] * DAYS_PER_MONTH * base[Param.RESPONSE_BYTES] / 1e9
    eps = 1.0
    marginal_egress = float(
        (
            tiered_cost(np.array([gb_month + eps]), spec.egress_bounds_gb, spec.egress_prices)
            - tiered_cost(np.array([gb_month]), spec.egress_bounds_gb, spec.egress_prices)
        )[0]
    )
    v_cloud += marginal_egress * base[Param.EGRESS_SCALE] * base[Param.RESPONSE_BYTES] / 1e9
    v_cloud += (
        base[Param.NETWORK_COST] * (base[Param.REQUEST_BYTES] + base[Param.RESPONSE_BYTES]) / 1e9
    )
    note = (
        f"F_edge {fixed_edge:.2f} USD/yr, F_cloud {fixed_cloud:.2f} USD/yr, "
        f"v_edge {v_edge * 1e6:.4f} USD/M, v_cloud {v_cloud * 1e6:.4f} USD/M; valid while one "
        "device carries the load"
    )
    if v_cloud <= v_edge:
        return None, note + "; edge's marginal cost is not lower, no tipping volume"
    per_year = (fixed_edge - fixed_cloud) / (v_cloud - v_edge)
    return max(per_year, 0.0) / 365.0, note


def tipping_point(base: Mapping[Param, float], spec: ModelSpec) -> TippingPoint:
    """The tipping volume, all crossings, the linear estimate and the curve to plot."""
    v0 = base[Param.VOLUME]
    volumes = np.logspace(np.log10(v0) - DECADES, np.log10(v0) + DECADES, GRID_POINTS)
    edge, cloud = annual_costs(base, spec, volumes)
    found = crossings(base, spec, volumes, cloud - edge)
    headline: float | None = None
    if cloud[-1] - edge[-1] >= 0:
        ups = [c for c in found if c.edge_cheaper_above]
        headline = ups[-1].volume_per_day if ups else None
    throughout = None
    if not found:
        throughout = Placement.EDGE if cloud[0] - edge[0] >= 0 else Placement.CLOUD
    linear, note = linear_tipping(base, spec)
    return TippingPoint(
        volume_per_day=headline,
        crossings=tuple(found),
        cheaper_throughout=throughout,
        linear_volume_per_day=linear,
        linear_note=note,
        base_volume_per_day=v0,
        curve_volume_per_day=tuple(float(v) for v in volumes),
        curve_edge_annual=tuple(float(v) for v in edge),
        curve_cloud_annual=tuple(float(v) for v in cloud),
    )
