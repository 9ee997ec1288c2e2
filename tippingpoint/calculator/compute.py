"""The calculation end to end: reports and profiles in, a :class:`CostResult` out.

Pure: no file or clock access (``today`` is an argument, for the staleness check; raw latency
samples arrive loaded), and the same inputs give the same result, Monte Carlo included
(seeded).

No invalid or borrowed figure decides:

* edge reports measured on another machine than the device profile describes are refused,
  unless ``proxy_host``: then every line and the summary say "measured on X, costed as Y";
* a cloud instance without a valid SLO-bound capacity is *not measured* (nothing is priced
  against it) and a run flagged unstable, min-queries-not-met or send-lag-invalid keeps the
  recommendation *inconclusive*, unless ``accept_flagged``: then the flag is on every line and
  the summary.

A measured hybrid run gives the hybrid placement its edge share and p99 (hybrid_run.py); a
measured split run gives the split placement its head's throughput, its tail's capacity and
its bytes (split_run.py). Neither feeds the edge or cloud figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

from tippingpoint.calculator.capacity import (
    CloudFigures,
    EdgeFigures,
    cloud_figures,
    edge_figures,
    is_cloud,
    usable,
)
from tippingpoint.calculator.finance import (
    add_months,
    break_even_month,
    payback_months,
    present_value,
)
from tippingpoint.calculator.hybrid_run import HybridFigures, split_hybrid_runs
from tippingpoint.calculator.inputs import (
    STALE_AFTER_DAYS,
    Profiles,
    cloud_inputs,
    convert,
    edge_inputs,
    freeze,
    is_stale,
    model_spec,
    varied_params,
)
from tippingpoint.calculator.latency import (
    LatencyCheck,
    LatencyPart,
    check,
    measured_link,
    network_parts,
    payload_difference,
)
from tippingpoint.calculator.lines import component_flows, cost_lines, energy_figures
from tippingpoint.calculator.model import (
    HOURS_PER_MONTH,
    Flows,
    ModelSpec,
    Placement,
    edge_share,
    split_sides,
    split_spec,
)
from tippingpoint.calculator.montecarlo import monte_carlo
from tippingpoint.calculator.params import Basis, InputValue, Param, ParamSet, make_input
from tippingpoint.calculator.provenance import Match, check_reports
from tippingpoint.calculator.result import (
    CloudAnalysis,
    Comparison,
    CostResult,
    InputRow,
    LinkCheck,
    PlacementResult,
    ProxyHost,
    Recommendation,
    RecommendationStatus,
)
from tippingpoint.calculator.scenarios import scenarios
from tippingpoint.calculator.sensitivity import tornado
from tippingpoint.calculator.service import late_inputs, link_check, peak_upload_mbps
from tippingpoint.calculator.split_run import (
    SplitFigures,
    split_inputs,
    split_late_input,
    split_latency,
    split_split_runs,
)
from tippingpoint.calculator.switching import switching_values
from tippingpoint.calculator.tco import evaluate
from tippingpoint.calculator.tipping import tipping_point
from tippingpoint.core.errors import CostInputError
from tippingpoint.core.schema import Report
from tippingpoint.profiles.schema import (
    CloudKind,
    CloudProfile,
    Distribution,
    Sourced,
)


def placement_result(
    placement: Placement,
    label: str,
    cloud: str | None,
    params: ParamSet,
    spec: ModelSpec,
    checks: tuple[LatencyCheck, LinkCheck | None],
    caveats: tuple[str, ...] = (),
) -> tuple[PlacementResult, Flows]:
    """Cost lines, headline figures, energy and the cash flows of one placement."""
    latency, link = checks
    values = {p: np.array([iv.value]) for p, iv in params.items()}
    flows, summary = evaluate(placement, values, spec)
    year = min(12, spec.months)
    share = float(edge_share(placement, values)[0, 0])
    line_spec = split_spec(spec, split_sides(params)) if placement is Placement.SPLIT else spec
    kwh, kwh_basis, co2 = energy_figures(placement, flows, params, line_spec)
    result = PlacementResult(
        placement=placement,
        label=label,
        cloud=cloud,
        edge_share=share,
        feasible=latency.feasible and (link is None or link.feasible),
        latency=latency,
        link=link,
        edge_units_year1=float(flows.units[0, :year].mean()) if share > 0 else None,
        cloud_instances_year1=(
            float(flows.instances[0, :year].mean())
            if (share < 1 or placement is Placement.SPLIT) and spec.cloud_kind is CloudKind.INSTANCE
            else None
        ),
        cost_per_million=float(summary.cost_per_million[0]),
        annual_cost=float(summary.annual[0]),
        tco=float(summary.tco[0]),
        pv=float(summary.pv[0]),
        eac=float(summary.eac[0]),
        capex_tco=float(summary.subtotal(True, "tco")[0]),
        opex_tco=float(summary.subtotal(False, "tco")[0]),
        capex_pv=float(summary.subtotal(True, "pv")[0]),
        opex_pv=float(summary.subtotal(False, "pv")[0]),
        kwh_per_year=kwh,
        kwh_basis=kwh_basis,
        co2e_kg_per_year=co2,
        lines=cost_lines(placement, flows, summary, params, spec, caveats),
        cumulative_cost=tuple(float(x) for x in np.cumsum(flows.total()[0])),
        cash_flows=component_flows(placement, flows, spec, params),
        caveats=caveats,
    )
    return result, flows


def _comparison(
    edge: Flows, cloud: Flows, params: ParamSet, spec: ModelSpec, start: date
) -> Comparison:
    """NPV, paybacks and break-even of edge against one cloud, from the monthly cash flows."""
    e, c = edge.total()[0], cloud.total()[0]
    rate = params[Param.DISCOUNT_RATE].value
    base = {p: iv.value for p, iv in params.items()}
    pay = payback_months(c - e, None)
    disc = payback_months(c - e, rate)
    return Comparison(
        npv_savings=float(present_value(c, rate) - present_value(e, rate)),
        payback_months=pay,
        payback_hours=None if pay is None else pay * HOURS_PER_MONTH,
        payback_date=None if pay is None else add_months(start, pay),
        discounted_payback_months=disc,
        discounted_payback_hours=None if disc is None else disc * HOURS_PER_MONTH,
        discounted_payback_date=None if disc is None else add_months(start, disc),
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
    result = check(Placement.EDGE, parts, slo, on_prem)
    return result.model_copy(
        update={"basis": Basis.MEASURED, "method": f"measured on the device: {edge.p99_origin}"}
    )


def _cloud_latency(
    placement: Placement,
    cloud: CloudProfile,
    figures: CloudFigures | None,
    params: ParamSet,
    profiles: Profiles,
) -> LatencyCheck:
    w = profiles.workload
    network = profiles.network
    measured, _ = measured_link(figures, network)
    if measured is not None:
        parts = [
            LatencyPart(
                name=f"client p99 under network '{network.name}'",
                ms=measured.p99_ms,
                basis=Basis.MEASURED,
                origin=measured.origin,
            )
        ]
        method = f"measured under network '{network.name}': {measured.origin}"
        extra = payload_difference(
            network,
            (params[Param.REQUEST_BYTES].value, params[Param.RESPONSE_BYTES].value),
            (measured.request_bytes, measured.response_bytes),
        )
        if extra is not None:
            parts.append(extra)
            method = f"estimated: {method}, plus {extra.origin}"
        result = check(placement, parts, w.slo_p99_ms, w.must_stay_on_premises)
        basis = Basis.MEASURED if extra is None else Basis.ESTIMATED
        return result.model_copy(update={"basis": basis, "method": method})
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
    projected: list[LatencyPart] | None = None
    if server is not None:
        projected = [
            server,
            *network_parts(
                network,
                params[Param.REQUEST_BYTES].value,
                params[Param.RESPONSE_BYTES].value,
            ),
        ]
    result = check(placement, projected, w.slo_p99_ms, w.must_stay_on_premises)
    if server is None:
        return result
    method = (
        f"estimated: projected onto network '{network.name}' (its RTT, transfers and loss "
        f"added to the {server.name} of {server.origin})"
    )
    return result.model_copy(update={"basis": Basis.ESTIMATED, "method": method})


def _measured_hybrid_latency(fig: HybridFigures | None, profiles: Profiles) -> LatencyCheck | None:
    """The p99 of a hybrid run measured under the cost's network profile (None otherwise:
    the hybrid placement then takes the slower side's, as without a run)."""
    if fig is None or fig.p99_ms is None or fig.network != profiles.network.name:
        return None
    w = profiles.workload
    part = LatencyPart(
        name=f"hybrid p99 under network '{fig.network}'",
        ms=fig.p99_ms,
        basis=Basis.MEASURED,
        origin=fig.origin,
    )
    result = check(Placement.HYBRID, [part], w.slo_p99_ms, w.must_stay_on_premises)
    method = f"measured under network '{fig.network}': {fig.origin}"
    return result.model_copy(update={"basis": Basis.MEASURED, "method": method})


def _hybrid_latency(edge: LatencyCheck, cloud: LatencyCheck, slo: float | None) -> LatencyCheck:
    slower: LatencyCheck | None = None
    if edge.p99_ms is None or cloud.p99_ms is None:
        parts = None
    else:
        slower = edge if edge.p99_ms >= cloud.p99_ms else cloud
        parts = list(slower.parts)
    result = check(Placement.HYBRID, parts, slo)
    if slower is not None:
        result = result.model_copy(update={"basis": slower.basis, "method": slower.method})
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
    w = profiles.workload
    if w.delay_cost_per_late_request is not None and slo is None:
        warnings.append(
            "the workload values late requests but sets no slo_p99_ms: no cost of delay is "
            "computed; set slo_p99_ms"
        )
    n = profiles.network
    _, differs = measured_link(cloud_fig, n)
    if differs:
        warnings.append(
            f"a cloud report ran under a network named '{n.name}' but that profile has changed "
            f"since ({'; '.join(differs)}): its latency is not used, the cloud p99 is projected; "
            "re-measure with run --network"
        )
    if w.outage_cost_per_inference is not None and (
        n.availability is None and n.outage_hours_per_year is None
    ):
        warnings.append(
            f"the workload values lost inferences but network profile '{n.name}' states no "
            "availability: no outage cost is computed; set availability or "
            "outage_hours_per_year"
        )
    if Param.EDGE_JOULES not in e_inputs:
        warnings.append(
            "no measured energy in the edge reports: J/inference is estimated from the device "
            "profile's active watts / measured throughput, and labelled estimated"
        )
        return warnings
    joules = e_inputs[Param.EDGE_JOULES]
    busy_watts = joules.value * e_inputs[Param.EDGE_THROUGHPUT].value
    idle = e_inputs[Param.DEVICE_IDLE_W].value
    if busy_watts < idle:
        warnings.append(
            f"{joules.basis.value} J/inference x throughput is {busy_watts:.3g} W, below the "
            f"idle {idle:g} W: the energy figures disagree (is the energy scope narrower than "
            "the device?)"
        )
    return warnings


def _provenance_warnings(analyses: Sequence[CloudAnalysis]) -> list[str]:
    """Stale, undated and assumed inputs, and ranges held or cut, each kind listed once."""
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
    held = sorted({r.param.value for r in rows if r.range_note and "held at 0" in r.range_note})
    if held:
        warnings.append(
            f"{len(held)} inputs are 0 with no stated range, so the sensitivity analysis and "
            f"the Monte Carlo hold them at 0: {', '.join(held)}; state low/high in the profile"
        )
    cut = sorted({r.param.value for r in rows if r.range_note and "one-sided" in r.range_note})
    if cut:
        warnings.append(
            f"{len(cut)} default ranges are cut at a physical limit, so they vary one way only: "
            f"{', '.join(cut)}; state low/high in the profile"
        )
    return warnings


@dataclass(frozen=True)
class _Context:
    """What every analysis shares: the profiles, the measured figures and the options."""

    profiles: Profiles
    edge_fig: EdgeFigures
    cloud_fig: CloudFigures | None
    e_inputs: Mapping[Param, InputValue]
    today: date
    start: date
    draws: int
    seed: int
    accept: bool
    fx: InputValue | None
    currency: str
    caveats: tuple[str, ...]
    samples: Mapping[str, NDArray[np.float64]]
    hybrid_fig: HybridFigures | None = None
    """A measured hybrid run: the hybrid placement's edge share and p99 (issue 16)."""
    split_fig: SplitFigures | None = None
    """A measured split run: the split placement's head, tail, bytes and p99 (issue 16)."""


MEASURED_BASES = (Basis.MEASURED, Basis.SLO_BOUND, Basis.MEASURED_THROUGHPUT)
"""A cloud capacity a split's tail may be scaled from: one measured at the endpoint."""


def _params(cloud: CloudProfile, ctx: _Context) -> dict[Param, InputValue]:
    """Every input of one analysis, converted to the result's currency."""
    profiles = ctx.profiles
    params = {**ctx.e_inputs, **cloud_inputs(profiles, cloud, ctx.cloud_fig, ctx.accept)}
    slo = profiles.workload.slo_p99_ms
    if Param.DELAY_VALUE in params and slo is not None:
        payload = (params[Param.REQUEST_BYTES].value, params[Param.RESPONSE_BYTES].value)
        params.update(
            late_inputs(
                slo,
                ctx.edge_fig,
                ctx.cloud_fig,
                cloud,
                profiles.network,
                payload,
                ctx.samples,
            )
        )
    capacity = params.get(Param.CLOUD_CAPACITY)
    if ctx.split_fig is not None and capacity is not None and capacity.basis in MEASURED_BASES:
        params.update(split_inputs(ctx.split_fig, capacity))
        if Param.DELAY_VALUE in params and slo is not None:
            late = split_late_input(ctx.split_fig, profiles.network, slo, ctx.samples)
            if late is not None:
                params[Param.SPLIT_LATE_SHARE] = late
    if ctx.fx is not None:
        convert(params, ctx.fx, ctx.currency)
    return params


def _rows(params: ParamSet, today: date) -> tuple[InputRow, ...]:
    return tuple(
        InputRow(**iv.model_dump(), stale=is_stale(iv, today), assumed_value=iv.assumed)
        for iv in params.values()
    )


def _links(params: ParamSet, spec: ModelSpec, ctx: _Context) -> dict[Placement, LinkCheck | None]:
    """Each placement's peak upload against the network's uplink."""
    base = {p: iv.value for p, iv in params.items()}
    n = ctx.profiles.network
    up = base.get(Param.EDGE_UPSTREAM, 0.0)
    hybrid = base.get(Param.HYBRID_EDGE_SHARE, 0.0)
    out: dict[Placement, LinkCheck | None] = {}
    for placement, share in (
        (Placement.EDGE, 1.0),
        (Placement.CLOUD, 0.0),
        (Placement.HYBRID, hybrid),
    ):
        mbps = peak_upload_mbps(base, spec.months, share, up)
        out[placement] = link_check(n.name, n.uplink_mbps.value, mbps, sends=mbps > 0)
    if Param.SPLIT_REQUEST_BYTES in base:  # every inference sends the activation up
        mbps = peak_upload_mbps(split_sides(base), spec.months, 0.0, 0.0)
        out[Placement.SPLIT] = link_check(n.name, n.uplink_mbps.value, mbps)
    return out


def _analyse(cloud: CloudProfile, ctx: _Context) -> tuple[CloudAnalysis, PlacementResult]:
    """Edge against one cloud profile: placements, comparison, tornado, risk, presets."""
    workload = ctx.profiles.workload
    slo = workload.slo_p99_ms
    params = freeze(_params(cloud, ctx))
    fx = ctx.fx.value if ctx.fx is not None else 1.0
    spec = model_spec(ctx.profiles, cloud, Param.EDGE_JOULES not in params, params, fx)
    links = _links(params, spec, ctx)
    edge_latency = _edge_latency(ctx.edge_fig, slo, workload.must_stay_on_premises)
    device = ctx.profiles.device.name
    edge_res, edge_flows = placement_result(
        Placement.EDGE,
        f"edge: {device}",
        None,
        params,
        spec,
        (edge_latency, links[Placement.EDGE]),
        ctx.caveats,
    )
    if cloud.kind is CloudKind.INSTANCE and Param.CLOUD_CAPACITY not in params:
        reason = ctx.cloud_fig.capacity_problem if ctx.cloud_fig else None
        analysis = CloudAnalysis(
            cloud=cloud.name,
            cloud_kind=cloud.kind,
            not_measured=f"not measured: {reason or 'no valid capacity'}",
            inputs=_rows(params, ctx.today),
            placements=(),
        )
        return analysis, edge_res
    cloud_latency = _cloud_latency(Placement.CLOUD, cloud, ctx.cloud_fig, params, ctx.profiles)
    cloud_res, cloud_flows = placement_result(
        Placement.CLOUD,
        f"cloud: {cloud.name}",
        cloud.name,
        params,
        spec,
        (cloud_latency, links[Placement.CLOUD]),
        ctx.caveats,
    )
    placements = [cloud_res]
    if Param.HYBRID_EDGE_SHARE in params:  # the workload's share, or a measured hybrid run's
        share = params[Param.HYBRID_EDGE_SHARE].value
        measured = " (measured)" if ctx.hybrid_fig is not None else ""
        hybrid_latency = _measured_hybrid_latency(ctx.hybrid_fig, ctx.profiles) or (
            _hybrid_latency(edge_latency, cloud_latency, slo)
        )
        hybrid, _ = placement_result(
            Placement.HYBRID,
            f"hybrid: {share:.0%} {device} + {cloud.name}{measured}",
            cloud.name,
            params,
            spec,
            (hybrid_latency, links[Placement.HYBRID]),
            ctx.caveats,
        )
        placements.append(hybrid)
    if ctx.split_fig is not None and Param.SPLIT_TAIL_CAPACITY in params:
        fig = ctx.split_fig
        split, _ = placement_result(
            Placement.SPLIT,
            f"split: {device} head + {cloud.name} tail at {fig.cut} (run {fig.run_id[:8]})",
            cloud.name,
            params,
            spec,
            (
                split_latency(fig, ctx.profiles.network, slo, workload.must_stay_on_premises),
                links[Placement.SPLIT],
            ),
            ctx.caveats,
        )
        placements.append(split)
    varied = varied_params(params)
    sweep = tornado(params, spec, varied)
    analysis = CloudAnalysis(
        cloud=cloud.name,
        cloud_kind=cloud.kind,
        inputs=_rows(params, ctx.today),
        placements=tuple(placements),
        comparison=_comparison(edge_flows, cloud_flows, params, spec, ctx.start),
        tornado=sweep,
        switching=switching_values(params, spec, sweep),
        monte_carlo=(
            monte_carlo(params, spec, varied, ctx.draws, ctx.seed) if ctx.draws > 0 else None
        ),
        scenarios=scenarios(params, spec, sweep),
    )
    return analysis, edge_res


def _provenance(
    profiles: Profiles, kept: Sequence[Report], proxy_host: bool
) -> tuple[ProxyHost | None, list[str]]:
    """Refuse edge reports from another machine, or describe the proxy; and warnings."""
    device = profiles.device
    checks = check_reports(device, [r for r in kept if not is_cloud(r)])
    warnings: list[str] = []
    bad = [c for c in checks if c.match is Match.MISMATCH]
    if any(c.match is Match.UNDECLARED for c in checks):
        warnings.append(
            f"device profile '{device.name}' declares no identity (architecture, cpu, board): "
            "the reports' host cannot be checked against it; add one to the profile"
        )
    unverified = [c for c in checks if c.match is Match.UNVERIFIED]
    if unverified:
        warnings.append(
            f"{len(unverified)} edge report(s) record no board or CPU model: only their "
            f"architecture was checked against device profile '{device.name}'"
        )
    if not bad:
        if proxy_host:
            warnings.append(
                f"--proxy-host given, but the edge reports match device profile '{device.name}'"
            )
        return None, warnings
    first = bad[0]
    if not proxy_host:
        raise CostInputError(
            f"report {first.run_id[:8]} was measured on {first.host}, not on device profile "
            f"'{device.name}' ({first.why})",
            f"run the benchmark on the device, or pass --proxy-host to cost these figures as "
            f"{device.name} (labelled illustrative)",
        )
    hosts = ", ".join(dict.fromkeys(c.host for c in bad))
    return ProxyHost(measured_on=hosts, costed_as=device.name, reason=first.why), warnings


def _fx_input(currency: str, fx: Sourced | None) -> InputValue | None:
    if currency == "USD" and fx is None:
        return None
    if fx is None:
        raise CostInputError(
            f"no exchange rate for {currency}",
            f"give the rate with --fx (units of {currency} per USD)",
        )
    return make_input(
        Param.FX_RATE,
        fx.value,
        Basis.ASSUMED if fx.assumed else Basis.SOURCED,
        "command line --fx",
        distribution=Distribution.FIXED,
        source=fx.source,
        as_of=fx.as_of,
    )


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
    start: date | None = None,
    currency: str = "USD",
    fx: Sourced | None = None,
    proxy_host: bool = False,
    accept_flagged: bool = False,
    samples: Mapping[str, NDArray[np.float64]] | None = None,
) -> CostResult:
    """Cost of the edge device against each cloud profile, with sensitivity and risk.

    ``start`` is month 0 (default ``today``); ``fx`` converts the profiles' USD into
    ``currency``; ``samples`` holds raw latencies (ms) by report ``run_id`` for the cost of
    delay. See the module notes for ``proxy_host`` and ``accept_flagged``.
    """
    if not clouds:
        raise CostInputError("no cloud profile given", "name one with --cloud")
    kept, warnings = usable(reports, model, variant)
    hybrid_fig, kept, w_hybrid = split_hybrid_runs(kept)  # they measured neither side alone
    split_fig, kept, w_split = split_split_runs(kept)  # nor did a split run (head here, tail there)
    warnings += w_hybrid + w_split
    proxy, w_prov = _provenance(profiles, kept, proxy_host)
    edge_fig, w_edge = edge_figures(kept, profiles.workload.slo_p99_ms)
    if edge_fig is None:
        raise CostInputError(
            "no on-device report among --reports",
            "pass a report of 'tippingpoint run' on the edge device",
        )
    cloud_fig, w_cloud = cloud_figures(kept)
    fx_input = _fx_input(currency, fx)
    e_inputs = edge_inputs(profiles, edge_fig)
    if hybrid_fig is not None:  # measured: replaces the workload's hybrid_edge_share
        e_inputs[Param.HYBRID_EDGE_SHARE] = make_input(
            Param.HYBRID_EDGE_SHARE, hybrid_fig.edge_share, Basis.MEASURED, hybrid_fig.origin
        )
    warnings += w_prov + w_edge + w_cloud
    warnings += _figure_warnings(profiles, clouds, cloud_fig, e_inputs)
    problems = list(edge_fig.problems)
    if cloud_fig is not None:
        problems += cloud_fig.problems
    measured, _ = measured_link(cloud_fig, profiles.network)
    if measured is not None:
        problems += measured.problems
    warnings += _split_warnings(split_fig, clouds, cloud_fig, profiles)
    if cloud_fig is None or not any(c.kind is CloudKind.INSTANCE for c in clouds):
        split_fig = None  # no split placement is priced: its run decides nothing
    if split_fig is not None:
        problems += split_fig.problems
    accepted = list(problems)
    if cloud_fig is not None and cloud_fig.capacity_problem:
        if any(c.kind is CloudKind.INSTANCE for c in clouds):
            accepted.append(cloud_fig.capacity_problem.split("; run ")[0])
    caveats: list[str] = []
    illustrative: list[str] = []
    if proxy is not None:
        caveats.append(f"measured on {proxy.measured_on}, costed as {proxy.costed_as}")
        illustrative.append(
            f"the edge figures were measured on {proxy.measured_on} and costed as "
            f"{proxy.costed_as} (--proxy-host)"
        )
    if cloud_fig is not None and cloud_fig.local_standin:
        illustrative.append(
            "the cloud endpoint was a loopback stand-in on the measuring machine: its capacity "
            "and latency are not the cloud instance's"
        )
    if split_fig is not None and split_fig.local_standin:
        illustrative.append(
            f"the {split_fig.origin} served its tails from a loopback stand-in on the measuring "
            "machine: its tail times and latency are not the cloud instance's"
        )
    if accept_flagged:
        caveats += [f"accepted flagged run: {p}" for p in dict.fromkeys(accepted)]
    ctx = _Context(
        profiles=profiles,
        edge_fig=edge_fig,
        cloud_fig=cloud_fig,
        e_inputs=e_inputs,
        today=today,
        start=start or today,
        draws=draws,
        seed=seed,
        accept=accept_flagged,
        fx=fx_input,
        currency=currency,
        caveats=tuple(caveats),
        samples=samples or {},
        hybrid_fig=hybrid_fig,
        split_fig=split_fig,
    )
    results = [_analyse(c, ctx) for c in clouds]
    analyses = [a for a, _ in results]
    edge = results[0][1]
    workload = profiles.workload
    invalid = [] if accept_flagged else list(dict.fromkeys(problems))
    unmeasured: dict[str, list[str]] = {}
    for a in analyses:
        if a.not_measured:
            unmeasured.setdefault(a.not_measured, []).append(a.cloud)
    invalid += [f"{', '.join(names)} {why}" for why, names in unmeasured.items()]
    return CostResult(
        tool_version=tool_version,
        computed_on=today,
        start=start or today,
        currency=currency,
        fx_rate=fx_input.value if fx_input is not None else 1.0,
        model=model or (kept[0].model.name if kept else None),
        variant=next((r.model.variant for r in kept if not is_cloud(r)), None),
        cloud_variant=next((r.model.variant for r in kept if is_cloud(r)), None),
        device=profiles.device.name,
        network=profiles.network.name,
        energy=profiles.energy.name,
        workload=workload.name,
        horizon_months=workload.months,
        amortisation=workload.amortisation,
        slo_p99_ms=workload.slo_p99_ms,
        proxy=proxy,
        illustrative=tuple(illustrative),
        caveats=tuple(caveats),
        edge=edge,
        analyses=tuple(analyses),
        recommendation=_recommend(edge, analyses, invalid),
        warnings=tuple(warnings + _provenance_warnings(analyses)),
    )


def _split_warnings(
    fig: SplitFigures | None,
    clouds: Sequence[CloudProfile],
    cloud_fig: CloudFigures | None,
    profiles: Profiles,
) -> list[str]:
    """What keeps a measured split run from costing a split placement, or part of one."""
    if fig is None:
        return []
    out: list[str] = []
    apis = [c.name for c in clouds if c.kind is CloudKind.API]
    if apis:
        out.append(
            f"no split placement against {', '.join(apis)}: a split's tail cannot be bought per "
            f"request from an API ({fig.origin} is costed against instance profiles only)"
        )
    if cloud_fig is None and any(c.kind is CloudKind.INSTANCE for c in clouds):
        out.append(
            f"no split placement: its tail's capacity is the cloud's measured capacity scaled by "
            f"{fig.origin}, and no cloud capacity was measured (a profile's capacity_qps is "
            "not a measurement); pass the endpoint's server-scenario report in --reports"
        )
    w = profiles.workload
    if (
        w.delay_cost_per_late_request is not None
        and w.slo_p99_ms is not None
        and split_late_input(fig, profiles.network, w.slo_p99_ms, {}) is None
    ):
        out.append(
            f"no cost of delay for the split placement: {fig.origin} did not run under network "
            f"'{profiles.network.name}', so its late share is not measured; re-run it with "
            f"--network {profiles.network.name}"
        )
    return out


def _recommend(
    edge: PlacementResult, analyses: Sequence[CloudAnalysis], invalid: Sequence[str]
) -> Recommendation:
    candidates = [edge] + [p for a in analyses for p in a.placements]
    feasible = [p for p in candidates if p.feasible]
    best = min(feasible, key=lambda p: p.pv) if feasible else None
    if invalid:
        lean = f"; cheapest feasible placement priced: {best.label}" if best else ""
        return Recommendation(
            status=RecommendationStatus.INCONCLUSIVE,
            label=None,
            pv=None,
            reason=f"inconclusive: a deciding figure is invalid or not measured{lean}",
            leaning=best.label if best else None,
            invalid_inputs=tuple(invalid),
        )
    if best is None:
        return Recommendation(
            status=RecommendationStatus.NONE_FEASIBLE,
            label=None,
            pv=None,
            reason="no placement meets the SLO, the uplink and the data constraints",
        )
    dropped = len(candidates) - len(feasible)
    tail = f"; {dropped} infeasible placement(s) excluded" if dropped else ""
    return Recommendation(
        label=best.label,
        pv=best.pv,
        reason=f"lowest present value of cost over the horizon among feasible placements{tail}",
    )
