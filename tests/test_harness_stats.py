import math
from fractions import Fraction

import numpy as np
import pytest

from tippingpoint.core.stats import (
    bootstrap_percentile_ci,
    latency_stats,
    longest_agreeing_run,
    nearest_rank_index,
    percentile_nearest_rank,
    window_stability,
)


@pytest.mark.parametrize(
    ("n", "q", "rank"),
    [
        (100, 50, 50),  # ceil(0.5 * 100) = 50
        (100, 99, 99),
        (100, 99.9, 100),  # ceil(99.9) = 100
        (10, 90, 9),
        (10, 95, 10),  # ceil(9.5) = 10
        (7, 50, 4),  # ceil(3.5) = 4: the middle of 7
        (1, 99.9, 1),
        (1000, 99.9, 999),
        (662, 99, 656),  # ceil(655.38) = 656
    ],
)
def test_nearest_rank_hand_cases(n: int, q: float, rank: int) -> None:
    assert nearest_rank_index(n, q) == rank - 1


def test_nearest_rank_matches_exact_rational_definition() -> None:
    # rank = ceil(q/100 * n) in exact arithmetic; numpy's inverted_cdf agrees except where
    # floating-point error lifts an exact integer (e.g. 99.9% of 5000 = 4995.000000000001)
    rng = np.random.default_rng(3)
    for dist in (rng.exponential(size=997), rng.lognormal(size=5000), rng.integers(0, 50, 333)):
        values = np.sort(dist.astype(float))
        for q in (1, 25, 50, 90, 95, 99, 99.9):
            rank = math.ceil(Fraction(str(q)) / 100 * len(values))
            assert percentile_nearest_rank(values, q) == values[rank - 1]
            if q in (25, 50, 90):
                expected = np.percentile(values, q, method="inverted_cdf")
                assert percentile_nearest_rank(values, q) == pytest.approx(expected)


def test_latency_stats_against_numpy() -> None:
    rng = np.random.default_rng(4)
    ns = rng.integers(1_000, 1_000_000, size=2000)
    s = latency_stats(ns)
    ms = ns / 1e6
    assert s.count == 2000
    assert s.min == pytest.approx(ms.min())
    assert s.max == pytest.approx(ms.max())
    assert s.mean == pytest.approx(ms.mean())
    assert s.std == pytest.approx(ms.std(ddof=1))
    quantiles = {"p50": 50, "p90": 90, "p95": 95, "p99": 99, "p999": Fraction(999, 10)}
    for field, q in quantiles.items():
        # nearest rank in exact arithmetic: the smallest value with at least q% at or below it
        exact = np.sort(ms)[math.ceil(Fraction(q) / 100 * len(ms)) - 1]
        assert getattr(s, field) == pytest.approx(exact), field
        # numpy's inverted_cdf is the same definition, except where q/100*n lands on an integer
        # and floating point pushes it up a rank: 99.9/100*2000 = 1998.0000000000002
        if field != "p999":
            numpy = np.percentile(ms, float(q), method="inverted_cdf")
            assert getattr(s, field) == pytest.approx(numpy), field
    assert np.percentile(ms, 99.9, method="inverted_cdf") > s.p999  # numpy's FP error, above
    odd = rng.integers(1_000, 1_000_000, size=1237)  # no percentile falls on a rank boundary
    t = latency_stats(odd)
    for field, q in quantiles.items():
        numpy = np.percentile(odd / 1e6, float(q), method="inverted_cdf")
        assert getattr(t, field) == pytest.approx(numpy), field
    assert s.ci["p50"].low <= s.p50 <= s.ci["p50"].high
    assert s.ci["p99"].low <= s.p99 <= s.ci["p99"].high


def test_exact_bootstrap_matches_resampling_bootstrap() -> None:
    rng = np.random.default_rng(5)
    values = np.sort(rng.exponential(size=400))
    lo, hi = bootstrap_percentile_ci(values, 50, resamples=20_000)
    boot = [
        np.percentile(rng.choice(values, len(values)), 50, method="inverted_cdf")
        for _ in range(3000)
    ]
    blo, bhi = np.percentile(boot, [2.5, 97.5])
    width = hi - lo
    assert abs(lo - blo) < 0.1 * width
    assert abs(hi - bhi) < 0.1 * width


def test_bootstrap_ci_covers_true_median_of_known_distribution() -> None:
    # exponential(1): true median ln 2; a 95% interval should cover it in most repetitions
    covered = 0
    for seed in range(40):
        values = np.sort(np.random.default_rng(100 + seed).exponential(size=1000))
        lo, hi = bootstrap_percentile_ci(values, 50, seed=seed)
        covered += lo <= np.log(2) <= hi
    assert covered >= 34


def test_window_stability_flags_a_slow_window() -> None:
    steady = np.arange(0, 1_000_000_000, 1_000_000)  # 1000 queries evenly over 1 s
    s = window_stability(steady, 0, 1_000_000_000, 5, 0.10)
    assert s is not None and s.stable and s.max_relative_deviation < 0.01
    # the third window runs at half speed
    ends = np.concatenate(
        [
            np.arange(0, 400_000_000, 1_000_000),
            np.arange(400_000_000, 600_000_000, 2_000_000),
            np.arange(600_000_000, 1_000_000_000, 1_000_000),
        ]
    )
    s = window_stability(ends, 0, 1_000_000_000, 5, 0.10)
    assert s is not None and not s.stable
    assert s.windows[2] == pytest.approx(500.0)


def test_a_window_is_judged_to_one_query_at_best() -> None:
    # 20 queries of 165 ms over 3.3 s in 5 windows: 4, 4, 4, 4, 4 but for one that ends a
    # query early (5 then 3): 25% from the mean, which is one query, not the machine
    ends = np.array([165_000_000 * (i + 1) for i in range(20)])
    ends[7] = 655_000_000  # a query that completes just before the second window's edge
    s = window_stability(ends, 0, 3_300_000_000, 5, 0.10)
    assert s is not None and s.max_relative_deviation > 0.10
    assert s.stable and s.rule == "every window within 25% of the mean (one query of 4 a window)"
    # a real step still shows: 8 then 2 a window is far more than one query
    ends = np.concatenate([np.linspace(1, 1.3e9, 16), np.linspace(1.4e9, 3.2e9, 4)])
    s = window_stability(ends.astype(np.int64), 0, 3_300_000_000, 5, 0.10)
    assert s is not None and not s.stable
    # and many queries a window keep the configured 10%
    steady = np.arange(0, 1_000_000_000, 1_000_000)
    s = window_stability(steady, 0, 1_000_000_000, 5, 0.10)
    assert s is not None and s.rule == "every window within 10% of the mean"


def test_longest_agreeing_run_of_windows() -> None:
    rates = np.array([100.0, 104.0, 97.0, 50.0, 101.0])
    assert longest_agreeing_run(rates, 0.10) == 3
    assert longest_agreeing_run(np.array([100.0, 50.0, 100.0, 50.0]), 0.10) == 1
    assert longest_agreeing_run(np.array([100.0] * 5), 0.10) == 5
    assert longest_agreeing_run(np.zeros(3), 0.10) == 0


def test_network_rule_needs_three_consecutive_agreeing_windows() -> None:
    """perf_analyzer's rule for a load level: 3 consecutive windows within 10%."""
    # windows 0-2 at 1000/s, window 3 at half speed, window 4 at 1000/s
    ends = np.concatenate(
        [
            np.arange(0, 600_000_000, 1_000_000),
            np.arange(600_000_000, 800_000_000, 2_000_000),
            np.arange(800_000_000, 1_000_000_000, 1_000_000),
        ]
    )
    local = window_stability(ends, 0, 1_000_000_000, 5, 0.10)
    network = window_stability(ends, 0, 1_000_000_000, 5, 0.10, consecutive=3)
    assert local is not None and not local.stable and local.rule is not None
    assert network is not None and network.stable and network.longest_agreeing_run == 3
    assert network.rule == "3 consecutive windows within 10% of their mean"
    # a slow window in the middle leaves no 3 consecutive agreeing windows
    mid = np.concatenate(
        [
            np.arange(0, 400_000_000, 1_000_000),
            np.arange(400_000_000, 600_000_000, 2_000_000),
            np.arange(600_000_000, 1_000_000_000, 1_000_000),
        ]
    )
    s = window_stability(mid, 0, 1_000_000_000, 5, 0.10, consecutive=3)
    assert s is not None and not s.stable and s.longest_agreeing_run == 2


def test_a_ramp_of_one_query_at_each_end_is_no_drift() -> None:
    from tippingpoint.harness.measured import Samples, performance_results

    from .helpers import tiny_scenario

    # make bench's hybrid step: 20 queries of ~165 ms in 5 windows counted 3, 4, 4, 4, 5 (the
    # first window waits for its first answer): a significant slope of two queries, not a trend
    ends = np.concatenate(
        [np.linspace(0.2, 0.6, 3), np.linspace(0.7, 2.6, 12), np.linspace(2.7, 3.3, 5)]
    )
    ends = (ends * 1e9).astype(np.int64)
    samples = Samples(
        latency_ns=np.full(20, 165_000_000, dtype=np.int64),
        end_ns=ends,
        window_start_ns=0,
        window_end_ns=3_300_000_000,
    )
    results = performance_results(samples, tiny_scenario())
    assert results.stability is not None and results.drift is not None
    assert [round(w * 0.66) for w in results.stability.windows] == [3, 4, 4, 4, 5]
    assert results.drift.significant and not results.drift.drifting
