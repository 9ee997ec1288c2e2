"""Cost lines and energy figures of a placement, with the basis and inputs behind each.

A line's basis is the weakest basis among the inputs behind it (measured > sourced >
estimated > assumed): a line computed from a measured throughput and an assumed life is
assumed. Energy computed from the device's active watts (no measured energy) is at best
estimated. A split's lines read the inputs its sides read (:func:`split_sides`): the head's
throughput in place of the edge's, the tail's capacity in place of the cloud's, and so on, and
name those inputs.
"""

from __future__ import annotations

import numpy as np

from tippingpoint.calculator.model import (
    CAPITAL,
    Component,
    Flows,
    ModelSpec,
    Placement,
    billed_peak_hours,
    peak_hours,
    split_sides,
    split_spec,
)
from tippingpoint.calculator.params import Basis, Param, ParamSet, weakest
from tippingpoint.calculator.result import ComponentFlows, CostLine
from tippingpoint.calculator.tco import Summary
from tippingpoint.profiles.schema import CloudKind

EDGE_LINES = (
    Component.HARDWARE,
    Component.SALVAGE,
    Component.ENERGY,
    Component.NETWORK,
    Component.OPS,
    Component.ONE_TIME,
    Component.DELAY,
)
CLOUD_LINES = (
    Component.COMPUTE,
    Component.EGRESS,
    Component.NETWORK,
    Component.STORAGE,
    Component.OPS,
    Component.ONE_TIME,
    Component.DELAY,
    Component.OUTAGE,
)
OPTIONAL_LINES = {
    Component.DELAY: lambda spec: spec.delay_cost,
    Component.OUTAGE: lambda spec: spec.outage_cost,
}
"""Lines shown only when the workload prices them."""
EDGE_PARAMS = frozenset(
    {
        Param.DEVICE_PRICE,
        Param.DEVICE_LIFE,
        Param.DEVICE_RESIDUAL,
        Param.EDGE_THROUGHPUT,
        Param.DEVICE_UTILISATION,
        Param.EDGE_JOULES,
        Param.DEVICE_ACTIVE_W,
        Param.DEVICE_IDLE_W,
        Param.ELECTRICITY_PRICE,
        Param.SITE_PUE,
        Param.MAINTENANCE_SHARE,
        Param.DEVICE_OPS,
        Param.EDGE_INTEGRATION,
        Param.EDGE_UPSTREAM,
        Param.EDGE_LATE_SHARE,
    }
)
CLOUD_ONLY = frozenset({Param.CLOUD_LATE_SHARE, Param.UNAVAILABILITY, Param.OUTAGE_VALUE})
SHARED = frozenset(
    {Param.VOLUME, Param.PEAK_TO_AVERAGE, Param.GROWTH, Param.DELAY_VALUE, Param.FX_RATE}
)
"""Inputs behind both sides' lines."""
COMPONENT_PARAMS: dict[Component, tuple[Param, ...]] = {
    Component.HARDWARE: (
        Param.DEVICE_PRICE,
        Param.DEVICE_LIFE,
        Param.DEVICE_RESIDUAL,
        Param.EDGE_THROUGHPUT,
        Param.DEVICE_UTILISATION,
        Param.PEAK_TO_AVERAGE,
        Param.VOLUME,
    ),
    Component.SALVAGE: (Param.DEVICE_PRICE, Param.DEVICE_RESIDUAL, Param.DEVICE_LIFE),
    Component.ENERGY: (
        Param.EDGE_JOULES,
        Param.DEVICE_ACTIVE_W,
        Param.DEVICE_IDLE_W,
        Param.ELECTRICITY_PRICE,
        Param.SITE_PUE,
        Param.VOLUME,
    ),
    Component.COMPUTE: (
        Param.CLOUD_PRICE_HOUR,
        Param.CLOUD_CAPACITY,
        Param.CLOUD_UTILISATION,
        Param.BILLING_GRANULARITY,
        Param.MINIMUM_BILLED,
        Param.API_PRICE,
        Param.TOKEN_PRICE_IN,
        Param.TOKEN_PRICE_OUT,
        Param.TOKENS_IN,
        Param.TOKENS_OUT,
        Param.PEAK_TO_AVERAGE,
        Param.VOLUME,
    ),
    Component.EGRESS: (Param.RESPONSE_BYTES, Param.EGRESS_SCALE, Param.VOLUME),
    Component.NETWORK: (
        Param.REQUEST_BYTES,
        Param.RESPONSE_BYTES,
        Param.EDGE_UPSTREAM,
        Param.NETWORK_COST,
        Param.VOLUME,
    ),
    Component.STORAGE: (Param.CLOUD_STORAGE,),
    Component.OPS: (Param.MAINTENANCE_SHARE, Param.DEVICE_OPS, Param.CLOUD_OPS),
    Component.ONE_TIME: (Param.EDGE_INTEGRATION, Param.CLOUD_INTEGRATION),
    Component.DELAY: (
        Param.EDGE_LATE_SHARE,
        Param.CLOUD_LATE_SHARE,
        Param.DELAY_VALUE,
        Param.VOLUME,
    ),
    Component.OUTAGE: (Param.UNAVAILABILITY, Param.OUTAGE_VALUE, Param.VOLUME),
}
"""The inputs behind each cost line, for its basis and its list of assumed inputs."""


def _line_params(
    comp: Component, placement: Placement, params: ParamSet, spec: ModelSpec
) -> list[Param]:
    """The inputs a line of ``placement`` is computed from (those present and used)."""
    out = [p for p in COMPONENT_PARAMS[comp] if p in params]
    if comp in (Component.HARDWARE, Component.COMPUTE, Component.ENERGY, Component.DELAY):
        out += [p for p in (Param.GROWTH,) if p in params and p not in out]
    if Param.EDGE_JOULES in params or not spec.energy_from_power:
        out = [p for p in out if p is not Param.DEVICE_ACTIVE_W]
    if placement is Placement.EDGE:
        out = [p for p in out if p in EDGE_PARAMS or p in SHARED]
        if comp is Component.NETWORK:
            out += [p for p in (Param.REQUEST_BYTES, Param.NETWORK_COST) if p in params]
    elif placement is Placement.CLOUD:
        out = [p for p in out if p not in EDGE_PARAMS]
    if Param.FX_RATE in params:
        out.append(Param.FX_RATE)
    return list(dict.fromkeys(out))


def _basis(comp: Component, deps: list[Param], params: ParamSet) -> Basis:
    """The weakest basis among the line's inputs; energy without measured J is estimated."""
    bases = [params[p].basis for p in deps]
    if comp is Component.ENERGY and Param.EDGE_JOULES not in params:
        bases.append(Basis.ESTIMATED)
    return weakest(bases) if bases else Basis.ASSUMED


def _note(
    comp: Component,
    flows: Flows,
    params: ParamSet,
    spec: ModelSpec,
    placement: Placement = Placement.EDGE,
) -> str:
    v = {p: iv.value for p, iv in params.items()}
    units = float(flows.units[0, : min(12, spec.months)].mean())
    inst = float(flows.instances[0, : min(12, spec.months)].mean())
    if comp is Component.HARDWARE:
        how = "CRF" if spec.use_crf else "straight-line"
        return (
            f"{units:g} unit(s) at {v[Param.DEVICE_PRICE]:g}, life "
            f"{v[Param.DEVICE_LIFE]:g} y, residual {v[Param.DEVICE_RESIDUAL]:g}, {how}"
        )
    if comp is Component.SALVAGE:
        return "fleet sold at straight-line book value at the horizon"
    if comp is Component.ENERGY:
        if Param.EDGE_JOULES in params:
            iv = params[Param.EDGE_JOULES]
            head = f"{iv.basis.value} {iv.value:.4g} J/inference ({iv.origin})"
        else:
            j = v[Param.DEVICE_ACTIVE_W] / v[Param.EDGE_THROUGHPUT]
            head = (
                f"estimated {j:.4g} J/inference = active {v[Param.DEVICE_ACTIVE_W]:g} W / "
                f"{v[Param.EDGE_THROUGHPUT]:.4g} inferences/s"
            )
        return (
            f"{head}; idle {v[Param.DEVICE_IDLE_W]:g} W when not busy; "
            f"{v[Param.ELECTRICITY_PRICE]:g}/kWh"
        )
    if comp is Component.COMPUTE:
        if spec.cloud_kind is CloudKind.API:
            fee = f"{v[Param.API_PRICE]:g} per million requests"
            if not spec.token_priced:
                return fee
            return (
                f"{fee} + {v[Param.TOKENS_IN]:g} input tokens at "
                f"{v[Param.TOKEN_PRICE_IN]:g} + {v[Param.TOKENS_OUT]:g} output tokens at "
                f"{v[Param.TOKEN_PRICE_OUT]:g} per million tokens"
            )
        cap = params[Param.CLOUD_CAPACITY]
        sized = (
            f"capacity {cap.value:.4g} inferences/s ({cap.basis.value}) at "
            f"{v[Param.CLOUD_UTILISATION]:g} utilisation"
        )
        if not spec.autoscale:
            return (
                f"{inst:g} instance(s) always on at {v[Param.CLOUD_PRICE_HOUR]:g}/h x 730 "
                f"h/month; {sized}"
            )
        k = v[Param.PEAK_TO_AVERAGE]
        one = {p: np.array([x]) for p, x in v.items()}
        peak_h = float(peak_hours(one)[0, 0])
        billed_h = float(billed_peak_hours(one)[0, 0])
        return (
            f"autoscaled: a day of {peak_h:.3g} h at the peak (24/(k+1), k = {k:g}) and "
            f"{24 - peak_h:.3g} h off-peak at 1/k of the average; peak instances billed "
            f"{billed_h:.3g} h a day (granularity {v[Param.BILLING_GRANULARITY]:g} s, minimum "
            f"{v[Param.MINIMUM_BILLED]:g} s); {inst:.3g} instance(s) on average at "
            f"{v[Param.CLOUD_PRICE_HOUR]:g}/h; {sized}"
        )
    if comp is Component.EGRESS:
        gb = float(flows.inferences[0, 0]) * v[Param.RESPONSE_BYTES] / 1e9
        src = params[Param.RESPONSE_BYTES].basis.value
        return (
            f"{gb:.3g} GB/month out in month 1 ({v[Param.RESPONSE_BYTES]:g} B/response, {src}), "
            "priced by tier"
        )
    if comp is Component.NETWORK and Param.EDGE_UPSTREAM in params:
        return (
            f"metered link {v[Param.NETWORK_COST]:g}/GB on request ({v[Param.REQUEST_BYTES]:g} B)"
            f" + response bytes from the cloud; the edge sends {v[Param.EDGE_UPSTREAM]:.0%} of "
            "its request bytes upstream"
        )
    if comp is Component.NETWORK:
        return (
            f"metered link {v[Param.NETWORK_COST]:g}/GB on request "
            f"({v[Param.REQUEST_BYTES]:g} B) + response bytes"
        )
    if comp is Component.DELAY:
        parts = [
            f"{name} {v[p]:.3%} of requests over the bound ({params[p].basis.value})"
            for name, p in (
                ("edge", Param.EDGE_LATE_SHARE),
                # a split's own share sits in the cloud's place (model.split_sides)
                ("split" if placement is Placement.SPLIT else "cloud", Param.CLOUD_LATE_SHARE),
            )
            if p in params
        ]
        return f"{v[Param.DELAY_VALUE]:g} per late request; " + "; ".join(parts)
    if comp is Component.OUTAGE:
        return (
            f"cloud unreachable {v[Param.UNAVAILABILITY]:.3%} of the time x "
            f"{v[Param.OUTAGE_VALUE]:g} per inference lost; the edge keeps working"
        )
    if comp is Component.STORAGE:
        return "per month while the cloud serves"
    if comp is Component.OPS:
        return "device maintenance and ops per unit; cloud ops per year"
    return "integration, paid upfront"


def line_components(placement: Placement, spec: ModelSpec) -> tuple[Component, ...]:
    """The components a placement's cost lines show."""
    comps = {
        Placement.EDGE: EDGE_LINES,
        Placement.CLOUD: CLOUD_LINES,
        Placement.HYBRID: tuple(Component),
        Placement.SPLIT: tuple(Component),
    }[placement]
    shown = [c for c in comps if c not in OPTIONAL_LINES or OPTIONAL_LINES[c](spec)]
    if placement is Placement.EDGE and not spec.edge_upstream:
        shown.remove(Component.NETWORK)
    return tuple(shown)


def cost_lines(
    placement: Placement,
    flows: Flows,
    summary: Summary,
    params: ParamSet,
    spec: ModelSpec,
    caveats: tuple[str, ...] = (),
) -> tuple[CostLine, ...]:
    """One line per component of a placement: three views, basis, note, assumed inputs."""
    out = []
    if placement is Placement.SPLIT:
        params = split_sides(params)
        spec = split_spec(spec, params)
    for comp in line_components(placement, spec):
        deps = _line_params(comp, placement, params, spec)
        out.append(
            CostLine(
                component=comp,
                category="capex" if comp in CAPITAL else "opex",
                annual=float(summary.annual_by_component[comp][0]),
                tco=float(summary.tco_by_component[comp][0]),
                pv=float(summary.pv_by_component[comp][0]),
                basis=_basis(comp, deps, params),
                inputs=tuple(params[p].param for p in deps),  # a split's own inputs by name
                note=_note(comp, flows, params, spec, placement),
                assumed_inputs=tuple(params[p].param for p in deps if params[p].assumed),
                caveats=caveats,
            )
        )
    return tuple(out)


def component_flows(
    placement: Placement, flows: Flows, spec: ModelSpec, params: ParamSet
) -> tuple[ComponentFlows, ...]:
    """The monthly cash flows of each line's component (the base case, draw 0)."""
    if placement is Placement.SPLIT:
        spec = split_spec(spec, split_sides(params))
    return tuple(
        ComponentFlows(component=c, values=tuple(float(x) for x in flows.cash(c)[0]))
        for c in line_components(placement, spec)
    )


def energy_figures(
    placement: Placement, flows: Flows, params: ParamSet, spec: ModelSpec
) -> tuple[float | None, Basis | None, float | None]:
    """Year-one kWh, its basis and kg CO2e of a placement; None where cloud power is unknown."""
    if placement is Placement.SPLIT:
        params = split_sides(params)
    year = min(12, spec.months)
    edge_kwh = float(flows.kwh[0, :year].sum())
    cloud_kwh = float(flows.cloud_kwh[0, :year].sum())
    edge_basis = params[Param.EDGE_JOULES].basis if Param.EDGE_JOULES in params else Basis.ESTIMATED
    cloud_known = spec.cloud_kind is CloudKind.INSTANCE and params[Param.CLOUD_WATTS].value > 0
    if placement is Placement.EDGE:
        return edge_kwh, edge_basis, edge_kwh * params[Param.EDGE_GRID].value / 1000.0
    if not cloud_known:
        return None, None, None
    co2 = cloud_kwh * params[Param.CLOUD_GRID].value / 1000.0
    if placement is Placement.CLOUD:
        return cloud_kwh, Basis.ESTIMATED, co2
    co2 += edge_kwh * params[Param.EDGE_GRID].value / 1000.0
    return edge_kwh + cloud_kwh, Basis.ESTIMATED, co2
