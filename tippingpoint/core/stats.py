"""Latency statistics: nearest-rank percentiles, exact bootstrap intervals, window stability.

Pure functions over numpy arrays of nanoseconds; nothing here formats output.
"""

from __future__ import annotations

import math

import numpy as np

from tippingpoint.core.schema import ConfidenceInterval, LatencyStats, Stability

PERCENTILES: dict[str, float] = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": 99.9}
NS_PER_MS = 1e6
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_METHOD = "bootstrap percentile interval, exact order-statistic resampling"


def nearest_rank_index(n: int, q: float) -> int:
    """Zero-based index of the nearest-rank ``q``-th percentile (0 < q <= 100) of ``n`` values.

    Nearest rank, as MLPerf LoadGen: the smallest value with at least q% of the data at or below
    it, i.e. rank ``ceil(q/100 * n)`` (1-based).
    """
    if n <= 0:
        raise ValueError("no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} outside (0, 100]")
    # round before ceil so q*n that is an integer in exact arithmetic is not pushed up by FP error
    rank = math.ceil(round(q / 100.0 * n, 9))
    return min(max(rank, 1), n) - 1


def percentile_nearest_rank(sorted_values: np.ndarray, q: float) -> float:
    """The nearest-rank ``q``-th percentile of an ascending array."""
    return float(sorted_values[nearest_rank_index(len(sorted_values), q)])


def bootstrap_percentiles(
    sorted_values: np.ndarray, q: float, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """``resamples`` bootstrap replicates of the nearest-rank ``q``-th percentile, unsorted.

    A bootstrap resample of ``n`` values drawn with replacement has its k-th order statistic at
    original rank ``ceil(n * U)`` where ``U ~ Beta(k, n - k + 1)`` (the k-th order statistic of n
    uniforms), so each resample costs O(1) instead of O(n): exactly the bootstrap distribution,
    without materialising resamples.
    """
    n = len(sorted_values)
    k = nearest_rank_index(n, q) + 1
    u = rng.beta(k, n - k + 1, size=resamples)
    idx = np.clip(np.ceil(u * n).astype(np.int64), 1, n) - 1
    return sorted_values[idx]


def percentile_interval(sorted_replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` interval of ascending bootstrap replicates (nearest rank)."""
    n = len(sorted_replicates)
    alpha = (1.0 - level) / 2.0
    lo = sorted_replicates[nearest_rank_index(n, max(alpha * 100, 1e-9))]
    hi = sorted_replicates[nearest_rank_index(n, (1 - alpha) * 100)]
    return float(lo), float(hi)


def bootstrap_percentile_ci(
    sorted_values: np.ndarray,
    q: float,
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap percentile interval of the nearest-rank ``q``-th percentile (exact
    order-statistic resampling, see :func:`bootstrap_percentiles`)."""
    rng = np.random.default_rng(seed)
    replicates = np.sort(bootstrap_percentiles(sorted_values, q, resamples, rng))
    return percentile_interval(replicates, level)


def latency_stats(latency_ns: np.ndarray, *, seed: int = 0, with_ci: bool = True) -> LatencyStats:
    """Summary statistics of per-query latencies (ns in, ms out)."""
    if len(latency_ns) == 0:
        raise ValueError("no latency samples")
    values = np.sort(np.asarray(latency_ns, dtype=np.float64)) / NS_PER_MS
    pct = {name: percentile_nearest_rank(values, q) for name, q in PERCENTILES.items()}
    ci: dict[str, ConfidenceInterval] = {}
    if with_ci:
        for name in ("p50", "p99"):
            lo, hi = bootstrap_percentile_ci(values, PERCENTILES[name], seed=seed)
            ci[name] = ConfidenceInterval(
                low=lo, high=hi, method=BOOTSTRAP_METHOD, resamples=BOOTSTRAP_RESAMPLES
            )
    return LatencyStats(
        count=len(values),
        min=float(values[0]),
        max=float(values[-1]),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        ci=ci,
        p50=pct["p50"],
        p90=pct["p90"],
        p95=pct["p95"],
        p99=pct["p99"],
        p999=pct["p999"],
    )


def longest_agreeing_run(rates: np.ndarray, threshold: float) -> int:
    """The most consecutive windows whose rates all lie within ``threshold`` (relative) of
    the mean of those windows; 0 when every window is empty."""
    best = 0
    n = len(rates)
    for i in range(n):
        for j in range(i + 1, n + 1):
            run = rates[i:j]
            mean = float(run.mean())
            if mean > 0 and float(np.max(np.abs(run - mean))) <= threshold * mean:
                best = max(best, j - i)
    return best


def window_stability(
    end_ns: np.ndarray,
    window_start_ns: int,
    window_end_ns: int,
    windows: int,
    threshold: float,
    consecutive: int | None = None,
) -> Stability | None:
    """Queries per second in ``windows`` equal time slices of the measured part, and agreement.

    ``end_ns`` holds each query's completion time; a query counts in the slice it completed in.
    A run is stable when no window deviates from the mean window throughput by more than
    ``threshold`` (relative); with ``consecutive`` (network load, as perf_analyzer's stability
    rule), when that many consecutive windows agree within ``threshold`` of their own mean.
    Returns None when there are fewer queries than windows.
    """
    duration = window_end_ns - window_start_ns
    if windows < 1 or len(end_ns) < windows or duration <= 0:
        return None
    edges = np.linspace(window_start_ns, window_end_ns, windows + 1)
    counts, _ = np.histogram(end_ns, bins=edges)
    width_s = duration / windows / 1e9
    rates = counts / width_s
    mean = float(rates.mean())
    if mean <= 0:
        return None
    max_dev = float(np.max(np.abs(rates - mean)) / mean)
    cv = float(rates.std(ddof=1) / mean) if windows > 1 else 0.0
    run = longest_agreeing_run(rates, threshold)
    if consecutive is None:
        stable = max_dev <= threshold
        rule = f"every window within {threshold:.0%} of the mean"
    else:
        need = min(consecutive, windows)
        stable = run >= need
        rule = f"{need} consecutive windows within {threshold:.0%} of their mean"
    return Stability(
        windows=tuple(float(r) for r in rates),
        cv=cv,
        max_relative_deviation=max_dev,
        threshold=threshold,
        stable=stable,
        longest_agreeing_run=run,
        rule=rule,
    )
