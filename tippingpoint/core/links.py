"""What a network link does to traffic, as the shapers apply it and the report records it.

A :class:`LinkSpec` is the emulation side of a network profile (``profiles/data/networks.toml``
holds the named ones; :meth:`tippingpoint.profiles.NetworkProfile.link` builds it): one-way delay
each way, jitter and its distribution with a seed, random loss or Gilbert-Elliott bursty loss,
rate each way, MTU, and scheduled outage windows. It lives here, below both the profiles (which
build it) and the harness (whose shapers apply it), because the report will embed it.

Units: milliseconds, Mbit/s (10^6 bit/s), bytes, seconds from the start of the shaper.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np
from pydantic import Field, model_validator

from tippingpoint.core.types import Frozen

LINUX_MIN_RTO_MS = 200.0
"""Linux's minimum TCP retransmission timeout (``TCP_RTO_MIN``): a lost segment with too few
segments behind it for fast retransmit waits at least this long on top of the RTT."""
LINUX_INITIAL_RTO_S = 1.0
"""Linux's initial retransmission timeout for a SYN (RFC 6298 section 2.1): a lost or
black-holed SYN is retried after 1, 3, 7, 15, ... seconds."""
TCP_IP_HEADER_BYTES = 52
"""IPv4 (20) + TCP (20) + timestamps option (12): the per-segment overhead within the MTU."""


class JitterDistribution(str, Enum):
    """How each packet's (or chunk's) extra delay is drawn around the one-way delay.

    ``uniform``: within +-jitter. ``normal``: standard deviation = jitter. ``pareto``: a
    heavy right tail (shape 3, shifted to mean 0, scaled to standard deviation = jitter).
    ``paretonormal``: netem's mix, 1/4 normal + 3/4 pareto. Draws below -delay are clipped, so
    the delay never goes negative; a TCP stream is delivered in order, so a draw never
    reorders bytes (it can only hold later ones back).
    """

    UNIFORM = "uniform"
    NORMAL = "normal"
    PARETO = "pareto"
    PARETONORMAL = "paretonormal"


class GilbertElliott(Frozen):
    """Bursty loss: a two-state Markov chain per packet (netem's ``loss gemodel p r 1-h 1-k``).

    Each packet the chain moves good->bad with ``p`` and bad->good with ``r``; a packet is lost
    with ``loss_in_bad`` in the bad state and ``loss_in_good`` in the good one. The mean loss is
    ``p / (p + r) * loss_in_bad + r / (p + r) * loss_in_good``; the mean burst is ``1 / r``
    packets.
    """

    p: float = Field(ge=0.0, le=1.0, description="probability good -> bad, per packet")
    r: float = Field(gt=0.0, le=1.0, description="probability bad -> good, per packet")
    loss_in_bad: float = Field(default=1.0, ge=0.0, le=1.0, description="netem's 1-h")
    loss_in_good: float = Field(default=0.0, ge=0.0, le=1.0, description="netem's 1-k")

    @property
    def mean_loss(self) -> float:
        """The stationary loss rate of the chain."""
        bad = self.p / (self.p + self.r)
        return bad * self.loss_in_bad + (1.0 - bad) * self.loss_in_good


class OutageMode(str, Enum):
    """What an outage does to TCP connections through the link.

    ``blackhole``: every packet is dropped for the window; open connections stall and resume
    after it (data held meanwhile), new connections' SYNs are retried on Linux's back-off
    (1, 3, 7, ... s), so clients see timeouts. ``reset``: connections open at the start are
    reset (RST) and connection attempts during the window are reset at once, so clients see
    connection errors.
    """

    BLACKHOLE = "blackhole"
    RESET = "reset"


class OutageWindow(Frozen):
    """One scheduled outage, from ``start_s`` after the shaper starts, for ``duration_s``;
    repeated every ``every_s`` when given."""

    start_s: float = Field(ge=0.0)
    duration_s: float = Field(gt=0.0)
    mode: OutageMode = OutageMode.BLACKHOLE
    every_s: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _period_exceeds_duration(self) -> OutageWindow:
        if self.every_s is not None and self.every_s <= self.duration_s:
            raise ValueError(f"every_s {self.every_s:g} must exceed duration_s {self.duration_s:g}")
        return self

    def active(self, t_s: float) -> tuple[float, float] | None:
        """The (start, end) of the occurrence covering ``t_s`` seconds from start, if any."""
        if t_s < self.start_s:
            return None
        k = 0.0 if self.every_s is None else math.floor((t_s - self.start_s) / self.every_s)
        begin = self.start_s + k * (self.every_s or 0.0)
        end = begin + self.duration_s
        return (begin, end) if begin <= t_s < end else None

    def occurrences(self, until_s: float) -> list[tuple[float, float]]:
        """Every (start, end) that begins before ``until_s``."""
        out: list[tuple[float, float]] = []
        begin = self.start_s
        while begin < until_s:
            out.append((begin, begin + self.duration_s))
            if self.every_s is None:
                break
            begin += self.every_s
        return out


class LinkSpec(Frozen):
    """The emulation parameters of one network profile, ready for a shaper.

    ``rate_up_mbps``/``rate_down_mbps`` of None mean unlimited. ``loss`` is the random
    per-packet loss; ``bursty_loss``, when given, replaces it (the shapers apply one model).
    """

    name: str = Field(min_length=1)
    user_defined: bool = Field(description="defined by the user, not one of tippingpoint's")
    source: str = Field(default="", description="where the figures come from; empty: assumed")
    caveat: str = ""
    delay_up_ms: float = Field(ge=0.0, description="one-way delay client -> endpoint")
    delay_down_ms: float = Field(ge=0.0, description="one-way delay endpoint -> client")
    jitter_ms: float = Field(default=0.0, ge=0.0)
    jitter_distribution: JitterDistribution = JitterDistribution.NORMAL
    seed: int = Field(default=1, ge=0, description="seed of the jitter and loss draws")
    loss: float = Field(default=0.0, ge=0.0, lt=1.0, description="random loss per packet")
    bursty_loss: GilbertElliott | None = None
    rate_up_mbps: float | None = Field(default=None, gt=0.0)
    rate_down_mbps: float | None = Field(default=None, gt=0.0)
    mtu: int = Field(default=1500, ge=576, le=65535)
    outages: tuple[OutageWindow, ...] = ()

    @model_validator(mode="after")
    def _finite(self) -> LinkSpec:
        for name in ("delay_up_ms", "delay_down_ms", "jitter_ms", "rate_up_mbps", "rate_down_mbps"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        return self

    @property
    def rtt_ms(self) -> float:
        """Round-trip propagation delay: one-way up plus one-way down, without jitter."""
        return self.delay_up_ms + self.delay_down_ms

    @property
    def mean_loss(self) -> float:
        """Mean per-packet loss of the model in force."""
        return self.bursty_loss.mean_loss if self.bursty_loss is not None else self.loss

    @property
    def mss(self) -> int:
        """TCP payload bytes per segment at this MTU."""
        return self.mtu - TCP_IP_HEADER_BYTES

    def features(self) -> frozenset[str]:
        """What the spec asks a shaper to do: delay, jitter, loss, rate, outages."""
        out: set[str] = set()
        if self.rtt_ms > 0:
            out.add("delay")
        if self.jitter_ms > 0:
            out.add("jitter")
        if self.mean_loss > 0:
            out.add("loss")
        if self.rate_up_mbps is not None or self.rate_down_mbps is not None:
            out.add("rate")
        if self.outages:
            out.add("outages")
        return frozenset(out)

    def describe(self) -> str:
        """One line: name, RTT, rates, loss, jitter, outages."""

        def rate(v: float | None) -> str:
            return "unlimited" if v is None else f"{v:g} Mbit/s"

        parts = [
            f"{self.name}: RTT {self.rtt_ms:g} ms "
            f"({self.delay_up_ms:g} up + {self.delay_down_ms:g} down)",
            f"up {rate(self.rate_up_mbps)}, down {rate(self.rate_down_mbps)}",
        ]
        if self.jitter_ms:
            parts.append(f"jitter {self.jitter_ms:g} ms {self.jitter_distribution.value}")
        if self.bursty_loss is not None:
            parts.append(f"bursty loss {self.mean_loss:.2%} mean")
        elif self.loss:
            parts.append(f"loss {self.loss:.2%}")
        if self.outages:
            parts.append(f"{len(self.outages)} outage window(s)")
        if self.user_defined:
            parts.append("user-defined")
        return ", ".join(parts)


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
