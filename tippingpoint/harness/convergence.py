"""The stop decision of a measured part (and of a warm-up that runs until steady state).

LoadGen's rule (:attr:`~tippingpoint.core.schema.StopMode.FIXED`) stops as soon as both
minimums are met. The convergence rule (perf_analyzer's) goes on from there in whole windows of
a fixed length and stops at the first window boundary where the last ``k`` windows' throughputs
agree within the threshold of their mean, or at the last boundary before the cap.

A loop asks :class:`StopTracker` only once its minimums are met and then at each window
boundary it is told about, never per query: the timed loop keeps its one comparison per query.
Windows count completions ``end`` in ``(start + i*w, start + (i+1)*w]``, as
:func:`tippingpoint.core.stats.fixed_window_counts` counts them from the raw samples.

Usage::

    tracker = StopTracker.for_rule(rule, start_ns, windows=5, threshold=0.10)
    ... once n >= rule.min_queries and now >= min_end:
    next_check = tracker.check(now, ends)   # 0: stop now
    tracker.record(StopReason.CAP)          # when the loop itself ended it
"""

from __future__ import annotations

import math
from bisect import bisect_right, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tippingpoint.core import stats
from tippingpoint.core.schema import (
    ScenarioSettings,
    SteadyWarmup,
    StopMode,
    StopOutcome,
    StopReason,
    StopRule,
    WarmupRule,
)

DEFAULT_CONVERGE_WINDOWS = 3
"""Windows that must agree (perf_analyzer's default)."""
MAX_WINDOWS = 200
"""Windows are at least the cap over this, so the agreement checks stay cheap."""
MIN_WINDOW_QUERIES = 50
"""Windows are long enough to hold this many queries at the rate seen by the minimums, so a
slow model's windows are not decided by one query more or less (1/50 = 2%)."""


@dataclass(frozen=True)
class StopRecord:
    """What ended one loop, for the report (:meth:`outcome`) and its window figures."""

    mode: StopMode
    reason: StopReason
    width_ns: int = 0
    """Convergence windows' length; 0: the rule never reached its minimums (or is fixed)."""
    windows: int = 0
    """Whole windows counted when the loop stopped."""
    k: int = DEFAULT_CONVERGE_WINDOWS
    threshold: float = 0.10
    tolerance: float | None = None
    poisson: bool = False
    rates: tuple[float, ...] = ()
    """Queries per second in each whole window, as the decision saw them."""

    @property
    def converged(self) -> bool:
        """The last windows agreed before the cap."""
        return self.reason is StopReason.CONVERGED

    def outcome(self, duration_s: float) -> StopOutcome:
        """The report's record of the stop."""
        if self.mode is StopMode.FIXED:
            return StopOutcome(mode=self.mode, reason=self.reason, duration_s=duration_s)
        return StopOutcome(
            mode=self.mode,
            reason=self.reason,
            duration_s=duration_s,
            converged=self.converged,
            window_s=self.width_ns / 1e9 if self.width_ns else None,
            windows=self.windows if self.width_ns else None,
            converge_windows=self.k,
            tolerance=self.tolerance if self.width_ns else None,
        )


@dataclass
class StopTracker:
    """The convergence rule's state over one loop (for the fixed rule it only records why the
    loop ended)."""

    mode: StopMode
    start_ns: int
    cap_ns: int
    nominal_ns: int
    """The windows' nominal length: the minimum duration over ``windows``, or the length
    asked for."""
    exact: bool
    """The length was asked for (``window_s``): kept as it is."""
    windows: int
    """The scenario's window count: at its minimums a measured part spans at least these."""
    k: int
    threshold: float
    poisson: bool = False
    """An open loop's Poisson arrivals: agreement is held to their counting noise at least."""
    derive_from_minimums: bool = True
    """Windows are at least the time to the minimums over ``windows`` (a measured part; a
    warm-up keeps its nominal windows)."""
    width_ns: int = 0
    through: list[int] = field(default_factory=list)
    """Completions up to each whole window's end."""
    reason: StopReason | None = None
    tolerance: float | None = None
    _sorted: list[int] = field(default_factory=list)
    _seen: int = 0

    @classmethod
    def for_rule(
        cls,
        rule: StopRule,
        start_ns: int,
        *,
        windows: int,
        threshold: float,
        poisson: bool = False,
        mode: StopMode | None = None,
        derive_from_minimums: bool = True,
    ) -> StopTracker:
        """A tracker for ``rule`` (its mode unless ``mode`` is given) from ``start_ns``."""
        nominal = rule.window_s if rule.window_s is not None else rule.min_duration_s / windows
        return cls(
            mode=mode or rule.mode or StopMode.FIXED,
            start_ns=start_ns,
            cap_ns=start_ns + int(rule.max_duration_s * 1e9),
            nominal_ns=int(nominal * 1e9),
            exact=rule.window_s is not None,
            windows=max(windows, 1),
            k=rule.converge_windows or DEFAULT_CONVERGE_WINDOWS,
            threshold=rule.converge_threshold or threshold,
            poisson=poisson,
            derive_from_minimums=derive_from_minimums,
        )

    @property
    def converges(self) -> bool:
        """The convergence rule decides (not the fixed one)."""
        return self.mode is StopMode.CONVERGE

    def _plan(self, now_ns: int, completed: int) -> int:
        """The windows' length, fixed once the minimums are met: the one asked for, else the
        longest of the nominal length, the time to the minimums over the scenario's window
        count (a measured part), the time of ``MIN_WINDOW_QUERIES`` queries at the rate so
        far, and the cap over ``MAX_WINDOWS``."""
        if self.exact:
            self.width_ns = self.nominal_ns
            return self.width_ns
        elapsed = max(now_ns - self.start_ns, 1)
        width = max(
            self.nominal_ns,
            elapsed // self.windows if self.derive_from_minimums else 0,
            math.ceil(MIN_WINDOW_QUERIES * elapsed / max(completed, 1)),
            (self.cap_ns - self.start_ns) // MAX_WINDOWS,
            1,
        )
        self.width_ns = int(width)
        return self.width_ns

    def check(self, now_ns: int, ends: Sequence[int]) -> int:
        """Called at ``now_ns`` once the minimums are met (and then at each boundary this
        returns), with the completion times so far in ascending order: 0 to stop now, else
        when to check again (the next window boundary)."""
        if not self.converges:
            self.reason = StopReason.MINIMUMS
            return 0
        w = self.width_ns or self._plan(now_ns, len(ends))
        m = (now_ns - self.start_ns) // w
        for i in range(len(self.through), m):
            self.through.append(bisect_right(ends, self.start_ns + (i + 1) * w))
        counts = self.counts()
        self.tolerance = stats.tail_tolerance(counts, self.k, self.threshold, self.poisson)
        if stats.tail_agrees(self.rates(), self.k, self.tolerance):
            self.reason = StopReason.CONVERGED
            return 0
        following = self.start_ns + (m + 1) * w
        if following > self.cap_ns:
            self.reason = StopReason.CAP
            return 0
        return following

    def check_unsorted(self, now_ns: int, ends: Sequence[int], ok: Sequence[object]) -> int:
        """:meth:`check` over completions recorded in completion order (a network loop's):
        the successful ones (``ok[i] is None``) not seen before are merged in first."""
        merged = self._sorted
        for i in range(self._seen, len(ends)):
            if ok[i] is None:
                e = ends[i]
                if not merged or e >= merged[-1]:
                    merged.append(e)
                else:
                    insort(merged, e)
        self._seen = len(ends)
        return self.check(now_ns, merged)

    def counts(self) -> list[int]:
        """Completions in each whole window so far."""
        edges = [0, *self.through]
        return [edges[i + 1] - edges[i] for i in range(len(self.through))]

    def rates(self) -> list[float]:
        """Queries per second in each whole window so far."""
        width_s = self.width_ns / 1e9
        return [c / width_s for c in self.counts()] if width_s else []

    def record(self, reason: StopReason | None = None) -> StopRecord:
        """The record of the stop: ``reason`` when the loop itself ended (the cap before the
        minimums, Ctrl-C), else the reason of the last check."""
        return StopRecord(
            mode=self.mode,
            reason=reason or self.reason or StopReason.CAP,
            width_ns=self.width_ns,
            windows=len(self.through),
            k=self.k,
            threshold=self.threshold,
            tolerance=self.tolerance,
            poisson=self.poisson,
            rates=tuple(self.rates()),
        )


Tracking = Callable[[int], StopTracker]
"""Builds a loop's stop tracker from the loop's start (``perf_counter_ns``)."""


def measure_tracking(scenario: ScenarioSettings, *, poisson: bool = False) -> Tracking:
    """The measured part's stop tracker under ``scenario.stop`` (``poisson``: an open loop's
    Poisson arrivals, whose windows agree no better than their counting noise)."""
    return lambda start: StopTracker.for_rule(
        scenario.stop,
        start,
        windows=scenario.windows,
        threshold=scenario.stability_threshold,
        poisson=poisson,
    )


def warmup_tracking(scenario: ScenarioSettings) -> Tracking | None:
    """A warm-up's tracker when it runs until steady (the stop rule's nominal windows, count
    and threshold, converging whatever the stop rule's mode); None otherwise."""
    if not scenario.warmup.until_steady:
        return None
    return lambda start: StopTracker.for_rule(
        scenario.stop,
        start,
        windows=scenario.windows,
        threshold=scenario.stability_threshold,
        mode=StopMode.CONVERGE,
        derive_from_minimums=False,
    )


def steady_warmup(
    stop: StopRecord | None, duration_s: float, rule: WarmupRule
) -> SteadyWarmup | None:
    """The report's record of a warm-up that ran until steady (None when it did not)."""
    if stop is None:
        return None
    return SteadyWarmup(
        steady=stop.converged,
        window_s=stop.width_ns / 1e9,
        windows=stop.rates,
        extended_s=max(duration_s - rule.min_duration_s, 0.0) if stop.width_ns else 0.0,
    )
