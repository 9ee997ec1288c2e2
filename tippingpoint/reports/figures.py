"""Figures of run reports: latency CDFs, percentile bars, HTTP sweeps, energy, accuracy, and
each repetition of a repeated run as a point beside the group's mean.

Builds :mod:`tippingpoint.reports.charts.spec` figures from reports and their raw samples;
draws nothing. Every caption states units, sample counts and measured vs estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.runstats import (
    RunFigure,
    RunGroup,
    disagreeing,
    group_runs,
    group_spread,
    mean_interval,
)
from tippingpoint.core.schema import LatencyStats, MeasurementMethod, RunFlag
from tippingpoint.reports.charts.spec import (
    Axis,
    Bar,
    BarFigure,
    BarGroup,
    Figure,
    LineFigure,
    Marker,
    PointGroup,
    PointsFigure,
    Provenance,
    RefLine,
    Series,
    slug,
)
from tippingpoint.reports.compare import accuracy_check
from tippingpoint.reports.runs import RunData, run_label

CDF_POINTS = 400
TAIL_LEVELS = (0.99, 0.995, 0.999, 0.9995, 0.9999)


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


def _summary_cdf(lat: LatencyStats) -> tuple[tuple[float, float], ...]:
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
    measured = [(r, res.latency) for r in runs if (res := r.report.results) is not None]
    if not measured:
        return []
    measured_runs = [r for r, _ in measured]
    series = []
    from_summary = []
    for r, lat in measured:
        if r.latency_ms is not None and len(r.latency_ms):
            pts = cdf_points(r.latency_ms)
        else:
            pts = _summary_cdf(lat)
            from_summary.append(r.label)
        series.append(Series(label=r.label.removeprefix(f"{model} "), points=pts))
    xs = [p[0] for s in series for p in s.points if p[0] > 0]
    log = bool(xs) and max(xs) / min(xs) > 20
    counts = ", ".join(f"{r.label}: n = {lat.count:,}" for r, lat in measured)
    caption = (
        f"Measured latency per query in milliseconds{' (log scale)' if log else ''}, "
        f"wall clock around each inference call; y is the fraction of queries at or below x. "
        f"Queries per run: {counts}.{_quick_note(measured_runs)}"
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
                        value=float(getattr(lat, attr)),
                    )
                    for r, lat in measured
                ),
            )
        )
    bars = BarFigure(
        id=f"pct-{slug(model)}",
        title=f"Latency percentiles: {model}",
        caption=(
            "Measured nearest-rank latency percentiles in milliseconds, per run. "
            f"Queries per run: {counts}.{_quick_note(measured_runs)}"
        ),
        value_axis=Axis("latency", "ms"),
        groups=tuple(groups),
    )
    return [cdf, bars]


@dataclass(frozen=True)
class NetPoint:
    """One load level of a network run: concurrency or offered rate, and what it achieved."""

    level: float
    achieved_qps: float
    p50_ms: float
    p99_ms: float
    requests: int


def _endpoint_key(r: RunData) -> tuple[str, str, str]:
    h = r.report.http
    return (r.report.model.name, r.report.model.variant, h.endpoint if h else "")


def network_levels(
    runs: Sequence[RunData],
) -> tuple[dict[tuple[str, str, str], list[NetPoint]], dict[tuple[str, str, str], list[NetPoint]]]:
    """Concurrency levels and offered rates per (model, variant, endpoint).

    Taken from sweep points in the reports and from separate concurrency / server runs, one
    point per level (sweep points win over a run at the same level).
    """
    conc: dict[tuple[str, str, str], dict[float, NetPoint]] = {}
    load: dict[tuple[str, str, str], dict[float, NetPoint]] = {}
    for r in runs:
        h, res, sc = r.report.http, r.report.results, r.report.scenario
        if h is None:
            continue
        key = _endpoint_key(r)
        for p in h.sweep:
            point = NetPoint(0.0, p.achieved_rate_qps, p.p50_ms, p.p99_ms, 0)
            if p.concurrency is not None:
                conc.setdefault(key, {})[float(p.concurrency)] = replace(
                    point, level=float(p.concurrency)
                )
            if p.offered_rate_qps is not None:
                load.setdefault(key, {})[p.offered_rate_qps] = replace(
                    point, level=p.offered_rate_qps
                )
        if res is None:
            continue
        own = NetPoint(
            0.0, res.throughput.queries_per_s, res.latency.p50, res.latency.p99, res.latency.count
        )
        if sc.kind is ScenarioKind.CONCURRENCY and sc.concurrency is not None:
            conc.setdefault(key, {}).setdefault(
                float(sc.concurrency), replace(own, level=float(sc.concurrency))
            )
        if sc.kind is ScenarioKind.SERVER and sc.target_rate_qps is not None:
            load.setdefault(key, {}).setdefault(
                sc.target_rate_qps, replace(own, level=sc.target_rate_qps)
            )

    def ordered(
        d: dict[tuple[str, str, str], dict[float, NetPoint]],
    ) -> dict[tuple[str, str, str], list[NetPoint]]:
        return {k: [v[x] for x in sorted(v)] for k, v in d.items()}

    return ordered(conc), ordered(load)


def http_figures(runs: Sequence[RunData]) -> list[Figure]:
    """Throughput vs concurrency and latency vs offered load of each model's endpoint."""
    conc, load = network_levels(runs)
    figs: list[Figure] = []
    for key in sorted(set(conc) | set(load)):
        model, variant, endpoint = key
        members = [
            (r, h) for r in runs if (h := r.report.http) is not None and _endpoint_key(r) == key
        ]
        standin = any(RunFlag.LOCAL_STANDIN in r.report.flags for r, _ in members)
        where = endpoint + (" (a local stand-in for a cloud endpoint)" if standin else "")
        name = f"{model} {variant}"
        requests = sum(h.requests for _, h in members)
        points = conc.get(key, [])
        if points:
            figs.append(
                LineFigure(
                    id=f"conc-{slug(name)}-{slug(endpoint)[-24:]}",
                    title=f"Throughput vs concurrency: {name} over HTTP",
                    caption=(
                        f"Measured achieved request rate (requests/s) at each number of "
                        f"concurrent requests against {where}: {len(points)} levels, "
                        f"{requests:,} requests in these runs. p99 per level: "
                        + ", ".join(f"{p.level:g}: {p.p99_ms:.3g} ms" for p in points)
                        + "."
                    ),
                    x=Axis("concurrent requests", "count"),
                    y=Axis("achieved rate", "requests/s"),
                    series=(
                        Series("achieved rate", tuple((p.level, p.achieved_qps) for p in points)),
                    ),
                )
            )
        points = load.get(key, [])
        if points:
            peak = next((h.peak_rate_qps for _, h in members if h.peak_rate_qps), None)
            bound = next((h.latency_bound_ms for _, h in members if h.latency_bound_ms), None)
            markers: tuple[Marker, ...] = ()
            if peak is not None:
                at = min(points, key=lambda p: abs(p.level - peak))
                markers = (Marker(f"peak {peak:,.0f}/s", peak, at.p99_ms),)
            refs = (RefLine(f"p99 bound {bound:g} ms", bound),) if bound is not None else ()
            figs.append(
                LineFigure(
                    id=f"load-{slug(name)}-{slug(endpoint)[-24:]}",
                    title=f"Latency vs offered load: {name} over HTTP",
                    caption=(
                        f"Measured p50 and p99 latency (ms, timed from each request's intended "
                        f"send time) at each offered rate (requests/s, open loop) against "
                        f"{where}: {len(points)} rates, {requests:,} requests in these runs."
                        + (
                            " The marked point is the highest rate whose p99 met the bound."
                            if peak is not None
                            else ""
                        )
                    ),
                    x=Axis("offered load", "requests/s"),
                    y=Axis("latency", "ms"),
                    series=(
                        Series("p50", tuple((p.level, p.p50_ms) for p in points)),
                        Series("p99", tuple((p.level, p.p99_ms) for p in points)),
                    ),
                    markers=markers,
                    ref_lines=refs,
                )
            )
    return figs


def energy_figure(runs: Sequence[RunData]) -> Figure | None:
    """Joules per inference per run; estimated values hatched, measured solid."""
    rows = [
        (r, e, joules)
        for r in runs
        if (e := r.report.collectors.energy) is not None
        and e.valid
        and (joules := e.joules_per_inference) is not None
    ]
    if not rows:
        return None
    groups = []
    notes = []
    for r, e, joules in rows:
        est = e.method is MeasurementMethod.ESTIMATED
        prov = Provenance.ESTIMATED if est else Provenance.MEASURED
        groups.append(
            BarGroup(
                category=r.label,
                bars=(Bar("estimated" if est else "measured", joules, prov),),
            )
        )
        n = r.report.results.throughput.samples if r.report.results else 0
        notes.append(
            f"{r.label}: {'estimated' if est else 'measured'} by {e.source} "
            f"({e.method.value}, scope {e.scope}) over {n:,} inferences"
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
    """Accuracy change of each non-fp32 variant against fp32, in percent, with the 99% floor."""
    all_runs = [r.run for r in runs]
    seen: dict[tuple[str, str, str], Bar] = {}
    counts: list[str] = []
    for r in runs:
        check = accuracy_check(r.run, all_runs)
        acc = r.report.accuracy
        m = r.report.model
        if check is None or check.relative is None or acc is None or m.variant == "fp32":
            continue
        key = (m.name, m.variant, m.format)
        if key in seen:
            continue
        label = f"{m.name} {m.variant} {m.format}" + (" (below floor)" if check.below_floor else "")
        seen[key] = Bar(series=label, value=100.0 * (check.relative - 1.0))
        counts.append(f"{m.name} {m.variant}: {acc.samples:,} samples of {acc.dataset}")
    if not seen:
        return None
    return BarFigure(
        id="accuracy",
        title="Accuracy change against fp32",
        caption=(
            "Measured accuracy of each variant relative to the fp32 reference on the same "
            "evaluation set (percent change; 0 = as accurate as fp32), from a separate accuracy "
            f"pass on the same code path; the dashed line is the 99% floor. {'; '.join(counts)}."
        ),
        value_axis=Axis("accuracy change vs fp32", "%"),
        groups=tuple(BarGroup(category=b.series, bars=(b,)) for b in seen.values()),
        ref_lines=(RefLine("99% of fp32", -1.0),),
    )


def repeated_groups(runs: Sequence[RunData]) -> list[RunGroup]:
    """The groups of repeated runs among ``runs`` (member indices are into ``runs``)."""
    return [g for g in group_runs([r.report for r in runs]) if g.repeated]


def group_label(model: str, runs: Sequence[RunData], groups: list[RunGroup], g: RunGroup) -> str:
    """The group's run label without the model, after ``(k)`` when two groups of the same
    configuration are shown (an A/A pair)."""

    def base(x: RunGroup) -> str:
        return run_label(runs[x.members[0]].report).removeprefix(f"{model} ")

    same = [x for x in groups if base(x) == base(g)]
    return (f"({same.index(g) + 1}) " if len(same) > 1 else "") + base(g)


def repetition_figures(model: str, runs: Sequence[RunData]) -> list[PointsFigure]:
    """For the repeated runs of ``model``: each run's median latency, and its throughput, as a
    point beside the group's mean with the 95% t interval of that mean; a group whose runs
    disagree (between-run CV above 10%) is drawn in the warning colour."""
    reports = [r.report for r in runs]
    groups = [g for g in repeated_groups(runs) if reports[g.members[0]].model.name == model]
    if not groups:
        return []
    out: list[PointsFigure] = []
    for fig, axis, what in (
        (RunFigure.P50, Axis("median latency per run", "ms"), "median latency"),
        (RunFigure.THROUGHPUT, Axis("throughput per run", "samples/s"), "throughput"),
    ):
        points = []
        counts = []
        for g in groups:
            spread = group_spread(reports, g)
            s = spread.get(fig)
            if s is None:
                continue
            mi = mean_interval(s.values)
            label = group_label(model, runs, groups, g)
            points.append(
                PointGroup(
                    category=label,
                    points=s.values,
                    summary=mi.mean,
                    low=mi.low if mi.runs > 1 else None,
                    high=mi.high if mi.runs > 1 else None,
                    flagged=fig in disagreeing(spread),
                )
            )
            cv = f", CV {s.cv:.1%}" if s.cv is not None else ""
            counts.append(f"{label}: {len(s.values)} of {g.count} runs{cv}")
        if not points:
            continue
        out.append(
            PointsFigure(
                id=f"reps-{fig.name.lower()}-{slug(model)}",
                title=f"Repetitions, {what}: {model}",
                caption=(
                    f"Measured {what} of each repeated run (a point per run, in run order), "
                    "beside the mean of the runs and its 95% t interval; orange groups' runs "
                    "disagree (between-run coefficient of variation above 10%). "
                    + "; ".join(counts)
                    + "."
                ),
                value_axis=axis,
                groups=tuple(points),
            )
        )
    return out
