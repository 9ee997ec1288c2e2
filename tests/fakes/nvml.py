"""A fake NVML behind the collector's adapter: a GPU whose counter and power follow a clock."""

from __future__ import annotations

from collections.abc import Callable

from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.nvml import NvmlNotSupported

from .sysfs import FakeClock


class FakeGpu:
    """Power is ``watts(t_s)``; the mJ counter integrates it and updates every ``period_s``."""

    def __init__(
        self,
        clock: FakeClock,
        watts: Callable[[float], float] | float,
        *,
        counter: bool = True,
        power: bool = True,
        period_s: float = 0.05,
        name: str = "NVIDIA Fake H100",
    ) -> None:
        self.clock = clock
        self.watts = watts if callable(watts) else (lambda _t, w=watts: w)
        self.counter = counter
        self.power = power
        self.period_ns = round(period_s * 1e9)
        self._name = name
        self.t0 = clock()
        self.mj = 1_234_567.0
        self._t = self.t0
        self._published = self.mj
        self._published_t = self.t0
        self.memory_used = 2 << 30
        self.process_memory: dict[int, int] = {}
        self.reasons = 0
        self.frozen = False

    def _advance(self) -> None:
        now = self.clock()
        step = 1_000_000  # integrate in 1 ms steps
        while self._t < now:
            dt = min(step, now - self._t)
            mid = (self._t + dt / 2 - self.t0) / 1e9
            self.mj += self.watts(mid) * dt / 1e6
            self._t += dt
            if not self.frozen and self._t - self._published_t >= self.period_ns:
                self._published = self.mj
                self._published_t = self._t

    def name(self) -> str:
        return self._name

    def total_energy_mj(self) -> int:
        if not self.counter:
            raise NvmlNotSupported("Not Supported")
        self._advance()
        return int(self._published)

    def power_mw(self) -> int:
        if not self.power:
            raise NvmlNotSupported("Not Supported")
        return round(self.watts((self.clock() - self.t0) / 1e9) * 1000)

    def memory_used_bytes(self) -> int:
        return self.memory_used

    def process_memory_bytes(self, pid: int) -> int | None:
        return self.process_memory.get(pid)

    def throttle_reasons(self) -> int:
        return self.reasons

    def temperature_c(self) -> int:
        return 61

    def sm_clock_mhz(self) -> int:
        return 1755


class FakeNvml:
    """The adapter's API over a list of fake GPUs; ``missing`` mimics a host without a driver."""

    def __init__(self, gpus: list[FakeGpu], missing: bool = False) -> None:
        self.gpus = gpus
        self.missing = missing
        self.initialised = 0

    def init(self) -> None:
        if self.missing:
            raise CollectorUnavailable("nvml: cannot initialise NVML (Driver Not Loaded)")
        self.initialised += 1

    def device_count(self) -> int:
        return len(self.gpus)

    def device(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def shutdown(self) -> None:
        self.initialised -= 1
