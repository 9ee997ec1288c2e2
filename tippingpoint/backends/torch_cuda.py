"""torch's CUDA state as the rest of tippingpoint sees it, without importing torch.

The memory collector reads torch's own peak CUDA allocation over a measured window, but only
where a torch backend already put CUDA to use in this process: importing torch (seconds) or
initialising CUDA (a context on the GPU) to read a figure would change what is measured. The
torch backend times its CUDA phases with events made by :func:`timing_events`.

Usage::

    reset = reset_torch_peak()        # at the window's start; False without torch on CUDA
    ...                               # the measured queries
    peak = torch_peak_allocated()     # bytes, or None without torch on CUDA
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    import torch


class CudaMemory(Protocol):
    """The part of ``torch.cuda`` read here."""

    def is_available(self) -> bool:
        """Whether CUDA can be used at all."""
        ...

    def is_initialized(self) -> bool:
        """Whether this process has initialised CUDA."""
        ...

    def max_memory_allocated(self) -> int:
        """Peak bytes allocated by torch since the last reset."""
        ...

    def reset_peak_memory_stats(self) -> None:
        """Start the peak statistic afresh."""
        ...


class TorchModule(Protocol):
    """A ``torch`` module (tests pass a stand-in without a GPU)."""

    @property
    def cuda(self) -> CudaMemory:
        """``torch.cuda``."""
        ...


def cuda_in_use(torch: TorchModule | None = None) -> CudaMemory | None:
    """``torch.cuda`` when torch is already imported (or given) and has initialised CUDA."""
    module = torch if torch is not None else cast("TorchModule | None", sys.modules.get("torch"))
    if module is None:
        return None
    try:
        cuda = module.cuda
        if cuda.is_available() and cuda.is_initialized():
            return cuda
    except (RuntimeError, AttributeError):
        return None
    return None


def torch_peak_allocated(torch: TorchModule | None = None) -> int | None:
    """torch's own peak CUDA allocation, only when torch is already imported and using CUDA."""
    cuda = cuda_in_use(torch)
    if cuda is None:
        return None
    try:
        return int(cuda.max_memory_allocated())
    except (RuntimeError, AttributeError):
        return None


def reset_torch_peak(torch: TorchModule | None = None) -> bool:
    """Reset torch's CUDA peak-allocation statistic so it covers the next window only; True
    when torch with CUDA is in use and the reset happened."""
    cuda = cuda_in_use(torch)
    if cuda is None:
        return False
    try:
        cuda.reset_peak_memory_stats()
    except (RuntimeError, AttributeError):
        return False
    return True


def timing_events(n: int) -> list[torch.cuda.Event]:
    """``n`` CUDA events that record time (for phase timing); torch must be importable."""
    import torch

    # torch.cuda.Event's constructor is unannotated; this is its one typed entry point
    make_event: Callable[..., torch.cuda.Event] = torch.cuda.Event
    return [make_event(enable_timing=True) for _ in range(n)]
