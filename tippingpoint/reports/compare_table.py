"""Rich tables of a :class:`ComparisonResult`; reads the result, computes nothing new."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from tippingpoint.core.runstats import RunFigure
from tippingpoint.reports.compare import (
    Better,
    ComparisonGroup,
    ComparisonResult,
    Metric,
    MetricValue,
    RunComparison,
)
from tippingpoint.reports.runs import scenario_label
from tippingpoint.reports.significance import (
    Significance,
    Verdict,
    describe,
    describe_others,
)

SHOWN = (Metric.P50, Metric.P99, Metric.THROUGHPUT, Metric.JOULES)


def fmt_value(v: float | None, unit: str) -> str:
    """A figure with its unit, scaled for reading (µs below 0.1 ms)."""
    if v is None:
        return "-"
    if unit == "ms":
        if v < 0.1:
            return f"{v * 1000:.1f} µs"
        return f"{v:.3f} ms" if v < 100 else f"{v:.0f} ms"
    if unit == "samples/s":
        return f"{v:,.0f}/s" if v >= 100 else f"{v:.2f}/s"
    if unit == "J":
        return f"{v:.3g} J"
    return f"{v:.4g}"


def _ratio(mv: MetricValue, baseline: bool) -> str:
    if baseline or mv.ratio is None:
        return ""
    improved = mv.ratio < 1 if mv.better is Better.LOWER else mv.ratio > 1
    style = "green" if improved else "red"
    return f" [{style}]x{mv.ratio:.3f}[/{style}]"


SPREAD_METRICS = {
    Metric.P50: RunFigure.P50,
    Metric.P99: RunFigure.P99,
    Metric.THROUGHPUT: RunFigure.THROUGHPUT,
    Metric.JOULES: RunFigure.JOULES,
}
"""The compared metrics that a repeated side has a between-run spread of."""


def verdict_text(sig: Significance | None) -> str:
    """The latency verdict with its interval, or why there is none."""
    if sig is None:
        return "baseline"
    style = {
        Verdict.FASTER: "green",
        Verdict.SLOWER: "red",
        Verdict.NEGLIGIBLE: "dim",
        Verdict.NOT_SIGNIFICANT: "dim",
        Verdict.UNKNOWN: "yellow",
        Verdict.SINGLE_RUNS: "yellow",
    }[sig.verdict]
    text = escape(describe(sig))
    head = sig.verdict.value
    if text.startswith(head):
        text = f"[{style}]{head}[/{style}]" + text[len(head) :]
    else:
        text = f"[{style}]{text}[/{style}]"
    others = describe_others(sig)
    return text + (f"\n[dim]{escape(others)}[/dim]" if others else "")


def cv_text(row: RunComparison, metric: Metric) -> str:
    """`` ±4.1%``: the between-run CV of a repeated side's figure (empty for a single run)."""
    fig = SPREAD_METRICS.get(metric)
    spread = next((s for s in row.spread if s.figure is fig), None)
    if spread is None or spread.cv is None:
        return ""
    style = "yellow" if fig in row.disagree else "dim"
    return f" [{style}]cv {spread.cv:.1%}[/{style}]"


def side_label(result: ComparisonResult, row: RunComparison) -> str:
    """The run's label, with ``N runs`` for a repeated side (and the count asked for when
    some are missing)."""
    label = escape(result.runs[row.run].label)
    if row.members:
        n = len(row.members)
        label += f", {n} runs" + (f" (of {row.repetitions})" if n != row.repetitions else "")
    if row.disagree:
        figs = ", ".join(f.value for f in row.disagree)
        label += f"\n[yellow]runs disagree ({escape(figs)})[/yellow]"
    return label


def _accuracy(row: RunComparison) -> str:
    a = row.accuracy
    if a is None:
        return "-"
    text = f"{a.metric} {a.value:.4f}"
    if a.relative is not None:
        delta = f"Δ {a.value - a.reference_value:+.4f}, " if a.reference_value is not None else ""
        text += f" ({delta}{a.relative:.2%} of fp32)"
    if a.below_floor:
        text += f" [red]< {a.floor:.0%} fp32[/red]"
    return text


def group_table(result: ComparisonResult, group: ComparisonGroup) -> Table:
    """One table per aligned group: each run's figures and ratios against the baseline."""
    scenario = scenario_label(
        group.scenario, group.batch_size, group.concurrency, group.target_rate_qps
    )
    title = f"{group.model or 'models (forced)'} · {scenario}"
    table = Table(title=escape(title), header_style="bold")
    table.add_column("run")
    for m in SHOWN:
        table.add_column(m.value, justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("latency vs baseline")
    for row in group.rows:
        ref = result.runs[row.run]
        by_metric = {mv.metric: mv for mv in row.metrics}
        cells = []
        for m in SHOWN:
            mv = by_metric[m]
            cell = fmt_value(mv.value, mv.unit) + _ratio(mv, row.is_baseline)
            if mv.estimated and mv.value is not None:
                cell += " (est.)"
            cells.append(cell + cv_text(row, m))
        table.add_row(
            side_label(result, row) + f"\n[dim]{escape(ref.host)}[/dim]",
            *cells,
            _accuracy(row),
            verdict_text(row.latency),
        )
    return table


def cost_table(result: ComparisonResult) -> Table:
    """Placements of the cost results side by side, with ratios to the first."""
    currencies = ", ".join(dict.fromkeys(r.currency for r in result.costs))
    table = Table(title=f"cost ({currencies}, from --cost results)", header_style="bold")
    for col in ("placement", "source", "feasible", "per million", "year one", "TCO", "PV"):
        table.add_column(col, justify="left" if col in ("placement", "source") else "right")
    first = result.costs[0].currency if result.costs else "USD"
    for i, r in enumerate(result.costs):
        ratio_m = (
            ""
            if i == 0 or r.ratio_cost_per_million is None
            else f" x{r.ratio_cost_per_million:.2f}"
        )
        ratio_pv = "" if i == 0 or r.ratio_pv is None else f" x{r.ratio_pv:.2f}"
        table.add_row(
            escape(r.placement),
            escape(r.source),
            "yes" if r.feasible else "[red]no (SLO)[/red]",
            f"{r.cost_per_million:,.2f}{'' if r.currency == first else ' ' + r.currency}{ratio_m}",
            f"{r.annual_cost:,.0f}",
            f"{r.tco:,.0f}",
            f"{r.pv:,.0f}{ratio_pv}",
        )
    return table


def comparison_tables(result: ComparisonResult) -> list[Table]:
    """All group tables of a comparison, and the cost table when cost results were given."""
    tables = [group_table(result, g) for g in result.groups]
    if result.costs:
        tables.append(cost_table(result))
    return tables
