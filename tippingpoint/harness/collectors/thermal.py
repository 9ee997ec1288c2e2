"""The ``thermal`` collector: temperatures, clocks and throttling over the window.

It reads thermal-zone temperatures, cpufreq clocks (before, range, after), x86 throttle
counters, the state of CPU cooling devices (``cooling_deviceN`` of type
``cpufreq-*``/``Processor``: state > 0 caps the clocks, which is how ARM boards throttle), and
on a Raspberry Pi the firmware's ``get_throttled`` bits; a window whose clocks throttled
reports ``throttled`` = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.core.schema import CollectorResult, Measurement, MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.polling import PollingCollector
from tippingpoint.harness.collectors.rpi import Gencmd, open_gencmd, parse_throttled
from tippingpoint.harness.collectors.throttle import throttled_measurement

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from tippingpoint.harness.collectors.options import PollingSettings

RPI_NOW_THROTTLED = 0x2 | 0x4 | 0x8
"""get_throttled: ARM frequency capped, currently throttled, soft temperature limit active."""
RPI_OCCURRED = 0x20000 | 0x40000 | 0x80000
"""get_throttled: the same three, sticky since boot."""


@dataclass(frozen=True)
class _Zone:
    label: str
    path: Path


def _is_cpu_cooling(kind: str) -> bool:
    """Cooling devices that cap CPU clocks: ``cpufreq-cpu0``/``thermal-cpufreq-0`` (cpufreq
    cooling, as on ARM boards) and ``Processor`` (ACPI processor throttling)."""
    k = kind.lower()
    return "cpufreq" in k or k == "processor"


class ThermalCollector(PollingCollector):
    """Temperatures, CPU clocks and throttling before, during and after the window."""

    name = "thermal"
    interval_s = 0.5

    def __init__(
        self, *, gencmd: Gencmd | None = None, **settings: Unpack[PollingSettings]
    ) -> None:
        super().__init__(**settings)
        self.gencmd = gencmd
        self.zones: list[_Zone] = []
        self.freqs: list[Path] = []
        self.counters: list[Path] = []
        self.cooling: list[_Zone] = []
        """CPU cooling devices (cpufreq/processor): their ``cur_state`` > 0 caps the clocks."""
        self._reset()

    def _reset(self) -> None:
        self._temps_before: list[float | None] = []
        self._temps_max: list[float | None] = []
        self._freq_min: float | None = None
        self._freq_max: float | None = None
        self._counts_before = 0
        self._rpi_bits = 0
        self._rpi_before = 0
        self._freq_before: list[float] = []
        self._cooling_before: list[int | None] = []
        self._cooling_max: list[int | None] = []

    def open(self) -> None:
        """Find thermal zones, cpufreq, throttle counters and (on a Pi) the firmware."""
        r = self.reader
        for z in r.children("/sys/class/thermal", "thermal_zone"):
            if r.try_int(z / "temp") is not None:
                self.zones.append(_Zone(r.try_read(z / "type") or z.name, z / "temp"))
        for cpu in r.children("/sys/devices/system/cpu", "cpu"):
            if not cpu.name[3:].isdigit():
                continue
            f = cpu / "cpufreq" / "scaling_cur_freq"
            if r.try_int(f) is not None:
                self.freqs.append(f)
            for name in ("core_throttle_count", "package_throttle_count"):
                c = cpu / "thermal_throttle" / name
                if r.try_int(c) is not None:
                    self.counters.append(c)
        for dev in r.children("/sys/class/thermal", "cooling_device"):
            kind = (r.try_read(dev / "type") or "").strip()
            if _is_cpu_cooling(kind) and r.try_int(dev / "cur_state") is not None:
                self.cooling.append(_Zone(kind, dev / "cur_state"))
        model = r.try_read(r.path("/proc/device-tree/model")) or ""
        if self.gencmd is None and "Raspberry Pi" in model:
            try:
                self.gencmd = open_gencmd()
            except CollectorUnavailable:
                self.gencmd = None
        if self.gencmd is not None:
            try:
                parse_throttled(self.gencmd("get_throttled"))
            except (OSError, ValueError):
                self.gencmd = None
        if not (self.zones or self.freqs or self.counters or self.cooling or self.gencmd):
            raise CollectorUnavailable(
                "thermal: no thermal zones, cpufreq or throttle counters are visible "
                "(VMs and containers often hide them)"
            )
        self._start_thread()

    def _temps(self) -> list[float | None]:
        out = []
        for z in self.zones:
            v = self.reader.try_int(z.path)
            out.append(v / 1000 if v is not None else None)
        return out

    def _counts(self) -> int:
        return sum(self.reader.try_int(c) or 0 for c in self.counters)

    def _freqs(self) -> list[float]:
        return [v / 1000 for f in self.freqs if (v := self.reader.try_int(f)) is not None]

    def _cooling_states(self) -> list[int | None]:
        return [self.reader.try_int(d.path) for d in self.cooling]

    def _rpi(self) -> int:
        if self.gencmd is None:
            return 0
        try:
            return parse_throttled(self.gencmd("get_throttled"))
        except (OSError, ValueError):
            return 0

    def poll(self) -> None:
        """Sample temperatures, clocks and the firmware bits."""
        temps = self._temps()
        freqs = self._freqs()
        states = self._cooling_states()
        bits = self._rpi()
        with self._lock:
            if not self._in_window:
                return
            self._cooling_max = [
                s if m is None else (m if s is None else max(m, s))
                for m, s in zip(self._cooling_max, states, strict=True)
            ]
            self._temps_max = [
                t if m is None else (m if t is None else max(m, t))
                for m, t in zip(self._temps_max, temps, strict=True)
            ]
            if freqs:
                lo, hi = min(freqs), max(freqs)
                self._freq_min = lo if self._freq_min is None else min(self._freq_min, lo)
                self._freq_max = hi if self._freq_max is None else max(self._freq_max, hi)
            self._rpi_bits |= bits

    def _window_opened(self) -> None:
        """Read everything once as the 'before' state."""
        self._reset()
        self._temps_before = self._temps()
        self._temps_max = list(self._temps_before)
        self._counts_before = self._counts()
        self._rpi_before = self._rpi()
        self._freq_before = self._freqs()
        self._cooling_before = self._cooling_states()
        self._cooling_max = list(self._cooling_before)

    def _window_result(self, t_ns: int) -> CollectorResult:
        """Temperatures before/max/after, clock range, throttle events and the flag."""
        after = self._temps()
        out: list[Measurement] = []
        for z, b, m, a in zip(self.zones, self._temps_before, self._temps_max, after, strict=True):
            for what, v in (("before", b), ("max", m), ("after", a)):
                if v is not None:
                    out.append(
                        Measurement(quantity=f"temperature_{what}[{z.label}]", value=v, unit="C")
                    )
        freq_after = self._freqs()
        for what, fs in (("before", self._freq_before), ("after", freq_after)):
            if fs:
                out.append(
                    Measurement(
                        quantity=f"cpu_freq_{what}",
                        value=sum(fs) / len(fs),
                        unit="MHz",
                        note=f"mean scaling_cur_freq of {len(fs)} CPUs",
                    )
                )
        if self._freq_min is not None and self._freq_max is not None:
            out.append(Measurement(quantity="cpu_freq_min", value=self._freq_min, unit="MHz"))
            out.append(Measurement(quantity="cpu_freq_max", value=self._freq_max, unit="MHz"))
        reasons = []
        cooling_after = self._cooling_states()
        for dev, b, m, a in zip(
            self.cooling, self._cooling_before, self._cooling_max, cooling_after, strict=True
        ):
            top = max((v for v in (m, a) if v is not None), default=None)
            if top is None:
                continue
            out.append(
                Measurement(
                    quantity=f"cooling_state_max[{dev.label}]",
                    value=top,
                    unit="state",
                    note=f"cur_state before {b if b is not None else '?'}, after "
                    f"{a if a is not None else '?'}",
                )
            )
            if top > 0:
                reasons.append(f"cooling device {dev.label} at state {top}")
        if self.counters:
            events = self._counts() - self._counts_before
            out.append(
                Measurement(
                    quantity="thermal_throttle_events",
                    value=events,
                    unit="count",
                    note="core + package thermal_throttle counters",
                )
            )
            if events > 0:
                reasons.append(f"{events} thermal_throttle events")
        if self.gencmd is not None:
            end_bits = self._rpi()
            bits = self._rpi_bits | end_bits
            out.append(
                Measurement(quantity="rpi_get_throttled", value=bits, unit="bitmask", note="OR-ed")
            )
            if bits & RPI_NOW_THROTTLED:
                reasons.append(f"get_throttled 0x{bits:x}")
            elif (end_bits & ~self._rpi_before) & RPI_OCCURRED:
                reasons.append(f"get_throttled sticky bits set during the run 0x{end_bits:x}")
        if self.counters or self.cooling or self.gencmd is not None:
            out.append(throttled_measurement(bool(reasons), "; ".join(reasons) or "none seen"))
        return CollectorResult(
            name=self.name,
            source=", ".join(
                s
                for s, present in (
                    ("/sys/class/thermal", self.zones),
                    ("cpufreq", self.freqs),
                    ("thermal_throttle", self.counters),
                    ("cooling_device", self.cooling),
                    ("get_throttled", self.gencmd is not None),
                )
                if present
            ),
            method=MeasurementMethod.SAMPLED,
            scope="machine",
            sample_rate_hz=1.0 / self.interval_s,
            window_start_ns=self._start_ns,
            window_end_ns=t_ns,
            measurements=tuple(out),
        )
