"""Joules per inference for the report, from the energy collectors' results and idle baselines.

The gross figure is the headline (as MLPerf Power and ML.ENERGY report it): all energy the
measured scope used over the window, divided by the inferences. When the source delivered
per-sub-window energies, the headline is the median over those windows (at least
:data:`MIN_WINDOWS`) with the interquartile range as its spread; otherwise it is the whole
window, with a note saying so. The dynamic figure, above the idle power measured before and
after the run with the same source, sits beside it and is labelled. Which result is the
headline: a source covering the whole device (an external meter, a module-input or rail
monitor) first; else the sum of the disjoint parts measured (CPU packages + GPU board); the
estimate only when nothing was measured.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from tippingpoint.core.schema import CollectorResult, EnergySummary, MeasurementMethod
from tippingpoint.harness.collectors.base import Collector
from tippingpoint.harness.collectors.sysfs import Clock
from tippingpoint.harness.collectors.windowed import PART_SCOPES, WHOLE_SCOPES, EnergyScope

DEFAULT_IDLE_S = 5.0
MIN_WINDOWS = 5
IDLE_DRIFT_LIMIT = 0.05
ENERGY_SCOPES = frozenset(s.value for s in EnergyScope)


@dataclass(frozen=True)
class IdleReading:
    """Idle power of one energy collector, or why it could not be measured."""

    name: str
    watts: float | None
    reason: str | None = None


@dataclass(frozen=True)
class IdleBaseline:
    """Idle power of every energy collector over one idle period."""

    readings: tuple[IdleReading, ...]
    duration_s: float

    def watts(self, name: str) -> float | None:
        """Idle watts of the collector called ``name`` (None when unknown or invalid)."""
        return next((r.watts for r in self.readings if r.name == name), None)


def is_energy_collector(collector: Collector) -> bool:
    """True for collectors that measure energy (as they declare in ``is_energy``)."""
    return collector.is_energy


def energy_of(result: CollectorResult) -> float | None:
    """The headline joules of an energy result, or None when it has none."""
    return next((m.value for m in result.measurements if m.quantity == "energy"), None)


WINDOW_MARGIN = 1.1
"""Head-room on a source's minimum window, so sub-windows of a run just long enough still pass."""


def min_window_s(collector: Collector) -> float:
    """The shortest window ``collector`` yields an energy figure over (0 when it needs none).

    The largest of its own minimum window, the time to collect its minimum number of power
    samples, and two polls (a sub-window's energy needs two readings, not an interpolation).
    """
    interval = collector.interval_s
    return max(collector.min_window_s, collector.min_samples * interval, 2 * interval)


def min_measured_s(collectors: Sequence[Collector], windows: int) -> float:
    """The measured duration that gives every energy collector ``windows`` usable sub-windows:
    ``windows x max(min window, min samples x interval) x 1.1``; 0 without energy collectors."""
    needed = [min_window_s(c) for c in collectors if is_energy_collector(c)]
    if not needed:
        return 0.0
    return max(windows, 1) * max(needed) * WINDOW_MARGIN


def measure_idle(
    collectors: Sequence[Collector],
    duration_s: float = DEFAULT_IDLE_S,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Clock = time.perf_counter_ns,
) -> IdleBaseline:
    """Idle power of each energy collector: one window of ``duration_s`` with nothing running."""
    energy = [c for c in collectors if is_energy_collector(c)]
    if not energy:
        return IdleBaseline((), 0.0)
    t0 = clock()
    for c in energy:
        c.begin_window(t0)
    sleep(duration_s)
    t1 = clock()
    readings = []
    for c in energy:
        r = c.end_window(t1, queries=0, samples=0)
        e = energy_of(r)
        if r.valid and e is not None and t1 > t0:
            readings.append(IdleReading(c.name, e / ((t1 - t0) / 1e9)))
        else:
            readings.append(IdleReading(c.name, None, r.invalid_reason or "no energy"))
    return IdleBaseline(tuple(readings), (t1 - t0) / 1e9)


class _Headline(TypedDict):
    """The fields of an EnergySummary that every outcome of a valid source shares."""

    source: str
    method: MeasurementMethod
    scope: str
    total_joules: float
    average_watts: float | None


def _headline(results: Sequence[CollectorResult]) -> tuple[list[CollectorResult], list[str]]:
    """The results that make up the headline, and problems that make it incomplete."""
    valid = [r for r in results if r.valid and energy_of(r) is not None]
    measured = [r for r in valid if r.method is not MeasurementMethod.ESTIMATED]
    for scope in WHOLE_SCOPES:
        whole = [r for r in measured if r.scope == scope.value]
        if whole:
            return whole[:1], []
    parts: list[CollectorResult] = []
    for scope in PART_SCOPES:
        parts += [r for r in measured if r.scope == scope.value][:1]
    if parts:
        missing = [
            f"{r.name} ({r.scope}) was invalid: {r.invalid_reason}"
            for r in results
            if not r.valid
            and r.scope in {s.value for s in PART_SCOPES}
            and r.scope not in {p.scope for p in parts}
        ]
        return parts, missing
    estimates = [r for r in valid if r.method is MeasurementMethod.ESTIMATED]
    return estimates[:1], []


def _method(chosen: Sequence[CollectorResult]) -> MeasurementMethod:
    methods = {r.method for r in chosen}
    for m in (MeasurementMethod.ESTIMATED, MeasurementMethod.SAMPLED):
        if m in methods:
            return m
    return MeasurementMethod.COUNTER


def _iqr(values: Sequence[float]) -> float:
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def summarise_energy(
    results: Sequence[CollectorResult],
    samples: int,
    *,
    idle_before: IdleBaseline | None = None,
    idle_after: IdleBaseline | None = None,
    window_samples: Sequence[int] | None = None,
) -> EnergySummary | None:
    """Report.collectors.energy from the window's results; None when no energy source ran.

    ``samples`` is the number of inferences in the window (queries x batch);
    ``window_samples`` the inferences in each equal sub-window, when the runner counted them
    (otherwise throughput is taken as constant across sub-windows, which the run's
    stability check vouches for).
    """
    energy_results = [r for r in results if r.scope in ENERGY_SCOPES]
    if not energy_results:
        return None
    chosen, problems = _headline(energy_results)
    if not chosen:
        first = energy_results[0]
        reasons = "; ".join(r.invalid_reason or f"{r.name}: no energy" for r in energy_results)
        return EnergySummary(
            source=", ".join(r.source for r in energy_results),
            method=first.method,
            scope=first.scope or "",
            joules_per_inference=None,
            valid=False,
            note=f"no valid energy window: {reasons}",
        )
    names = [r.name for r in chosen]
    start, end = chosen[0].window_start_ns, chosen[0].window_end_ns
    duration = (end - start) / 1e9
    total = sum(energy_of(r) or 0.0 for r in chosen)
    warnings: list[str] = list(problems)
    notes: list[str] = []
    base: _Headline = {
        "source": " + ".join(r.source for r in chosen),
        "method": _method(chosen),
        "scope": " + ".join(r.scope or "" for r in chosen),
        "total_joules": total,
        "average_watts": total / duration if duration > 0 else None,
    }
    if samples <= 0:
        return EnergySummary(
            **base, joules_per_inference=None, valid=False, note="no inferences in the window"
        )

    idle_w = _idle_watts(names, idle_before, idle_after, warnings)
    windows = _window_energies(chosen)
    per_window: tuple[float, ...] = ()
    iqr = None
    dynamic = None
    if windows is not None and len(windows) >= MIN_WINDOWS:
        k = len(windows)
        counts = list(window_samples) if window_samples and len(window_samples) == k else None
        if counts is None:
            counts_f = [samples / k] * k
            notes.append(f"median of {k} windows, throughput taken as constant across them")
        else:
            counts_f = [float(n) for n in counts]
            notes.append(f"median of {k} windows")
        if all(n > 0 for n in counts_f):
            per_window = tuple(e / n for e, n in zip(windows, counts_f, strict=True))
            headline = statistics.median(per_window)
            iqr = _iqr(per_window)
            if idle_w is not None:
                dt = duration / k
                dynamic = statistics.median(
                    (e - idle_w * dt) / n for e, n in zip(windows, counts_f, strict=True)
                )
        else:
            headline = total / samples
            notes.append("a window had no inferences: whole-window figure")
    else:
        headline = total / samples
        notes.append(
            f"whole window: fewer than {MIN_WINDOWS} per-window energies "
            "(each window too short for this source)"
        )
        warnings.append(
            f"energy per inference is one whole-window figure, not the median of at least "
            f"{MIN_WINDOWS} windows: each window was too short for this source; lengthen the "
            "run (--min-duration)"
        )
    if idle_w is not None and dynamic is None:
        dynamic = (total - idle_w * duration) / samples
    if dynamic is not None and dynamic <= 0:
        warnings.append(
            f"dynamic energy {dynamic:.3g} J/inference <= 0: the workload is not distinguishable "
            "from idle at this source's resolution; use the gross figure"
        )
    if _method(chosen) is MeasurementMethod.ESTIMATED:
        formula = next((r.formula for r in chosen if r.formula), None)
        notes.append(f"ESTIMATED, not measured: {formula}" if formula else "ESTIMATED")
    notes += [m.note for r in chosen for m in r.measurements if m.quantity == "energy" and m.note]
    return EnergySummary(
        **base,
        joules_per_inference=headline,
        dynamic_joules_per_inference=dynamic,
        idle_watts_before=_sum_idle(names, idle_before),
        idle_watts_after=_sum_idle(names, idle_after),
        windows=len(per_window) or 1,
        iqr_joules_per_inference=iqr,
        window_joules_per_inference=per_window,
        valid=not problems,
        note="; ".join(notes) or None,
        warnings=tuple(warnings),
    )


def _sum_idle(names: Sequence[str], idle: IdleBaseline | None) -> float | None:
    if idle is None:
        return None
    values = [idle.watts(n) for n in names]
    if any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def _idle_watts(
    names: Sequence[str],
    before: IdleBaseline | None,
    after: IdleBaseline | None,
    warnings: list[str],
) -> float | None:
    """Mean idle power of the headline sources, warning when it drifted by more than 5%."""
    b, a = _sum_idle(names, before), _sum_idle(names, after)
    if b is not None and a is not None:
        if b > 0 and abs(a - b) / b > IDLE_DRIFT_LIMIT:
            warnings.append(
                f"idle power drifted {100 * (a - b) / b:+.1f}% (before {b:.3g} W, after "
                f"{a:.3g} W): the dynamic figure is uncertain"
            )
        return (a + b) / 2
    return b if b is not None else a


def _window_energies(chosen: Sequence[CollectorResult]) -> list[float] | None:
    """Per-window energies summed over the chosen sources, when all have the same windows."""
    lengths = {len(r.window_energy_j) for r in chosen}
    if len(lengths) != 1 or 0 in lengths:
        return None
    return [sum(w) for w in zip(*(r.window_energy_j for r in chosen), strict=True)]


def window_sample_counts(
    end_ns: Sequence[int], start_ns: int, stop_ns: int, windows: int, batch_size: int = 1
) -> list[int]:
    """Inferences completed in each of ``windows`` equal sub-windows (query end times in ns)."""
    bounds = [start_ns + (stop_ns - start_ns) * i // windows for i in range(windows + 1)]
    counts = [0] * windows
    k = 0
    for t in sorted(end_ns):
        while k < windows - 1 and t > bounds[k + 1]:
            k += 1
        counts[k] += batch_size
    return counts


class EnergyAccounting:
    """Idle baselines around each run and the energy summary, for the runner.

    Call :meth:`before_run` before a run (before the model loads), and pass the object as the
    runner's ``energy``: called right after the measured window, it measures idle
    again (after ``settle_s`` for worker threads to go quiet) and summarises.
    """

    def __init__(
        self,
        collectors: Sequence[Collector],
        idle_s: float = DEFAULT_IDLE_S,
        *,
        settle_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        self.collectors = [c for c in collectors if is_energy_collector(c)]
        self.requested_idle_s = idle_s
        # the idle period: as asked, raised to what the slowest source needs for one window
        longest = max((min_window_s(c) for c in self.collectors), default=0.0)
        self.idle_s = max(idle_s, longest * WINDOW_MARGIN) if idle_s > 0 else idle_s
        self.settle_s = settle_s
        self.sleep = sleep
        self.clock = clock
        self.idle_before: IdleBaseline | None = None
        self.idle_after: IdleBaseline | None = None

    def _idle(self) -> IdleBaseline | None:
        if not self.collectors or self.idle_s <= 0:
            return None
        return measure_idle(self.collectors, self.idle_s, sleep=self.sleep, clock=self.clock)

    def before_run(self) -> None:
        """Measure idle power before the run."""
        self.idle_before = self._idle()

    def __call__(
        self,
        results: Sequence[CollectorResult],
        samples: int,
        window_samples: Sequence[int] | None = None,
    ) -> EnergySummary | None:
        """Measure idle power after the run and summarise the window."""
        if self.collectors and self.idle_s > 0 and self.settle_s > 0:
            self.sleep(self.settle_s)
        self.idle_after = self._idle()
        return summarise_energy(
            results,
            samples,
            idle_before=self.idle_before,
            idle_after=self.idle_after,
            window_samples=window_samples,
        )
