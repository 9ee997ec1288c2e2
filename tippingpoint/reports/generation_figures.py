"""Figures of generative runs: TTFT and inter-token (chunk gap) CDFs, output tokens/s against
concurrency.

Builds :mod:`tippingpoint.reports.charts.spec` figures from the ``generation`` section of reports
and the per-request and per-chunk arrays of their samples sidecars; draws nothing. Without a
sidecar a CDF is drawn from the report's summary percentiles and its caption says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tippingpoint.core.io import MissingSamplesError, load_samples
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import LatencyStats
from tippingpoint.core.token_metrics import chunk_gaps_ns
from tippingpoint.reports.charts.spec import Axis, Figure, LineFigure, Series, slug
from tippingpoint.reports.figures import cdf_points
from tippingpoint.reports.runs import RunData


@dataclass(frozen=True)
class TokenSamples:
    """A generative run's raw TTFTs and chunk gaps in ms (successful requests)."""

    ttft_ms: np.ndarray
    gap_ms: np.ndarray


def token_samples(run: RunData) -> TokenSamples | None:
    """The run's TTFTs (first chunk - scheduled send) and pooled chunk gaps from its sidecar;
    None when it has none."""
    report = run.report
    if report.generation is None or report.results is None or report.results.raw is None:
        return None
    try:
        arrays = load_samples(report, run.run.path)
        offsets = np.asarray(arrays["gen_chunk_offsets"], dtype=np.int64)
        chunks = np.asarray(arrays["gen_chunk_ns"], dtype=np.int64)
        sched = np.asarray(arrays["gen_scheduled_ns"], dtype=np.int64)
        ok = np.asarray(arrays["gen_error"]) == ""
    except (MissingSamplesError, KeyError):
        return None
    ok &= offsets[1:] > offsets[:-1]
    ttft = (chunks[offsets[:-1][ok]] - sched[ok]) / 1e6
    gaps = chunk_gaps_ns(chunks, offsets, ok) / 1e6
    return TokenSamples(np.asarray(ttft, dtype=float), np.asarray(gaps, dtype=float))


def _summary_cdf(lat: LatencyStats) -> tuple[tuple[float, float], ...]:
    return (
        (lat.min, 0.0),
        (lat.p50, 0.5),
        (lat.p90, 0.9),
        (lat.p99, 0.99),
        (lat.max, 1.0),
    )


def _cdf(
    runs: Sequence[RunData],
    samples: dict[int, TokenSamples],
    which: str,
    title: str,
    what: str,
) -> LineFigure | None:
    series: list[Series] = []
    from_summary: list[str] = []
    for i, r in enumerate(runs):
        gen = r.report.generation
        assert gen is not None
        stats = gen.metrics.ttft if which == "ttft" else gen.metrics.chunk_gap
        raw = samples.get(i)
        values = None if raw is None else (raw.ttft_ms if which == "ttft" else raw.gap_ms)
        if values is not None and len(values):
            series.append(Series(label=r.label, points=cdf_points(values)))
        elif stats is not None:
            series.append(Series(label=r.label, points=_summary_cdf(stats)))
            from_summary.append(r.label)
    if not series:
        return None
    xs = [p[0] for s in series for p in s.points if p[0] > 0]
    log = bool(xs) and max(xs) / min(xs) > 20
    caption = (
        f"Measured {what} in milliseconds{' (log scale)' if log else ''}; y is the fraction at "
        "or below x."
    )
    if which == "gap":
        multi = [
            r.label
            for r in runs
            if r.report.generation and r.report.generation.metrics.multi_token_chunks
        ]
        caption += (
            " A chunk is not a token: where chunks carried several tokens ("
            + "; ".join(multi)
            + ") a gap spans them all; time per output token is in the table."
            if multi
            else " Every chunk carried one token here."
        )
    if from_summary:
        caption += (
            " From the summary percentiles (no samples sidecar): " + "; ".join(from_summary) + "."
        )
    return LineFigure(
        id=f"gen-{which}-cdf",
        title=title,
        caption=caption,
        x=Axis(what, "ms", log=log),
        y=Axis("fraction", "0-1"),
        series=tuple(series),
        steps=True,
    )


def concurrency_figure(runs: Sequence[RunData]) -> LineFigure | None:
    """Output tokens/s against concurrency, one line per model and backend with 2+ levels."""
    lines: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        rep, gen = r.report, r.report.generation
        if gen is None or rep.scenario.kind is not ScenarioKind.CONCURRENCY:
            continue
        backend = rep.backend.name if rep.backend else "?"
        key = f"{rep.model.name} {rep.model.variant} · {backend}"
        level = float(rep.scenario.concurrency or 1)
        lines.setdefault(key, []).append((level, gen.metrics.output_tokens_per_s))
    series = tuple(
        Series(label=k, points=tuple(sorted(v))) for k, v in sorted(lines.items()) if len(v) > 1
    )
    if not series:
        return None
    return LineFigure(
        id=f"gen-tokens-concurrency-{slug(series[0].label)}",
        title="Output tokens/s against concurrency",
        caption=(
            "Measured output tokens per second of the successful requests over each run's "
            "measured part, one closed-loop run per concurrency level."
        ),
        x=Axis("requests in flight", "concurrency"),
        y=Axis("output tokens/s", "tokens/s"),
        series=series,
    )


def generation_figures(runs: Sequence[RunData]) -> list[Figure]:
    """The TTFT CDF, the chunk-gap CDF and tokens/s against concurrency of generative runs."""
    gen_runs = [r for r in runs if r.report.generation is not None]
    if not gen_runs:
        return []
    samples = {i: s for i, r in enumerate(gen_runs) if (s := token_samples(r)) is not None}
    figures: list[Figure] = []
    ttft = _cdf(gen_runs, samples, "ttft", "Time to first token CDF", "time to first token")
    gap = _cdf(gen_runs, samples, "gap", "Inter-token (chunk gap) CDF", "gap between chunks")
    conc = concurrency_figure(gen_runs)
    figures.extend(f for f in (ttft, gap, conc) if f is not None)
    return figures
