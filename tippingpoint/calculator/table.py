"""Rich tables of a CostResult; reads the result, never computes a figure."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tippingpoint.calculator.params import Basis
from tippingpoint.calculator.result import CloudAnalysis, CostResult, PlacementResult

MAX_TORNADO_ROWS = 8


def usd(v: float | None) -> str:
    """A dollar amount, rounded to what a reader needs."""
    if v is None:
        return "-"
    sign = "-" if v < 0 else ""
    a = abs(v)
    if a == 0:
        return "$0"
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    return f"{sign}${a:.4f}"


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return f"{text} {unit}".strip()


def _basis(b: Basis | None) -> str:
    if b is None:
        return "-"
    style = {Basis.ASSUMED: "yellow", Basis.ESTIMATED: "cyan"}.get(b, "green")
    return f"[{style}]{b.value}[/{style}]"


def _placements(result: CostResult) -> Table:
    t = Table(title="placements", header_style="bold")
    for col in ("placement", "p99 ms", "feasible", "$/M inf", "year 1", "TCO", "PV", "kWh/yr"):
        t.add_column(col, justify="left" if col in ("placement", "feasible") else "right")
    t.add_column("CO2e kg/yr", justify="right")
    rows: list[PlacementResult] = [result.edge] + [p for a in result.analyses for p in a.placements]
    for p in rows:
        lat = p.latency
        feasible = (
            "[green]yes[/green]" if p.feasible else f"[red]no[/red] {escape(lat.reason or '')}"
        )
        kwh = _num(p.kwh_per_year)
        if p.kwh_basis is not None:
            kwh += f" ({_basis(p.kwh_basis)})"
        t.add_row(
            escape(p.label),
            _num(lat.p99_ms),
            feasible,
            usd(p.cost_per_million),
            usd(p.annual_cost),
            usd(p.tco),
            usd(p.pv),
            kwh,
            _num(p.co2e_kg_per_year),
        )
    return t


def _lines(p: PlacementResult) -> Table:
    t = Table(title=f"cost lines: {escape(p.label)}", header_style="bold")
    for col in ("component", "year 1", "TCO", "basis", "assumed inputs", "how"):
        t.add_column(col, justify="right" if col in ("year 1", "TCO") else "left")
    for line in p.lines:
        t.add_row(
            line.component.value,
            usd(line.annual_usd),
            usd(line.tco_usd),
            _basis(line.basis),
            escape(", ".join(a.value for a in line.assumed_inputs)) or "-",
            escape(line.note),
        )
    return t


def _comparison(a: CloudAnalysis) -> Table:
    c = a.comparison
    tip = c.tipping
    t = Table(title=f"edge vs {escape(a.cloud)}", header_style="bold", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("NPV of choosing edge (PV cloud - PV edge)", usd(c.npv_savings))
    payback = "never" if c.simple_payback_months is None else f"{c.simple_payback_months:.1f}"
    t.add_row("simple payback, months", payback)
    disc = "never" if c.discounted_payback_month is None else str(c.discounted_payback_month)
    t.add_row("discounted payback, month", disc)
    be = "never in horizon" if c.break_even_month is None else str(c.break_even_month)
    t.add_row("break-even month (cumulative)", be)
    lo, hi = tip.curve_volume_per_day[0], tip.curve_volume_per_day[-1]
    if tip.volume_per_day is not None:
        vol = f"{_num(tip.volume_per_day)} (edge cheaper above)"
    elif tip.cheaper_throughout is not None:
        vol = f"none: {tip.cheaper_throughout.value} cheaper from {_num(lo)} to {_num(hi)}"
    else:
        vol = "none: cloud cheaper at the highest volume studied"
    t.add_row("tipping volume, inferences/day", vol)
    for cross in tip.crossings:
        side = "edge" if cross.edge_cheaper_above else "cloud"
        at = f"{_num(cross.volume_per_day)} ({side} above)"
        t.add_row("  costs cross at, inferences/day", at)
    lin = "-" if tip.linear_volume_per_day is None else _num(tip.linear_volume_per_day)
    t.add_row("linear estimate V*, inferences/day", lin)
    t.add_row("workload volume, inferences/day", _num(tip.base_volume_per_day))
    return t


def _tornado(a: CloudAnalysis) -> Table:
    t = Table(
        title=f"tornado: NPV of edge vs {escape(a.cloud)} (base {usd(a.tornado.base)})",
        header_style="bold",
    )
    for col in ("input", "low", "high", "NPV at low", "NPV at high", "swing"):
        t.add_column(col, justify="left" if col == "input" else "right")
    for r in a.tornado.rows[:MAX_TORNADO_ROWS]:
        t.add_row(
            escape(f"{r.param.value} [{r.unit}]"),
            _num(r.low),
            _num(r.high),
            usd(r.metric_low),
            usd(r.metric_high),
            usd(r.swing),
        )
    return t


def _risk(a: CloudAnalysis) -> Table | None:
    mc = a.monte_carlo
    if mc is None:
        return None
    t = Table(
        title=f"Monte Carlo, {mc.draws:,} draws: P(edge cheaper) = {mc.p_edge_cheaper:.1%}",
        header_style="bold",
    )
    for col in ("present value", "P5", "P50", "P95", "VaR95", "CVaR95"):
        t.add_column(col, justify="left" if col == "present value" else "right")
    for name, s in (("edge cost", mc.edge_pv), ("cloud cost", mc.cloud_pv), ("saving", mc.savings)):
        t.add_row(name, usd(s.p5), usd(s.p50), usd(s.p95), usd(s.var95), usd(s.cvar95))
    return t


def _scenarios(a: CloudAnalysis) -> Table:
    t = Table(title=f"scenarios for the move to the edge vs {escape(a.cloud)}", header_style="bold")
    for col in ("preset", "edge PV", "cloud PV", "NPV of edge", "edge $/M", "cloud $/M", "cheaper"):
        t.add_column(col, justify="left" if col in ("preset", "cheaper") else "right")
    for s in a.scenarios:
        t.add_row(
            s.preset.value,
            usd(s.edge_pv),
            usd(s.cloud_pv),
            usd(s.npv_savings),
            usd(s.edge_cost_per_million),
            usd(s.cloud_cost_per_million),
            s.cheaper.value,
        )
    return t


def _inputs(a: CloudAnalysis) -> Table:
    t = Table(title=f"inputs ({escape(a.cloud)})", header_style="bold")
    for col in ("input", "value", "range", "basis", "source"):
        t.add_column(col, justify="right" if col in ("value",) else "left")
    for r in a.inputs:
        src = escape(r.source or r.origin)
        if r.as_of is not None:
            src += f", {r.as_of.isoformat()}"
        if r.stale:
            src += " [red](stale)[/red]"
        rng = f"{_num(r.low)} .. {_num(r.high)}" + ("" if r.range_stated else " (default)")
        t.add_row(
            r.param.value,
            f"{_num(r.value)} {escape(r.unit)}",
            rng,
            _basis(r.basis),
            src,
        )
    return t


def cost_tables(result: CostResult, details: bool = True) -> RenderableType:
    """All tables of a result, in reading order."""
    variant = result.variant or "-"
    if result.cloud_variant and result.cloud_variant != result.variant:
        variant += f" (endpoint: {result.cloud_variant})"
    head = Text(
        f"model {result.model or '-'} {variant} | device {result.device} | "
        f"network {result.network} | energy {result.energy} | workload {result.workload} | horizon "
        f"{result.horizon_months} months | SLO p99 "
        f"{'-' if result.slo_p99_ms is None else f'{result.slo_p99_ms:g} ms'} | USD",
        style="bold",
    )
    parts: list[RenderableType] = [head, _placements(result)]
    if details:
        parts.append(_lines(result.edge))
        parts.extend(_lines(p) for a in result.analyses for p in a.placements)
    for a in result.analyses:
        parts.append(_comparison(a))
        parts.append(_tornado(a))
        risk = _risk(a)
        if risk is not None:
            parts.append(risk)
        parts.append(_scenarios(a))
        if details:
            parts.append(_inputs(a))
    rec = result.recommendation
    parts.append(Text(f"recommendation: {rec.label or 'none'} ({rec.reason})", style="bold green"))
    parts.extend(Text(f"warning: {w}", style="yellow") for w in result.warnings)
    return Group(*parts)
