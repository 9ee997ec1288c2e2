"""The ``throttled`` measurement shared by throttle-aware collectors, and the run-level check."""

from __future__ import annotations

from collections.abc import Sequence

from tippingpoint.core.schema import CollectorResult, Measurement

THROTTLED = "throttled"


def throttled_measurement(throttled: bool, how: str) -> Measurement:
    """The flag a collector reports: 1 when clocks were throttled in the window."""
    return Measurement(quantity=THROTTLED, value=1.0 if throttled else 0.0, unit="bool", note=how)


def is_throttled(results: Sequence[CollectorResult]) -> bool:
    """True when any collector saw clock throttling during the window (RunFlag.THROTTLED)."""
    return any(m.quantity == THROTTLED and m.value > 0 for r in results for m in r.measurements)
