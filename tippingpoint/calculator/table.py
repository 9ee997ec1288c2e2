"""Rich tables of a CostResult; reads the result, never computes a figure."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.params import Basis
from tippingpoint.calculator.result import (
    CloudAnalysis,
    Comparison,
    CostResult,
    PlacementResult,
    RecommendationStatus,
)

MAX_TORNADO_ROWS = 8


def amount(v: float | None, currency: str = "USD") -> str:
    """A money amount, rounded to what a reader needs: $1,234 for USD, 1,234 EUR otherwise."""
    if v is None:
        return "-"
    sign = "-" if v < 0 else ""
    a = abs(v)
    if a == 0:
        text = "0"
    elif a >= 100:
        text = f"{a:,.0f}"
    elif a >= 1:
        text = f"{a:,.2f}"
    else:
        text = f"{a:.4f}"
    return f"{sign}${text}" if currency == "USD" else f"{sign}{text} {currency}"


def usd(v: float | None) -> str:
    """A dollar amount (see :func:`amount`)."""
    return amount(v)


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


def _caveats(result: CostResult) -> str | None:
    if not result.caveats:
        return None
    return "every line: " + "; ".join(result.caveats)


def _placements(result: CostResult) -> Table:
    cur = result.currency
    t = Table(title="placements", header_style="bold", caption=_caveats(result))
    cols = ("placement", "p99 ms", "feasible", f"{cur}/M inf", "year 1", "TCO", "capex", "opex")
    for col in (*cols, "PV", "kWh/yr"):
        t.add_column(col, justify="left" if col in ("placement", "feasible") else "right")
    t.add_column("CO2e kg/yr", justify="right")
    rows: list[PlacementResult] = [result.edge] + [p for a in result.analyses for p in a.placements]
    for p in rows:
        feasible = "[green]yes[/green]" if p.feasible else f"[red]no[/red] {escape(p.reason or '')}"
        kwh = _num(p.kwh_per_year)
        if p.kwh_basis is not None:
            kwh += f" ({_basis(p.kwh_basis)})"
        t.add_row(
            escape(p.label),
            _num(p.latency.p99_ms) + (f" ({_basis(p.latency.basis)})" if p.latency.label else ""),
            feasible,
            amount(p.cost_per_million, cur),
            amount(p.annual_cost, cur),
            amount(p.tco, cur),
            amount(p.capex_tco, cur),
            amount(p.opex_tco, cur),
            amount(p.pv, cur),
            kwh,
            _num(p.co2e_kg_per_year),
        )
    for a in result.analyses:
        if a.not_measured:
            t.add_row(f"cloud: {escape(a.cloud)}", "-", f"[red]{escape(a.not_measured)}[/red]")
    return t


def _lines(p: PlacementResult, result: CostResult) -> Table:
    cur = result.currency
    t = Table(title=f"cost lines: {escape(p.label)}", header_style="bold", caption=_caveats(result))
    for col in ("component", "kind", "year 1", "TCO", "PV", "basis", "assumed inputs", "how"):
        t.add_column(col, justify="right" if col in ("year 1", "TCO", "PV") else "left")
    for line in p.lines:
        t.add_row(
            line.component.value,
            line.category,
            amount(line.annual, cur),
            amount(line.tco, cur),
            amount(line.pv, cur),
            _basis(line.basis),
            escape(", ".join(a.value for a in line.assumed_inputs)) or "-",
            escape(line.note),
        )
    return t


def _payback(months: float | None, hours: float | None, when: object) -> str:
    if months is None:
        return "never in horizon"
    return f"{months:.2f} months ({hours or 0:,.0f} h), {when}"


def _comparison(a: CloudAnalysis, c: Comparison, currency: str) -> Table:
    tip = c.tipping
    t = Table(title=f"edge vs {escape(a.cloud)}", header_style="bold", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("NPV of choosing edge (PV cloud - PV edge)", amount(c.npv_savings, currency))
    t.add_row("payback", _payback(c.payback_months, c.payback_hours, c.payback_date))
    t.add_row(
        "discounted payback",
        _payback(
            c.discounted_payback_months, c.discounted_payback_hours, c.discounted_payback_date
        ),
    )
    be = "never in horizon" if c.break_even_month is None else str(c.break_even_month)
    t.add_row("break-even month (cumulative)", be)
    lo, hi = tip.curve_volume_per_day[0], tip.curve_volume_per_day[-1]
    basis = "NPV over the horizon" if tip.basis == "pv-horizon" else "year-one annual cost"
    if tip.volume_per_day is not None:
        vol = f"{_num(tip.volume_per_day)} (edge cheaper above; {basis})"
    elif tip.cheaper_throughout is not None:
        vol = f"none: {tip.cheaper_throughout.value} cheaper from {_num(lo)} to {_num(hi)}"
    else:
        vol = "none: cloud cheaper at the highest volume studied"
    t.add_row("tipping volume, inferences/day", vol)
    for cross in tip.crossings:
        side = "edge" if cross.edge_cheaper_above else "cloud"
        at = f"{_num(cross.volume_per_day)} ({side} above)"
        if cross.bracket_low is not None and cross.bracket_high is not None:
            at += f", sweep {_num(cross.bracket_low)}..{_num(cross.bracket_high)}"
        t.add_row("  NPV = 0 at, inferences/day", at)
    t.add_row("workload volume, inferences/day", _num(tip.base_volume_per_day))
    return t


def _tornado(a: CloudAnalysis, currency: str) -> Table | None:
    if a.tornado is None:
        return None
    base = amount(a.tornado.base, currency)
    t = Table(title=f"tornado: NPV of edge vs {escape(a.cloud)} (base {base})", header_style="bold")
    for col in ("input", "low", "high", "NPV at low", "NPV at high", "swing"):
        t.add_column(col, justify="left" if col == "input" else "right")
    for r in a.tornado.rows[:MAX_TORNADO_ROWS]:
        t.add_row(
            escape(f"{r.param.value} [{r.unit}]"),
            _num(r.low),
            _num(r.high),
            amount(r.metric_low, currency),
            amount(r.metric_high, currency),
            amount(r.swing, currency),
        )
    return t


def _switching(a: CloudAnalysis) -> Table | None:
    if not a.switching:
        return None
    t = Table(
        title=f"switching values vs {escape(a.cloud)}: where the cheaper placement flips",
        header_style="bold",
    )
    for col in ("input", "base", "flips at", "change", "in range", "beyond it"):
        t.add_column(col, justify="left" if col in ("input", "beyond it") else "right")
    for s in a.switching:
        t.add_row(
            escape(f"{s.param.value} [{s.unit}]"),
            _num(s.base_value),
            _num(s.value)
            if s.value is not None
            else f"none in {_num(s.searched_low)}..{_num(s.searched_high)}",
            f"{s.change:+.0%}" if s.change is not None else "-",
            "yes" if s.within_range else "no",
            s.cheaper_beyond.value + " cheaper" if s.cheaper_beyond else "-",
        )
    return t


def _risk(a: CloudAnalysis, currency: str) -> Table | None:
    mc = a.monte_carlo
    if mc is None:
        return None
    t = Table(
        title=(
            f"Monte Carlo, {mc.draws:,} draws: P(edge cheaper) = {mc.p_edge_cheaper:.1%}, "
            f"P(loss choosing edge) = {mc.p_loss:.1%}, expected NPV of edge "
            f"{amount(mc.expected_saving, currency)}"
        ),
        header_style="bold",
    )
    for col in ("present value", "mean", "P5", "P50", "P95", "VaR95", "CVaR95", "risk tail"):
        t.add_column(col, justify="left" if col in ("present value", "risk tail") else "right")
    for name, s in (
        ("edge cost", mc.edge_pv),
        ("cloud cost", mc.cloud_pv),
        ("NPV of choosing edge", mc.savings),
    ):
        t.add_row(
            name,
            amount(s.mean, currency),
            amount(s.p5, currency),
            amount(s.p50, currency),
            amount(s.p95, currency),
            amount(s.var95, currency),
            amount(s.cvar95, currency),
            "high (P95 and above)" if s.tail == "high" else "low (P5 and below)",
        )
    return t


def _scenarios(a: CloudAnalysis, currency: str) -> Table:
    t = Table(title=f"scenarios for the move to the edge vs {escape(a.cloud)}", header_style="bold")
    for col in ("preset", "edge PV", "cloud PV", "NPV of edge", "edge /M", "cloud /M", "cheaper"):
        t.add_column(col, justify="left" if col in ("preset", "cheaper") else "right")
    for s in a.scenarios:
        t.add_row(
            s.preset.value,
            amount(s.edge_pv, currency),
            amount(s.cloud_pv, currency),
            amount(s.npv_savings, currency),
            amount(s.edge_cost_per_million, currency),
            amount(s.cloud_cost_per_million, currency),
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
        if r.range_note:
            rng += f" [yellow]({escape(r.range_note)})[/yellow]"
        t.add_row(r.param.value, f"{_num(r.value)} {escape(r.unit)}", rng, _basis(r.basis), src)
    return t


def cost_tables(result: CostResult, details: bool = True) -> RenderableType:
    """All tables of a result, in reading order; an illustrative result says so first."""
    cur = result.currency
    variant = result.variant or "-"
    if result.cloud_variant and result.cloud_variant != result.variant:
        variant += f" (endpoint: {result.cloud_variant})"
    parts: list[RenderableType] = []
    if result.illustrative:
        parts.append(
            Text(
                "ILLUSTRATIVE, not a decision: " + "; ".join(result.illustrative),
                style="bold yellow",
            )
        )
    fx = f" at {result.fx_rate:g} {cur}/USD" if cur != "USD" else ""
    parts.append(
        Text(
            f"model {result.model or '-'} {variant} | device {result.device} | "
            f"network {result.network} | energy {result.energy} | workload {result.workload} | "
            f"horizon {result.horizon_months} months from {result.start.isoformat()} | SLO p99 "
            f"{'-' if result.slo_p99_ms is None else f'{result.slo_p99_ms:g} ms'} | {cur}{fx}",
            style="bold",
        )
    )
    parts.append(_placements(result))
    for p in (p for a in result.analyses for p in a.placements):
        if p.placement in (Placement.CLOUD, Placement.SPLIT) and p.latency.method:
            parts.append(Text(f"p99 of {p.label}: {p.latency.method}", style="dim"))
    if details:
        parts.append(_lines(result.edge, result))
        parts.extend(_lines(p, result) for a in result.analyses for p in a.placements)
    for a in result.analyses:
        if a.not_measured:
            parts.append(Text(f"{a.cloud}: {a.not_measured}", style="bold red"))
        if a.comparison is not None:
            parts.append(_comparison(a, a.comparison, cur))
        for table in (_tornado(a, cur), _switching(a), _risk(a, cur)):
            if table is not None:
                parts.append(table)
        if a.scenarios:
            parts.append(_scenarios(a, cur))
        if details:
            parts.append(_inputs(a))
    rec = result.recommendation
    if rec.status is RecommendationStatus.INCONCLUSIVE:
        parts.append(Text(f"recommendation: INCONCLUSIVE ({rec.reason})", style="bold red"))
        parts.extend(Text(f"  not valid: {why}", style="red") for why in rec.invalid_inputs)
    else:
        parts.append(
            Text(f"recommendation: {rec.label or 'none'} ({rec.reason})", style="bold green")
        )
    for c in result.caveats:
        parts.append(Text(f"  caveat: {c}", style="yellow"))
    parts.extend(Text(f"warning: {w}", style="yellow") for w in result.warnings)
    return Group(*parts)
