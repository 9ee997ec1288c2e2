"""Is one configuration really faster than another? Pure numpy, no scipy.

The unit of comparison is the run. Groups of repeated runs (``run --repeat``) are compared on
their run-level figures (median, p99, throughput), with an interval on the ratio that comes
from the spread between runs (:mod:`tippingpoint.core.runstats`): a paired t interval when the
groups were interleaved in one series, Welch's otherwise. A verdict needs that interval to
exclude 1 and the change to exceed the negligible band. With one run on a side there is no
spread between runs to judge by: the verdict is ``single-runs`` and only the within-run ratio
is shown, with no interval or p-value (queries inside one run are not independent draws of a
shared machine's state, so their tests claim far more than the run supports).

The within-run tests below stay for the raw samples of one run against another (they answer
"do these two samples differ?", not "is this configuration faster?"):

* a bootstrap confidence interval of the ratio of medians (B / A), drawn with the exact
  order-statistic bootstrap of :mod:`tippingpoint.core.stats` (O(1) per resample, so it stays
  cheap for millions of samples);
* the Mann-Whitney U test (normal approximation with tie correction and continuity correction).

A difference that is significant but smaller than ``min_effect`` is reported as negligible,
so a 0.3% change measured over a million queries is not printed as a win.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
from pydantic import Field

from tippingpoint.core.runstats import FigureSpread, RatioEstimate, RunFigure, compare_figure
from tippingpoint.core.stats import (
    bootstrap_percentiles,
    percentile_interval,
    percentile_nearest_rank,
)
from tippingpoint.core.types import Frozen

DEFAULT_LEVEL = 0.99
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_EFFECT = 0.02
DEFAULT_RESAMPLES = 10_000


class Verdict(str, Enum):
    """What the comparison of B against A says about latency."""

    FASTER = "faster"
    SLOWER = "slower"
    NEGLIGIBLE = "negligible"
    NOT_SIGNIFICANT = "not-significant"
    UNKNOWN = "unknown"
    SINGLE_RUNS = "single-runs"
    """One run on a side: significance cannot be judged from single runs."""


class SignificanceMethod(str, Enum):
    """How the verdict was reached."""

    RAW_SAMPLES = "bootstrap ratio of medians + Mann-Whitney U on raw samples"
    CI_OVERLAP = "overlap of the reports' p50 confidence intervals (raw samples missing)"
    NONE = "none (no latency figures)"
    RUN_LEVEL_PAIRED = "paired t interval of log(B/A) over interleaved runs (run-level)"
    RUN_LEVEL_WELCH = "Welch t interval of log run values (run-level, not interleaved)"
    SINGLE_RUNS = "none: one run on a side, significance cannot be judged from single runs"


class MannWhitney(Frozen):
    """The Mann-Whitney U statistic of B against A and its two-sided p-value."""

    u: float = Field(description="U of sample B: count of (b, a) pairs with b > a, ties 0.5")
    z: float
    p_value: float
    prob_b_greater: float = Field(description="U / (n_a n_b): P(random b > random a)")


class RatioInterval(Frozen):
    """Bootstrap interval of median(B) / median(A)."""

    ratio: float
    low: float
    high: float
    level: float
    resamples: int


class FigureVerdict(Frozen):
    """One run-level figure of B against A: the ratio of geometric means over runs, its
    interval from the spread between runs, and what it says."""

    figure: RunFigure
    ratio: float
    low: float
    high: float
    level: float
    df: float
    verdict: Verdict


class Significance(Frozen):
    """The latency verdict of B against A with the evidence behind it."""

    verdict: Verdict
    method: SignificanceMethod
    median_ratio: float | None = None
    interval: RatioInterval | None = None
    mann_whitney: MannWhitney | None = None
    alpha: float = DEFAULT_ALPHA
    min_effect: float = DEFAULT_MIN_EFFECT
    n_a: int = 0
    n_b: int = 0
    runs_a: int = 1
    runs_b: int = 1
    figures: tuple[FigureVerdict, ...] = Field(
        default=(), description="run-level: p50 (the verdict's), p99, throughput"
    )


def fmt_p(p: float) -> str:
    """A p-value for reading; values below 1e-15 (beyond float precision) as ``< 1e-15``."""
    return "< 1e-15" if p < 1e-15 else f"= {p:.2g}"


def ratio_of_medians_ci(
    a: np.ndarray,
    b: np.ndarray,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RatioInterval:
    """Percentile bootstrap interval of median(b) / median(a), resampling each independently."""
    sa = np.sort(np.asarray(a, dtype=np.float64))
    sb = np.sort(np.asarray(b, dtype=np.float64))
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError("no samples")
    rng = np.random.default_rng(seed)
    ma = bootstrap_percentiles(sa, 50, resamples, rng)
    mb = bootstrap_percentiles(sb, 50, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.sort(mb / ma)
    lo, hi = percentile_interval(ratios, level)
    point = percentile_nearest_rank(sb, 50) / percentile_nearest_rank(sa, 50)
    return RatioInterval(ratio=point, low=lo, high=hi, level=level, resamples=resamples)


def mann_whitney_u(a: np.ndarray, b: np.ndarray) -> MannWhitney:
    """Two-sided Mann-Whitney U test of b against a (normal approximation, tie-corrected)."""
    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    na, nb = len(xa), len(xb)
    if na == 0 or nb == 0:
        raise ValueError("no samples")
    both = np.concatenate([xa, xb])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    # average rank of each distinct value: ranks are 1-based and ties share their mean rank
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0
    ranks = avg_rank[inverse]
    u_b = float(ranks[na:].sum() - nb * (nb + 1) / 2.0)
    n = na + nb
    tie = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    var = na * nb / 12.0 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    mean = na * nb / 2.0
    if var <= 0:
        return MannWhitney(u=u_b, z=0.0, p_value=1.0, prob_b_greater=u_b / (na * nb))
    diff = u_b - mean
    z = (diff - math.copysign(0.5, diff)) / math.sqrt(var) if diff != 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return MannWhitney(u=u_b, z=z, p_value=min(p, 1.0), prob_b_greater=u_b / (na * nb))


def compare_samples(
    a: np.ndarray,
    b: np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Significance:
    """Verdict on the latency of ``b`` against ``a`` from raw samples (any one unit)."""
    interval = ratio_of_medians_ci(a, b, level=1.0 - alpha, resamples=resamples, seed=seed)
    mw = mann_whitney_u(a, b)
    excludes_one = interval.low > 1.0 or interval.high < 1.0
    if not (excludes_one and mw.p_value < alpha):
        verdict = Verdict.NOT_SIGNIFICANT
    elif abs(interval.ratio - 1.0) < min_effect:
        verdict = Verdict.NEGLIGIBLE
    else:
        verdict = Verdict.SLOWER if interval.ratio > 1.0 else Verdict.FASTER
    return Significance(
        verdict=verdict,
        method=SignificanceMethod.RAW_SAMPLES,
        median_ratio=interval.ratio,
        interval=interval,
        mann_whitney=mw,
        alpha=alpha,
        min_effect=min_effect,
        n_a=len(a),
        n_b=len(b),
    )


def compare_intervals(
    a_p50: float,
    a_ci: tuple[float, float] | None,
    b_p50: float,
    b_ci: tuple[float, float] | None,
    *,
    n_a: int,
    n_b: int,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> Significance:
    """A conservative verdict from two medians and their intervals when raw samples are gone.

    Different only when the two intervals do not overlap; unknown without intervals.
    """
    ratio = b_p50 / a_p50 if a_p50 > 0 else None
    if a_ci is None or b_ci is None or ratio is None:
        verdict = Verdict.UNKNOWN
    elif a_ci[1] >= b_ci[0] and b_ci[1] >= a_ci[0]:
        verdict = Verdict.NOT_SIGNIFICANT
    elif abs(ratio - 1.0) < min_effect:
        verdict = Verdict.NEGLIGIBLE
    else:
        verdict = Verdict.SLOWER if ratio > 1.0 else Verdict.FASTER
    return Significance(
        verdict=verdict,
        method=SignificanceMethod.CI_OVERLAP,
        median_ratio=ratio,
        min_effect=min_effect,
        n_a=n_a,
        n_b=n_b,
    )


def figure_verdict(est: RatioEstimate, figure: RunFigure, min_effect: float) -> Verdict:
    """Faster or slower only when the interval excludes 1 and the change exceeds
    ``min_effect``; negligible when it excludes 1 within the band; else not significant."""
    if not est.excludes_one:
        return Verdict.NOT_SIGNIFICANT
    if abs(est.ratio - 1.0) < min_effect:
        return Verdict.NEGLIGIBLE
    worse = est.ratio > 1.0 if figure.lower_is_better else est.ratio < 1.0
    return Verdict.SLOWER if worse else Verdict.FASTER


COMPARED_FIGURES = (RunFigure.P50, RunFigure.P99, RunFigure.THROUGHPUT)


def compare_groups(
    a: dict[RunFigure, FigureSpread],
    b: dict[RunFigure, FigureSpread],
    *,
    paired: bool,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> Significance:
    """The verdict of group B against group A from their run-level figures.

    ``paired`` when the two groups were interleaved in one series. The verdict is the median
    latency's; p99 and throughput get their own intervals beside it. With fewer than two
    complete runs on a side the verdict is :attr:`Verdict.SINGLE_RUNS`.
    """
    runs_a = len(a[RunFigure.P50].values) if RunFigure.P50 in a else 0
    runs_b = len(b[RunFigure.P50].values) if RunFigure.P50 in b else 0
    if runs_a == 0 or runs_b == 0:
        return Significance(verdict=Verdict.UNKNOWN, method=SignificanceMethod.NONE)
    if runs_a < 2 or runs_b < 2:
        return single_runs(a, b, alpha=alpha, min_effect=min_effect)
    figures: list[FigureVerdict] = []
    method = SignificanceMethod.RUN_LEVEL_WELCH
    for fig in COMPARED_FIGURES:
        if fig not in a or fig not in b:
            continue
        est = compare_figure(a[fig], b[fig], paired=paired, level=1.0 - alpha)
        if est is None:
            continue
        if fig is RunFigure.P50 and est.paired:
            method = SignificanceMethod.RUN_LEVEL_PAIRED
        figures.append(
            FigureVerdict(
                figure=fig,
                ratio=est.ratio,
                low=est.low,
                high=est.high,
                level=est.level,
                df=est.df,
                verdict=figure_verdict(est, fig, min_effect),
            )
        )
    head = next((f for f in figures if f.figure is RunFigure.P50), None)
    if head is None:
        return single_runs(a, b, alpha=alpha, min_effect=min_effect)
    return Significance(
        verdict=head.verdict,
        method=method,
        median_ratio=head.ratio,
        alpha=alpha,
        min_effect=min_effect,
        runs_a=runs_a,
        runs_b=runs_b,
        figures=tuple(figures),
    )


def single_runs(
    a: dict[RunFigure, FigureSpread],
    b: dict[RunFigure, FigureSpread],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> Significance:
    """No verdict: one run on a side. The within-run ratio of medians is kept as it is, with
    no interval or p-value."""
    ratio = None
    if RunFigure.P50 in a and RunFigure.P50 in b:
        ratio = b[RunFigure.P50].geometric_mean / a[RunFigure.P50].geometric_mean
    return Significance(
        verdict=Verdict.SINGLE_RUNS,
        method=SignificanceMethod.SINGLE_RUNS,
        median_ratio=ratio,
        alpha=alpha,
        min_effect=min_effect,
        runs_a=len(a[RunFigure.P50].values) if RunFigure.P50 in a else 0,
        runs_b=len(b[RunFigure.P50].values) if RunFigure.P50 in b else 0,
    )


def describe(sig: Significance | None) -> str:
    """The verdict in plain words with its evidence (tables add their own styling)."""
    if sig is None:
        return "baseline"
    text = sig.verdict.value
    if sig.method is SignificanceMethod.SINGLE_RUNS:
        within = f" (within-run median x{sig.median_ratio:.3f})" if sig.median_ratio else ""
        return "single runs: significance cannot be judged" + within
    head = next((f for f in sig.figures if f.figure is RunFigure.P50), None)
    if head is not None:
        how = "paired" if sig.method is SignificanceMethod.RUN_LEVEL_PAIRED else "unpaired"
        text += (
            f" x{head.ratio:.3f} [{head.low:.3f}, {head.high:.3f}] {head.level:.0%}, "
            f"{sig.runs_a}+{sig.runs_b} runs {how}"
        )
        return text
    if sig.interval is not None:
        i = sig.interval
        text += f" x{i.ratio:.3f} [{i.low:.3f}, {i.high:.3f}] {i.level:.0%}"
    if sig.mann_whitney is not None:
        text += f", MW p {fmt_p(sig.mann_whitney.p_value)}"
    if sig.method is SignificanceMethod.CI_OVERLAP:
        text += " (CI overlap; raw samples missing)"
    return text


def describe_others(sig: Significance | None) -> str:
    """The run-level p99 and throughput ratios beside the verdict, e.g.
    ``p99 x1.10 [0.95, 1.27]; throughput x0.92 [0.88, 0.96] slower``."""
    if sig is None:
        return ""
    parts = []
    for f in sig.figures:
        if f.figure is RunFigure.P50:
            continue
        called = f" {f.verdict.value}" if f.verdict in (Verdict.FASTER, Verdict.SLOWER) else ""
        parts.append(f"{f.figure.value} x{f.ratio:.3f} [{f.low:.3f}, {f.high:.3f}]{called}")
    return "; ".join(parts)
