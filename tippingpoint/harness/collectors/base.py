"""The collector plugin interface.

A collector measures something over the measured window of a run (never the warm-up): energy,
memory, utilisation, clocks. The runner opens it before warm-up, brackets the measured window
with ``begin_window``/``end_window`` using timestamps from ``time.perf_counter_ns`` (the clock
of the latency samples), and closes it. Sampling happens in threads the collector owns, never
inside the timed call. Register under the ``tippingpoint.collectors`` entry-point group.

Usage::

    collector = get_collector("rapl").from_options(CollectorOptions())
    collector.open()                 # raises CollectorUnavailable(reason) when it cannot run
    collector.begin_window(time.perf_counter_ns())
    ...                              # the measured queries
    result = collector.end_window(time.perf_counter_ns(), queries=n, samples=n * batch)
    collector.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tippingpoint.core.schema import CollectorResult

if TYPE_CHECKING:
    from typing_extensions import Self

    from tippingpoint.harness.collectors.options import CollectorOptions


class CollectorUnavailable(Exception):
    """A collector cannot run here; the message says why and how to fix it."""


@runtime_checkable
class Collector(Protocol):
    """Measures over a window bracketed by the runner.

    Its capabilities are declared attributes, read by the runner and the energy accounting
    (never probed): whether it measures energy, its sampling interval, and the shortest window
    over which its figure means something.
    """

    name: str
    is_energy: bool
    """True when its result carries joules (it can be the run's energy source)."""
    interval_s: float
    """Sampling interval of its thread; 0 for a counter read only at window edges."""
    min_window_s: float
    """Shortest window the source can resolve (e.g. NVML's energy counter update period)."""
    min_samples: int
    """Samples a window needs; with ``interval_s`` it sets a lower bound on the window."""

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


@runtime_checkable
class CollectorFactory(Protocol):
    """What the registry holds: a collector class built from the run's options."""

    def from_options(self, options: CollectorOptions) -> Collector:
        """A collector configured from ``options`` (unused fields are ignored)."""
        ...


class CollectorBase:
    """The declared capabilities with their defaults, and ``from_options``.

    The defaults describe a collector that measures no energy and reads its source only at
    the window's edges; a subclass sets ``name`` and overrides what differs. A collector
    derived from it satisfies both :class:`Collector` (once it implements the four methods)
    and :class:`CollectorFactory`.
    """

    name: str
    is_energy: bool = False
    interval_s: float = 0.0
    min_window_s: float = 0.0
    min_samples: int = 0

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """A collector configured from the run's options; this default takes none of them."""
        return cls()

    def close(self) -> None:
        """Release nothing; a collector with threads or open files overrides this."""
