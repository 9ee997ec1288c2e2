"""Latency feasibility: does each placement's p99 meet the workload's SLO?

Edge p99 is the device report's. Cloud p99 = server-side p99 + network RTT + request bytes
over the uplink + response bytes over the downlink, plus one retransmission timeout
(max(200 ms, 2·RTT), Linux's minimum RTO) when the link's loss makes at least 1 % of requests
lose a packet. A hybrid placement is bounded by the slower of its two parts.
"""

from __future__ import annotations

import math

from pydantic import Field

from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.params import Basis
from tippingpoint.core.types import Frozen
from tippingpoint.profiles.schema import NetworkProfile

MSS_BYTES = 1448
"""TCP payload per packet on a 1500-byte MTU with timestamps."""
MIN_RTO_MS = 200.0
"""Linux's minimum retransmission timeout."""


class LatencyPart(Frozen):
    """One term of a p99 estimate."""

    name: str
    ms: float
    basis: Basis
    origin: str = ""


class LatencyCheck(Frozen):
    """A placement's p99 against the SLO."""

    placement: Placement
    p99_ms: float | None = Field(description="None when no figure exists to judge")
    slo_ms: float | None = None
    feasible: bool
    parts: tuple[LatencyPart, ...] = ()
    reason: str | None = None


def transfer_ms(n_bytes: float, mbps: float) -> float:
    """Time to push ``n_bytes`` through a link of ``mbps`` megabits per second, in ms."""
    return n_bytes * 8.0 / (mbps * 1e6) * 1000.0


def loss_penalty_ms(network: NetworkProfile, request_bytes: float, response_bytes: float) -> float:
    """One RTO when at least 1 % of requests lose a packet, else 0."""
    packets = math.ceil(request_bytes / MSS_BYTES) + math.ceil(response_bytes / MSS_BYTES) + 2
    p_request = 1.0 - (1.0 - network.loss.value) ** packets
    return max(MIN_RTO_MS, 2.0 * network.rtt_ms.value) if p_request >= 0.01 else 0.0


def network_parts(
    network: NetworkProfile, request_bytes: float, response_bytes: float
) -> list[LatencyPart]:
    """RTT, upload, download and loss terms of a cloud request over ``network``."""
    basis = Basis.ASSUMED if network.rtt_ms.assumed else Basis.SOURCED
    origin = f"network profile '{network.name}'"
    parts = [
        LatencyPart(name="network RTT", ms=network.rtt_ms.value, basis=basis, origin=origin),
        LatencyPart(
            name="request upload",
            ms=transfer_ms(request_bytes, network.uplink_mbps.value),
            basis=basis,
            origin=origin,
        ),
        LatencyPart(
            name="response download",
            ms=transfer_ms(response_bytes, network.downlink_mbps.value),
            basis=basis,
            origin=origin,
        ),
    ]
    penalty = loss_penalty_ms(network, request_bytes, response_bytes)
    if penalty:
        parts.append(
            LatencyPart(name="retransmission (loss)", ms=penalty, basis=basis, origin=origin)
        )
    return parts


def check(
    placement: Placement,
    parts: list[LatencyPart] | None,
    slo_ms: float | None,
    on_premises_only: bool = False,
) -> LatencyCheck:
    """Sum the parts and compare with the SLO; no parts means no figure to judge by."""
    if on_premises_only and placement is not Placement.EDGE:
        total = sum(p.ms for p in parts) if parts else None
        return LatencyCheck(
            placement=placement,
            p99_ms=total,
            slo_ms=slo_ms,
            feasible=False,
            parts=tuple(parts or ()),
            reason="the workload's data must stay on premises",
        )
    if parts is None:
        return LatencyCheck(
            placement=placement,
            p99_ms=None,
            slo_ms=slo_ms,
            feasible=slo_ms is None,
            reason=None if slo_ms is None else "no p99 figure to check against the SLO",
        )
    total = sum(p.ms for p in parts)
    ok = slo_ms is None or total <= slo_ms
    return LatencyCheck(
        placement=placement,
        p99_ms=total,
        slo_ms=slo_ms,
        feasible=ok,
        parts=tuple(parts),
        reason=None if ok else f"p99 {total:.1f} ms exceeds the {slo_ms:g} ms SLO",
    )
