"""Interrupts that native code turns into other exceptions.

A KeyboardInterrupt raised while a C extension initialises (numpy's ``import_array`` inside
``import onnxruntime``, for one) comes back as an ImportError, and the run would then be reported
as failed with "onnxruntime is not installed". The harness's signal handlers note when they fire,
so the runner can tell a failure that an interrupt caused from a real one and report the run
interrupted, keeping the failure it caused beside it.
"""

from __future__ import annotations

import time
from types import FrameType

_fired_at: float | None = None


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler: note the time, then raise KeyboardInterrupt (as Ctrl-C does)."""
    global _fired_at
    _fired_at = time.monotonic()
    raise KeyboardInterrupt


def interrupted_since(since: float) -> bool:
    """Whether one of the harness's handlers fired at or after ``since`` (time.monotonic)."""
    return _fired_at is not None and _fired_at >= since
