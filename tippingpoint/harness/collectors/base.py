"""The collector plugin interface.

A collector measures something over the measured window of a run (never the warm-up): energy,
memory, utilisation, clocks. The runner opens it before warm-up, brackets the measured window
with ``begin_window``/``end_window`` using timestamps from ``time.perf_counter_ns`` (the clock
of the latency samples), and closes it. Sampling happens in threads the collector owns, never
inside the timed call. Register under the ``tippingpoint.collectors`` entry-point group.

Usage::

    collector = get_collector("rapl")()
    collector.open()                 # raises CollectorUnavailable(reason) when it cannot run
    collector.begin_window(time.perf_counter_ns())
    ...                              # the measured queries
    result = collector.end_window(time.perf_counter_ns(), queries=n, samples=n * batch)
    collector.close()
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tippingpoint.reports.schema import CollectorResult


class CollectorUnavailable(Exception):
    """A collector cannot run here; the message says why and how to fix it."""


@runtime_checkable
class Collector(Protocol):
    """Measures over a window bracketed by the runner."""

    name: str

    def open(self) -> None:
        """Find the source and start any sampling thread; raise CollectorUnavailable if none."""
        ...

    def begin_window(self, t_ns: int) -> None:
        """Mark the start of the measured window (perf_counter_ns)."""
        ...

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        """Mark the end of the window and return what was measured over it."""
        ...

    def close(self) -> None:
        """Stop sampling threads and release files."""
        ...
