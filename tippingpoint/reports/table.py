"""Rich tables of report summaries; reads reports, never measures."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from tippingpoint.backends.registry import BackendListing
from tippingpoint.core.runstats import (
    RunFigure,
    RunGroup,
    disagreeing,
    group_runs,
    group_spread,
)
from tippingpoint.core.schema import PerformanceResults, Report, RunFlag, RunStatus, StopMode
from tippingpoint.models.registry import ModelRef


def _fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    if v < 0.1:
        return f"{v * 1000:.1f} µs"
    if v < 100:
        return f"{v:.3f} ms"
    return f"{v:.0f} ms"


def _fmt_rate(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def _stop_text(res: PerformanceResults | None) -> tuple[str, str]:
    """How long the measured part ran (for the queries cell) and what ended it (for the
    status cell): the fixed rule, the convergence rule (converged) or its cap (not converged);
    empty for reports written before it was kept."""
    stop = res.stop if res is not None else None
    if stop is None:
        return "", ""
    if stop.mode is StopMode.FIXED:
        end = " [dim]fixed[/dim]"
    elif stop.converged:
        end = " [dim]conv.[/dim]"
    else:
        end = " [yellow]cap[/yellow]"
    return f" [dim]in {stop.duration_s:.3g} s[/dim]", end


def summary_table(reports: Sequence[Report], title: str = "tippingpoint results") -> Table:
    """One row per run, or per group of repeated runs (the geometric mean of its runs'
    figures with their between-run CV): model, backend, scenario, percentiles, throughput,
    energy, flags."""
    table = Table(title=title, header_style="bold")
    for col, justify in (
        ("model", "left"),
        ("backend", "left"),
        ("scenario", "left"),
        ("queries", "right"),
        ("p50", "right"),
        ("p99 [95% CI]", "right"),
        ("samples/s", "right"),
        ("J/inf", "right"),
        ("accuracy", "right"),
        ("status", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for g in group_runs(reports):
        if len(g.members) > 1:
            table.add_row(*_group_row(reports, g))
        else:
            table.add_row(*_summary_row(reports[g.members[0]]))
    return table


def _group_row(reports: Sequence[Report], g: RunGroup) -> tuple[str, ...]:
    """A group of repeated runs as one row: its first complete run's identity, the geometric
    means of the runs' figures with their between-run CV, the runs' statuses and flags."""
    members = [reports[m] for m in g.members]
    first = next((r for r in members if r.status is RunStatus.COMPLETE), members[0])
    cells = list(_summary_row(first))
    spread = group_spread(reports, g)
    bad = disagreeing(spread)

    def with_cv(fig: RunFigure, text: str) -> str:
        s = spread.get(fig)
        if s is None or s.cv is None:
            return text
        style = "yellow" if fig in bad else "dim"
        return f"{text} [{style}]cv {s.cv:.1%}[/{style}]"

    if RunFigure.P50 in spread:
        cells[4] = with_cv(RunFigure.P50, _fmt_ms(spread[RunFigure.P50].geometric_mean))
    if RunFigure.P99 in spread:
        cells[5] = with_cv(RunFigure.P99, _fmt_ms(spread[RunFigure.P99].geometric_mean))
    if RunFigure.THROUGHPUT in spread:
        rate = _fmt_rate(spread[RunFigure.THROUGHPUT].geometric_mean)
        cells[6] = with_cv(RunFigure.THROUGHPUT, rate)
    if RunFigure.JOULES in spread:
        cells[7] = with_cv(RunFigure.JOULES, f"{spread[RunFigure.JOULES].geometric_mean:.3g}")
    queries = sum(r.results.throughput.queries for r in members if r.results is not None)
    cells[3] = f"{len(members)} runs, {queries:,}"
    ok = sum(r.status is RunStatus.COMPLETE for r in members)
    status = "ok" if ok == len(members) else f"{ok}/{len(members)} ok"
    style = "green" if ok == len(members) else "yellow"
    flags = sorted({f.value for r in members for f in r.flags if f is not RunFlag.INTERRUPTED})
    if bad:
        flags.append("[yellow]runs disagree[/yellow]")
    missing = g.count - len(members)
    if missing > 0:
        flags.append(f"{missing} of {g.count} runs missing")
    cells[9] = f"[{style}]{status}[/{style}]" + (" " + ", ".join(flags) if flags else "")
    return tuple(cells)


def _summary_row(r: Report) -> tuple[str, ...]:
    sc = r.scenario
    scenario = sc.kind.value + (f" b{sc.batch_size}" if sc.kind.value == "offline" else "")
    if sc.kind.value == "concurrency" and sc.concurrency is not None:
        scenario += f" c{sc.concurrency}"
    if sc.kind.value == "server" and sc.target_rate_qps is not None:
        scenario += f" {sc.target_rate_qps:g}/s"
        if r.http is not None and r.http.latency_bound_ms is not None:
            peak = r.http.peak_rate_qps
            scenario += f", peak {peak:.4g}/s" if peak is not None else ", no rate met the bound"
    backend = r.backend.name if r.backend else "-"
    res = r.results
    p50 = p99 = rate = queries = "-"
    if res is not None:
        lat = res.latency
        p50 = _fmt_ms(lat.p50)
        p99 = _fmt_ms(lat.p99)
        if "p99" in lat.ci:
            p99 += f" [dim]\\[{_fmt_ms(lat.ci['p99'].low)}, {_fmt_ms(lat.ci['p99'].high)}][/dim]"
        rate = _fmt_rate(res.throughput.samples_per_s)
        queries = f"{res.throughput.queries:,}" + _stop_text(res)[0]
    energy = "-"
    if r.collectors.energy is not None:
        e = r.collectors.energy
        energy = f"{e.joules_per_inference:.3g}" if e.joules_per_inference is not None else "n/a"
        if e.method.value == "estimated":
            energy += " (est.)"
        if not e.valid:
            energy += " (invalid)"
    acc = "-"
    if r.accuracy is not None:
        acc = f"{r.accuracy.metric} {r.accuracy.value:.4f}"
        if r.accuracy.delta is not None:
            acc += f" [dim](Δ {r.accuracy.delta:+.4f})[/dim]"
        if r.accuracy.below_floor:
            acc += " [red]< 99% fp32[/red]"
    status = r.status.value if r.status is not RunStatus.COMPLETE else "ok"
    flags = [f.value for f in r.flags if f is not RunFlag.INTERRUPTED]
    if r.errors:
        flags.append(escape(r.errors[0].message[:80]))
    style = {"ok": "green", "interrupted": "yellow", "failed": "red"}[status]
    return (
        f"{escape(r.model.name)} [dim]{escape(r.model.variant)}[/dim]",
        backend,
        scenario,
        queries,
        p50,
        p99,
        rate,
        energy,
        acc,
        f"[{style}]{status}[/{style}]"
        + _stop_text(res)[1]
        + (" " + ", ".join(flags) if flags else ""),
    )


def backends_table(listings: Sequence[BackendListing]) -> Table:
    """Registered backends, whether installed, and how to install them."""
    table = Table(title="backends", header_style="bold")
    for col in ("name", "installed", "runtime", "version", "formats", "install"):
        table.add_column(col)
    for b in listings:
        a = b.availability
        table.add_row(
            b.name,
            "[green]yes[/green]" if a.installed else "[red]no[/red]",
            a.runtime,
            a.version or "-",
            " ".join(b.formats),
            "" if a.installed else escape(a.install_hint),  # "[onnx-gpu]" is no markup
        )
    return table


def models_table(refs: Sequence[ModelRef]) -> Table:
    """Known models with variant, format, size and parameters."""
    table = Table(title="models", header_style="bold")
    for col in ("name", "variant", "format", "source", "parameters", "MACs", "file"):
        table.add_column(col)
    for m in refs:
        table.add_row(
            m.name,
            m.variant,
            m.format,
            m.source.value,
            f"{m.parameters:,}" if m.parameters else "-",
            f"{m.macs:,}" if m.macs else "-",
            m.path.name,
        )
    return table
