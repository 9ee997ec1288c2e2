"""Board power from generic hwmon sensors: ``energy*_input`` (µJ) or ``power*_input`` (µW).

A device is found by the ``name`` file of ``/sys/class/hwmon/hwmonN``, never by ``N``, which
changes between boots. Energy counters are preferred (method ``counter``); otherwise power is
sampled and integrated by the trapezoidal rule (method ``sampled``, at least
:data:`MIN_SAMPLES` samples per window, the achieved rate recorded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.sysfs import SysfsReader
from tippingpoint.harness.collectors.windowed import (
    Channel,
    ChannelKind,
    EnergyScope,
    SysfsEnergyCollector,
)

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from tippingpoint.harness.collectors.options import CollectorOptions, SysfsSettings

HWMON = "/sys/class/hwmon"
MIN_SAMPLES = 50
SKIP_NAMES = ("ina3221",)
"""Handled by the ``jetson`` collector, which knows which rail is the module total."""

_ENERGY = re.compile(r"^energy(\d+)_input$")
_POWER = re.compile(r"^power(\d+)_(input|average)$")


@dataclass(frozen=True)
class HwmonSensor:
    """One file to read and how to scale it."""

    path: Path
    label: str
    kind: ChannelKind


def hwmon_devices(reader: SysfsReader) -> list[tuple[str, Path]]:
    """(name, directory) of every hwmon device, in hwmonN order."""
    out = []
    for d in reader.children(HWMON, "hwmon"):
        name = reader.try_read(d / "name")
        if name is not None:
            out.append((name, d))
    return out


def sensors_of(reader: SysfsReader, device: Path) -> list[HwmonSensor]:
    """Energy counters of a device, else its power sensors (``_input`` before ``_average``)."""
    files = [p.name for p in reader.children(device)]
    energy = sorted((int(m.group(1)), f) for f in files if (m := _ENERGY.match(f)))
    if energy:
        return [
            HwmonSensor(device / f, _label(reader, device, "energy", i), ChannelKind.COUNTER)
            for i, f in energy
        ]
    chosen: dict[int, str] = {}
    for f in sorted(files):
        m = _POWER.match(f)
        if m and (int(m.group(1)) not in chosen or m.group(2) == "input"):
            chosen[int(m.group(1))] = f
    return [
        HwmonSensor(device / f, _label(reader, device, "power", i), ChannelKind.POWER)
        for i, f in sorted(chosen.items())
    ]


def _label(reader: SysfsReader, device: Path, kind: str, i: int) -> str:
    return reader.try_read(device / f"{kind}{i}_label") or f"{kind}{i}"


class HwmonCollector(SysfsEnergyCollector):
    """Energy or power of one hwmon device, chosen by its ``name``."""

    name = "hwmon"
    scope = EnergyScope.DEVICE
    interval_s = 0.01
    min_samples = MIN_SAMPLES

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (the device's ``name`` among them)."""
        collector = super().from_options(options)
        collector.device_name = options.hwmon_device
        return collector

    def __init__(
        self,
        *,
        device_name: str | None = None,
        scope: EnergyScope = EnergyScope.DEVICE,
        **settings: Unpack[SysfsSettings],
    ) -> None:
        super().__init__(**settings)
        self.device_name = device_name
        self.scope = scope
        self.sensors: list[HwmonSensor] = []
        self.device_dir: Path | None = None
        self._last: list[float] = []

    def _discover(self) -> tuple[Channel, ...]:
        devices = hwmon_devices(self.reader)
        for name, d in devices:
            if self.device_name is not None and name != self.device_name:
                continue
            if self.device_name is None and name in SKIP_NAMES:
                continue
            sensors = sensors_of(self.reader, d)
            if sensors:
                self.device_name, self.device_dir, self.sensors = name, d, sensors
                break
        if not self.sensors:
            seen = ", ".join(sorted({n for n, _ in devices})) or "none"
            want = f"named '{self.device_name}' " if self.device_name else ""
            raise CollectorUnavailable(
                f"hwmon: no device {want}with energy*_input or power*_input under {HWMON} "
                f"(devices: {seen}); name one that has them"
            )
        for s in self.sensors:
            kpath = self.reader.kernel_path(s.path)
            try:
                self.reader.read_int(s.path)
            except PermissionError:
                raise CollectorUnavailable(
                    f"hwmon: {kpath} is not readable; run as root or grant read access "
                    f"(`sudo chmod o+r {kpath}`)"
                ) from None
            except (OSError, ValueError) as exc:
                raise CollectorUnavailable(f"hwmon: cannot read {kpath}: {exc}") from None
        self._last = [0.0] * len(self.sensors)
        kinds = {s.kind for s in self.sensors}
        self.resolution = (
            "energy*_input counter, 1 uJ units"
            if kinds == {ChannelKind.COUNTER}
            else "power*_input samples, 1 uW units"
        )
        return tuple(
            Channel(s.label, s.kind, True, self.reader.kernel_path(s.path)) for s in self.sensors
        )

    def _read(self) -> tuple[float, ...]:
        out = []
        for i, s in enumerate(self.sensors):
            raw = self.reader.read_int(s.path)
            if s.kind is ChannelKind.COUNTER:
                value = raw / 1e6
                if value < self._last[i]:
                    raise ValueError(f"{self.reader.kernel_path(s.path)} went backwards")
                self._last[i] = value
            else:
                value = raw / 1e6
            out.append(value)
        return tuple(out)

    def source(self) -> str:
        """The device's directory and name."""
        where = self.reader.kernel_path(self.device_dir) if self.device_dir else HWMON
        return f"{where} ({self.device_name})"
