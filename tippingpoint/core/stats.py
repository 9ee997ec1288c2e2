"""Latency statistics: nearest-rank percentiles, exact bootstrap intervals, window stability,
the convergence of window throughputs and their drift.

Pure functions over numpy arrays of nanoseconds; nothing here formats output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tippingpoint.core.schema import ConfidenceInterval, Drift, LatencyStats, Stability

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


def longest_agreeing_run(rates: np.ndarray | Sequence[float], threshold: float) -> int:
    """The most consecutive windows whose rates all lie within ``threshold`` (relative) of
    the mean of those windows; 0 when every window is empty. O(n^2): each run is extended
    one window at a time with its running sum, minimum and maximum."""
    values = [float(r) for r in rates]
    best = 0
    n = len(values)
    for i in range(n):
        total, lo, hi = 0.0, math.inf, -math.inf
        for j in range(i, n):
            v = values[j]
            total += v
            lo, hi = min(lo, v), max(hi, v)
            mean = total / (j - i + 1)
            if mean > 0 and max(hi - mean, mean - lo) <= threshold * mean:
                best = max(best, j - i + 1)
    return best


def agreement(rates: Sequence[float]) -> float:
    """The largest relative deviation of ``rates`` from their mean (inf when the mean is 0)."""
    mean = sum(rates) / len(rates)
    if mean <= 0:
        return math.inf
    return max(abs(r - mean) for r in rates) / mean


COUNTING_Z = 2.0
"""Windows of a Poisson arrival process agree within this many standard deviations of their
counting noise (each of 3 windows then lies within it of their mean about 96% of the time)."""


def tail_tolerance(counts: Sequence[int], k: int, threshold: float, poisson: bool) -> float:
    """The agreement the last ``k`` windows are held to: ``threshold``, widened for windows of a
    Poisson arrival process to ``COUNTING_Z`` times their counting noise (1/sqrt of the mean
    count), which no steady server can beat."""
    if not poisson or len(counts) < k:
        return threshold
    mean = sum(counts[-k:]) / k
    return max(threshold, COUNTING_Z / math.sqrt(mean)) if mean > 0 else threshold


def tail_agrees(rates: Sequence[float], k: int, tolerance: float) -> bool:
    """Whether the last ``k`` rates all lie within ``tolerance`` (relative) of their mean: the
    convergence stop's test (perf_analyzer's: 3 windows within 10%)."""
    return len(rates) >= k >= 1 and agreement(rates[-k:]) <= tolerance


def fixed_window_counts(end_ns: np.ndarray, width_ns: int, windows: int) -> np.ndarray:
    """Completions in each of ``windows`` windows of ``width_ns`` from 0: window i holds the
    ends in (i*width, (i+1)*width], as the convergence stop counts them while it runs."""
    edges = np.arange(windows + 1, dtype=np.int64) * int(width_ns)
    return np.diff(np.searchsorted(np.sort(end_ns), edges, side="right"))


_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
"""Student's t 97.5% quantiles for 1 to 30 degrees of freedom."""


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile (the two-sided 95% multiplier) for ``df`` degrees of freedom:
    tabulated to 30, then the Cornish-Fisher expansion (error under 1e-4)."""
    if df < 1:
        raise ValueError("degrees of freedom must be positive")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963984540054
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


DRIFT_METHOD = "least-squares slope of window throughput against time, Student t (n-2 df)"


def drift(rates: Sequence[float], width_s: float, threshold: float) -> Drift | None:
    """The trend of window throughputs (windows of ``width_s`` in order) in percent of their
    mean per second, with its 95% interval; drifting when the interval excludes 0 and the
    fitted change across the windows exceeds ``threshold``. None with fewer than 3 windows, a
    zero mean or no width."""
    n = len(rates)
    y = np.asarray(rates, dtype=np.float64)
    mean = float(y.mean()) if n else 0.0
    if n < 3 or mean <= 0 or width_s <= 0:
        return None
    x = (np.arange(n) + 0.5) * width_s
    sxx = float(((x - x.mean()) ** 2).sum())
    slope = float(((x - x.mean()) * (y - mean)).sum()) / sxx
    resid = y - (mean + slope * (x - x.mean()))
    se = math.sqrt(float((resid**2).sum()) / (n - 2) / sxx)
    half = t_quantile_975(n - 2) * se
    to_pct = 100.0 / mean
    low, high = (slope - half) * to_pct, (slope + half) * to_pct
    change = slope * n * width_s * to_pct
    significant = low > 0 or high < 0
    return Drift(
        slope_pct_per_s=slope * to_pct,
        ci=ConfidenceInterval(low=low, high=high, method=DRIFT_METHOD),
        change_pct=change,
        windows=n,
        significant=significant,
        drifting=significant and abs(change) > threshold * 100,
    )


def converged_stability(
    end_ns: np.ndarray, width_ns: int, windows: int, k: int, threshold: float, poisson: bool
) -> Stability | None:
    """Stability of a run the convergence rule stopped: ``windows`` whole windows of
    ``width_ns`` from 0 (``end_ns`` relative to the start of the measured part); stable when
    the last ``k`` agree within the tolerance (:func:`tail_tolerance`). None without a window
    or a query."""
    if windows < 1 or width_ns <= 0 or len(end_ns) == 0:
        return None
    counts = fixed_window_counts(end_ns, width_ns, windows)
    rates = counts / (width_ns / 1e9)
    mean = float(rates.mean())
    if mean <= 0:
        return None
    tol = tail_tolerance(counts.tolist(), k, threshold, poisson)
    need = min(k, windows)
    return Stability(
        windows=tuple(float(r) for r in rates),
        cv=float(rates.std(ddof=1) / mean) if windows > 1 else 0.0,
        max_relative_deviation=float(np.max(np.abs(rates - mean)) / mean),
        threshold=threshold,
        stable=tail_agrees(rates.tolist(), k, tol),
        longest_agreeing_run=longest_agreeing_run(rates, tol),
        rule=f"the last {need} windows of {width_ns / 1e9:.3g} s within {tol:.0%} of their mean "
        "(convergence stop)",
    )


def count_resolution(queries: int, windows: int) -> float:
    """The relative step of one query in a window that holds the mean ``queries / windows``:
    the finest agreement whole-query window counts can show (1.0 without queries)."""
    return windows / queries if queries > 0 else 1.0


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
    A window holds a whole number of queries, so the tolerance is never finer than one query
    in the mean window (:func:`count_resolution`): 20 queries of 165 ms in 5 windows differ by
    25% when one window ends a query early, which says nothing about the machine.
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
    tol = max(threshold, count_resolution(len(end_ns), windows))
    coarse = f" (one query of {len(end_ns) / windows:.3g} a window)" if tol > threshold else ""
    run = longest_agreeing_run(rates, tol * (1 + 1e-9))  # (the rates' rounding)
    if consecutive is None:
        stable = max_dev <= tol * (1 + 1e-9)
        rule = f"every window within {tol:.0%} of the mean{coarse}"
    else:
        need = min(consecutive, windows)
        stable = run >= need
        rule = f"{need} consecutive windows within {tol:.0%} of their mean{coarse}"
    return Stability(
        windows=tuple(float(r) for r in rates),
        cv=cv,
        max_relative_deviation=max_dev,
        threshold=threshold,
        stable=stable,
        longest_agreeing_run=run,
        rule=rule,
    )


Z_95 = 1.959963984540054
"""The standard normal's 97.5th percentile: a two-sided 95% interval's half-width in sigmas."""


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (95% for the default ``z``).

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``: unlike the normal approximation it
    stays inside [0, 1] and does not collapse to a point at p = 0 or 1.
    """
    if n <= 0:
        raise ValueError("no samples")
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denom = 1 + z2 / n
    return max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom)


def bootstrap_mean_ci(
    values: np.ndarray, *, level: float = 0.95, resamples: int = 2_000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap percentile interval of the mean of ``values`` (resampled with replacement)."""
    n = len(values)
    if n == 0:
        raise ValueError("no samples")
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=np.float64)
    means = np.empty(resamples)
    chunk = max(1, 4_000_000 // n)  # bound the index matrix's memory
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = data[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return percentile_interval(np.sort(means), level)
