"""NVIDIA Jetson power rails from the on-module INA3221 monitors, sampled and integrated.

Two layouts exist. JetPack 5/6 expose a hwmon device named ``ina3221`` with ``inN_label``
(the rail), ``inN_input`` (mV) and ``currN_input`` (mA). JetPack 4 exposes an iio device under
``/sys/bus/i2c/drivers/ina3221x/*/iio:device*`` with ``rail_name_N`` and ``in_powerN_input``
(mW). Rails are mapped explicitly: ``VDD_IN`` (``POM_5V_IN`` on JetPack 4) is the module's total
input and becomes the headline on its own; ``VDD_CPU_GPU_CV`` is CPU, GPU and CV together and
is never called "GPU". Without a total rail, the sum of the rails is reported as board rails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.hwmon import hwmon_devices
from tippingpoint.harness.collectors.sysfs import SysfsReader
from tippingpoint.harness.collectors.windowed import (
    Channel,
    ChannelKind,
    EnergyScope,
    SysfsEnergyCollector,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from tippingpoint.harness.collectors.options import SysfsSettings

IIO_DRIVER = "/sys/bus/i2c/drivers/ina3221x"
MIN_SAMPLES = 50

MODULE_TOTAL = ("VDD_IN", "POM_5V_IN")
RAIL_MEANING = {
    "VDD_IN": "module total input",
    "POM_5V_IN": "module total input",
    "VDD_CPU_GPU_CV": "CPU, GPU and CV cores combined (not the GPU alone)",
    "VDD_CPU_CV": "CPU and CV cores combined",
    "VDD_GPU_SOC": "GPU and SoC combined",
    "VDD_SOC": "SoC",
    "VDD_CV": "CV accelerators",
    "VDD_GPU": "GPU",
    "VDD_CPU": "CPU",
    "VDDQ_VDD2_1V8AO": "DRAM and always-on",
    "VIN_SYS_5V0": "carrier 5 V system",
    "POM_5V_GPU": "GPU",
    "POM_5V_CPU": "CPU",
}

_IN_LABEL = re.compile(r"^in(\d+)_label$")
_RAIL_NAME = re.compile(r"^rail_name_(\d+)$")


@dataclass(frozen=True)
class Rail:
    """One INA3221 channel and the files that give its power."""

    label: str
    power_mw: Path | None
    volts_mv: Path | None
    amps_ma: Path | None

    def watts(self, reader: SysfsReader) -> float:
        """Power in watts: the power file, or mV x mA."""
        if self.power_mw is not None:
            return reader.read_int(self.power_mw) / 1e3
        assert self.volts_mv is not None and self.amps_ma is not None
        return reader.read_int(self.volts_mv) * reader.read_int(self.amps_ma) / 1e6


def hwmon_rails(reader: SysfsReader) -> tuple[str, list[Rail]] | None:
    """JetPack 5/6: rails of the hwmon devices named ina3221."""
    rails: list[Rail] = []
    where = ""
    for name, d in hwmon_devices(reader):
        if name != "ina3221":
            continue
        where = where or reader.kernel_path(d)
        for f in reader.children(d, "in"):
            m = _IN_LABEL.match(f.name)
            label = reader.try_read(f) if m else None
            if not m or not label or label.upper() == "NC" or "sum of" in label.lower():
                continue
            i = m.group(1)
            volts, amps = d / f"in{i}_input", d / f"curr{i}_input"
            if volts.exists() and amps.exists():
                rails.append(Rail(label, None, volts, amps))
    return (where, rails) if rails else None


def iio_rails(reader: SysfsReader) -> tuple[str, list[Rail]] | None:
    """JetPack 4: rails of the ina3221x iio devices."""
    rails: list[Rail] = []
    where = ""
    for dev in reader.children(IIO_DRIVER):
        for iio in reader.children(dev, "iio:device"):
            where = where or reader.kernel_path(iio)
            for f in reader.children(iio, "rail_name_"):
                m = _RAIL_NAME.match(f.name)
                label = reader.try_read(f) if m else None
                if not m or not label:
                    continue
                power = iio / f"in_power{m.group(1)}_input"
                if power.exists():
                    rails.append(Rail(label, power, None, None))
    return (where, rails) if rails else None


class JetsonCollector(SysfsEnergyCollector):
    """Module input power (``VDD_IN``) of a Jetson, with the other rails beside it."""

    name = "jetson"
    scope = EnergyScope.MODULE_INPUT
    interval_s = 0.02
    min_samples = MIN_SAMPLES

    def __init__(self, **settings: Unpack[SysfsSettings]) -> None:
        super().__init__(**settings)
        self.rails: list[Rail] = []
        self.layout = ""
        self.where = ""

    def _discover(self) -> tuple[Channel, ...]:
        found = hwmon_rails(self.reader)
        self.layout = "hwmon (JetPack 5/6)"
        self.resolution = "INA3221 inN_input mV x currN_input mA, sampled"
        if found is None:
            found = iio_rails(self.reader)
            self.layout = "iio (JetPack 4)"
            self.resolution = "INA3221 in_powerN_input mW, sampled"
        if found is None:
            raise CollectorUnavailable(
                "jetson: no INA3221 rails (neither an 'ina3221' hwmon device nor "
                f"{IIO_DRIVER}); not a Jetson, or the sensors are hidden from this container"
            )
        self.where, self.rails = found
        try:
            for r in self.rails:
                r.watts(self.reader)
        except PermissionError as exc:
            raise CollectorUnavailable(
                f"jetson: {exc.filename or 'a rail file'} is not readable; run as root or "
                "grant read access"
            ) from None
        except (OSError, ValueError) as exc:
            raise CollectorUnavailable(f"jetson: cannot read the rails: {exc}") from None
        has_total = any(r.label in MODULE_TOTAL for r in self.rails)
        self.scope = EnergyScope.MODULE_INPUT if has_total else EnergyScope.BOARD_RAILS
        self.energy_note = (
            None
            if has_total
            else "sum of the monitored rails: no module-input rail, so loads outside them "
            "and conversion losses are missing"
        )
        return tuple(
            Channel(
                r.label,
                ChannelKind.POWER,
                r.label in MODULE_TOTAL if has_total else True,
                f"{self.where} {r.label}",
                RAIL_MEANING.get(r.label),
            )
            for r in self.rails
        )

    def _read(self) -> tuple[float, ...]:
        return tuple(r.watts(self.reader) for r in self.rails)

    def source(self) -> str:
        """Where the rails are, the layout and the headline rail."""
        head = [c.name for c in self.channels if c.headline]
        return f"{self.where} [{self.layout}] {'+'.join(head)}"
