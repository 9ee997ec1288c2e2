"""Energy traces: cumulative joules against time, from counters or integrated power samples.

Both kinds of source end up as the same thing, a piecewise-linear cumulative-energy curve:
a counter adds its (unwrapped) reading directly, a power sample adds the trapezoid since the
previous sample. The energy between any two instants is then the difference of the curve
interpolated at both, which is how windows and sub-windows are cut out of one trace.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


class CounterUnwrapper:
    """Turns a wrapping hardware counter into a monotonically increasing total.

    Every read of the counter goes through :meth:`update`; when the raw value went down, the
    counter wrapped once and ``max_range`` is added. The caller must read often enough that
    two wraps never fall between reads (the RAPL keeper thread does).
    """

    def __init__(self, max_range: int) -> None:
        self.max_range = max_range
        self._last: int | None = None
        self._total = 0
        self.wraps = 0

    def update(self, raw: int) -> int:
        """Feed one raw reading; return the unwrapped total since the first reading."""
        if self._last is not None:
            delta = raw - self._last
            if delta < 0:
                delta += self.max_range
                self.wraps += 1
            self._total += delta
        self._last = raw
        return self._total


def trapezoid(t_ns: list[int], watts: list[float]) -> float:
    """Energy in joules of power samples by the trapezoidal rule (times in ns)."""
    total = 0.0
    for i in range(1, len(t_ns)):
        total += (watts[i] + watts[i - 1]) * 0.5 * (t_ns[i] - t_ns[i - 1]) / 1e9
    return total


@dataclass
class Trace:
    """Cumulative energy (J) at increasing times (ns); power samples are integrated on add."""

    t_ns: list[int]
    joules: list[float]
    last_watts: float | None = None

    @classmethod
    def empty(cls) -> Trace:
        """A trace with no points."""
        return cls([], [])

    def add_energy(self, t_ns: int, cumulative_j: float) -> None:
        """Append a counter reading (cumulative joules since any fixed origin)."""
        if self.t_ns and t_ns <= self.t_ns[-1]:
            self.joules[-1] = cumulative_j
            return
        self.t_ns.append(t_ns)
        self.joules.append(cumulative_j)

    def add_power(self, t_ns: int, watts: float) -> None:
        """Append a power sample; the trapezoid since the previous sample is accumulated."""
        if not self.t_ns:
            self.t_ns.append(t_ns)
            self.joules.append(0.0)
        elif t_ns > self.t_ns[-1]:
            prev = self.last_watts if self.last_watts is not None else watts
            self.joules.append(
                self.joules[-1] + (prev + watts) * 0.5 * (t_ns - self.t_ns[-1]) / 1e9
            )
            self.t_ns.append(t_ns)
        self.last_watts = watts

    def at(self, t_ns: int) -> float:
        """Cumulative energy interpolated at ``t_ns`` (clamped to the ends of the trace)."""
        ts = self.t_ns
        if not ts:
            raise ValueError("empty trace")
        if t_ns <= ts[0]:
            return self.joules[0]
        if t_ns >= ts[-1]:
            return self.joules[-1]
        i = bisect.bisect_right(ts, t_ns)
        t0, t1 = ts[i - 1], ts[i]
        e0, e1 = self.joules[i - 1], self.joules[i]
        return e0 + (e1 - e0) * (t_ns - t0) / (t1 - t0)

    def between(self, start_ns: int, end_ns: int) -> float:
        """Energy in joules between two instants."""
        return self.at(end_ns) - self.at(start_ns)

    def count_between(self, start_ns: int, end_ns: int) -> int:
        """Number of points with start <= t <= end."""
        return bisect.bisect_right(self.t_ns, end_ns) - bisect.bisect_left(self.t_ns, start_ns)

    def max_gap_ns(self) -> int:
        """The longest interval between consecutive points (0 with fewer than two)."""
        ts = self.t_ns
        return max((ts[i] - ts[i - 1] for i in range(1, len(ts))), default=0)

    def keep_last(self) -> None:
        """Forget all but the newest point (outside a window, nothing older is needed)."""
        if len(self.t_ns) > 1:
            del self.t_ns[:-1]
            del self.joules[:-1]
