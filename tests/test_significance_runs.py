"""Verdicts from the spread between runs: the A/A calibration and the statistics under it.

Pure statistics on synthetic run groups (seeded, fast). The generator draws what issue 20 saw
on a shared 2-core VM: the machine moves between regimes whose speed differs by up to ±40%,
and every run falls in one of them. Interleaved groups (A B A B ...) put the A and B run of a
round in the same regime; groups run at different times do not share regimes at all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tippingpoint.core.runstats import (
    FigureSpread,
    RunFigure,
    RunGroup,
    between_run_cv,
    disagreeing,
    geometric_mean,
    group_runs,
    mean_interval,
    paired_ratio,
    t_quantile,
    welch_ratio,
)
from tippingpoint.reports.significance import (
    SignificanceMethod,
    Verdict,
    compare_groups,
    describe,
)

REGIME = 0.40
"""Regimes: a run's speed factor is uniform within ±40% of the machine's centre."""
RUN_NOISE = 0.03
"""Log-normal spread of a run within its regime (session, layout, allocator): 3%."""
ROUNDS = 5
QUERIES = 2000
PAIRS = 100


def _median_of_run(rng: np.random.Generator, level: float) -> float:
    """A run's median latency: its regime-and-run level times a skewed per-query spread."""
    return float(np.median(level * rng.lognormal(0.0, 0.3, QUERIES)))


def _spread(values: list[float]) -> dict[RunFigure, FigureSpread]:
    idx = tuple(range(1, len(values) + 1))
    return {
        RunFigure.P50: FigureSpread(
            figure=RunFigure.P50,
            values=tuple(values),
            indices=idx,
            geometric_mean=geometric_mean(values),
            cv=between_run_cv(values),
        )
    }


def _interleaved(
    rng: np.random.Generator, change: float, switch: float = 0.0
) -> tuple[list[float], list[float]]:
    """Two groups of ``ROUNDS`` interleaved runs; B is ``change`` times A's latency. Each round
    falls in one regime, except that with probability ``switch`` the regime changes between
    its A and its B run."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(ROUNDS):
        regime_a = 1.0 + REGIME * rng.uniform(-1.0, 1.0)
        regime_b = regime_a if rng.random() >= switch else 1.0 + REGIME * rng.uniform(-1.0, 1.0)
        a.append(_median_of_run(rng, regime_a * math.exp(rng.normal(0.0, RUN_NOISE))))
        b.append(_median_of_run(rng, change * regime_b * math.exp(rng.normal(0.0, RUN_NOISE))))
    return a, b


def _apart(rng: np.random.Generator, change: float) -> tuple[list[float], list[float]]:
    """Two groups run at different times: every run in a regime of its own."""
    a = [_median_of_run(rng, 1.0 + REGIME * rng.uniform(-1.0, 1.0)) for _ in range(ROUNDS)]
    b = [
        _median_of_run(rng, change * (1.0 + REGIME * rng.uniform(-1.0, 1.0))) for _ in range(ROUNDS)
    ]
    return a, b


def _verdicts(pairs: list[tuple[list[float], list[float]]], paired: bool) -> list[Verdict]:
    return [compare_groups(_spread(a), _spread(b), paired=paired).verdict for a, b in pairs]


def test_a_a_pairs_of_interleaved_groups_give_no_verdict_in_95_of_100() -> None:
    rng = np.random.default_rng(20)
    verdicts = _verdicts([_interleaved(rng, 1.0) for _ in range(PAIRS)], paired=True)
    called = [v for v in verdicts if v in (Verdict.FASTER, Verdict.SLOWER)]
    assert len(called) <= PAIRS - 95, verdicts


@pytest.mark.parametrize("change", [1.2, 1 / 1.2], ids=["20% slower", "20% faster"])
def test_an_injected_20_percent_change_is_found_in_95_of_100(change: float) -> None:
    rng = np.random.default_rng(21)
    verdicts = _verdicts([_interleaved(rng, change) for _ in range(PAIRS)], paired=True)
    expected = Verdict.SLOWER if change > 1 else Verdict.FASTER
    assert verdicts.count(expected) >= 95, verdicts
    wrong = Verdict.FASTER if change > 1 else Verdict.SLOWER
    assert wrong not in verdicts


def test_a_regime_change_inside_rounds_costs_power_not_calibration() -> None:
    # one round in ten has its B run in another regime: the interval widens, so no false
    # verdicts appear (power drops instead, which the README states)
    rng = np.random.default_rng(22)
    verdicts = _verdicts([_interleaved(rng, 1.0, switch=0.1) for _ in range(PAIRS)], True)
    assert sum(v in (Verdict.FASTER, Verdict.SLOWER) for v in verdicts) <= PAIRS - 95


def test_groups_run_apart_are_compared_unpaired_and_stay_calibrated() -> None:
    rng = np.random.default_rng(23)
    pairs = [_apart(rng, 1.0) for _ in range(PAIRS)]
    verdicts = _verdicts(pairs, paired=False)
    assert sum(v in (Verdict.FASTER, Verdict.SLOWER) for v in verdicts) <= PAIRS - 95
    sig = compare_groups(_spread(pairs[0][0]), _spread(pairs[0][1]), paired=False)
    assert sig.method is SignificanceMethod.RUN_LEVEL_WELCH


def test_the_queries_of_single_runs_would_call_the_regime_a_difference() -> None:
    # why single runs get no verdict: the within-run test calls almost every A/A pair of runs
    # from different regimes significant
    from tippingpoint.reports.significance import compare_samples

    rng = np.random.default_rng(24)
    called = 0
    for _ in range(20):
        a = (1.0 + REGIME * rng.uniform(-1, 1)) * rng.lognormal(0.0, 0.3, QUERIES)
        b = (1.0 + REGIME * rng.uniform(-1, 1)) * rng.lognormal(0.0, 0.3, QUERIES)
        called += compare_samples(a, b, resamples=500).verdict in (Verdict.FASTER, Verdict.SLOWER)
    assert called >= 10
    single = compare_groups(_spread([1.0]), _spread([1.565]), paired=True)
    assert single.verdict is Verdict.SINGLE_RUNS
    assert single.method is SignificanceMethod.SINGLE_RUNS
    assert single.interval is None and single.mann_whitney is None and single.figures == ()
    assert single.median_ratio == pytest.approx(1.565)
    assert "cannot be judged" in describe(single) and "p " not in describe(single)


def test_one_run_against_a_group_is_not_judged_either() -> None:
    sig = compare_groups(_spread([1.0, 1.1, 0.9]), _spread([1.5]), paired=False)
    assert sig.verdict is Verdict.SINGLE_RUNS and sig.runs_a == 3 and sig.runs_b == 1


def test_a_significant_change_inside_the_band_is_negligible() -> None:
    a = [1.0, 2.0, 1.5, 1.2, 0.8]
    b = [v * 1.01 * f for v, f in zip(a, [1.0, 1.001, 0.999, 1.0005, 0.9995], strict=True)]
    sig = compare_groups(_spread(a), _spread(b), paired=True)
    (head,) = sig.figures
    assert head.low > 1.0 and sig.verdict is Verdict.NEGLIGIBLE


def test_paired_ratio_hand_worked() -> None:
    # log ratios ln 1.1 and ln 1.3: mean m = (0.09531 + 0.26236) / 2, sd = 0.11812,
    # t(0.975, 1) = 12.7062: half = 12.7062 * 0.11812 / sqrt 2 = 1.06126
    est = paired_ratio([1.0, 2.0], [1.1, 2.6], level=0.95)
    m = (math.log(1.1) + math.log(1.3)) / 2
    half = 12.7062047 * abs(math.log(1.3) - math.log(1.1)) / math.sqrt(2) / math.sqrt(2)
    assert est.ratio == pytest.approx(math.exp(m))
    assert est.low == pytest.approx(math.exp(m - half), rel=1e-6)
    assert est.high == pytest.approx(math.exp(m + half), rel=1e-6)
    assert est.paired and est.df == 1
    with pytest.raises(ValueError, match="two rounds"):
        paired_ratio([1.0], [1.0], level=0.95)
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0], [1.0, 1.0], level=0.95)


def test_welch_and_t_quantiles_agree_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy checks the hand-written t")
    for df in (1, 2.5, 4, 9.3, 30, 400):
        for p in (0.6, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), abs=1e-7)
    a, b = [1.0, 1.2, 0.9, 1.1], [1.3, 1.5, 1.2, 1.6, 1.4]
    est = welch_ratio(a, b, level=0.99)
    res = stats.ttest_ind(np.log(b), np.log(a), equal_var=False)
    ci = res.confidence_interval(0.99)
    assert est.low == pytest.approx(math.exp(ci.low), rel=1e-6)
    assert est.high == pytest.approx(math.exp(ci.high), rel=1e-6)
    assert est.df == pytest.approx(res.df)


def test_mean_interval_of_a_group_and_of_one_run() -> None:
    mi = mean_interval([10.0, 12.0, 11.0], level=0.95)
    half = 4.302653 * 1.0 / math.sqrt(3)
    assert mi.mean == 11.0 and mi.low == pytest.approx(11 - half, rel=1e-5)
    assert mi.cv == pytest.approx(1 / 11)
    one = mean_interval([7.0])
    assert one.low == one.high == 7.0 and one.runs == 1 and one.cv is None


def test_a_group_whose_runs_disagree_is_flagged() -> None:
    steady = _spread([1.0, 1.05, 0.97])
    assert disagreeing(steady) == ()
    split = _spread([0.6, 1.4, 0.62, 1.38])
    assert disagreeing(split) == (RunFigure.P50,)
    assert between_run_cv([5.0]) is None


def test_reports_group_by_id_in_repetition_order() -> None:
    from pathlib import Path

    from tippingpoint.core.io import parse_report
    from tippingpoint.core.schema import InterleaveOrder, Repetition

    base = parse_report(Path(__file__).parent.joinpath("fixtures/report_v1.json").read_text())

    def rep(group: str, index: int) -> Repetition:
        return Repetition(
            group=group, index=index, count=2, series="s", position=index,
            order=InterleaveOrder.ALTERNATE,
        )  # fmt: skip

    reports = [
        base.model_copy(update={"repetition": rep("g1", 2)}),
        base,
        base.model_copy(update={"repetition": rep("g1", 1)}),
        base.model_copy(update={"repetition": rep("g2", 1)}),
        base.model_copy(update={"repetition": rep("g1", 1)}),  # the same run given twice
    ]
    groups = group_runs(reports)
    assert groups == [
        RunGroup(members=(2, 0), group="g1", series="s", count=2, indices=(1, 2)),
        RunGroup(members=(1,), group=None),
        RunGroup(members=(3,), group="g2", series="s", count=2, indices=(1,)),
    ]
    assert [g.repeated for g in groups] == [True, False, True]
