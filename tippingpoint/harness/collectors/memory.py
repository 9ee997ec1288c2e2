"""The ``memory`` collector: peak resident set size of this process in the window (sampled
``VmRSS``), its lifetime peak (``VmHWM``), and the framework's own peak GPU allocation where
torch is in use (:mod:`tippingpoint.backends.torch_cuda`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tippingpoint.backends.torch_cuda import TorchModule, reset_torch_peak, torch_peak_allocated
from tippingpoint.core.schema import CollectorResult, Measurement, MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.polling import PollingCollector

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from tippingpoint.harness.collectors.options import PollingSettings


def parse_status_kib(text: str, key: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status in bytes, e.g. VmRSS."""
    m = re.search(rf"^{key}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


class MemoryCollector(PollingCollector):
    """Peak RSS of this process in the window (sampled), its lifetime peak, torch's peak."""

    name = "memory"
    interval_s = 0.05

    def __init__(
        self, *, torch: TorchModule | None = None, **settings: Unpack[PollingSettings]
    ) -> None:
        super().__init__(**settings)
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

    def _window_opened(self) -> None:
        """Reset the window peaks (ours and torch's CUDA one)."""
        self._torch_reset = reset_torch_peak(self._torch)
        self._peak = None
        self._samples = 0

    def _window_result(self, t_ns: int) -> CollectorResult:
        """Peak RSS in the window and over the process's life."""
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
