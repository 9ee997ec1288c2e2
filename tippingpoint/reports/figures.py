"""Figures of run reports: latency CDFs, percentile bars, HTTP sweeps, energy, accuracy.

Builds :mod:`tippingpoint.reports.charts.spec` figures from reports and their raw samples;
draws nothing. Every caption states units, sample counts and measured vs estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tippingpoint.errors import ReportError
from tippingpoint.reports.charts.spec import (
    Axis,
    Bar,
    BarFigure,
    BarGroup,
    Figure,
    LineFigure,
    Marker,
    Provenance,
    RefLine,
    Series,
)
from tippingpoint.reports.compare import LoadedRun, accuracy_check, run_label
from tippingpoint.reports.io import load_samples
from tippingpoint.reports.schema import MeasurementMethod, Report, RunFlag

CDF_POINTS = 400
TAIL_LEVELS = (0.99, 0.995, 0.999, 0.9995, 0.9999)


@dataclass(frozen=True)
class RunData:
    """A loaded run and, when its sidecar is present and intact, its latencies in ms."""

    run: LoadedRun
    latency_ms: np.ndarray | None
    suffix: str = ""
    """Set to `` (run N)`` when another run would otherwise carry the same label."""

    @property
    def report(self) -> Report:
        """The run's report."""
        return self.run.report

    @property
    def label(self) -> str:
        """A short label of the run, unique among the runs of one report."""
        return run_label(self.run.report) + self.suffix


def load_run_data(runs: Sequence[LoadedRun]) -> list[RunData]:
    """Attach raw latencies (ms) to each run that has an intact samples sidecar."""
    out = []
    for r in runs:
        lat = None
        if r.report.results is not None and r.report.results.raw is not None:
            try:
                lat = np.asarray(load_samples(r.report, r.path)["latency_ns"], dtype=float) / 1e6
            except (ReportError, KeyError):
                lat = None
        out.append(RunData(run=r, latency_ms=lat))
    labels = [run_label(r.report) for r in runs]
    return [
        RunData(d.run, d.latency_ms, f" (run {i})" if labels.count(labels[i - 1]) > 1 else "")
        for i, d in enumerate(out, 1)
    ]


def slug(text: str) -> str:
    """A file- and id-safe form of ``text``."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def cdf_points(latency_ms: np.ndarray) -> tuple[tuple[float, float], ...]:
    """At most ~400 (latency, cumulative fraction) points of the empirical CDF, tail kept."""
    xs = np.sort(latency_ms)
    n = len(xs)
    idx = np.unique(
        np.concatenate(
            [
                np.linspace(0, n - 1, min(n, CDF_POINTS)).round().astype(np.int64),
                (np.array(TAIL_LEVELS) * n).astype(np.int64).clip(0, n - 1),
                [n - 1],
            ]
        )
    )
    return tuple((float(xs[i]), float((i + 1) / n)) for i in idx)


def _summary_cdf(report: Report) -> tuple[tuple[float, float], ...]:
    lat = report.results.latency  # type: ignore[union-attr]
    return (
        (lat.min, 0.0),
        (lat.p50, 0.5),
        (lat.p90, 0.9),
        (lat.p95, 0.95),
        (lat.p99, 0.99),
        (lat.p999, 0.999),
        (lat.max, 1.0),
    )


def _quick_note(runs: Sequence[RunData]) -> str:
    quick = sum(RunFlag.QUICK in r.report.flags for r in runs)
    return f" {quick} of these runs were quick smoke tests." if quick else ""


def latency_figures(model: str, runs: Sequence[RunData]) -> list[Figure]:
    """A latency CDF and a percentile bar chart for the runs of one model."""
    measured = [r for r in runs if r.report.results is not None]
    if not measured:
        return []
    series = []
    from_summary = []
    for r in measured:
        if r.latency_ms is not None and len(r.latency_ms):
            pts = cdf_points(r.latency_ms)
        else:
            pts = _summary_cdf(r.report)
            from_summary.append(r.label)
        series.append(Series(label=r.label.removeprefix(f"{model} "), points=pts))
    xs = [p[0] for s in series for p in s.points if p[0] > 0]
    log = bool(xs) and max(xs) / min(xs) > 20
    counts = ", ".join(
        f"{r.label}: n = {r.report.results.latency.count:,}"  # type: ignore[union-attr]
        for r in measured
    )
    caption = (
        f"Measured latency per query in milliseconds{' (log scale)' if log else ''}, "
        f"wall clock around each inference call; y is the fraction of queries at or below x. "
        f"Queries per run: {counts}.{_quick_note(measured)}"
    )
    if from_summary:
        caption += (
            " Drawn from the report's summary percentiles because raw samples are missing: "
            + "; ".join(from_summary)
            + "."
        )
    cdf = LineFigure(
        id=f"cdf-{slug(model)}",
        title=f"Latency CDF: {model}",
        caption=caption,
        x=Axis("latency per query", "ms", log=log),
        y=Axis("fraction of queries", "0-1"),
        series=tuple(series),
        steps=True,
    )
    groups = []
    for name, attr in (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999")):
        groups.append(
            BarGroup(
                category=name,
                bars=tuple(
                    Bar(
                        series=r.label.removeprefix(f"{model} "),
                        value=getattr(r.report.results.latency, attr),  # type: ignore[union-attr]
                    )
                    for r in measured
                ),
            )
        )
    bars = BarFigure(
        id=f"pct-{slug(model)}",
        title=f"Latency percentiles: {model}",
        caption=(
            "Measured nearest-rank latency percentiles in milliseconds, per run. "
            f"Queries per run: {counts}.{_quick_note(measured)}"
        ),
        value_axis=Axis("latency", "ms"),
        groups=tuple(groups),
    )
    return [cdf, bars]


def http_figures(runs: Sequence[RunData]) -> list[Figure]:
    """Throughput vs concurrency and latency vs offered load, for runs with sweep points."""
    figs: list[Figure] = []
    for r in runs:
        h = r.report.http
        if h is None or not h.sweep:
            continue
        standin = RunFlag.LOCAL_STANDIN in r.report.flags
        where = f"{h.endpoint}" + (" (local stand-in for a cloud endpoint)" if standin else "")
        conc = sorted(
            (p for p in h.sweep if p.concurrency is not None), key=lambda p: p.concurrency
        )  # type: ignore[arg-type, return-value]
        if conc:
            figs.append(
                LineFigure(
                    id=f"conc-{slug(r.label)}",
                    title=f"Throughput vs concurrency: {r.label}",
                    caption=(
                        f"Measured achieved request rate (requests/s) at each number of "
                        f"concurrent requests against {where}; {len(conc)} sweep steps, "
                        f"{h.requests:,} requests in the run."
                    ),
                    x=Axis("concurrent requests", "count"),
                    y=Axis("achieved rate", "requests/s"),
                    series=(
                        Series(
                            "achieved rate",
                            tuple((float(p.concurrency), p.achieved_rate_qps) for p in conc),  # type: ignore[arg-type]
                        ),
                    ),
                )
            )
        load = sorted(
            (p for p in h.sweep if p.offered_rate_qps is not None),
            key=lambda p: p.offered_rate_qps,  # type: ignore[arg-type, return-value]
        )
        if load:
            markers: tuple[Marker, ...] = ()
            if h.peak_rate_qps is not None:
                at_peak = min(load, key=lambda p: abs(p.offered_rate_qps - h.peak_rate_qps))  # type: ignore[operator]
                markers = (
                    Marker(f"peak {h.peak_rate_qps:,.0f}/s", h.peak_rate_qps, at_peak.p99_ms),
                )
            refs = (
                (RefLine(f"p99 bound {h.latency_bound_ms:g} ms", h.latency_bound_ms),)
                if h.latency_bound_ms is not None
                else ()
            )
            figs.append(
                LineFigure(
                    id=f"load-{slug(r.label)}",
                    title=f"Latency vs offered load: {r.label}",
                    caption=(
                        f"Measured p50 and p99 latency (ms, from each request's intended send "
                        f"time) at each offered rate (requests/s) against {where}; "
                        f"{len(load)} steps, {h.requests:,} requests in the run. The marked "
                        "point is the highest rate meeting the p99 bound."
                    ),
                    x=Axis("offered load", "requests/s"),
                    y=Axis("latency", "ms"),
                    series=(
                        Series("p50", tuple((p.offered_rate_qps, p.p50_ms) for p in load)),  # type: ignore[misc]
                        Series("p99", tuple((p.offered_rate_qps, p.p99_ms) for p in load)),  # type: ignore[misc]
                    ),
                    markers=markers,
                    ref_lines=refs,
                )
            )
    return figs


def energy_figure(runs: Sequence[RunData]) -> Figure | None:
    """Joules per inference per run; estimated values hatched, measured solid."""
    rows = [
        (r, e)
        for r in runs
        if (e := r.report.collectors.energy) is not None
        and e.valid
        and e.joules_per_inference is not None
    ]
    if not rows:
        return None
    groups = []
    notes = []
    for r, e in rows:
        est = e.method is MeasurementMethod.ESTIMATED  # type: ignore[union-attr]
        prov = Provenance.ESTIMATED if est else Provenance.MEASURED
        groups.append(
            BarGroup(
                category=r.label,
                bars=(Bar("estimated" if est else "measured", e.joules_per_inference, prov),),  # type: ignore[arg-type]
            )
        )
        n = r.report.results.throughput.samples if r.report.results else 0
        notes.append(
            f"{r.label}: {'estimated' if est else 'measured'} by {e.source} "  # type: ignore[union-attr]
            f"({e.method.value}, scope {e.scope}) over {n:,} inferences"  # type: ignore[union-attr]
        )
    return BarFigure(
        id="energy",
        title="Energy per inference",
        caption=(
            "Joules per inference over the measured window (gross, idle included). Solid bars "
            "are measured by energy counters or power sampling; hatched bars are estimates. "
            + "; ".join(notes)
            + "."
        ),
        value_axis=Axis("energy per inference", "J"),
        groups=tuple(groups),
    )


def accuracy_figure(runs: Sequence[RunData]) -> Figure | None:
    """Accuracy of each variant relative to fp32 (%), with the 99% floor drawn."""
    all_runs = [r.run for r in runs]
    seen: dict[tuple[str, str, str], Bar] = {}
    counts: list[str] = []
    for r in runs:
        check = accuracy_check(r.run, all_runs)
        acc = r.report.accuracy
        if check is None or check.relative is None or acc is None:
            continue
        m = r.report.model
        key = (m.name, m.variant, m.format)
        if key in seen:
            continue
        seen[key] = Bar(series=f"{m.name} {m.variant} {m.format}", value=100.0 * check.relative)
        counts.append(f"{m.name} {m.variant}: {acc.samples:,} samples of {acc.dataset}")
    if not seen:
        return None
    return BarFigure(
        id="accuracy",
        title="Accuracy relative to fp32",
        caption=(
            "Measured accuracy of each variant as a percentage of the fp32 reference on the same "
            "evaluation set, in a separate accuracy pass on the same code path; the dashed line "
            f"is the 99% floor. {'; '.join(counts)}."
        ),
        value_axis=Axis("accuracy relative to fp32", "%"),
        groups=tuple(BarGroup(category=b.series, bars=(b,)) for b in seen.values()),
        ref_lines=(RefLine("99% of fp32", 99.0),),
    )


def run_figures(runs: Sequence[RunData]) -> list[Figure]:
    """Every run figure, latency first, grouped by model."""
    figs: list[Figure] = []
    models: dict[str, list[RunData]] = {}
    for r in runs:
        models.setdefault(r.report.model.name, []).append(r)
    for model, members in models.items():
        figs.extend(latency_figures(model, members))
    figs.extend(http_figures(runs))
    for f in (energy_figure(runs), accuracy_figure(runs)):
        if f is not None:
            figs.append(f)
    return figs
