"""The ``cpu`` collector: this process's CPU time over the window (all its threads), as cores
used and as a fraction of the machine, plus the machine's utilisation from ``/proc/stat``.

Both are counters read at the window's edges: no sampling thread.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.core.schema import CollectorResult, Measurement, MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorBase
from tippingpoint.harness.collectors.sysfs import Clock, Opener, SysfsReader, read_text

if TYPE_CHECKING:
    from typing_extensions import Self

    from tippingpoint.harness.collectors.options import CollectorOptions


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


class CpuCollector(CollectorBase):
    """CPU time of this process and utilisation of the machine over the window."""

    name = "cpu"

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (where /proc is)."""
        return cls(root=options.root, opener=options.opener)

    def __init__(
        self,
        *,
        cpus: int | None = None,
        cpu_time_ns: Clock = time.process_time_ns,
        root: Path = Path("/"),
        opener: Opener = read_text,
    ) -> None:
        self.reader = SysfsReader(root, opener)
        self.cpus = cpus or os.cpu_count() or 1
        self.cpu_time_ns = cpu_time_ns
        self._start_ns = 0
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
