"""Opening the collectors a run asks for: by name, ``auto`` (best energy source) or ``all``.

``open_collectors`` returns the opened collectors and, for every one that could not run, a
:class:`CollectorSkip` with the reason and the fix, which the runner puts in the report.

* ``auto`` opens the best energy sources this machine has: a configured external meter, the
  GPU (NVML) and CPU packages (RAPL), which measure disjoint parts, and a board's module or
  rail monitor (Jetson, Raspberry Pi 5). Only when none of them opens does it fall back to
  the ``estimate`` (if the device profile's idle and peak watts are known).
* ``all`` is ``auto`` plus the system collectors (``cpu``, ``memory``, ``thermal``).

Usage::

    opened, skipped = open_collectors(["auto", "memory"], CollectorOptions(idle_watts=3.0, ...))
    try:
        runner = Runner(collectors=opened, collectors_skipped=skipped, ...)
    finally:
        close_collectors(opened)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tippingpoint.core.schema import CollectorSkip
from tippingpoint.harness.collectors.base import Collector, CollectorUnavailable
from tippingpoint.harness.collectors.options import CollectorOptions
from tippingpoint.harness.collectors.registry import get_collector

AUTO = "auto"
ALL = "all"
METERS = ("meter-command", "meter-csv")
HARDWARE_ENERGY = ("nvml", "rapl", "jetson", "rpi5")
"""Tried by ``auto`` in this order; generic ``hwmon`` only when a device name is given."""
SYSTEM = ("cpu", "memory", "thermal")


def open_one(name: str, options: CollectorOptions) -> Collector:
    """Build and open one registered collector; CollectorUnavailable when it cannot run.

    An unknown name is an InvalidOptionError (a usage error), raised from the registry.
    """
    # what a plugin built is checked here, once, against the declared interface
    collector: object = get_collector(name).from_options(options)
    if not isinstance(collector, Collector):
        raise CollectorUnavailable(
            f"{name}: the plugin does not declare the collector interface (name, is_energy, "
            "interval_s, min_window_s, min_samples, open, begin_window, end_window, close); "
            "derive it from tippingpoint.harness.collectors.base.CollectorBase"
        )
    try:
        collector.open()
    except CollectorUnavailable:
        collector.close()
        raise
    return collector


def _auto_names(options: CollectorOptions) -> list[str]:
    names = [
        m
        for m, given in zip(METERS, (options.meter_command, options.meter_csv), strict=True)
        if given
    ]
    names += list(HARDWARE_ENERGY)
    if options.hwmon_device:
        names.append("hwmon")
    return names


def open_collectors(
    names: Iterable[str], options: CollectorOptions | None = None
) -> tuple[list[Collector], list[CollectorSkip]]:
    """Open the requested collectors; return (opened, skipped with reasons)."""
    options = options or CollectorOptions()
    opened: list[Collector] = []
    skipped: list[CollectorSkip] = []
    seen: set[str] = set()

    def attempt(name: str) -> bool:
        if name in seen:
            return any(c.name == name for c in opened)
        seen.add(name)
        try:
            opened.append(open_one(name, options))
            return True
        except CollectorUnavailable as exc:
            skipped.append(CollectorSkip(name=name, reason=str(exc)))
        except OSError as exc:
            skipped.append(CollectorSkip(name=name, reason=f"{name}: {exc}"))
        return False

    requested = list(dict.fromkeys(names))
    for name in requested:
        if name in (AUTO, ALL):
            got = [attempt(n) for n in _auto_names(options)]
            if not any(got) and "estimate" not in requested:
                attempt("estimate")
            if name == ALL:
                for n in SYSTEM:
                    attempt(n)
        else:
            attempt(name)
    return opened, skipped


def open_all_available(
    options: CollectorOptions | None = None,
) -> tuple[list[Collector], list[CollectorSkip]]:
    """Every collector this machine can run (``all``): for the cost-of-measuring benchmark."""
    return open_collectors([ALL], options)


def close_collectors(collectors: Sequence[Collector]) -> None:
    """Close every collector (stops their sampling threads)."""
    for c in collectors:
        c.close()
