"""NVIDIA GPU energy, memory and throttling through NVML (``nvidia-ml-py``, module ``pynvml``).

The collector talks to a thin :class:`NvmlApi` adapter, so tests put a fake behind it and the
real binding is touched only in :class:`PynvmlApi`. Energy comes from the total-energy counter
(``nvmlDeviceGetTotalEnergyConsumption``, mJ, Volta and newer) where the GPU has one, else from
power samples integrated by the trapezoidal rule; the power channel is recorded beside the
counter either way, so both figures of one window can be compared. The counter updates only
every 20-100 ms and Ampere-and-newer power readings are 1 s averages, so a window must last
at least max(:data:`MIN_WINDOW_S`, 20 update periods), the period measured when the collector
opens. NOT_SUPPORTED on both (e.g. Jetson) means: try the next source.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tippingpoint.core.schema import Measurement
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.sysfs import Clock
from tippingpoint.harness.collectors.throttle import throttled_measurement
from tippingpoint.harness.collectors.windowed import (
    Channel,
    ChannelKind,
    EnergyCollector,
    EnergyScope,
)

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from tippingpoint.harness.collectors.options import CollectorOptions, EnergySettings

MIN_WINDOW_S = 2.0
"""The floor of a window; max(2 s, 20 counter updates) with the update period measured."""

# nvmlClocksEventReason* bits (nvml.h)
GPU_IDLE = 0x1
APPLICATIONS_CLOCKS = 0x2
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SYNC_BOOST = 0x10
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80
DISPLAY_CLOCKS = 0x100
THROTTLE_BITS = HW_SLOWDOWN | SW_THERMAL | HW_THERMAL | HW_POWER_BRAKE
"""Reasons that flag a run as throttled. SW_POWER_CAP is recorded but not flagged: a GPU at
its power limit under sustained load is normal operation on data-centre parts."""


class NvmlNotSupported(Exception):
    """The device does not support this query (NVML_ERROR_NOT_SUPPORTED)."""


class NvmlDevice(Protocol):
    """The NVML queries the collectors use, for one GPU."""

    def name(self) -> str:
        """Product name."""
        ...

    def total_energy_mj(self) -> int:
        """Energy since the driver loaded, mJ; raises NvmlNotSupported before Volta."""
        ...

    def power_mw(self) -> int:
        """Board power draw, mW (a 1 s average on Ampere and newer)."""
        ...

    def memory_used_bytes(self) -> int:
        """Device memory in use by all processes."""
        ...

    def process_memory_bytes(self, pid: int) -> int | None:
        """Device memory used by ``pid``, or None when NVML does not say."""
        ...

    def throttle_reasons(self) -> int:
        """The current clocks-event (throttle) reason bitmask."""
        ...

    def temperature_c(self) -> int:
        """GPU core temperature."""
        ...

    def sm_clock_mhz(self) -> int:
        """Current SM clock."""
        ...


class NvmlApi(Protocol):
    """Initialisation and device lookup."""

    def init(self) -> None:
        """Load the library; raise CollectorUnavailable with the reason when impossible."""
        ...

    def device_count(self) -> int:
        """Number of GPUs visible."""
        ...

    def device(self, index: int) -> NvmlDevice:
        """One GPU by NVML index."""
        ...

    def shutdown(self) -> None:
        """Release the library."""
        ...


class _PynvmlDevice:
    """:class:`NvmlDevice` over a real ``pynvml`` handle."""

    def __init__(self, nv: Any, handle: Any) -> None:
        self.nv = nv
        self.handle = handle

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(self.handle, *args)
        except self.nv.NVMLError as exc:
            if getattr(exc, "value", None) == self.nv.NVML_ERROR_NOT_SUPPORTED:
                raise NvmlNotSupported(str(exc)) from None
            raise OSError(f"NVML: {exc}") from None

    def name(self) -> str:
        """Product name."""
        n = self._call(self.nv.nvmlDeviceGetName)
        return n.decode() if isinstance(n, bytes) else str(n)

    def total_energy_mj(self) -> int:
        """Energy counter, mJ."""
        return int(self._call(self.nv.nvmlDeviceGetTotalEnergyConsumption))

    def power_mw(self) -> int:
        """Power draw, mW."""
        return int(self._call(self.nv.nvmlDeviceGetPowerUsage))

    def memory_used_bytes(self) -> int:
        """Device memory used."""
        return int(self._call(self.nv.nvmlDeviceGetMemoryInfo).used)

    def process_memory_bytes(self, pid: int) -> int | None:
        """Memory of one process, from the compute-process list."""
        for p in self._call(self.nv.nvmlDeviceGetComputeRunningProcesses):
            if p.pid == pid and p.usedGpuMemory is not None:
                return int(p.usedGpuMemory)
        return None

    def throttle_reasons(self) -> int:
        """Clocks-event reasons (the newer name) or throttle reasons (the older)."""
        fn = getattr(self.nv, "nvmlDeviceGetCurrentClocksEventReasons", None)
        fn = fn or self.nv.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(self._call(fn))

    def temperature_c(self) -> int:
        """Core temperature."""
        return int(self._call(self.nv.nvmlDeviceGetTemperature, self.nv.NVML_TEMPERATURE_GPU))

    def sm_clock_mhz(self) -> int:
        """SM clock."""
        return int(self._call(self.nv.nvmlDeviceGetClockInfo, self.nv.NVML_CLOCK_SM))


class PynvmlApi:
    """:class:`NvmlApi` over ``pynvml`` from the ``nvidia-ml-py`` package."""

    def __init__(self) -> None:
        self.nv: Any = None

    def init(self) -> None:
        """Import the binding and initialise NVML."""
        try:
            import pynvml
        except ImportError:
            raise CollectorUnavailable(
                "nvml: nvidia-ml-py is not installed; pip install 'tippingpoint[nvidia]'"
            ) from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise CollectorUnavailable(
                f"nvml: cannot initialise NVML ({exc}): no NVIDIA GPU or driver here"
            ) from None
        self.nv = pynvml

    def device_count(self) -> int:
        """GPUs visible to NVML."""
        return int(self.nv.nvmlDeviceGetCount())

    def device(self, index: int) -> NvmlDevice:
        """One GPU."""
        return _PynvmlDevice(self.nv, self.nv.nvmlDeviceGetHandleByIndex(index))

    def shutdown(self) -> None:
        """Shut NVML down."""
        if self.nv is not None:
            self.nv.nvmlShutdown()
            self.nv = None


def counter_update_period(
    dev: NvmlDevice,
    clock: Clock,
    sleep: Callable[[float], None],
    budget_s: float = 0.5,
    step_s: float = 0.002,
) -> float | None:
    """Seconds between updates of the energy counter, from a short burst of reads."""
    changes: list[int] = []
    last = dev.total_energy_mj()
    for _ in range(round(budget_s / step_s)):
        if len(changes) >= 4:
            break
        sleep(step_s)
        value = dev.total_energy_mj()
        if value != last:
            changes.append(clock())
            last = value
    if len(changes) < 2:
        return None
    return (changes[-1] - changes[0]) / 1e9 / (len(changes) - 1)


class NvmlCollector(EnergyCollector):
    """GPU board energy (counter, else sampled power), memory, clocks and throttle reasons."""

    name = "nvml"
    scope = EnergyScope.GPU_BOARD
    interval_s = 0.05
    min_window_s = MIN_WINDOW_S
    min_samples = 20

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (the GPU's index among them)."""
        return cls(index=options.gpu_index, background=options.background, windows=options.windows)

    def __init__(
        self,
        *,
        api: NvmlApi | None = None,
        index: int = 0,
        pid: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **settings: Unpack[EnergySettings],
    ) -> None:
        super().__init__(**settings)
        self.sleep = sleep
        self.update_period_s: float | None = None
        self.api: NvmlApi = api if api is not None else PynvmlApi()
        self.index = index
        self.pid = os.getpid() if pid is None else pid
        self.device: NvmlDevice | None = None
        self.device_name = ""
        self.has_counter = False
        self.has_power = False
        self.reset_extras()

    def _discover(self) -> tuple[Channel, ...]:
        self.api.init()
        count = self.api.device_count()
        if count <= self.index:
            self.api.shutdown()
            raise CollectorUnavailable(
                f"nvml: GPU {self.index} not found ({count} visible); pick another index"
            )
        dev = self.api.device(self.index)
        self.device = dev
        self.device_name = dev.name()
        try:
            dev.total_energy_mj()
            self.has_counter = True
        except NvmlNotSupported:
            self.has_counter = False
        try:
            dev.power_mw()
            self.has_power = True
        except NvmlNotSupported:
            self.has_power = False
        if not (self.has_counter or self.has_power):
            self.api.shutdown()
            raise CollectorUnavailable(
                f"nvml: {self.device_name} reports neither an energy counter nor power "
                "(NOT_SUPPORTED, as on Jetson); use the next source (jetson, hwmon)"
            )
        src = f"nvml:{self.index} ({self.device_name})"
        channels = []
        if self.has_counter:
            channels.append(Channel("total_energy_counter", ChannelKind.COUNTER, True, src))
            self.update_period_s = counter_update_period(dev, self.clock, self.sleep)
            if self.update_period_s is None:
                self.resolution = "total-energy counter, 1 mJ units (update period not seen)"
            else:
                self.min_window_s = max(MIN_WINDOW_S, 20 * self.update_period_s)
                self.resolution = (
                    "total-energy counter, 1 mJ units, updated every "
                    f"{1000 * self.update_period_s:.0f} ms (measured at start)"
                )
        else:
            self.resolution = "power samples in mW (1 s averages on Ampere and newer)"
        if self.has_power:
            channels.append(Channel("power_sampled", ChannelKind.POWER, not self.has_counter, src))
        return tuple(channels)

    def _read(self) -> tuple[float, ...]:
        assert self.device is not None
        out: list[float] = []
        if self.has_counter:
            out.append(self.device.total_energy_mj() / 1e3)
        if self.has_power:
            out.append(self.device.power_mw() / 1e3)
        return tuple(out)

    def sample_extras(self) -> None:
        """Memory, temperature, clocks and throttle reasons (after the energy timestamp)."""
        if self.device is not None:
            self._sample_extras(self.device)

    def reset_extras(self) -> None:
        """Forget peaks and reasons before a new window."""
        self._mem_peak: int | None = None
        self._proc_peak: int | None = None
        self._reasons = 0
        self._reasons_seen = False
        self._temp_max: int | None = None
        self._clock_min: int | None = None
        self._clock_max: int | None = None

    def _sample_extras(self, dev: NvmlDevice) -> None:
        for attr, query, combine in (
            ("_mem_peak", dev.memory_used_bytes, max),
            ("_temp_max", dev.temperature_c, max),
            ("_clock_min", dev.sm_clock_mhz, min),
            ("_clock_max", dev.sm_clock_mhz, max),
        ):
            try:
                v = query()
            except (NvmlNotSupported, OSError):
                continue
            old = getattr(self, attr)
            setattr(self, attr, v if old is None else combine(old, v))
        try:
            p = dev.process_memory_bytes(self.pid)
            if p is not None:
                self._proc_peak = p if self._proc_peak is None else max(self._proc_peak, p)
        except (NvmlNotSupported, OSError):
            pass
        try:
            self._reasons |= dev.throttle_reasons()
            self._reasons_seen = True
        except (NvmlNotSupported, OSError):
            pass

    def extra_measurements(self, start_ns: int, end_ns: int) -> list[Measurement]:
        """Peak GPU memory (device and this process), temperature, clocks, throttle reasons."""
        out: list[Measurement] = []
        if self._mem_peak is not None:
            out.append(Measurement(quantity="gpu_memory_used_peak", value=self._mem_peak, unit="B"))
        if self._proc_peak is not None:
            out.append(
                Measurement(quantity="gpu_memory_process_peak", value=self._proc_peak, unit="B")
            )
        if self._temp_max is not None:
            out.append(Measurement(quantity="gpu_temperature_max", value=self._temp_max, unit="C"))
        if self._clock_min is not None and self._clock_max is not None:
            out.append(Measurement(quantity="sm_clock_min", value=self._clock_min, unit="MHz"))
            out.append(Measurement(quantity="sm_clock_max", value=self._clock_max, unit="MHz"))
        if self._reasons_seen:
            out.append(
                Measurement(
                    quantity="throttle_reasons",
                    value=self._reasons,
                    unit="bitmask",
                    note="nvmlClocksEventReason bits seen during the window, OR-ed",
                )
            )
            out.append(
                throttled_measurement(
                    bool(self._reasons & THROTTLE_BITS),
                    "NVML clocks-event reasons: HW slowdown, thermal or power brake",
                )
            )
        return out

    def close(self) -> None:
        """Stop sampling and shut NVML down."""
        super().close()
        if self.device is not None:
            self.api.shutdown()
            self.device = None
