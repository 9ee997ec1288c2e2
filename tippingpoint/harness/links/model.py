"""The per-direction link model of the user-space proxy: when does a chunk of a TCP stream
arrive, given the link's delay, jitter, loss, rate and outages.

Pure arithmetic on the event loop's clock (seconds), no I/O, seeded draws: the proxy calls
:meth:`DirectionModel.schedule` once per chunk it reads and delivers the chunk at the time
returned. The model is TCP-aware where the proxy cannot see packets:

- **rate**: a chunk is serialised on a bottleneck shared by every connection in that direction
  (``link_free``), counting TCP/IP headers per segment, so goodput is the rate times
  ``mss / (mss + 52)``;
- **loss**: each of the chunk's segments is lost with the random or Gilbert-Elliott model; a
  lost segment is recovered by fast retransmit (one RTT later) when three or more segments
  follow it in the chunk, else by the retransmission timeout (RTT + ``rto_min_ms``), doubled
  for every retransmission lost again. Later bytes wait for it (head-of-line blocking): a
  stall;
- **outages** (``blackhole``): a segment on the link during an outage is recovered by the
  first retransmission after the window ends (Linux's back-off from the original send).

Connection set-up (:meth:`DirectionModel.segment`) uses the same loss and outages with the
SYN's initial timeout of 1 s (RFC 6298), so a lost or black-holed SYN costs 1, 3, 7, ... s.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from tippingpoint.core.links import (
    LINUX_INITIAL_RTO_S,
    TCP_IP_HEADER_BYTES,
    JitterDistribution,
    LinkSpec,
    OutageMode,
    OutageWindow,
)

FAST_RETRANSMIT_DUPACKS = 3
"""Segments that must follow a lost one for the sender to see three duplicate ACKs."""
SLICE_S = 0.005
"""On a rate-limited direction a chunk is delivered in slices of this much link time (at least
one segment), so a large response arrives as a stream rather than in one burst."""
_PARETO_SHAPE = 3.0
_PARETO_MEAN = _PARETO_SHAPE / (_PARETO_SHAPE - 1.0)
_PARETO_STD = math.sqrt(_PARETO_SHAPE / ((_PARETO_SHAPE - 1.0) ** 2 * (_PARETO_SHAPE - 2.0)))


@dataclass
class Slice:
    """Part of a chunk and when it is delivered; ``stalled`` when a loss held it back."""

    at: float
    nbytes: int
    stalled: bool


@dataclass
class DirectionCounters:
    """What one direction of the link did, over every connection."""

    segments: int = 0
    lost_segments: int = 0
    stalls: int = 0
    stall_s: float = 0.0
    blackholed: dict[float, int] = field(default_factory=dict)
    """Segments held by each black-hole outage, keyed by its start (s from the start)."""


class DirectionModel:
    """One direction (up: client to endpoint, or down) of a :class:`LinkSpec`."""

    def __init__(self, spec: LinkSpec, up: bool, t0: float, rto_min_ms: float = 200.0) -> None:
        self.up = up
        self.t0 = t0
        ms = spec.delay_up_ms if up else spec.delay_down_ms
        self.delay_s = ms / 1e3
        self.jitter_s = spec.jitter_ms / 1e3
        self.distribution = spec.jitter_distribution
        rate = spec.rate_up_mbps if up else spec.rate_down_mbps
        self.rate_bps: float | None = None if rate is None else rate * 1e6
        self.mss = spec.mss
        self.loss = spec.loss
        self.ge = spec.bursty_loss
        self.ge_bad = False
        self.rtt_s = spec.rtt_ms / 1e3
        self.rto_s = self.rtt_s + rto_min_ms / 1e3
        self.blackholes: tuple[OutageWindow, ...] = tuple(
            o for o in spec.outages if o.mode is OutageMode.BLACKHOLE
        )
        self.rng = random.Random(spec.seed * 2 + (0 if up else 1))
        self.link_free = 0.0
        self.counters = DirectionCounters()
        self.lossy = self.ge is not None or self.loss > 0
        self.trivial = not (
            self.delay_s or self.jitter_s or self.rate_bps or self.lossy or self.blackholes
        )
        self.slice_bytes = (
            max(self.mss, int(self.rate_bps / 8 * SLICE_S)) if self.rate_bps else 1 << 62
        )

    # -- draws -----------------------------------------------------------------------------
    def _jitter(self) -> float:
        j = self.jitter_s
        if not j:
            return 0.0
        d = self.distribution
        if d is JitterDistribution.UNIFORM:
            x = self.rng.uniform(-j, j)
        elif d is JitterDistribution.NORMAL:
            x = self.rng.gauss(0.0, j)
        else:
            pareto = (self.rng.paretovariate(_PARETO_SHAPE) - _PARETO_MEAN) / _PARETO_STD
            if d is JitterDistribution.PARETO:
                x = j * pareto
            else:  # netem's paretonormal: a quarter normal, three quarters pareto
                x = j * (0.25 * self.rng.gauss(0.0, 1.0) + 0.75 * pareto)
        return max(x, -self.delay_s)

    def _lost(self) -> bool:
        """One packet through the loss model."""
        ge = self.ge
        rnd = self.rng.random
        if ge is None:
            return rnd() < self.loss
        if self.ge_bad:
            if rnd() < ge.r:
                self.ge_bad = False
        elif rnd() < ge.p:
            self.ge_bad = True
        return rnd() < (ge.loss_in_bad if self.ge_bad else ge.loss_in_good)

    def _blackout(self, t: float) -> tuple[float, float] | None:
        for o in self.blackholes:
            hit = o.active(t - self.t0)
            if hit is not None:
                return self.t0 + hit[0], self.t0 + hit[1]
        return None

    def _held(self, hole: tuple[float, float], segs: int) -> None:
        key = round(hole[0] - self.t0, 6)
        self.counters.blackholed[key] = self.counters.blackholed.get(key, 0) + segs

    def _recover(self, sent: float, first_rto: float) -> tuple[float, int]:
        """(extra delay, retransmissions) for a segment sent at ``sent`` whose first copy was
        lost: retransmissions at sent + rto, + 3 rto, + 7 rto, ... until one gets through."""
        wait, step, tries = first_rto, first_rto, 1
        while True:
            if self._blackout(sent + wait) is None and not (self.lossy and self._lost()):
                return wait, tries
            step *= 2
            wait += step
            tries += 1
            if tries > 15:  # Linux's tcp_retries2: the connection would be dead by now
                return wait, tries

    # -- scheduling --------------------------------------------------------------------------
    def segment(self, now: float) -> float:
        """Arrival time of a lone segment sent at ``now`` (a SYN or SYN-ACK): delay, jitter,
        and for a lost or black-holed one the SYN back-off from 1 s."""
        self.counters.segments += 1
        arrive = now + self.delay_s + self._jitter()
        lost = self.lossy and self._lost()
        hole = self._blackout(now) or self._blackout(arrive)
        if hole is not None:
            self._held(hole, 1)
        if lost or hole is not None:
            self.counters.lost_segments += 1
            extra, _ = self._recover(now, LINUX_INITIAL_RTO_S)
            self.counters.stalls += 1
            self.counters.stall_s += extra
            arrive += extra
        return arrive

    def schedule(self, now: float, nbytes: int) -> list[Slice]:
        """Delivery of ``nbytes`` read at ``now``: one slice, or several on a rate-limited
        direction; times are not yet ordered against the connection's earlier bytes."""
        out: list[Slice] = []
        left = nbytes
        c = self.counters
        while left > 0:
            n = min(left, self.slice_bytes)
            left -= n
            segs = -(-n // self.mss)
            c.segments += segs
            sent = now
            if self.rate_bps is not None:
                start = max(now, self.link_free)
                self.link_free = start + (n + segs * TCP_IP_HEADER_BYTES) * 8 / self.rate_bps
                sent = self.link_free
            at = sent + self.delay_s + self._jitter()
            extra = 0.0
            if self.lossy:
                for i in range(segs):
                    if self._lost():
                        c.lost_segments += 1
                        fast = segs - i - 1 >= FAST_RETRANSMIT_DUPACKS
                        wait, _ = self._recover(sent, self.rtt_s if fast else self.rto_s)
                        extra = max(extra, wait)
            hole = (self._blackout(sent) or self._blackout(at)) if self.blackholes else None
            if hole is not None:
                self._held(hole, segs)
                wait, _ = self._recover(sent, self.rto_s)
                extra = max(extra, wait)
            if extra:
                c.stalls += 1
                c.stall_s += extra
            out.append(Slice(at + extra, n, extra > 0))
        return out
