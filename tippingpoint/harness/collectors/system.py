"""System collectors: CPU utilisation, memory, and temperatures, clocks and throttling.

* ``cpu``: this process's CPU time over the window (all its threads), as cores used and as a
  fraction of the machine, plus the machine's utilisation from ``/proc/stat``.
* ``memory``: peak resident set size of this process in the window (sampled ``VmRSS``), its
  lifetime peak (``VmHWM``), and the framework's own peak GPU allocation where torch is in use.
* ``thermal``: thermal-zone temperatures, cpufreq clocks (before, range, after), x86
  throttle counters, the state of CPU cooling devices (``cooling_deviceN`` of type
  ``cpufreq-*``/``Processor``: state > 0 caps the clocks, which is how ARM boards throttle),
  and on a Raspberry Pi the firmware's ``get_throttled`` bits; a window whose clocks throttled
  reports ``throttled`` = 1.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tippingpoint.core.schema import CollectorResult, Measurement, MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.options import CollectorOptions
from tippingpoint.harness.collectors.rpi import Gencmd, open_gencmd, parse_throttled
from tippingpoint.harness.collectors.sampling import Poller
from tippingpoint.harness.collectors.sysfs import Clock, Opener, SysfsReader, read_text
from tippingpoint.harness.collectors.throttle import throttled_measurement

RPI_NOW_THROTTLED = 0x2 | 0x4 | 0x8
"""get_throttled: ARM frequency capped, currently throttled, soft temperature limit active."""
RPI_OCCURRED = 0x20000 | 0x40000 | 0x80000
"""get_throttled: the same three, sticky since boot."""


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(busy, total) jiffies of the aggregate ``cpu`` line of /proc/stat."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:]]
            v += [0] * (8 - len(v))
            total = sum(v[:8])  # guest time is already inside user
            idle = v[3] + v[4]
            return total - idle, total
    raise ValueError("no aggregate cpu line in /proc/stat")


def parse_status_kib(text: str, key: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status in bytes, e.g. VmRSS."""
    m = re.search(rf"^{key}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


class _Simple:
    """Shared plumbing: a reader, a clock, an optional poller."""

    name = "system"
    interval_s = 0.5

    def __init__(
        self,
        *,
        root: Path = Path("/"),
        opener: Opener = read_text,
        clock: Clock = time.perf_counter_ns,
        background: bool = True,
        interval_s: float | None = None,
    ) -> None:
        self.reader = SysfsReader(root, opener)
        self.clock = clock
        self.background = background
        if interval_s is not None:
            self.interval_s = interval_s
        self._poller: Poller | None = None
        self._lock = threading.Lock()
        self._in_window = False
        self._start_ns = 0

    def poll(self) -> None:
        """One sample (called by the thread, or by tests)."""

    def _start_thread(self) -> None:
        if self.background:
            self._poller = Poller(self.name, self.interval_s, self.poll)
            self._poller.start()

    def close(self) -> None:
        """Stop the thread."""
        if self._poller is not None:
            self._poller.stop()
            self._poller = None


class CpuCollector(_Simple):
    """CPU time of this process and utilisation of the machine over the window."""

    name = "cpu"

    @classmethod
    def from_options(cls, options: CollectorOptions) -> CpuCollector:
        """Built from the run's collector options."""
        return cls(root=options.root, opener=options.opener)

    def __init__(
        self,
        *,
        cpus: int | None = None,
        cpu_time_ns: Clock = time.process_time_ns,
        root: Path = Path("/"),
        opener: Opener = read_text,
        clock: Clock = time.perf_counter_ns,
    ) -> None:
        super().__init__(root=root, opener=opener, clock=clock, background=False)
        self.cpus = cpus or os.cpu_count() or 1
        self.cpu_time_ns = cpu_time_ns
        self._proc0 = 0
        self._stat0: tuple[int, int] | None = None

    def _stat(self) -> tuple[int, int] | None:
        text = self.reader.try_read(self.reader.path("/proc/stat"))
        try:
            return parse_proc_stat(text) if text else None
        except ValueError:
            return None

    def open(self) -> None:
        """Always available: process CPU time needs no permission."""

    def begin_window(self, t_ns: int) -> None:
        """Record the counters at the start."""
        self._start_ns = t_ns
        self._proc0 = self.cpu_time_ns()
        self._stat0 = self._stat()

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        """Utilisation over the window."""
        cpu = (self.cpu_time_ns() - self._proc0) / 1e9
        wall = (t_ns - self._start_ns) / 1e9
        out = [
            Measurement(quantity="process_cpu_time", value=cpu, unit="s"),
            Measurement(
                quantity="process_cpu_cores",
                value=cpu / wall if wall > 0 else 0.0,
                unit="cores",
                note="CPU seconds per wall second, all threads",
            ),
            Measurement(
                quantity="process_cpu_utilisation",
                value=cpu / wall / self.cpus if wall > 0 else 0.0,
                unit="fraction",
                note=f"of {self.cpus} logical CPUs",
            ),
        ]
        stat1 = self._stat()
        if self._stat0 is not None and stat1 is not None and stat1[1] > self._stat0[1]:
            busy = (stat1[0] - self._stat0[0]) / (stat1[1] - self._stat0[1])
            out.append(
                Measurement(
                    quantity="system_cpu_utilisation",
                    value=busy,
                    unit="fraction",
                    note="/proc/stat",
                )
            )
        return CollectorResult(
            name=self.name,
            source="process_time_ns, /proc/stat",
            method=MeasurementMethod.COUNTER,
            scope="process",
            window_start_ns=self._start_ns,
            window_end_ns=t_ns,
            measurements=tuple(out),
        )


def _torch_cuda(torch: Any | None = None) -> Any | None:
    """``torch.cuda`` when torch is already imported and has initialised CUDA, else None."""
    torch = torch if torch is not None else sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda
    except (RuntimeError, AttributeError):
        return None
    return None


def torch_peak_allocated(torch: Any | None = None) -> int | None:
    """torch's own peak CUDA allocation, only when torch is already imported and using CUDA."""
    cuda = _torch_cuda(torch)
    if cuda is None:
        return None
    try:
        return int(cuda.max_memory_allocated())
    except (RuntimeError, AttributeError):
        return None


def reset_torch_peak(torch: Any | None = None) -> bool:
    """Reset torch's CUDA peak-allocation statistic so it covers the next window only; True
    when torch with CUDA is in use and the reset happened."""
    cuda = _torch_cuda(torch)
    if cuda is None:
        return False
    try:
        cuda.reset_peak_memory_stats()
    except (RuntimeError, AttributeError):
        return False
    return True


class MemoryCollector(_Simple):
    """Peak RSS of this process in the window (sampled), its lifetime peak, torch's peak."""

    name = "memory"
    interval_s = 0.05

    @classmethod
    def from_options(cls, options: CollectorOptions) -> MemoryCollector:
        """Built from the run's collector options."""
        return cls(root=options.root, opener=options.opener, background=options.background)

    def __init__(
        self,
        *,
        root: Path = Path("/"),
        opener: Opener = read_text,
        clock: Clock = time.perf_counter_ns,
        background: bool = True,
        interval_s: float | None = None,
        torch: Any | None = None,
    ) -> None:
        super().__init__(
            root=root, opener=opener, clock=clock, background=background, interval_s=interval_s
        )
        self._status = self.reader.path("/proc/self/status")
        self._peak: int | None = None
        self._samples = 0
        self._torch = torch
        """The torch module (tests pass a stand-in); by default the imported one, if any."""
        self._torch_reset = False

    def _read(self) -> str:
        return self.reader.read(self._status)

    def open(self) -> None:
        """Check /proc/self/status and start sampling."""
        try:
            text = self._read()
        except OSError as exc:
            raise CollectorUnavailable(
                f"memory: cannot read /proc/self/status ({exc.strerror or exc}); Linux only"
            ) from None
        if parse_status_kib(text, "VmRSS") is None:
            raise CollectorUnavailable("memory: /proc/self/status has no VmRSS")
        self._start_thread()

    def poll(self) -> None:
        """Sample VmRSS."""
        try:
            rss = parse_status_kib(self._read(), "VmRSS")
        except OSError:
            return
        with self._lock:
            if self._in_window and rss is not None:
                self._peak = rss if self._peak is None else max(self._peak, rss)
                self._samples += 1

    def begin_window(self, t_ns: int) -> None:
        """Reset the window peaks (ours and torch's CUDA one) and sample once."""
        self._torch_reset = reset_torch_peak(self._torch)
        with self._lock:
            self._start_ns = t_ns
            self._peak = None
            self._samples = 0
            self._in_window = True
        self.poll()

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        """Peak RSS in the window and over the process's life."""
        self.poll()
        with self._lock:
            self._in_window = False
            peak, n = self._peak, self._samples
        out = []
        if peak is not None:
            out.append(
                Measurement(
                    quantity="peak_rss_window",
                    value=peak,
                    unit="B",
                    note=f"max of {n} VmRSS samples",
                )
            )
        try:
            hwm = parse_status_kib(self._read(), "VmHWM")
        except OSError:
            hwm = None
        if hwm is not None:
            out.append(Measurement(quantity="peak_rss_process", value=hwm, unit="B", note="VmHWM"))
        torch_peak = torch_peak_allocated(self._torch)
        if torch_peak is not None:
            out.append(
                Measurement(
                    quantity="framework_gpu_peak_allocated",
                    value=torch_peak,
                    unit="B",
                    note="torch.cuda.max_memory_allocated, reset at the window's start"
                    if self._torch_reset
                    else "torch.cuda.max_memory_allocated since CUDA initialised in this process",
                )
            )
        return CollectorResult(
            name=self.name,
            source="/proc/self/status",
            method=MeasurementMethod.SAMPLED,
            scope="process",
            sample_rate_hz=1.0 / self.interval_s,
            window_start_ns=self._start_ns,
            window_end_ns=t_ns,
            valid=peak is not None,
            invalid_reason=None if peak is not None else "memory: no VmRSS sample in the window",
            measurements=tuple(out),
        )


@dataclass(frozen=True)
class _Zone:
    label: str
    path: Path


def _is_cpu_cooling(kind: str) -> bool:
    """Cooling devices that cap CPU clocks: ``cpufreq-cpu0``/``thermal-cpufreq-0`` (cpufreq
    cooling, as on ARM boards) and ``Processor`` (ACPI processor throttling)."""
    k = kind.lower()
    return "cpufreq" in k or k == "processor"


class ThermalCollector(_Simple):
    """Temperatures, CPU clocks and throttling before, during and after the window."""

    name = "thermal"
    interval_s = 0.5

    @classmethod
    def from_options(cls, options: CollectorOptions) -> ThermalCollector:
        """Built from the run's collector options."""
        return cls(root=options.root, opener=options.opener, background=options.background)

    def __init__(
        self,
        *,
        gencmd: Gencmd | None = None,
        root: Path = Path("/"),
        opener: Opener = read_text,
        clock: Clock = time.perf_counter_ns,
        background: bool = True,
        interval_s: float | None = None,
    ) -> None:
        super().__init__(
            root=root, opener=opener, clock=clock, background=background, interval_s=interval_s
        )
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

    def begin_window(self, t_ns: int) -> None:
        """Read everything once as the 'before' state."""
        with self._lock:
            self._reset()
            self._start_ns = t_ns
            self._temps_before = self._temps()
            self._temps_max = list(self._temps_before)
            self._counts_before = self._counts()
            self._rpi_before = self._rpi()
            self._freq_before = self._freqs()
            self._cooling_before = self._cooling_states()
            self._cooling_max = list(self._cooling_before)
            self._in_window = True
        self.poll()

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        """Temperatures before/max/after, clock range, throttle events and the flag."""
        self.poll()
        with self._lock:
            self._in_window = False
            after = self._temps()
            out: list[Measurement] = []
            for z, b, m, a in zip(
                self.zones, self._temps_before, self._temps_max, after, strict=True
            ):
                for what, v in (("before", b), ("max", m), ("after", a)):
                    if v is not None:
                        out.append(
                            Measurement(
                                quantity=f"temperature_{what}[{z.label}]", value=v, unit="C"
                            )
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
                    Measurement(
                        quantity="rpi_get_throttled", value=bits, unit="bitmask", note="OR-ed"
                    )
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
