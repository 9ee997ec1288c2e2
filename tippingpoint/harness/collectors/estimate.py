"""An energy estimate where no counter exists: device idle/peak power and measured CPU use.

    P = P_idle + (P_peak - P_idle) * u,   u = process CPU time / (wall time * N CPUs)
    E = P * T = P_idle * T + (P_peak - P_idle) * CPU time / N

Because E is linear in CPU time, the cumulative estimate at any instant is
``P_idle * t + (P_peak - P_idle) * cpu(t) / N``; it is sampled like a counter so sub-windows
come out of it like any other source. The result is labelled ``estimated`` with the formula
and constants, and is never presented as a measurement. It counts only this process's CPU
time: other load on the machine and accelerator power are outside it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from tippingpoint.core.schema import Measurement, MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.sysfs import Clock
from tippingpoint.harness.collectors.windowed import (
    Channel,
    ChannelKind,
    EnergyCollector,
    EnergyScope,
)

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from tippingpoint.harness.collectors.options import CollectorOptions, EnergySettings


def estimate_watts(idle_w: float, peak_w: float, utilisation: float) -> float:
    """Linear power model between idle and peak at a CPU utilisation in [0, 1]."""
    u = min(max(utilisation, 0.0), 1.0)
    return idle_w + (peak_w - idle_w) * u


class EstimateCollector(EnergyCollector):
    """Estimated device energy from profile idle/peak watts and this process's CPU time."""

    name = "estimate"
    scope = EnergyScope.SYSTEM_ESTIMATE
    interval_s = 0.1
    resolution = "estimate from CPU time (process_time_ns)"

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (idle/peak watts of the device profile)."""
        return cls(
            options.idle_watts,
            options.peak_watts,
            profile=options.profile,
            background=options.background,
            windows=options.windows,
        )

    def __init__(
        self,
        idle_watts: float | None = None,
        peak_watts: float | None = None,
        *,
        cpus: int | None = None,
        profile: str | None = None,
        cpu_time_ns: Clock = time.process_time_ns,
        **settings: Unpack[EnergySettings],
    ) -> None:
        super().__init__(**settings)
        self.idle_watts = idle_watts
        self.peak_watts = peak_watts
        self.cpus = cpus or os.cpu_count() or 1
        self.profile = profile
        self.cpu_time_ns = cpu_time_ns
        self._t0: int | None = None
        self._cpu_start = 0
        self._cpu_end = 0

    def _discover(self) -> tuple[Channel, ...]:
        idle, peak = self.idle_watts, self.peak_watts
        if idle is None or peak is None:
            raise CollectorUnavailable(
                "estimate: needs the device's idle and peak watts; give a device profile "
                "(or --idle-watts and --peak-watts)"
            )
        if not 0 <= idle <= peak:
            raise CollectorUnavailable(
                f"estimate: idle {idle} W and peak {peak} W must satisfy 0 <= idle <= peak"
            )
        src = f"profile {self.profile}" if self.profile else "given idle/peak watts"
        return (Channel("estimate", ChannelKind.COUNTER, True, f"estimate ({src})"),)

    def _read(self) -> tuple[float, ...]:
        assert self.idle_watts is not None and self.peak_watts is not None
        t = self.clock()
        if self._t0 is None:
            self._t0 = t
        cpu = self.cpu_time_ns()
        span = self.peak_watts - self.idle_watts
        return (self.idle_watts * (t - self._t0) / 1e9 + span * cpu / 1e9 / self.cpus,)

    def method(self) -> MeasurementMethod:
        """Always ESTIMATED."""
        return MeasurementMethod.ESTIMATED

    def begin_window(self, t_ns: int) -> None:
        """Record CPU time at the start, then start the trace."""
        self._cpu_start = self.cpu_time_ns()
        super().begin_window(t_ns)

    def reset_extras(self) -> None:
        """Nothing kept across windows."""

    def extra_measurements(self, start_ns: int, end_ns: int) -> list[Measurement]:
        """CPU time and utilisation over the window, the inputs of the formula."""
        self._cpu_end = self.cpu_time_ns()
        wall = (end_ns - start_ns) / 1e9
        cpu = (self._cpu_end - self._cpu_start) / 1e9
        u = cpu / (wall * self.cpus) if wall > 0 else 0.0
        return [
            Measurement(quantity="process_cpu_time", value=cpu, unit="s"),
            Measurement(quantity="cpu_utilisation", value=u, unit="fraction", note="u"),
            Measurement(
                quantity="estimated_power",
                value=estimate_watts(self.idle_watts or 0.0, self.peak_watts or 0.0, u),
                unit="W",
                note="P at the window's mean utilisation",
            ),
        ]

    def formula(self) -> str:
        """The formula and its constants."""
        return (
            "P = P_idle + (P_peak - P_idle) * u, u = process CPU time / (wall time * N); "
            f"P_idle = {self.idle_watts:g} W, P_peak = {self.peak_watts:g} W, N = {self.cpus}"
            + (f" (profile {self.profile})" if self.profile else "")
        )
