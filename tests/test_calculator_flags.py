"""Flags added this wave keep a run from deciding: a network run with too many failed requests
(error-rate, issue 14) and a run whose throughput drifts (drifting, issue 19)."""

from __future__ import annotations

import pytest

from tippingpoint.calculator.capacity import CAUTION_FLAGS, INVALID_FLAGS, run_problems
from tippingpoint.core.schema import RunFlag

from .calculator_factory import edge_report


@pytest.mark.parametrize("flag", [RunFlag.ERROR_RATE, RunFlag.DRIFTING])
def test_error_rate_and_drift_are_invalid_and_cautioned(flag: RunFlag) -> None:
    assert flag in INVALID_FLAGS and flag in CAUTION_FLAGS
    clean = edge_report(100.0, 5.0, flags=())
    assert run_problems(clean) == ()
    flagged = clean.model_copy(update={"flags": (*clean.flags, flag)})
    (problem,) = run_problems(flagged)
    assert problem.endswith(f"is flagged {flag.value}")
