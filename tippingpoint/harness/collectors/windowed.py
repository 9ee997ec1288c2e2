"""The common machinery of energy collectors: channels, a keeper/sampler thread, windows.

A concrete energy collector says where its channels are (:meth:`EnergyCollector._discover`)
and how to read them once (:meth:`EnergyCollector._read`); this base class polls them in a
thread, keeps a cumulative-energy trace per channel, and turns a window into a
:class:`CollectorResult` with the energy of the whole window and of ``windows`` equal
sub-windows (the repeats whose median becomes joules per inference). A failed read inside a
window never becomes 0 J: the window is marked invalid with the reason.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.core.schema import CollectorResult, Measurement, MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorBase, CollectorUnavailable
from tippingpoint.harness.collectors.options import DEFAULT_WINDOWS
from tippingpoint.harness.collectors.sampling import Poller
from tippingpoint.harness.collectors.sysfs import Clock, Opener, SysfsReader, read_text
from tippingpoint.harness.collectors.trace import Trace

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from tippingpoint.harness.collectors.options import CollectorOptions, EnergySettings


class ChannelKind(str, Enum):
    """What a channel's reading is: a cumulative energy counter or an instantaneous power."""

    COUNTER = "counter"
    POWER = "power"


class EnergyScope(str, Enum):
    """What part of the machine an energy figure covers."""

    CPU_PACKAGE = "cpu-package"
    DRAM = "dram"
    GPU_BOARD = "gpu-board"
    MODULE_INPUT = "module-input"
    BOARD_RAILS = "board-rails"
    DEVICE = "device"
    EXTERNAL_METER = "external-meter"
    SYSTEM_ESTIMATE = "system-estimate"


WHOLE_SCOPES = (
    EnergyScope.EXTERNAL_METER,
    EnergyScope.MODULE_INPUT,
    EnergyScope.BOARD_RAILS,
    EnergyScope.DEVICE,
)
"""Scopes that already include everything else on the board; never summed with others."""

PART_SCOPES = (EnergyScope.CPU_PACKAGE, EnergyScope.GPU_BOARD)
"""Disjoint parts of a machine; summed when several are measured."""


@dataclass(frozen=True)
class Channel:
    """One readable quantity: a zone, a rail, a GPU."""

    name: str
    kind: ChannelKind
    headline: bool
    source: str
    note: str | None = None


class EnergyCollector(CollectorBase):
    """Base of energy collectors; subclasses set the class attributes and two methods."""

    is_energy = True
    interval_s = 0.1
    scope: EnergyScope = EnergyScope.DEVICE
    resolution: str | None = None
    max_gap_s: float | None = None
    energy_note: str | None = None

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (sampling thread and sub-windows)."""
        return cls(background=options.background, windows=options.windows)

    def __init__(
        self,
        *,
        clock: Clock = time.perf_counter_ns,
        background: bool = True,
        windows: int = DEFAULT_WINDOWS,
        interval_s: float | None = None,
    ) -> None:
        self.clock = clock
        self.background = background
        self.windows = windows
        if interval_s is not None:
            self.interval_s = interval_s
        self.channels: tuple[Channel, ...] = ()
        self._traces: list[Trace] = []
        self._lock = threading.Lock()
        self._poller: Poller | None = None
        self._in_window = False
        self._start_ns = 0
        self._failure: str | None = None

    # -- to implement -------------------------------------------------------------------
    def _discover(self) -> tuple[Channel, ...]:
        """Find the channels; raise CollectorUnavailable(reason and fix) when none."""
        raise NotImplementedError

    def _read(self) -> tuple[float, ...]:
        """One reading per channel: cumulative joules (counter) or watts (power)."""
        raise NotImplementedError

    def source(self) -> str:
        """Where the figures come from, for the report."""
        return ", ".join(c.source for c in self.channels if c.headline)

    def formula(self) -> str | None:
        """For estimates: the formula and constants."""
        return None

    def extra_measurements(self, start_ns: int, end_ns: int) -> list[Measurement]:
        """Anything else measured over the window (memory, throttling)."""
        return []

    def reset_extras(self) -> None:
        """Forget what :meth:`extra_measurements` tracked before a new window."""

    def sample_extras(self) -> None:
        """Sample anything besides the energy channels (memory, clocks), once per poll.

        Called after the poll's timestamp is taken, so slow extra queries never shift the
        time the energy and power readings are placed at.
        """

    # -- Collector protocol ---------------------------------------------------------------
    def open(self) -> None:
        """Discover the channels, take a first reading, and start the sampling thread."""
        self.channels = self._discover()
        if not any(c.headline for c in self.channels):
            raise CollectorUnavailable(f"{self.name}: no energy channel found")
        self._traces = [Trace.empty() for _ in self.channels]
        self.poll()
        if self._failure is not None:
            raise CollectorUnavailable(self._failure)
        if self.background:
            self._poller = Poller(self.name, self.interval_s, self.poll)
            self._poller.start()

    def poll(self) -> None:
        """Read every channel once and extend the traces (called by the sampling thread)."""
        with self._lock:
            t0 = self.clock()
            try:
                values = self._read()
            except (OSError, ValueError, CollectorUnavailable) as exc:
                if self._failure is None:
                    self._failure = f"{self.name}: read failed: {exc}"
                return
            t = (t0 + self.clock()) // 2  # slow sources (a meter command) read mid-call
            for ch, trace, v in zip(self.channels, self._traces, values, strict=True):
                if ch.kind is ChannelKind.COUNTER:
                    trace.add_energy(t, v)
                else:
                    trace.add_power(t, v)
                if not self._in_window:
                    trace.keep_last()
            if self._in_window:
                self.sample_extras()

    def begin_window(self, t_ns: int) -> None:
        """Start recording: forget older points and take a reading now."""
        with self._lock:
            self._failure = None
            if self._poller is not None:
                self._poller.error = None
            self.reset_extras()
            for trace in self._traces:
                trace.keep_last()
            self._in_window = True
            self._start_ns = t_ns
        self.poll()

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        """Take a final reading and return the window's energy (invalid with a reason)."""
        self.poll()
        with self._lock:
            self._in_window = False
            result = self._result(self._start_ns, t_ns)
            for trace in self._traces:
                trace.keep_last()
        return result

    def close(self) -> None:
        """Stop the sampling thread."""
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    # -- window arithmetic ----------------------------------------------------------------
    def method(self) -> MeasurementMethod:
        """COUNTER when every headline channel is a counter, else SAMPLED."""
        heads = [c for c in self.channels if c.headline]
        if all(c.kind is ChannelKind.COUNTER for c in heads):
            return MeasurementMethod.COUNTER
        return MeasurementMethod.SAMPLED

    def _headline_energy(self, start_ns: int, end_ns: int) -> float:
        return sum(
            tr.between(start_ns, end_ns)
            for ch, tr in zip(self.channels, self._traces, strict=True)
            if ch.headline
        )

    def _min_samples_in(self, start_ns: int, end_ns: int) -> int | None:
        counts = [
            tr.count_between(start_ns, end_ns)
            for ch, tr in zip(self.channels, self._traces, strict=True)
            if ch.headline and ch.kind is ChannelKind.POWER
        ]
        return min(counts) if counts else None

    def _window_problem(self, start_ns: int, end_ns: int) -> str | None:
        duration = (end_ns - start_ns) / 1e9
        if duration < self.min_window_s:
            return (
                f"{self.name}: window of {duration:.2f} s is shorter than the "
                f"{self.min_window_s:g} s this source needs; lengthen the run (--min-duration)"
            )
        n = self._min_samples_in(start_ns, end_ns)
        if n is not None and n < self.min_samples:
            return (
                f"{self.name}: only {n} power samples in the window (at least "
                f"{self.min_samples} needed); lengthen the run (--min-duration)"
            )
        return None

    def _result(self, start_ns: int, end_ns: int) -> CollectorResult:
        invalid = self._failure or self._window_problem(start_ns, end_ns)
        if invalid is None and self._poller is not None and self._poller.error is not None:
            invalid = f"{self.name}: sampling thread failed: {self._poller.error!r}"
        traces = [tr for tr in self._traces if tr.t_ns]
        if invalid is None and len(traces) < len(self._traces):
            invalid = f"{self.name}: no readings in the window"
        if invalid is None and self.max_gap_s is not None:
            gap = max(tr.max_gap_ns() for tr in self._traces) / 1e9
            if gap > self.max_gap_s:
                invalid = (
                    f"{self.name}: {gap:.1f} s between two reads (limit {self.max_gap_s:g} s); "
                    "a counter wrap may have been missed"
                )
        duration = (end_ns - start_ns) / 1e9
        measurements: list[Measurement] = []
        window_energy: tuple[float, ...] = ()
        rate = None
        if invalid is None:
            energy = self._headline_energy(start_ns, end_ns)
            if energy <= 0:
                invalid = (
                    f"{self.name}: read {energy:.6g} J over {duration:.2f} s; the counter did "
                    "not advance, which is a failed measurement, not free inference"
                )
            else:
                measurements.append(
                    Measurement(quantity="energy", value=energy, unit="J", note=self.energy_note)
                )
                if duration > 0:
                    measurements.append(
                        Measurement(quantity="average_power", value=energy / duration, unit="W")
                    )
                window_energy = self._sub_windows(start_ns, end_ns)
        if invalid is None and len(self.channels) > 1:
            for ch, tr in zip(self.channels, self._traces, strict=True):
                note = (
                    ch.note
                    if ch.headline
                    else "; ".join(x for x in (ch.note, "not part of the headline energy") if x)
                )
                measurements.append(
                    Measurement(
                        quantity=f"energy[{ch.name}]",
                        value=tr.between(start_ns, end_ns),
                        unit="J",
                        note=note,
                    )
                )
        n = self._min_samples_in(start_ns, end_ns)
        if n is not None:
            measurements.append(Measurement(quantity="power_samples", value=n, unit="count"))
        reads = [
            tr.count_between(start_ns, end_ns)
            for ch, tr in zip(self.channels, self._traces, strict=True)
            if ch.headline
        ]
        if reads and duration > 0 and min(reads) > 1:  # the rate achieved, not the one asked
            rate = (min(reads) - 1) / duration
        if rate is None and self.interval_s > 0:
            rate = 1.0 / self.interval_s
        if self._poller is not None and self._poller.skipped:
            measurements.append(
                Measurement(
                    quantity="missed_polls",
                    value=self._poller.skipped,
                    unit="count",
                    note="reads that overran the next poll deadline (since open)",
                )
            )
        measurements.extend(self.extra_measurements(start_ns, end_ns))
        return CollectorResult(
            name=self.name,
            source=self.source(),
            method=self.method(),
            scope=self.scope.value,
            sample_rate_hz=rate,
            resolution=self.resolution,
            window_start_ns=start_ns,
            window_end_ns=end_ns,
            valid=invalid is None,
            invalid_reason=invalid,
            measurements=tuple(measurements),
            formula=self.formula(),
            window_energy_j=window_energy,
        )

    def _sub_windows(self, start_ns: int, end_ns: int) -> tuple[float, ...]:
        """Energy of ``windows`` equal sub-windows, or () when one would be too short.

        Each sub-window must satisfy the source's own minimums and hold at least two readings
        of every headline channel: fewer, and its energy would be interpolated, not measured.
        """
        k = self.windows
        if k < 2:
            return ()
        bounds = [start_ns + (end_ns - start_ns) * i // k for i in range(k + 1)]
        heads = [tr for ch, tr in zip(self.channels, self._traces, strict=True) if ch.headline]
        for a, b in pairwise(bounds):
            if self._window_problem(a, b) is not None:
                return ()
            if any(tr.count_between(a, b) < 2 for tr in heads):
                return ()
        return tuple(self._headline_energy(a, b) for a, b in pairwise(bounds))


class SysfsEnergyCollector(EnergyCollector):
    """An energy collector whose channels are files under ``/sys`` (a fake tree in tests)."""

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (tree, sampling thread, sub-windows)."""
        return cls(
            root=options.root,
            opener=options.opener,
            background=options.background,
            windows=options.windows,
        )

    def __init__(
        self,
        *,
        root: Path = Path("/"),
        opener: Opener = read_text,
        **settings: Unpack[EnergySettings],
    ) -> None:
        super().__init__(**settings)
        self.reader = SysfsReader(root, opener)
