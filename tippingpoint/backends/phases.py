"""Per-query phase times of a device session: host-to-device copy, compute, device-to-host copy.

A session on an accelerator whose bound call includes the copies times each phase with device
events and exposes the samples through :class:`PhaseTimedSession`; the runner clears them
before the measured part, reads them after it, and the report carries their summary next to
the end-to-end latency (which still spans the whole call).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

import numpy as np

from tippingpoint.core.schema import DevicePhases
from tippingpoint.core.stats import latency_stats


class TimedRegion(str, Enum):
    """What a session's timed call spans."""

    COMPUTE = "compute"
    """The forward pass only: inputs already where the computation runs (CPU sessions)."""
    COPIES_AND_COMPUTE = "h2d+compute+d2h"
    """Host-to-device copy of the inputs, the forward pass, device-to-host copy of the outputs."""


@dataclass
class PhaseSamples:
    """Per-query phase durations in nanoseconds, appended by a session's bound call."""

    # int64 arrays, not lists: 24 bytes per query over a long GPU run
    h2d_ns: array[int] = field(default_factory=lambda: array("q"))
    compute_ns: array[int] = field(default_factory=lambda: array("q"))
    d2h_ns: array[int] = field(default_factory=lambda: array("q"))

    def clear(self) -> None:
        """Forget all samples (before the measured part starts)."""
        del self.h2d_ns[:], self.compute_ns[:], self.d2h_ns[:]

    def __len__(self) -> int:
        return len(self.compute_ns)


@runtime_checkable
class PhaseTimedSession(Protocol):
    """A session that times its copies and compute separately."""

    def phase_samples(self) -> PhaseSamples | None:
        """The samples since the last reset, or None when phase timing is off."""
        ...

    def reset_phases(self) -> None:
        """Start collecting afresh."""
        ...

    @property
    def timed_region(self) -> TimedRegion:
        """What the session's timed call spans."""
        ...


def summarize_phases(samples: PhaseSamples, region: TimedRegion) -> DevicePhases | None:
    """The report's phase section (milliseconds), or None without samples."""
    if not len(samples):
        return None
    return DevicePhases(
        timed_region=region.value,
        method="cuda-events",
        h2d=latency_stats(np.frombuffer(samples.h2d_ns, dtype=np.int64), with_ci=False),
        compute=latency_stats(np.frombuffer(samples.compute_ns, dtype=np.int64), with_ci=False),
        d2h=latency_stats(np.frombuffer(samples.d2h_ns, dtype=np.int64), with_ci=False),
    )
