"""The measured part of a run, as the runner's one end-of-measurement path consumes it.

A local run (the runner's timed loop) and a network run (:mod:`tippingpoint.harness.network`)
each end in a :class:`MeasuredPart`: the collectors' window, the queries counted in it, how to
get their raw :class:`Samples`, and what the scenario adds to the report. The runner closes the
collectors' window, accounts energy, flags and finishes the report the same way for both.

Usage::

    part = MeasuredPart(t_begin, t_end, queries, warmup, interrupted, samples=lambda: samples)
    results = performance_results(samples, scenario)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tippingpoint.core import stats
from tippingpoint.core.schema import (
    GenerationResults,
    HttpResults,
    HybridResults,
    PerformanceResults,
    RunFlag,
    ScenarioSettings,
    SegmentFigures,
    Stability,
    Throughput,
    WarmupSummary,
)
from tippingpoint.harness.convergence import StopRecord


@dataclass
class Samples:
    """Raw per-query samples of the measured part, in perf_counter_ns."""

    latency_ns: np.ndarray
    end_ns: np.ndarray
    """Completion times relative to ``window_start_ns``."""
    window_start_ns: int
    window_end_ns: int
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    """Further per-request arrays for the sidecar (a hybrid run's routes), named in
    :data:`tippingpoint.core.io.SAMPLE_ARRAYS`."""


@dataclass(frozen=True)
class MeasuredPart:
    """What one measured part hands the runner's end of measurement."""

    window_start_ns: int
    """When the collectors' window opened (``perf_counter_ns``), after the warm-up."""
    window_end_ns: int
    """When it closed: the end of the measured part."""
    queries: int
    """Queries counted (successful ones; those the samples hold)."""
    warmup: WarmupSummary
    interrupted: bool
    """True when Ctrl-C stopped the measured part (the figures cover what ran)."""
    samples: Callable[[], Samples | None]
    """Builds the raw samples (None when no query completed); called once the collectors'
    window is closed, so converting a long run's lists never falls inside it."""
    results: PerformanceResults | None = None
    """Figures the scenario computed under its own stability rule (network runs); None: the
    report computes them from the samples."""
    http: HttpResults | None = None
    """The report's network section (network runs)."""
    flags: tuple[RunFlag, ...] = ()
    """Flags the scenario raised (e.g. an invalid send lag)."""
    stop: StopRecord | None = None
    """What ended the measured part (local runs; network results carry it already)."""
    hybrid: HybridResults | None = None
    """The report's hybrid section (hybrid runs)."""
    generation: GenerationResults | None = None
    """A generative run's token-level figures (energy per token is added at the end)."""
    window_output_tokens: int = 0
    """Generative runs: output tokens completed inside the collectors' window."""


def _throughput(n: int, duration_s: float, batch: int) -> Throughput:
    return Throughput(
        queries_per_s=n / duration_s if duration_s > 0 else 0.0,
        samples_per_s=n * batch / duration_s if duration_s > 0 else 0.0,
        duration_s=duration_s,
        queries=n,
        samples=n * batch,
    )


def performance_results(
    samples: Samples,
    scenario: ScenarioSettings,
    consecutive: int | None = None,
    stop: StopRecord | None = None,
) -> PerformanceResults:
    """Latency statistics, throughput, window stability and drift from raw samples
    (``consecutive``: the number of agreeing consecutive windows that makes a network load
    stable under the fixed stop; ``stop``: what ended the measured part).

    The headline latency and throughput cover the whole measured part (as MLPerf reports a
    run); a run the convergence rule stopped also gets the figures of its agreeing windows
    (``converged_segment``, perf_analyzer's). Under the convergence rule the windows are its
    whole windows and a run is stable when they converged; drift is fitted to the windows."""
    n = len(samples.latency_ns)
    duration_s = (samples.window_end_ns - samples.window_start_ns) / 1e9
    latency = stats.latency_stats(samples.latency_ns, seed=scenario.seed, with_ci=n >= 2)
    throughput = _throughput(n, duration_s, scenario.batch_size)
    stability: Stability | None
    if stop is not None and stop.width_ns:
        width_s = stop.width_ns / 1e9
        threshold = stop.threshold
        stability = stats.converged_stability(
            samples.end_ns, stop.width_ns, stop.windows, stop.k, threshold, stop.poisson
        )
    else:
        # whole-query windows (see stats.window_stability): the fitted change spans the first
        # and the last window, each known to one query, so less than two queries is no trend
        resolution = stats.count_resolution(n, scenario.windows)
        threshold = max(scenario.stability_threshold, 2 * resolution * (1 + 1e-9))
        width_s = duration_s / scenario.windows
        stability = stats.window_stability(
            samples.end_ns,
            0,
            samples.window_end_ns - samples.window_start_ns,
            scenario.windows,
            scenario.stability_threshold,
            consecutive,
        )
    drift = stats.drift(stability.windows, width_s, threshold) if stability else None
    segment = None
    if stop is not None and stop.converged and stop.windows >= stop.k:
        segment = _segment(samples, scenario, stop)
    return PerformanceResults(
        latency=latency,
        throughput=throughput,
        stability=stability,
        stop=stop.outcome(duration_s) if stop is not None else None,
        drift=drift,
        converged_segment=segment,
    )


def _segment(samples: Samples, scenario: ScenarioSettings, stop: StopRecord) -> SegmentFigures:
    """Figures of the last ``k`` whole windows, the ones that agreed."""
    lo = (stop.windows - stop.k) * stop.width_ns
    hi = stop.windows * stop.width_ns
    inside = (samples.end_ns > lo) & (samples.end_ns <= hi)
    lat = samples.latency_ns[inside]
    width_s = (hi - lo) / 1e9
    return SegmentFigures(
        start_s=lo / 1e9,
        end_s=hi / 1e9,
        latency=stats.latency_stats(lat, seed=scenario.seed, with_ci=len(lat) >= 2),
        throughput=_throughput(len(lat), width_s, scenario.batch_size),
    )
