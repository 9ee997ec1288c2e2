"""An interrupt that native code turns into another exception still reads as an interrupt.

numpy's ``import_array`` (run by ``import onnxruntime``'s extension) replaces a pending
KeyboardInterrupt with ``ImportError("numpy.core.multiarray failed to import")``; a run hit by
Ctrl-C or SIGTERM while loading its runtime was then reported failed, "onnxruntime is not
installed" (seen in CI, where a loaded machine made the import slow)."""

from __future__ import annotations

import signal
import time

import pytest

from tippingpoint.core.schema import RunStatus
from tippingpoint.harness.interrupts import interrupted_since, raise_interrupt
from tippingpoint.harness.runner import _failed_or_interrupted


def _native_import_hit_by(signum: int) -> None:
    """What a C extension's init does when the handler raises inside it."""
    try:
        raise_interrupt(signum, None)
    except KeyboardInterrupt:
        raise ImportError("numpy.core.multiarray failed to import") from None


def test_a_failure_after_an_interrupt_is_an_interrupted_run() -> None:
    began = time.monotonic()
    assert _failed_or_interrupted(began) is RunStatus.FAILED
    with pytest.raises(ImportError):
        _native_import_hit_by(signal.SIGTERM)
    assert interrupted_since(began)
    assert _failed_or_interrupted(began) is RunStatus.INTERRUPTED
    # a later run, begun after the interrupt, fails as a failure
    assert _failed_or_interrupted(time.monotonic()) is RunStatus.FAILED
