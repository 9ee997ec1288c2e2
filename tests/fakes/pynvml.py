"""A fake ``pynvml`` module: the functions ``gpu_info`` calls, with two H100s.

Not the collector's adapter (that fake is :mod:`tests.fakes.nvml`): this one stands in for the
NVML bindings themselves, as ``gpu_info(nvml=...)`` takes them.
"""

from __future__ import annotations

from dataclasses import dataclass


class FakePynvmlError(Exception):
    """Stands in for ``pynvml.NVMLError``."""


@dataclass
class _Memory:
    total: int


class FakePynvml:
    """The subset of the pynvml API gpu_info uses, with two H100s (bytes, as old bindings)."""

    NVMLError = FakePynvmlError

    def __init__(self, fail_init: bool = False, has_cuda_call: bool = True) -> None:
        self.fail_init = fail_init
        self.has_cuda_call = has_cuda_call
        self.shutdowns = 0

    def nvmlInit(self) -> None:  # pynvml spells its functions in camelCase
        if self.fail_init:
            raise FakePynvmlError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        if not self.has_cuda_call:
            raise FakePynvmlError("Function Not Found")
        return 12040

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return 100 + index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return f"NVIDIA H100 80GB HBM3 #{handle - 100}"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> _Memory:
        return _Memory(total=85_520_809_984)
