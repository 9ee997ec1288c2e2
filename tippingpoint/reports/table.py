"""Rich tables of report summaries; reads reports, never measures."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from rich.table import Table

from tippingpoint.backends.registry import BackendListing
from tippingpoint.core.schema import Report, RunFlag, RunStatus
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


def summary_table(reports: Sequence[Report], title: str = "tippingpoint results") -> Table:
    """One row per run: model, backend, scenario, percentiles, throughput, energy, flags."""
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
    for r in reports:
        table.add_row(*_summary_row(r))
    return table


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
        queries = f"{res.throughput.queries:,}"
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
        f"[{style}]{status}[/{style}]" + (" " + ", ".join(flags) if flags else ""),
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
            "" if a.installed else a.install_hint,
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
