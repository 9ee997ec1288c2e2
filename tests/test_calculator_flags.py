"""Flags added this wave keep a run from deciding: a network run with too many failed requests
(error-rate, issue 14) and a run whose throughput drifts (drifting, issue 19)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from tippingpoint.calculator.capacity import (
    CAUTION_FLAGS,
    INVALID_FLAGS,
    edge_figures,
    run_problems,
)
from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.result import CostResult
from tippingpoint.core.schema import RunFlag, Stability

from .calculator_factory import cloud_report, edge_report, hand_cloud, hand_profiles


@pytest.mark.parametrize("flag", [RunFlag.ERROR_RATE, RunFlag.DRIFTING])
def test_error_rate_and_drift_are_invalid_and_cautioned(flag: RunFlag) -> None:
    assert flag in INVALID_FLAGS and flag in CAUTION_FLAGS
    clean = edge_report(100.0, 5.0, flags=())
    assert run_problems(clean) == ()
    flagged = clean.model_copy(update={"flags": (*clean.flags, flag)})
    (problem,) = run_problems(flagged)
    assert problem.endswith(f"is flagged {flag.value}")


def test_a_window_without_queries_bounds_no_capacity_and_the_tornado_stays_finite() -> None:
    base = edge_report(100, 20, joules=0.05)
    assert base.results is not None
    windows = Stability(
        windows=(0.0, 90.0, 110.0),
        cv=0.7,
        max_relative_deviation=1.0,
        threshold=0.1,
        stable=False,
    )
    noisy = base.model_copy(
        update={"results": base.results.model_copy(update={"stability": windows})}
    )
    edge, _ = edge_figures([noisy])
    assert edge is not None and (edge.throughput_low, edge.throughput_high) == (90.0, 110.0)
    result = calculate(
        [noisy, cloud_report(peak_rate_qps=50, server_p99_ms=10)],
        profiles=hand_profiles(),
        clouds=[hand_cloud()],
        today=date(2026, 11, 29),
        tool_version="test",
        draws=0,
    )
    rows = result.analyses[0].tornado.rows
    assert rows and all(math.isfinite(r.metric_low) and math.isfinite(r.metric_high) for r in rows)
    assert CostResult.model_validate_json(result.model_dump_json()) == result
