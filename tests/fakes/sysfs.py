"""A fake sysfs tree on disk plus an opener that makes files live, denied or failing.

The tree is made of real directories, files and symlinks laid out as the kernel lays them out
(``/sys/class/powercap/intel-rapl:0`` is a symlink into ``/sys/devices/virtual/powercap``,
``/sys/class/hwmon/hwmonN`` into the device that owns it). Values that change over time come
from callables driven by a :class:`FakeClock`; a denied file raises ``PermissionError`` from
the opener, because ``chmod 0`` does nothing under root, which is how CI runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


class FakeClock:
    """A perf_counter_ns stand-in that moves only when told to."""

    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self.now_ns = start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> int:
        self.now_ns += round(seconds * 1e9)
        return self.now_ns


class FakeTree:
    """Files under ``root`` at their kernel paths, read through :meth:`opener`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._live: dict[str, Callable[[], str]] = {}
        self._errors: dict[str, OSError] = {}
        self.reads = 0

    def path(self, kernel_path: str) -> Path:
        return self.root / kernel_path.lstrip("/")

    def write(self, kernel_path: str, text: object) -> Path:
        p = self.path(kernel_path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{text}\n")
        return p

    def link(self, kernel_link: str, kernel_target: str) -> None:
        link = self.path(kernel_link)
        link.parent.mkdir(parents=True, exist_ok=True)
        target = self.path(kernel_target)
        target.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))

    def live(self, kernel_path: str, fn: Callable[[], object]) -> None:
        """The file's content is ``fn()`` at each read."""
        p = self.write(kernel_path, fn())
        self._live[os.path.realpath(p)] = lambda: f"{fn()}\n"

    def put(self, kernel_path: str, value: Callable[[], object] | object) -> None:
        """A live file when ``value`` is a callable, else a fixed one."""
        if callable(value):
            self.live(kernel_path, value)
        else:
            self.write(kernel_path, value)

    def deny(self, kernel_path: str) -> None:
        """Reads raise PermissionError, as a root-only file does for a normal user."""
        self._errors[os.path.realpath(self.path(kernel_path))] = PermissionError(
            13, "Permission denied", kernel_path
        )

    def fail(self, kernel_path: str, exc: OSError | None = None) -> None:
        """Reads raise ``exc`` (default EIO), as a flaky sensor does."""
        self._errors[os.path.realpath(self.path(kernel_path))] = exc or OSError(
            5, "Input/output error", kernel_path
        )

    def heal(self, kernel_path: str) -> None:
        self._errors.pop(os.path.realpath(self.path(kernel_path)), None)

    def opener(self, path: Path) -> str:
        self.reads += 1
        key = os.path.realpath(path)
        if key in self._errors:
            raise self._errors[key]
        if key in self._live:
            return self._live[key]()
        with open(path, encoding="ascii") as f:
            return f.read()


class RaplCounter:
    """An ``energy_uj`` that integrates ``watts`` over the fake clock and wraps at the range."""

    def __init__(self, clock: FakeClock, watts: float, max_range_uj: int, start_uj: int = 0):
        self.clock = clock
        self.watts = watts
        self.max_range_uj = max_range_uj
        self._uj = float(start_uj)
        self._t = clock()

    def __call__(self) -> int:
        now = self.clock()
        self._uj += self.watts * (now - self._t) / 1e3  # W * ns / 1e3 = uJ
        self._t = now
        return int(self._uj) % self.max_range_uj


def add_rapl_zone(
    tree: FakeTree,
    zone: str,
    name: str,
    counter: Callable[[], int] | int,
    max_range_uj: int = 262_143_328_850,
) -> str:
    """A powercap zone such as ``intel-rapl:0`` or ``intel-rapl:0:0`` at the kernel's paths."""
    parts = zone.split(":")
    control = parts[0]
    dev = f"/sys/devices/virtual/powercap/{control}"
    tree.write(f"{dev}/enabled", 1)
    if not tree.path(f"/sys/class/powercap/{control}").exists():
        tree.link(f"/sys/class/powercap/{control}", dev)
    if len(parts) == 2:
        real = f"{dev}/{zone}"
    else:
        real = f"{dev}/{parts[0]}:{parts[1]}/{zone}"
    tree.write(f"{real}/name", name)
    tree.write(f"{real}/max_energy_range_uj", max_range_uj)
    tree.write(f"{real}/enabled", 1)
    tree.put(f"{real}/energy_uj", counter)
    tree.link(f"/sys/class/powercap/{zone}", real)
    return f"/sys/class/powercap/{zone}"


def add_hwmon(
    tree: FakeTree,
    index: int,
    name: str,
    device: str,
    files: dict[str, Callable[[], object] | object],
) -> str:
    """``/sys/class/hwmon/hwmon<index>`` linked to ``<device>/hwmon/hwmon<index>``."""
    real = f"{device}/hwmon/hwmon{index}"
    tree.write(f"{real}/name", name)
    for fname, value in files.items():
        tree.put(f"{real}/{fname}", value)
    tree.link(f"/sys/class/hwmon/hwmon{index}", real)
    return f"/sys/class/hwmon/hwmon{index}"


def add_thermal_zone(tree: FakeTree, index: int, kind: str, millicelsius: Callable[[], int] | int):
    """``/sys/class/thermal/thermal_zoneN`` (m°C) linked into /sys/devices/virtual/thermal."""
    real = f"/sys/devices/virtual/thermal/thermal_zone{index}"
    tree.write(f"{real}/type", kind)
    tree.put(f"{real}/temp", millicelsius)
    tree.link(f"/sys/class/thermal/thermal_zone{index}", real)


def add_cpu(
    tree: FakeTree,
    index: int,
    cur_khz: Callable[[], int] | int,
    core_throttle: Callable[[], int] | int | None = None,
) -> None:
    """``/sys/devices/system/cpu/cpuN`` with cpufreq (kHz) and x86 thermal_throttle counters."""
    cpu = f"/sys/devices/system/cpu/cpu{index}"
    tree.write(f"{cpu}/cpufreq/scaling_max_freq", 3_500_000)
    tree.put(f"{cpu}/cpufreq/scaling_cur_freq", cur_khz)
    if core_throttle is not None:
        tree.put(f"{cpu}/thermal_throttle/core_throttle_count", core_throttle)
        tree.write(f"{cpu}/thermal_throttle/package_throttle_count", 0)
