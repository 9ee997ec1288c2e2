"""The calculator's cost result, rendered: summary facts and its figures.

The result is read by :mod:`tippingpoint.reports.cost_result`. Nothing is recomputed here:
curves, tornado rows and Monte Carlo histograms are plotted as the calculator wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tippingpoint.reports.charts.spec import (
    Axis,
    Figure,
    HistogramFigure,
    LineFigure,
    Marker,
    Provenance,
    RefLine,
    Series,
    TornadoFigure,
    TornadoRow,
    slug,
)
from tippingpoint.reports.charts.svg import fmt_num

if TYPE_CHECKING:
    from tippingpoint.calculator.result import CloudAnalysis, CostResult, PlacementResult


@dataclass(frozen=True)
class ExecutiveSummary:
    """The three facts a decision maker reads first, with the reasons behind them."""

    recommended: str
    reason: str
    deciding_factor: str
    tipping_point: str
    break_even: str
    most_sensitive: str
    p_edge_cheaper: str
    illustrative: str | None = None
    risk: str = "not run"
    payback: str = "not computed"
    switching: str = "not computed"
    caveats: tuple[str, ...] = ()


def money(v: float, currency: str = "USD") -> str:
    """A currency amount for reading: $1.23M, $45.6k, $12.34 (1.23M EUR in another currency)."""
    sign = "-" if v < 0 else ""
    a = abs(v)
    if a >= 1e6:
        text = f"{a / 1e6:,.2f}M"
    elif a >= 1e4:
        text = f"{a / 1e3:,.1f}k"
    else:
        text = f"{a:,.2f}"
    return f"{sign}${text}" if currency == "USD" else f"{sign}{text} {currency}"


def _cost_factor(edge: PlacementResult, cloud: PlacementResult, currency: str = "USD") -> str:
    by_e = {ln.component: ln.pv for ln in edge.lines}
    by_c = {ln.component: ln.pv for ln in cloud.lines}
    diffs = {c: by_c.get(c, 0.0) - by_e.get(c, 0.0) for c in set(by_e) | set(by_c)}
    if not diffs:
        return "no cost breakdown in the result"
    comp, diff = max(diffs.items(), key=lambda kv: abs(kv[1]))
    side = "cloud" if diff > 0 else "edge"
    return (
        f"{comp.value} cost: {money(abs(diff), currency)} more on {side} ({cloud.label} vs "
        f"{edge.label}), "
        "present value over the horizon"
    )


def _why_infeasible(p: PlacementResult) -> str:
    return p.reason or "infeasible"


def _deciding_factor(cost: CostResult, cloud: PlacementResult) -> str:
    """What decided the recommendation: feasibility (SLO, on-premises) when it ruled out a
    cheaper placement, else the largest cost difference between edge and the cloud."""
    candidates = [cost.edge, *(p for a in cost.analyses for p in a.placements)]
    rec = cost.recommendation
    if rec.invalid_inputs:
        return "validity: " + "; ".join(rec.invalid_inputs)
    if rec.label is None or rec.pv is None:
        out = [p for p in candidates if not p.feasible]
        return (
            "feasibility: no placement is feasible ("
            + "; ".join(f"{p.label}: {_why_infeasible(p)}" for p in out)
            + ")"
        )
    cheaper = sorted(
        (p for p in candidates if not p.feasible and p.pv < rec.pv), key=lambda p: p.pv
    )
    if cheaper:
        c = cheaper[0]
        more = f" (and {len(cheaper) - 1} more cheaper infeasible)" if len(cheaper) > 1 else ""
        return (
            f"feasibility: {c.label} would cost less ({money(c.pv, cost.currency)} vs "
            f"{money(rec.pv, cost.currency)} present "
            f"value) but is ruled out: {_why_infeasible(c)}{more}"
        )
    return _cost_factor(cost.edge, cloud, cost.currency)


def _recommended(cost: CostResult) -> str:
    rec = cost.recommendation
    if rec.invalid_inputs:
        lean = f"; the cheapest feasible placement priced is {rec.leaning}" if rec.leaning else ""
        return f"inconclusive: a deciding figure is invalid or not measured{lean}"
    return rec.label or "none: no placement is feasible"


def _illustrative(cost: CostResult) -> str | None:
    if not cost.illustrative:
        return None
    return "Illustrative, not a decision: " + "; ".join(cost.illustrative) + "."


def executive_summary(cost: CostResult) -> ExecutiveSummary:
    """Recommended placement, deciding factor and tipping point, from the cost result.

    ``illustrative`` is the first line to show whenever a proxy host or a loopback stand-in
    is involved.
    """
    rec = cost.recommendation
    cur = cost.currency
    a = next((x for x in cost.analyses if x.comparison is not None), None)
    if a is None or a.comparison is None or not a.placements:
        return ExecutiveSummary(
            recommended=_recommended(cost),
            reason=rec.reason,
            deciding_factor=(
                _deciding_factor(cost, cost.edge)
                if rec.invalid_inputs
                else "no cloud placement analysed"
            ),
            tipping_point="not computed",
            break_even="not computed",
            most_sensitive="not computed",
            p_edge_cheaper="not computed",
            illustrative=_illustrative(cost),
            caveats=cost.caveats,
        )
    cloud = a.placements[0]
    c = a.comparison
    tp = c.tipping
    basis = "NPV over the horizon" if tp.basis == "pv-horizon" else "year-one annual cost"
    tipping = (
        f"{tp.volume_per_day:,.0f} inferences/day (edge is cheaper above it, by {basis}; the "
        f"workload plans {tp.base_volume_per_day:,.0f}/day)"
        if tp.volume_per_day is not None
        else f"none in the range studied (workload: {tp.base_volume_per_day:,.0f}/day)"
    )
    be = c.break_even_month
    top = a.tornado.rows[0] if a.tornado is not None and a.tornado.rows else None
    mc = a.monte_carlo
    risk = "not run"
    if mc is not None:
        s = mc.savings
        cvar = f", CVaR95 {money(s.cvar95, cur)}" if s.cvar95 is not None else ""
        risk = (
            f"P(loss choosing edge) {mc.p_loss:.0%}; expected NPV {money(mc.expected_saving, cur)};"
            f" VaR95 {money(s.var95, cur)} (P5 of the NPV){cvar}"
        )
    payback = "not computed"
    if c.discounted_payback_months is not None:
        when = c.discounted_payback_date.isoformat() if c.discounted_payback_date else "-"
        payback = (
            f"{c.discounted_payback_months:.1f} months ({c.discounted_payback_hours or 0:,.0f} h),"
            f" {when}, discounted"
        )
    elif tp.basis == "pv-horizon":
        payback = f"none against {cloud.label} within {cost.horizon_months} months"
    flips = [(sv, sv.value) for sv in a.switching if sv.value is not None]
    switching = (
        "; ".join(f"{sv.param.value} at {fmt_num(v)} {sv.unit}" for sv, v in flips[:3])
        if flips
        else ("no leading input flips the decision" if a.switching else "not computed")
    )
    return ExecutiveSummary(
        recommended=_recommended(cost),
        reason=rec.reason,
        deciding_factor=_deciding_factor(cost, cloud),
        tipping_point=tipping,
        break_even=(
            f"month {be} of {cost.horizon_months}: from then on edge's cumulative cost stays lower"
            if be is not None
            else f"none against {cloud.label} within {cost.horizon_months} months"
        ),
        most_sensitive=(
            f"{top.param.value} (swing {money(top.swing, cur)} in NPV saving)" if top else "none"
        ),
        p_edge_cheaper=(
            f"{mc.p_edge_cheaper:.0%} over {mc.draws:,} Monte Carlo draws" if mc else "not run"
        ),
        illustrative=_illustrative(cost),
        risk=risk,
        payback=payback,
        switching=switching,
        caveats=cost.caveats,
    )


MEASURED_BASES = frozenset({"measured", "slo-bound", "measured-throughput"})
"""Input bases that come from the reports themselves."""


def derived_provenance(a: CloudAnalysis) -> tuple[Provenance, str]:
    """How lines computed from an analysis's inputs are drawn, and the caption's words.

    Cost curves are derived from profiles (prices, lives, tariffs) as well as measurements, so
    they are estimated (dashed) unless every input behind them was measured.
    """
    other = sum(i.basis.value not in MEASURED_BASES for i in a.inputs)
    if a.inputs and not other:
        return Provenance.MEASURED, "Every input is measured, so the lines are solid."
    return (
        Provenance.ESTIMATED,
        f"Lines are dashed: derived estimates, {other} of {len(a.inputs)} inputs come from "
        "profiles (sourced or assumed), not measurements.",
    )


def tco_figure(cost: CostResult, a: CloudAnalysis) -> Figure:
    """Cumulative cost of edge and each cloud placement by month, break-even marked."""
    months = len(cost.edge.cumulative_cost)
    prov, prov_note = derived_provenance(a)
    series = [
        Series(
            f"{cost.edge.label} (edge)",
            tuple((float(t), v) for t, v in enumerate(cost.edge.cumulative_cost)),
            prov,
        )
    ]
    for p in a.placements:
        series.append(
            Series(p.label, tuple((float(t), v) for t, v in enumerate(p.cumulative_cost)), prov)
        )
    markers: tuple[Marker, ...] = ()
    be = a.comparison.break_even_month if a.comparison is not None else None
    if be is not None and be < months:
        markers = (Marker(f"break-even, month {be}", float(be), cost.edge.cumulative_cost[be]),)
    energy_basis = cost.edge.kwh_basis.value if cost.edge.kwh_basis else "unknown"
    return LineFigure(
        id=f"tco-{slug(a.cloud)}",
        title=f"Total cost of ownership: edge vs {a.cloud}",
        caption=(
            f"Estimated cumulative cost in {cost.currency} by month (month 0 = upfront) over "
            f"{cost.horizon_months} months, undiscounted, computed by the calculator from the "
            f"profiles ({cost.device}, {a.cloud}, {cost.network}, {cost.energy}, "
            f"{cost.workload}) and the measured reports; edge energy basis: {energy_basis}. "
            + (
                f"Edge breaks even in month {be}. "
                if be is not None
                else "Edge does not break even within the horizon. "
            )
            + prov_note
        ),
        x=Axis("month", "months"),
        y=Axis("cumulative cost", cost.currency),
        series=tuple(series),
        markers=markers,
    )


def tipping_figure(cost: CostResult, a: CloudAnalysis) -> Figure:
    """Cost of edge and cloud over daily volume (present value over the horizon; year-one
    annual cost for a version 1 result), the tipping point marked."""
    assert a.comparison is not None  # cost_figures draws it only for analysed clouds
    tp = a.comparison.tipping
    pv = tp.basis == "pv-horizon"
    vols = tp.curve_volume_per_day
    prov, prov_note = derived_provenance(a)
    log = len(vols) > 1 and min(vols) > 0 and max(vols) / min(vols) > 50
    markers: tuple[Marker, ...] = ()
    if tp.volume_per_day is not None and vols:
        i = min(range(len(vols)), key=lambda k: abs(vols[k] - tp.volume_per_day))  # type: ignore[operator]
        markers = (
            Marker(
                f"tipping point {tp.volume_per_day:,.0f}/day",
                tp.volume_per_day,
                tp.curve_edge[i],
            ),
        )
    return LineFigure(
        id=f"tipping-{slug(a.cloud)}",
        title=f"Tipping point by volume: edge vs {a.cloud}",
        caption=(
            (
                f"Estimated present value of cost in {cost.currency} over the "
                f"{cost.horizon_months}-month horizon (the NPV's own cash flows) against "
                if pv
                else f"Estimated year-one annual cost in {cost.currency} (capital annualised; a "
                "version 1 result) against "
            )
            + f"inferences per day{' (log scale)' if log else ''}, {len(vols)} volumes computed; "
            f"the vertical line is the workload's {tp.base_volume_per_day:,.0f}/day. " + prov_note
        ),
        x=Axis("volume", "inferences/day", log=log),
        y=Axis("present value of cost" if pv else "annual cost", cost.currency),
        series=(
            Series(
                f"{cost.edge.label} (edge)",
                tuple(zip(vols, tp.curve_edge, strict=False)),
                prov,
            ),
            Series(a.cloud, tuple(zip(vols, tp.curve_cloud, strict=False)), prov),
        ),
        markers=markers,
        ref_lines=(RefLine("workload", tp.base_volume_per_day, vertical=True),),
    )


def tornado_figure(cost: CostResult, a: CloudAnalysis) -> Figure:
    """One-at-a-time sensitivity of the edge saving, largest swing first."""
    assert a.tornado is not None  # cost_figures draws it only for analysed clouds
    rows = tuple(
        TornadoRow(
            f"{r.param.value} {fmt_num(r.low)}-{fmt_num(r.high)} {r.unit}".strip(),
            r.metric_low,
            r.metric_high,
        )
        for r in a.tornado.rows[:12]
    )
    return TornadoFigure(
        id=f"tornado-{slug(a.cloud)}",
        title=f"Sensitivity of the edge saving vs {a.cloud}",
        caption=(
            f"Estimated NPV saving of edge over {a.cloud} ({cost.currency}, PV cloud minus PV "
            f"edge) with each input at its low and high value and the rest at base; "
            f"{len(rows)} of {len(a.tornado.rows)} inputs shown, largest swing first."
        ),
        value_axis=Axis("NPV saving of edge", cost.currency),
        base=a.tornado.base,
        rows=rows,
    )


def monte_carlo_figure(cost: CostResult, a: CloudAnalysis) -> Figure | None:
    """Distribution of the edge saving over the Monte Carlo draws, P5/P50/P95 marked."""
    mc = a.monte_carlo
    if mc is None:
        return None
    s = mc.savings
    return HistogramFigure(
        id=f"mc-{slug(a.cloud)}",
        title=f"Monte Carlo: edge saving vs {a.cloud}",
        caption=(
            f"Estimated NPV saving of edge ({cost.currency}) over {mc.draws:,} draws of every "
            f"input across its range (seed {mc.seed}); P(edge cheaper) = {mc.p_edge_cheaper:.1%}, "
            f"P(loss choosing edge) = {mc.p_loss:.1%}, expected "
            f"{money(mc.expected_saving, cost.currency)}. P5 {money(s.p5, cost.currency)}, P50 "
            f"{money(s.p50, cost.currency)}, P95 {money(s.p95, cost.currency)}. Risk on the loss "
            f"side: VaR95 {money(s.var95, cost.currency)} (P5)"
            + (
                f", CVaR95 {money(s.cvar95, cost.currency)} (the mean below it)."
                if s.cvar95 is not None
                else "."
            )
        ),
        x=Axis("NPV saving of edge", cost.currency),
        edges=mc.hist_savings.edges,
        counts=tuple(float(c) for c in mc.hist_savings.counts),
        markers=(
            RefLine("P5", s.p5, vertical=True),
            RefLine("P50", s.p50, vertical=True),
            RefLine("P95", s.p95, vertical=True),
        ),
        provenance=Provenance.ESTIMATED,
    )


def cost_figures(cost: CostResult) -> list[Figure]:
    """TCO, tipping point, tornado and Monte Carlo figures of every cloud analysis."""
    figs: list[Figure] = []
    for a in cost.analyses:
        if a.comparison is None:  # not measured: nothing priced against this cloud
            continue
        figs.append(tco_figure(cost, a))
        if a.comparison.tipping.curve_volume_per_day:
            figs.append(tipping_figure(cost, a))
        if a.tornado is not None and a.tornado.rows:
            figs.append(tornado_figure(cost, a))
        mc = monte_carlo_figure(cost, a)
        if mc is not None:
            figs.append(mc)
    return figs
