"""The convergence stop's statistics and decision, without running a model: agreement of the
last windows, counting noise, the drift slope and its interval (hand-worked), the stop
tracker on known completion times, and the report fields it adds (absent when unused)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.core import stats
from tippingpoint.core.io import read_report
from tippingpoint.core.schema import RunFlag, StopMode, StopReason, StopRule, WarmupRule
from tippingpoint.harness.convergence import MIN_WINDOW_QUERIES, StopTracker

FIXTURE = Path(__file__).parent / "fixtures" / "report_v1.json"


def test_tail_agreement_is_the_last_k_windows_within_the_tolerance_of_their_mean() -> None:
    assert stats.tail_agrees([50.0, 100.0, 95.0, 105.0], 3, 0.10)  # the first one is not looked at
    assert not stats.tail_agrees([100.0, 80.0, 120.0], 3, 0.10)  # 20% off their mean of 100
    assert stats.tail_agrees([100.0, 80.0, 120.0], 3, 0.20)
    assert not stats.tail_agrees([100.0, 100.0], 3, 0.10)  # fewer windows than k
    assert not stats.tail_agrees([0.0, 0.0, 0.0], 3, 0.10)


def test_poisson_windows_are_held_to_their_counting_noise() -> None:
    # 100 arrivals a window: sd 10%, so twice that, 20%, is the best a steady server can do
    assert stats.tail_tolerance([100, 100, 100], 3, 0.10, poisson=True) == pytest.approx(0.2)
    assert stats.tail_tolerance([10_000] * 3, 3, 0.10, poisson=True) == 0.10
    assert stats.tail_tolerance([100, 100, 100], 3, 0.10, poisson=False) == 0.10


def test_longest_agreeing_run_matches_the_definition() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        rates = rng.uniform(80, 120, size=int(rng.integers(1, 12)))
        brute = 0
        for i in range(len(rates)):
            for j in range(i + 1, len(rates) + 1):
                run = rates[i:j]
                if np.max(np.abs(run - run.mean())) <= 0.1 * run.mean():
                    brute = max(brute, j - i)
        assert stats.longest_agreeing_run(rates, 0.1) == brute


def test_t_quantiles_match_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats", reason="scipy checks the t table")
    for df in [*range(1, 40), 60, 120, 1000]:
        assert stats.t_quantile_975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=2e-4)


def test_drift_of_a_straight_line_is_its_slope_and_flagged() -> None:
    # 90, 100, 110 queries/s in 1 s windows: +10/s on a mean of 100 is +10%/s, exactly
    d = stats.drift([90.0, 100.0, 110.0], 1.0, 0.10)
    assert d is not None
    assert d.slope_pct_per_s == pytest.approx(10.0)
    assert d.ci.low == pytest.approx(10.0) and d.ci.high == pytest.approx(10.0)
    assert d.change_pct == pytest.approx(30.0)  # 3 s of windows
    assert d.significant and d.drifting and d.windows == 3


def test_drift_interval_by_hand() -> None:
    # windows at x = 0.5 .. 3.5 s holding 100, 104, 100, 104/s: Sxx = 5, slope 4/5 = 0.8/s on
    # a mean of 102; the interval is the slope ± t(0.975, 2 df) = 4.3027 standard errors
    y = [100.0, 104.0, 100.0, 104.0]
    x = np.array([0.5, 1.5, 2.5, 3.5])
    sxx = float(((x - x.mean()) ** 2).sum())  # 5.0
    slope = float(((x - x.mean()) * (np.array(y) - 102.0)).sum()) / sxx  # 4/5 = 0.8
    resid = np.array(y) - (102.0 + slope * (x - x.mean()))
    se = float(np.sqrt((resid**2).sum() / 2 / sxx))
    d = stats.drift(y, 1.0, 0.10)
    assert d is not None and sxx == 5.0 and slope == pytest.approx(0.8)
    assert d.slope_pct_per_s == pytest.approx(0.8 / 102 * 100)
    half = 4.3027 * se / 102 * 100  # t(0.975, 2 df)
    assert d.ci.low == pytest.approx(d.slope_pct_per_s - half, rel=1e-4)
    assert d.ci.high == pytest.approx(d.slope_pct_per_s + half, rel=1e-4)
    assert not d.significant and not d.drifting  # scatter, not a trend


def test_a_significant_but_small_trend_is_not_drifting() -> None:
    y = [100.0 + 0.1 * i for i in range(20)]  # +0.1%/s over 20 s: 2% across the part
    d = stats.drift(y, 1.0, 0.10)
    assert d is not None and d.significant and not d.drifting
    assert stats.drift([100.0, 101.0], 1.0, 0.10) is None  # no interval from 2 windows
    assert RunFlag.DRIFTING.value == "drifting"


def _tracker(mode: StopMode, *, cap_s: float = 10.0, **rule: object) -> StopTracker:
    stop = StopRule(min_queries=1, min_duration_s=1.0, max_duration_s=cap_s, mode=mode)
    return StopTracker.for_rule(
        stop.model_copy(update=rule), 0, windows=5, threshold=0.10, mode=mode
    )


def _ends(*regimes: tuple[float, float]) -> list[int]:
    """Completion times of a steady sender at each (rate per second, seconds) in turn."""
    ends: list[int] = []
    t = 0.0
    for rate, seconds in regimes:
        ends.extend(int((t + (i + 1) / rate) * 1e9) for i in range(round(rate * seconds)))
        t += seconds
    return ends


def test_the_tracker_stops_at_the_first_boundary_where_the_last_windows_agree() -> None:
    # 1000/s for 0.9 s, then 500/s: windows of 0.2 s (the 1 s minimum over 5) hold 200, 200,
    # 200, 200, 150, then 100: at 1.0 s the last three are 200, 200, 150 (not within 10%)
    ends = _ends((1000.0, 0.9), (500.0, 2.0))
    tr = _tracker(StopMode.CONVERGE)
    now = 1_000_000_000
    while True:
        nxt = tr.check(now, [e for e in ends if e <= now])
        if not nxt:
            break
        now = nxt
    assert tr.reason is StopReason.CONVERGED and tr.width_ns == 200_000_000
    record = tr.record()
    assert record.windows == 8 and now == 1_600_000_000  # 3 slow windows after the mixed one
    assert record.rates[-3:] == pytest.approx((500.0, 500.0, 500.0))
    assert record.rates[0] == pytest.approx(1000.0)
    # the tracker's counts are the raw samples' counts
    counts = stats.fixed_window_counts(np.asarray(ends), tr.width_ns, record.windows)
    assert counts.tolist() == tr.counts()


def test_the_tracker_stops_at_the_last_boundary_before_the_cap() -> None:
    ends = _ends(*[(1000.0, 0.3), (300.0, 0.3)] * 6)  # alternating every 1.5 windows
    tr = _tracker(StopMode.CONVERGE, cap_s=3.0, window_s=0.2)
    now = 1_000_000_000
    while (nxt := tr.check(now, [e for e in ends if e <= now])) != 0:
        now = nxt
    assert tr.reason is StopReason.CAP and now == 3_000_000_000
    assert tr.record().windows == 15 and not tr.record().converged


def test_the_fixed_rule_stops_at_the_minimums() -> None:
    tr = _tracker(StopMode.FIXED)
    assert tr.check(1_000_000_000, _ends((1000.0, 1.0))) == 0
    record = tr.record()
    assert record.reason is StopReason.MINIMUMS and record.width_ns == 0
    assert record.outcome(1.0).converged is None and record.outcome(1.0).window_s is None


def test_a_slow_models_windows_hold_enough_queries() -> None:
    tr = _tracker(StopMode.CONVERGE)
    tr.check(1_000_000_000, _ends((20.0, 1.0)))  # 20 queries by the minimums
    assert tr.width_ns == pytest.approx(MIN_WINDOW_QUERIES / 20 * 1e9)


def test_the_added_fields_are_absent_unless_used() -> None:
    plain = StopRule(min_queries=1, min_duration_s=0, max_duration_s=1)
    assert set(plain.model_dump()) == {"min_queries", "min_duration_s", "max_duration_s"}
    assert "until_steady" not in WarmupRule(min_queries=0, min_duration_s=0).model_dump()
    # a report written before them reads (its digest verifies) and writes none of them back
    report = read_report(FIXTURE)
    assert report.results is not None and report.results.stop is None
    assert report.scenario.stop.mode is None  # stopped by the fixed rule
    data = report.model_dump(mode="json")
    raw = json.loads(FIXTURE.read_text())
    assert data["scenario"] == raw["scenario"] and data["warmup"] == raw["warmup"]
    assert not {"stop", "drift", "converged_segment"} & set(data["results"])


def test_the_console_table_and_html_show_the_stop_and_drift() -> None:
    from rich.console import Console

    from tippingpoint.reports.document import TableBlock, runs_section
    from tippingpoint.reports.runs import LoadedRun, RunData
    from tippingpoint.reports.table import summary_table

    report = read_report(FIXTURE)
    assert report.results is not None
    ends = np.asarray(_ends((1000.0, 0.9), (500.0, 2.0)))
    stab = stats.converged_stability(ends, 200_000_000, 8, 3, 0.10, poisson=False)
    assert stab is not None and stab.stable
    drift = stats.drift(stab.windows, 0.2, 0.10)
    assert drift is not None and drift.drifting
    tracker = _tracker(StopMode.CONVERGE)
    now = 1_000_000_000
    while (nxt := tracker.check(now, [e for e in ends.tolist() if e <= now])) != 0:
        now = nxt
    results = report.results.model_copy(
        update={"stop": tracker.record().outcome(1.6), "drift": drift, "stability": stab}
    )
    converged = report.model_copy(
        update={"results": results, "flags": (*report.flags, RunFlag.DRIFTING)}
    )
    console = Console(width=200, record=True)
    console.print(summary_table([converged]))
    text = console.export_text()
    assert "in 1.6 s" in text and "ok conv." in text and "drifting" in text
    (_, table) = runs_section([RunData(LoadedRun(FIXTURE, converged, 1), None)])
    assert isinstance(table, TableBlock)
    (row,) = table.rows
    assert any(cell.endswith("in 1.6 s (converged)") for cell in row)
    assert any(f"drifting ({drift.slope_pct_per_s:+.2g}%/s)" in cell for cell in row)
