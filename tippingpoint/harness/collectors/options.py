"""Settings the built-in collectors are opened with (from CLI flags, a suite file, a profile),
and the keyword arguments their constructors share (typed for ``**settings``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from tippingpoint.harness.collectors.sysfs import Clock, Opener, read_text

DEFAULT_WINDOWS = 5
"""Sub-windows per measured window; energy per inference is their median."""


@dataclass(frozen=True)
class CollectorOptions:
    """Everything a built-in collector may need; unused fields are ignored."""

    windows: int = DEFAULT_WINDOWS
    """Equal sub-windows of the measured window; energy per inference is their median."""
    idle_watts: float | None = None
    """Device idle power for the ``estimate`` collector (from a device profile)."""
    peak_watts: float | None = None
    """Device peak power for the ``estimate`` collector."""
    profile: str | None = None
    """Name of the device profile the watts came from, for the report."""
    meter_command: str | None = None
    """A command printing the meter's watts (``meter-command``)."""
    meter_rate_hz: float = 5.0
    meter_csv: Path | None = None
    """A meter's CSV log (``meter-csv``)."""
    meter_settle_s: float = 0.0
    hwmon_device: str | None = None
    """The ``name`` of the hwmon device to read (``hwmon``)."""
    gpu_index: int = 0
    root: Path = Path("/")
    """Where ``/sys`` and ``/proc`` are; a fake tree in tests."""
    opener: Opener = read_text
    background: bool = True
    """Sample in threads; tests drive ``poll()`` instead."""


class EnergySettings(TypedDict, total=False):
    """The keyword arguments every energy collector takes (see :class:`EnergyCollector`)."""

    clock: Clock
    background: bool
    windows: int
    interval_s: float | None


class SysfsSettings(EnergySettings, total=False):
    """The keyword arguments of an energy collector reading a sysfs-like tree."""

    root: Path
    opener: Opener


class PollingSettings(TypedDict, total=False):
    """The keyword arguments every polling collector takes (see :class:`PollingCollector`)."""

    root: Path
    opener: Opener
    background: bool
    interval_s: float | None
