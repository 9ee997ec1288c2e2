"""The link record: what a shaped link was asked to do and what it did, for the report.

A later step adds ``link: LinkRecord | None`` to the report contract; the model then moves to
``tippingpoint/core/links.py`` beside :class:`~tippingpoint.core.links.LinkSpec` (the report
may not import the harness). Every figure here is measured during the run by the shaper itself
(bytes, handshakes, stalls, resets) or read from the kernel inside tippingpoint's namespace
(``/proc/net/snmp``, ``tc -s qdisc``); none is copied from the profile.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
from pydantic import Field

from tippingpoint.core.links import LinkSpec, OutageMode
from tippingpoint.core.types import Frozen


class ShaperKind(str, Enum):
    """How the link was emulated."""

    PROXY = "proxy"
    """User-space asyncio TCP proxy on loopback: delay, jitter, loss as stalls, rate, outages."""
    NETEM = "netem"
    """Linux ``tc netem`` on the loopback of a network namespace tippingpoint created."""
    TBF = "tbf"
    """Linux ``tc tbf`` (rate only) on the loopback of a namespace tippingpoint created."""


class LatencySummary(Frozen):
    """Percentiles of a set of durations, milliseconds."""

    n: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> LatencySummary | None:
        """The summary of ``seconds``, or None when there are none."""
        if not seconds:
            return None
        a = np.asarray(seconds, dtype=np.float64) * 1e3
        p50, p90, p99 = (float(x) for x in np.percentile(a, [50, 90, 99]))
        return cls(
            n=len(a),
            min_ms=float(a.min()),
            p50_ms=p50,
            p90_ms=p90,
            p99_ms=p99,
            max_ms=float(a.max()),
        )


class DirectionRecord(Frozen):
    """One direction of the link (``up``: client to endpoint)."""

    bytes: int = Field(description="payload bytes delivered")
    mean_mbps: float = Field(description="bytes over the whole recording window")
    goodput_mbps: float | None = Field(
        description="bytes over the time this direction was carrying data: deliveries under "
        "1 s apart form one busy period, whose first delivery is not counted (None: no period "
        "had two deliveries)"
    )
    busy_s: float = Field(description="total length of the busy periods")
    segments: int | None = Field(default=None, description="TCP segments the model counted")
    lost_segments: int | None = None
    stalls: int | None = Field(default=None, description="deliveries held back by a loss")
    stall_s: float | None = Field(default=None, description="total extra delay of the stalls")


class OutageRecord(Frozen):
    """One outage window that began during the recording, and what it did."""

    start_s: float
    end_s: float
    mode: OutageMode
    connections_reset: int = 0
    connections_refused: int = 0
    segments_held: int = Field(default=0, description="segments black-holed and retransmitted")


class KernelTcp(Frozen):
    """``/proc/net/snmp`` Tcp counters inside the namespace: the deltas over the run."""

    out_segs: int
    retrans_segs: int
    in_segs: int
    in_errs: int
    out_rsts: int

    @property
    def retransmit_share(self) -> float:
        """Retransmitted segments over all segments sent (``OutSegs`` leaves them out)."""
        sent = self.out_segs + self.retrans_segs
        return self.retrans_segs / sent if sent else 0.0


class QdiscRecord(Frozen):
    """``tc -s qdisc`` of one queueing discipline in the namespace, after the run."""

    direction: str = Field(description="up, down, or both when one qdisc carries both")
    kind: str
    sent_bytes: int
    sent_packets: int
    dropped: int
    overlimits: int


class LinkRecord(Frozen):
    """The profile, the shaper that applied it and why, and what the link actually did."""

    profile: LinkSpec
    shaper: ShaperKind
    shaper_reason: str = Field(description="the line printed when the shaper was chosen")
    window_s: float = Field(description="from the shaper's start to its stop")
    connections: int
    handshake_rtt: LatencySummary | None = Field(
        description="TCP connection set-up through the link, measured per connection"
    )
    up: DirectionRecord
    down: DirectionRecord
    resets: dict[str, int] = Field(
        default_factory=dict, description="connections ended by reset, by cause"
    )
    connect_errors: dict[str, int] = Field(
        default_factory=dict, description="upstream connection failures, by kind"
    )
    outages: tuple[OutageRecord, ...] = ()
    kernel_tcp: KernelTcp | None = None
    qdiscs: tuple[QdiscRecord, ...] = ()
    notes: tuple[str, ...] = ()
