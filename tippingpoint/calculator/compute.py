"""The calculation end to end: reports and profiles in, a :class:`CostResult` out.

Pure: no file or clock access (``today`` is an argument, for the staleness check), and the
same inputs give the same result, Monte Carlo included (seeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from tippingpoint.calculator.capacity import (
    CloudFigures,
    EdgeFigures,
    cloud_figures,
    edge_figures,
    is_cloud,
    usable,
)
from tippingpoint.calculator.finance import (
    break_even_month,
    discounted_payback_month,
    present_value,
    simple_payback_months,
)
from tippingpoint.calculator.inputs import (
    STALE_AFTER_DAYS,
    Profiles,
    cloud_inputs,
    edge_inputs,
    freeze,
    is_stale,
    model_spec,
    varied_params,
)
from tippingpoint.calculator.latency import LatencyCheck, LatencyPart, check, network_parts
from tippingpoint.calculator.lines import cost_lines, energy_figures
from tippingpoint.calculator.model import Flows, ModelSpec, Placement
from tippingpoint.calculator.montecarlo import monte_carlo
from tippingpoint.calculator.params import Basis, InputValue, Param, ParamSet
from tippingpoint.calculator.result import (
    CloudAnalysis,
    Comparison,
    CostResult,
    InputRow,
    PlacementResult,
    Recommendation,
)
from tippingpoint.calculator.scenarios import scenarios
from tippingpoint.calculator.sensitivity import tornado
from tippingpoint.calculator.tco import evaluate
from tippingpoint.calculator.tipping import tipping_point
from tippingpoint.core.errors import CostInputError
from tippingpoint.core.schema import Report
from tippingpoint.profiles.schema import CloudKind, CloudProfile


def placement_result(
    placement: Placement,
    label: str,
    cloud: str | None,
    params: ParamSet,
    spec: ModelSpec,
    latency: LatencyCheck,
) -> tuple[PlacementResult, Flows]:
    """Cost lines, headline figures, energy and the cumulative curve of one placement."""
    values = {p: np.array([iv.value]) for p, iv in params.items()}
    flows, summary = evaluate(placement, values, spec)
    year = min(12, spec.months)
    share = {Placement.EDGE: 1.0, Placement.CLOUD: 0.0}.get(
        placement, params[Param.HYBRID_EDGE_SHARE].value
    )
    kwh, kwh_basis, co2 = energy_figures(placement, flows, params, spec)
    result = PlacementResult(
        placement=placement,
        label=label,
        cloud=cloud,
        edge_share=share,
        feasible=latency.feasible,
        latency=latency,
        edge_units_year1=float(flows.units[0, :year].mean()) if share > 0 else None,
        cloud_instances_year1=(
            float(flows.instances[0, :year].mean())
            if share < 1 and spec.cloud_kind is CloudKind.INSTANCE
            else None
        ),
        cost_per_million=float(summary.cost_per_million[0]),
        annual_cost=float(summary.annual[0]),
        tco=float(summary.tco[0]),
        pv=float(summary.pv[0]),
        eac=float(summary.eac[0]),
        kwh_per_year=kwh,
        kwh_basis=kwh_basis,
        co2e_kg_per_year=co2,
        lines=cost_lines(placement, flows, summary, params, spec),
        cumulative_cost=tuple(float(x) for x in np.cumsum(flows.total()[0])),
    )
    return result, flows


def _comparison(edge: Flows, cloud: Flows, params: ParamSet, spec: ModelSpec) -> Comparison:
    e, c = edge.total()[0], cloud.total()[0]
    rate = params[Param.DISCOUNT_RATE].value
    base = {p: iv.value for p, iv in params.items()}
    return Comparison(
        npv_savings=float(present_value(c, rate) - present_value(e, rate)),
        simple_payback_months=simple_payback_months(float(e[0] - c[0]), float(c[1] - e[1])),
        discounted_payback_month=discounted_payback_month(c - e, rate),
        break_even_month=break_even_month(np.cumsum(e), np.cumsum(c)),
        tipping=tipping_point(base, spec),
    )


def _edge_latency(edge: EdgeFigures, slo: float | None, on_prem: bool) -> LatencyCheck:
    parts = None
    if edge.p99_ms is not None:
        parts = [
            LatencyPart(
                name="device p99", ms=edge.p99_ms, basis=Basis.MEASURED, origin=edge.p99_origin
            )
        ]
    return check(Placement.EDGE, parts, slo, on_prem)


def _cloud_latency(
    placement: Placement,
    cloud: CloudProfile,
    figures: CloudFigures | None,
    params: ParamSet,
    profiles: Profiles,
) -> LatencyCheck:
    w = profiles.workload
    server: LatencyPart | None = None
    if figures is not None and figures.server_p99_ms is not None:
        server = LatencyPart(
            name="server p99",
            ms=figures.server_p99_ms,
            basis=Basis.MEASURED,
            origin=figures.server_p99_origin,
        )
    elif cloud.server_p99_ms is not None:
        server = LatencyPart(
            name="server p99",
            ms=cloud.server_p99_ms.value,
            basis=Basis.ASSUMED if cloud.server_p99_ms.assumed else Basis.SOURCED,
            origin=f"cloud profile '{cloud.name}'",
        )
    parts = None
    if server is not None:
        parts = [
            server,
            *network_parts(
                profiles.network,
                params[Param.REQUEST_BYTES].value,
                params[Param.RESPONSE_BYTES].value,
            ),
        ]
    return check(placement, parts, w.slo_p99_ms, w.must_stay_on_premises)


def _hybrid_latency(edge: LatencyCheck, cloud: LatencyCheck, slo: float | None) -> LatencyCheck:
    if edge.p99_ms is None or cloud.p99_ms is None:
        parts = None
    else:
        slower = edge if edge.p99_ms >= cloud.p99_ms else cloud
        parts = list(slower.parts)
    result = check(Placement.HYBRID, parts, slo)
    if not cloud.feasible and cloud.reason and "premises" in cloud.reason:
        return result.model_copy(update={"feasible": False, "reason": cloud.reason})
    return result


def _figure_warnings(
    profiles: Profiles,
    clouds: Sequence[CloudProfile],
    cloud_fig: CloudFigures | None,
    e_inputs: dict[Param, InputValue],
) -> list[str]:
    """Warnings about how far the measured figures can be trusted for this calculation."""
    warnings: list[str] = []
    shared = [c.name for c in clouds if c.kind is CloudKind.INSTANCE]
    if cloud_fig is not None and len(shared) > 1:
        warnings.append(
            f"one HTTP report sizes every instance profile ({', '.join(shared)}): measure each "
            "instance type's endpoint for a fair comparison"
        )
    slo = profiles.workload.slo_p99_ms
    bound = cloud_fig.latency_bound_ms if cloud_fig else None
    if bound and slo and bound > slo:
        warnings.append(
            f"the SLO search bounded server p99 at {bound:g} ms, above the workload's "
            f"{slo:g} ms end-to-end SLO: the SLO-bound capacity is optimistic"
        )
    if Param.EDGE_JOULES not in e_inputs:
        warnings.append(
            "no measured energy in the edge reports: J/inference is estimated from the device "
            "profile's active watts / measured throughput, and labelled estimated"
        )
        return warnings
    busy_watts = e_inputs[Param.EDGE_JOULES].value * e_inputs[Param.EDGE_THROUGHPUT].value
    idle = e_inputs[Param.DEVICE_IDLE_W].value
    if busy_watts < idle:
        warnings.append(
            f"measured J/inference x throughput is {busy_watts:.3g} W, below the idle "
            f"{idle:g} W: the energy figures disagree (is the energy scope narrower than the "
            "device?)"
        )
    return warnings


def _provenance_warnings(analyses: Sequence[CloudAnalysis]) -> list[str]:
    """Stale, undated and assumed inputs, each kind listed once."""
    rows = [r for a in analyses for r in a.inputs]
    warnings: list[str] = []
    stale = {r.param.value: r.as_of for r in rows if r.stale and r.as_of is not None}
    if stale:
        listed = ", ".join(f"{p} ({d.isoformat()})" for p, d in stale.items())
        warnings.append(
            f"{len(stale)} sourced values are over {STALE_AFTER_DAYS} days old, check them "
            f"before relying on the result: {listed}"
        )
    undated = sorted({r.param.value for r in rows if r.basis is Basis.SOURCED and not r.as_of})
    if undated:
        warnings.append(
            f"{len(undated)} sourced values have no as_of date, so their age is unknown: "
            f"{', '.join(undated)}"
        )
    assumed = sorted({r.param.value for r in rows if r.assumed_value})
    if assumed:
        warnings.append(
            f"{len(assumed)} inputs have no source and are assumed: {', '.join(assumed)}"
        )
    return warnings


def _analyse(
    cloud: CloudProfile,
    profiles: Profiles,
    e_inputs: dict[Param, InputValue],
    figures: tuple[EdgeFigures, CloudFigures | None],
    today: date,
    draws: int,
    seed: int,
) -> tuple[CloudAnalysis, PlacementResult]:
    """Edge against one cloud profile: placements, comparison, tornado, risk, presets."""
    edge_fig, cloud_fig = figures
    workload = profiles.workload
    slo = workload.slo_p99_ms
    params = freeze({**e_inputs, **cloud_inputs(profiles, cloud, cloud_fig)})
    spec = model_spec(profiles, cloud, Param.EDGE_JOULES not in e_inputs)
    edge_latency = _edge_latency(edge_fig, slo, workload.must_stay_on_premises)
    edge_res, edge_flows = placement_result(
        Placement.EDGE, f"edge: {profiles.device.name}", None, params, spec, edge_latency
    )
    cloud_latency = _cloud_latency(Placement.CLOUD, cloud, cloud_fig, params, profiles)
    cloud_res, cloud_flows = placement_result(
        Placement.CLOUD, f"cloud: {cloud.name}", cloud.name, params, spec, cloud_latency
    )
    placements = [cloud_res]
    if workload.hybrid_edge_share is not None:
        share = workload.hybrid_edge_share.value
        hybrid, _ = placement_result(
            Placement.HYBRID,
            f"hybrid: {share:.0%} {profiles.device.name} + {cloud.name}",
            cloud.name,
            params,
            spec,
            _hybrid_latency(edge_latency, cloud_latency, slo),
        )
        placements.append(hybrid)
    varied = varied_params(params)
    sweep = tornado(params, spec, varied)
    rows = tuple(
        InputRow(**iv.model_dump(), stale=is_stale(iv, today), assumed_value=iv.assumed)
        for iv in params.values()
    )
    analysis = CloudAnalysis(
        cloud=cloud.name,
        cloud_kind=cloud.kind,
        inputs=rows,
        placements=tuple(placements),
        comparison=_comparison(edge_flows, cloud_flows, params, spec),
        tornado=sweep,
        monte_carlo=monte_carlo(params, spec, varied, draws, seed) if draws > 0 else None,
        scenarios=scenarios(params, spec, sweep),
    )
    return analysis, edge_res


def calculate(
    reports: Sequence[Report],
    *,
    profiles: Profiles,
    clouds: Sequence[CloudProfile],
    today: date,
    tool_version: str,
    model: str | None = None,
    variant: str | None = None,
    draws: int = 100_000,
    seed: int = 0,
) -> CostResult:
    """Cost of the edge device against each cloud profile, with sensitivity and risk."""
    if not clouds:
        raise CostInputError("no cloud profile given", "name one with --cloud")
    kept, warnings = usable(reports, model, variant)
    edge_fig, w_edge = edge_figures(kept, profiles.workload.slo_p99_ms)
    if edge_fig is None:
        raise CostInputError(
            "no on-device report among --reports",
            "pass a report of 'tippingpoint run' on the edge device",
        )
    cloud_fig, w_cloud = cloud_figures(kept)
    e_inputs = edge_inputs(profiles, edge_fig)
    warnings += w_edge + w_cloud + _figure_warnings(profiles, clouds, cloud_fig, e_inputs)
    results = [
        _analyse(c, profiles, e_inputs, (edge_fig, cloud_fig), today, draws, seed) for c in clouds
    ]
    analyses = [a for a, _ in results]
    edge = results[0][1]
    workload = profiles.workload
    return CostResult(
        tool_version=tool_version,
        computed_on=today,
        model=model or (kept[0].model.name if kept else None),
        variant=next((r.model.variant for r in kept if not is_cloud(r)), None),
        cloud_variant=next((r.model.variant for r in kept if is_cloud(r)), None),
        device=profiles.device.name,
        network=profiles.network.name,
        energy=profiles.energy.name,
        workload=workload.name,
        horizon_months=12 * workload.horizon_years,
        amortisation=workload.amortisation,
        slo_p99_ms=workload.slo_p99_ms,
        edge=edge,
        analyses=tuple(analyses),
        recommendation=_recommend(edge, analyses),
        warnings=tuple(warnings + _provenance_warnings(analyses)),
    )


def _recommend(edge: PlacementResult, analyses: Sequence[CloudAnalysis]) -> Recommendation:
    candidates = [edge] + [p for a in analyses for p in a.placements]
    feasible = [p for p in candidates if p.feasible]
    if not feasible:
        return Recommendation(
            label=None, pv=None, reason="no placement meets the SLO and the data constraints"
        )
    best = min(feasible, key=lambda p: p.pv)
    dropped = len(candidates) - len(feasible)
    tail = f"; {dropped} infeasible placement(s) excluded" if dropped else ""
    return Recommendation(
        label=best.label,
        pv=best.pv,
        reason=f"lowest present value of cost over the horizon among feasible placements{tail}",
    )
