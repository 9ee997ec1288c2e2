"""The calculator inherits the uncertainty of repeated runs: a group's throughput, p99 and
J/inference enter as the geometric mean of its runs, ranged by the 95% t interval of that mean,
labelled measured, and so swing the tornado and spread the Monte Carlo. Hand-built reports of
the calculator's test factory; the numbers are worked by hand."""

from __future__ import annotations

import math
from datetime import date

import pytest

from tippingpoint.calculator.capacity import edge_figures
from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.params import Basis, Param
from tippingpoint.calculator.repetitions import group_input, group_value, one_per_group
from tippingpoint.core.runstats import RunFigure
from tippingpoint.core.schema import InterleaveOrder, Repetition, Report

from .calculator_factory import cloud_report, edge_report, hand_cloud, hand_profiles, sourced

T975_2 = 4.302652729911275
"""Student t, 97.5% quantile, 2 degrees of freedom."""


def _group(
    throughputs: list[float], p99s: list[float], joules: list[float], group: str = "g"
) -> list[Report]:
    out = []
    for i, (tp, p99, j) in enumerate(zip(throughputs, p99s, joules, strict=True), 1):
        r = edge_report(tp, p99, joules=j)
        rep = Repetition(
            group=group,
            index=i,
            count=len(throughputs),
            series="s",
            position=i,
            order=InterleaveOrder.ALTERNATE,
        )
        out.append(r.model_copy(update={"repetition": rep, "run_id": f"{group}{i}".ljust(12, "0")}))
    return out


def _log_interval(values: list[float]) -> tuple[float, float, float]:
    logs = [math.log(v) for v in values]
    m = sum(logs) / len(logs)
    sd = math.sqrt(sum((x - m) ** 2 for x in logs) / (len(logs) - 1))
    half = T975_2 * sd / math.sqrt(len(logs))
    return math.exp(m), math.exp(m - half), math.exp(m + half)


def test_a_group_is_one_measured_input_with_its_interval() -> None:
    reports = _group([80.0, 100.0, 125.0], [20.0, 22.0, 24.0], [0.04, 0.05, 0.06])
    value, low, high = _log_interval([80.0, 100.0, 125.0])
    assert value == pytest.approx(100.0)  # geometric mean of 80, 100, 125
    g = group_input(reports, reports[1], RunFigure.THROUGHPUT)
    assert g is not None and (g.runs, g.count) == (3, 3)
    assert (g.value, g.low, g.high) == pytest.approx((value, low, high))
    edge, _ = edge_figures(reports)
    assert edge is not None
    assert edge.throughput == pytest.approx(value)
    assert (edge.throughput_low, edge.throughput_high) == pytest.approx((low, high))
    assert "geometric mean of 3 repeated runs" in edge.throughput_origin
    assert edge.p99_ms == pytest.approx(_log_interval([20.0, 22.0, 24.0])[0])
    j_value, j_low, j_high = _log_interval([0.04, 0.05, 0.06])
    assert edge.joules_per_inference == pytest.approx(j_value)
    assert (edge.joules_low, edge.joules_high) == pytest.approx((j_low, j_high))


def test_the_tornado_and_the_monte_carlo_carry_the_group_interval() -> None:
    reports = _group([80.0, 100.0, 125.0], [20.0, 22.0, 24.0], [0.04, 0.05, 0.06])
    _, low, high = _log_interval([80.0, 100.0, 125.0])
    result = calculate(
        [*reports, cloud_report(peak_rate_qps=50, server_p99_ms=10)],
        # 10 M a day, 116/s: one device at the interval's high end, three at its low end
        profiles=hand_profiles(inferences_per_day=sourced(10_000_000)),
        clouds=[hand_cloud()],
        today=date(2026, 11, 29),
        tool_version="test",
        draws=2000,
    )
    (analysis,) = result.analyses
    tp = next(i for i in analysis.inputs if i.param is Param.EDGE_THROUGHPUT)
    assert tp.basis is Basis.MEASURED and tp.range_stated
    assert (tp.low, tp.high) == pytest.approx((low, high))
    assert analysis.tornado is not None
    row = next(r for r in analysis.tornado.rows if r.param is Param.EDGE_THROUGHPUT)
    assert row.swing > 0
    assert analysis.monte_carlo is not None and analysis.monte_carlo.draws == 2000


def test_configurations_are_chosen_by_their_groups_not_their_luckiest_run() -> None:
    lucky = _group([50.0, 50.0, 400.0], [20.0] * 3, [0.05] * 3, group="lucky")  # mean 100
    steady = edge_report(150.0, 20.0, joules=0.05)  # a single run, batch 1
    reports = [*lucky, steady]
    assert group_value(reports, lucky[2], RunFigure.THROUGHPUT) == pytest.approx(100.0)
    assert one_per_group(reports) == [lucky[0], steady]
    edge, _ = edge_figures(reports)
    assert edge is not None and edge.throughput == pytest.approx(150.0)


def test_a_single_run_keeps_its_own_figures() -> None:
    single = edge_report(100.0, 20.0, joules=0.05)
    assert group_input([single], single, RunFigure.THROUGHPUT) is None
    edge, _ = edge_figures([single])
    assert edge is not None and edge.throughput == 100.0 and edge.p99_ms == 20.0


def test_a_group_whose_runs_disagree_may_not_decide_and_one_that_agrees_may() -> None:
    # throughput between-run CV 22% (80, 100, 125): the runs measured no one state
    disagree = _group([80.0, 100.0, 125.0], [20.0, 20.5, 21.0], [0.05, 0.05, 0.05])
    edge, _ = edge_figures(disagree)
    assert edge is not None
    assert any(
        "3 repeated runs disagree (throughput between-run CV 22% > 10%)" in p for p in edge.problems
    )
    # CV 2%: valid, whatever each short run's own windows did (a group member carries no
    # within-run flag; the harness drops them, see test_repetitions)
    agree = _group([98.0, 100.0, 102.0], [20.0, 20.5, 21.0], [0.05, 0.05, 0.05], group="h")
    edge, _ = edge_figures(agree)
    assert edge is not None and edge.problems == ()
