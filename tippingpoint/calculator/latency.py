"""Latency feasibility: does each placement's p99 meet the workload's SLO?

Edge p99 is the device report's. Cloud p99 = server-side p99 + network RTT + request bytes
over the uplink + response bytes over the downlink, plus one retransmission timeout
(max(200 ms, 2·RTT), Linux's minimum RTO) when the link's loss makes at least 1 % of requests
lose a packet. A hybrid placement is bounded by the slower of its two parts.

The calculator prefers measurement: a cloud report measured under the cost's network profile
(``run --network NAME``, the same link) gives the cloud p99 as measured, client side, link
included (``measured``). Otherwise the sum above is a projection onto that network of a figure
measured on another link (or none): ``estimated``, and the check says from which report and
link it was projected.
"""

from __future__ import annotations

import math

from pydantic import Field

from tippingpoint.calculator.capacity import CloudFigures, LinkLatency
from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.params import Basis
from tippingpoint.core.links import LinkSpec
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
    basis: Basis | None = Field(
        default=None,
        description="measured: the p99 as measured (on the device, or the cloud through the "
        "cost's network); estimated: projected onto the network from another link",
    )
    method: str = Field(default="", description="how the p99 was obtained, and from what")

    @property
    def label(self) -> str:
        """The p99's basis as shown beside it: 'measured' or 'estimated' (empty: none)."""
        return self.basis.value if self.basis is not None and self.p99_ms is not None else ""


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


LINK_FIELDS = (
    "delay_up_ms",
    "delay_down_ms",
    "jitter_ms",
    "jitter_distribution",
    "loss",
    "bursty_loss",
    "rate_up_mbps",
    "rate_down_mbps",
    "mtu",
    "outages",
)
"""What a link does to traffic: a report measured under a profile of the cost's network's name
measured the same link only when these agree (the name, source, caveat and seed may differ)."""


def link_differences(measured: LinkSpec, wanted: LinkSpec) -> list[str]:
    """The fields in which the link a report was measured under differs from ``wanted``, each
    as 'field measured -> wanted'; empty when the two are the same link."""
    out = []
    for name in LINK_FIELDS:
        a, b = getattr(measured, name), getattr(wanted, name)
        same = (
            math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
            if isinstance(a, float) and isinstance(b, float)
            else a == b
        )
        if not same:
            show = [getattr(v, "value", v) for v in (a, b)]
            out.append(f"{name} {show[0]} -> {show[1]}")
    return out


PAYLOAD_TOLERANCE = 0.10
"""Payloads within 10% of the measured ones count as the measured payload."""


def payload_difference(
    network: NetworkProfile, costed: tuple[float, float], measured: tuple[float, float]
) -> LatencyPart | None:
    """The transfer time of the costed payload beyond (or short of) the one measured through
    the link, at the profile's rates, estimated; None when both directions are within
    :data:`PAYLOAD_TOLERANCE` of what was measured."""
    (req, resp), (m_req, m_resp) = costed, measured
    if math.isclose(req, m_req, rel_tol=PAYLOAD_TOLERANCE) and math.isclose(
        resp, m_resp, rel_tol=PAYLOAD_TOLERANCE
    ):
        return None
    ms = transfer_ms(req - m_req, network.uplink_mbps.value) + transfer_ms(
        resp - m_resp, network.downlink_mbps.value
    )
    return LatencyPart(
        name="payload difference",
        ms=ms,
        basis=Basis.ESTIMATED,
        origin=f"the costed payload ({req:.0f} B up, {resp:.0f} B down) against the measured "
        f"({m_req:.0f} B, {m_resp:.0f} B) at network '{network.name}''s rates",
    )


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


def measured_link(
    figures: CloudFigures | None, network: NetworkProfile
) -> tuple[LinkLatency | None, list[str]]:
    """The cloud latency measured under ``network`` (a report run with ``--network`` of that
    name, on the same link), and, when one ran under that name on another link, how it differs
    (it is then not used)."""
    if figures is None:
        return None, []
    for m in figures.measured_links:
        if m.profile.name == network.name:
            diff = link_differences(m.profile, network.link())
            return (None, diff) if diff else (m, [])
    return None, []
