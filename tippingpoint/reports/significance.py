"""Is one latency distribution really different from another? Pure numpy, no scipy.

Two tests on the raw per-query samples, both of which must agree before a difference is called:

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


class SignificanceMethod(str, Enum):
    """How the verdict was reached."""

    RAW_SAMPLES = "bootstrap ratio of medians + Mann-Whitney U on raw samples"
    CI_OVERLAP = "overlap of the reports' p50 confidence intervals (raw samples missing)"
    NONE = "none (no latency figures)"


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
