"""CPU package and DRAM energy from Linux powercap/RAPL (Intel, and AMD Zen via the same driver).

Read directly from ``/sys/class/powercap`` rather than through pyRAPL (see the README's design
notes): top-level ``intel-rapl:N`` zones named ``package-N`` are the headline, their ``dram``
sub-zones are reported beside it, ``psys`` (the whole platform, overlapping the packages) is
skipped, and ``intel-rapl-mmio`` zones, which mirror the MSR package zones, are used only for a
package the MSR interface lacks: counting both is the known over-count (14.4 W for 9.6 W).
Every read of ``energy_uj`` goes through a :class:`CounterUnwrapper`, and the keeper thread
reads often enough that two wraps can never fall between reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.sysfs import SysfsReader
from tippingpoint.harness.collectors.trace import CounterUnwrapper
from tippingpoint.harness.collectors.windowed import (
    Channel,
    ChannelKind,
    EnergyScope,
    SysfsEnergyCollector,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from tippingpoint.harness.collectors.options import SysfsSettings

POWERCAP = "/sys/class/powercap"
MAX_PLAUSIBLE_WATTS = 500.0
"""Per zone; sets the longest safe gap between reads (range / this power)."""

_TOP = re.compile(r"^(intel-rapl|intel-rapl-mmio):(\d+)$")
_SUB = re.compile(r"^(intel-rapl|intel-rapl-mmio):(\d+):(\d+)$")


def permission_fix(kernel_path: str) -> str:
    """The one-line fix for a root-only ``energy_uj``."""
    return (
        f"{kernel_path} is readable by root only (Linux >= 5.10); run as root, or grant read "
        f"access: `sudo chmod o+r {kernel_path}` (until reboot) or a udev rule "
        '`SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chmod o+r /sys%p/energy_uj"`'
    )


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone that will be read."""

    path: Path
    kernel_path: str
    name: str
    parent: str | None
    max_range_uj: int


def find_zones(reader: SysfsReader) -> list[RaplZone]:
    """Package zones (MSR preferred over MMIO duplicates) and their dram sub-zones."""
    entries = reader.children(POWERCAP)
    if not entries and not reader.path(POWERCAP).is_dir():
        raise CollectorUnavailable(
            f"rapl: {POWERCAP} does not exist (no RAPL driver: not an x86 host, or a VM or "
            "container that hides it); use another energy source, or `estimate` with a profile"
        )
    packages: dict[str, tuple[str, Path]] = {}
    for entry in entries:
        m = _TOP.match(entry.name)
        if not m:
            continue
        name = reader.try_read(entry / "name") or ""
        if not name.startswith("package-"):
            continue  # psys covers the whole platform and overlaps the packages
        iface = m.group(1)
        if name in packages and iface == "intel-rapl-mmio":
            continue
        if name in packages and packages[name][0] == "intel-rapl":
            continue
        packages[name] = (iface, entry)
    zones: list[RaplZone] = []
    for name, (_iface, entry) in sorted(packages.items()):
        zones.append(_zone(reader, entry, name, None))
        top = entry.name
        for sub in entries:
            sm = _SUB.match(sub.name)
            if sm and f"{sm.group(1)}:{sm.group(2)}" == top:
                sub_name = reader.try_read(sub / "name") or ""
                if sub_name == "dram":
                    zones.append(_zone(reader, sub, f"{name}/dram", name))
    if not zones:
        raise CollectorUnavailable(
            f"rapl: {POWERCAP} has no package zones; use another energy source"
        )
    return zones


def _zone(reader: SysfsReader, entry: Path, name: str, parent: str | None) -> RaplZone:
    kpath = reader.kernel_path(entry / "energy_uj")
    rng = reader.try_int(entry / "max_energy_range_uj")
    if rng is None or rng <= 0:
        raise CollectorUnavailable(
            f"rapl: {reader.kernel_path(entry / 'max_energy_range_uj')} is missing or unreadable;"
            " without it counter wraps cannot be handled (use another energy source)"
        )
    try:
        reader.read_int(entry / "energy_uj")
    except PermissionError:
        raise CollectorUnavailable(f"rapl: {permission_fix(kpath)}") from None
    except (OSError, ValueError) as exc:
        raise CollectorUnavailable(f"rapl: cannot read {kpath}: {exc}") from None
    return RaplZone(entry, reader.kernel_path(entry), name, parent, rng)


class RaplCollector(SysfsEnergyCollector):
    """Energy of the CPU packages (headline) and DRAM (beside it) from powercap counters."""

    name = "rapl"
    scope = EnergyScope.CPU_PACKAGE
    resolution = "energy_uj counter, 1 uJ units, updated about every 1 ms"
    interval_s = 0.1

    def __init__(self, **settings: Unpack[SysfsSettings]) -> None:
        super().__init__(**settings)
        self.zones: list[RaplZone] = []
        self._unwrappers: list[CounterUnwrapper] = []

    def _discover(self) -> tuple[Channel, ...]:
        self.zones = find_zones(self.reader)
        self._unwrappers = [CounterUnwrapper(z.max_range_uj) for z in self.zones]
        wrap_s = min(z.max_range_uj / 1e6 / MAX_PLAUSIBLE_WATTS for z in self.zones)
        self.max_gap_s = wrap_s
        self.interval_s = min(self.interval_s, wrap_s / 10)
        return tuple(
            Channel(z.name, ChannelKind.COUNTER, z.parent is None, z.kernel_path)
            for z in self.zones
        )

    def _read(self) -> tuple[float, ...]:
        out = []
        for zone, unwrap in zip(self.zones, self._unwrappers, strict=True):
            try:
                raw = self.reader.read_int(zone.path / "energy_uj")
            except PermissionError:
                raise CollectorUnavailable(
                    permission_fix(zone.kernel_path + "/energy_uj")
                ) from None
            out.append(unwrap.update(raw) / 1e6)
        return tuple(out)

    @property
    def wraps(self) -> int:
        """Counter wraps seen so far, all zones together."""
        return sum(u.wraps for u in self._unwrappers)
