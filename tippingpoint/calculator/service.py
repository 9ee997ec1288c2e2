"""What the link and the latency bound cost: uplink capacity, late requests, outages.

* Link capacity: the busiest month's peak upload, peak rate x the bytes each inference sends
  up (the cloud's share sends the whole request; the edge's share sends the workload's
  ``edge_upstream_share`` of it), against the network profile's uplink. Over it, the
  placement is infeasible.
* Late requests: the share of requests over the latency bound, from the measured run's raw
  samples (measured) or, without them, from its percentiles (estimated: the empirical
  distribution function interpolated linearly between min, p50, p90, p95, p99, p99.9 and max).
  A cloud request adds the network's fixed terms (RTT, transfers) to each sample, and a
  retransmission timeout to the share ``p`` of requests that lose a packet:
  late = (1 - p) · P(s + fixed > bound) + p · P(s + fixed + RTO > bound).
  A cloud report measured under the cost's network (``run --network``) needs no added terms:
  its client-side samples already crossed that link (measured).
  The range is the Wilson 95 % interval of the share over the n requests measured.
* Outage: the share of time the cloud is unreachable, 1 - availability or outage hours / 8760.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from tippingpoint.calculator.capacity import CloudFigures, EdgeFigures
from tippingpoint.calculator.latency import (
    MIN_RTO_MS,
    MSS_BYTES,
    measured_link,
    payload_difference,
    transfer_ms,
)
from tippingpoint.calculator.model import monthly_volume
from tippingpoint.calculator.params import Basis, InputValue, Param, make_input
from tippingpoint.calculator.result import LinkCheck
from tippingpoint.core.schema import LatencyStats
from tippingpoint.profiles.schema import CloudProfile, NetworkProfile

Z95 = 1.959963984540054
"""The standard normal quantile of 97.5 %."""


def peak_upload_mbps(
    values: dict[Param, float], months: int, edge_share: float, upstream: float
) -> float:
    """The busiest month's peak upload, Mbit/s: peak rate x bytes sent up per inference x 8."""
    one = {p: np.array([v]) for p, v in values.items()}
    _, peak = monthly_volume(one, months)
    per_inference = values[Param.REQUEST_BYTES] * ((1.0 - edge_share) + edge_share * upstream)
    return float(peak.max()) * per_inference * 8.0 / 1e6


def link_check(
    network: str, uplink_mbps: float, upload_mbps: float, sends: bool = True
) -> LinkCheck | None:
    """The peak upload against the uplink; None when the placement sends nothing up."""
    if not sends:
        return None
    ok = upload_mbps <= uplink_mbps
    reason = None
    if not ok:
        reason = (
            f"peak upload {upload_mbps:.3g} Mbit/s exceeds the {uplink_mbps:g} Mbit/s uplink "
            f"of network '{network}'"
        )
    return LinkCheck(
        network=network,
        peak_upload_mbps=upload_mbps,
        uplink_mbps=uplink_mbps,
        feasible=ok,
        reason=reason,
    )


def wilson(share: float, n: int) -> tuple[float, float]:
    """The Wilson score 95 % interval of a proportion ``share`` observed over ``n`` trials."""
    if n <= 0:
        return 0.0, 1.0
    z2 = Z95 * Z95
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def share_over_samples(
    samples_ms: NDArray[np.float64],
    bound_ms: float,
    added_ms: float = 0.0,
    retry_share: float = 0.0,
    retry_ms: float = 0.0,
) -> float:
    """Share of requests over ``bound_ms`` from raw latencies, with fixed and retry terms."""
    if samples_ms.size == 0:
        return 0.0
    plain = float(np.mean(samples_ms + added_ms > bound_ms))
    if retry_share <= 0:
        return plain
    retried = float(np.mean(samples_ms + added_ms + retry_ms > bound_ms))
    return (1.0 - retry_share) * plain + retry_share * retried


def _cdf(stats: LatencyStats, x: float) -> float:
    qs = [stats.min, stats.p50, stats.p90, stats.p95, stats.p99, stats.p999, stats.max]
    ps = [0.0, 0.50, 0.90, 0.95, 0.99, 0.999, 1.0]
    xs = np.maximum.accumulate(np.asarray(qs, dtype=float))
    return float(np.interp(x, xs, ps, left=0.0, right=1.0))


def share_over_stats(
    stats: LatencyStats,
    bound_ms: float,
    added_ms: float = 0.0,
    retry_share: float = 0.0,
    retry_ms: float = 0.0,
) -> float:
    """Share of requests over ``bound_ms`` estimated from percentiles (see the module notes)."""
    plain = 1.0 - _cdf(stats, bound_ms - added_ms)
    if retry_share <= 0:
        return plain
    retried = 1.0 - _cdf(stats, bound_ms - added_ms - retry_ms)
    return (1.0 - retry_share) * plain + retry_share * retried


def unavailability(availability: float | None, outage_hours: float | None) -> float | None:
    """Share of time the cloud is unreachable: 1 - availability, or outage hours / 8760."""
    if availability is not None:
        return 1.0 - availability
    if outage_hours is not None:
        return outage_hours / 8760.0
    return None


def network_terms(
    network: NetworkProfile, request_bytes: float, response_bytes: float
) -> tuple[float, float, float]:
    """(fixed ms, share of requests that lose a packet, retransmission timeout ms) of a cloud
    request over ``network``: the terms a late share adds to a measured server time."""
    fixed = (
        network.rtt_ms.value
        + transfer_ms(request_bytes, network.uplink_mbps.value)
        + transfer_ms(response_bytes, network.downlink_mbps.value)
    )
    packets = math.ceil(request_bytes / MSS_BYTES) + math.ceil(response_bytes / MSS_BYTES) + 2
    p_request = 1.0 - (1.0 - network.loss.value) ** packets
    return fixed, p_request, max(MIN_RTO_MS, 2.0 * network.rtt_ms.value)


def _share_input(param: Param, share: float, n: int, basis: Basis, origin: str) -> InputValue:
    low, high = wilson(share, n)
    return make_input(param, share, basis, origin, low=min(low, share), high=max(high, share))


def late_inputs(
    slo_ms: float,
    edge: EdgeFigures,
    cloud_fig: CloudFigures | None,
    cloud: CloudProfile,
    network: NetworkProfile,
    payload: tuple[float, float],
    samples: Mapping[str, NDArray[np.float64]],
) -> dict[Param, InputValue]:
    """The share of each side's requests over ``slo_ms``: raw samples first, else percentiles.

    ``payload`` is (request bytes, response bytes); ``samples`` holds raw latencies in ms by
    report ``run_id``.
    """
    out: dict[Param, InputValue] = {}
    raw = samples.get(edge.run_id)
    if raw is not None and raw.size:
        out[Param.EDGE_LATE_SHARE] = _share_input(
            Param.EDGE_LATE_SHARE,
            share_over_samples(raw, slo_ms),
            int(raw.size),
            Basis.MEASURED,
            f"report {edge.run_id[:8]}: {raw.size} raw latencies over {slo_ms:g} ms",
        )
    elif edge.latency is not None:
        out[Param.EDGE_LATE_SHARE] = _share_input(
            Param.EDGE_LATE_SHARE,
            share_over_stats(edge.latency, slo_ms),
            edge.latency.count,
            Basis.ESTIMATED,
            f"report {edge.run_id[:8]}: percentiles (no raw samples) over {slo_ms:g} ms",
        )
    measured, _ = measured_link(cloud_fig, network)
    raw = samples.get(measured.run_id) if measured is not None else None
    if measured is not None:
        # measured under this network: the client-side latencies already hold the link
        extra = payload_difference(
            network, payload, (measured.request_bytes, measured.response_bytes)
        )
        added = extra.ms if extra is not None else 0.0
        plus = f", plus {extra.origin}" if extra is not None else ""
        under = f"measured under network '{network.name}' over {slo_ms:g} ms{plus}"
        if raw is not None and raw.size:
            out[Param.CLOUD_LATE_SHARE] = _share_input(
                Param.CLOUD_LATE_SHARE,
                share_over_samples(raw, slo_ms, added),
                int(raw.size),
                Basis.MEASURED if extra is None else Basis.ESTIMATED,
                f"report {measured.run_id[:8]}: {raw.size} raw client-side latencies {under}",
            )
        else:
            out[Param.CLOUD_LATE_SHARE] = _share_input(
                Param.CLOUD_LATE_SHARE,
                share_over_stats(measured.latency, slo_ms, added),
                measured.latency.count,
                Basis.ESTIMATED,
                f"report {measured.run_id[:8]}: percentiles (no raw samples) {under}",
            )
        return out
    fixed, retry, rto = network_terms(network, *payload)
    terms = f" + network '{network.name}' ({fixed:.3g} ms; {retry:.2%} retransmit {rto:g} ms)"
    stats_cloud = None
    if cloud_fig is not None:
        raw = samples.get(cloud_fig.run_id)
        if raw is not None and raw.size:
            out[Param.CLOUD_LATE_SHARE] = _share_input(
                Param.CLOUD_LATE_SHARE,
                share_over_samples(raw, slo_ms, fixed, retry, rto),
                int(raw.size),
                Basis.ESTIMATED,
                f"report {cloud_fig.run_id[:8]}: {raw.size} raw client-side latencies{terms}",
            )
            return out
        stats_cloud = cloud_fig.server_latency or cloud_fig.latency
    if stats_cloud is not None and cloud_fig is not None:
        out[Param.CLOUD_LATE_SHARE] = _share_input(
            Param.CLOUD_LATE_SHARE,
            share_over_stats(stats_cloud, slo_ms, fixed, retry, rto),
            stats_cloud.count,
            Basis.ESTIMATED,
            f"report {cloud_fig.run_id[:8]}: percentiles (no raw samples){terms}",
        )
        return out
    p99 = cloud.server_p99_ms.value if cloud.server_p99_ms is not None else None
    within = p99 is not None and p99 + fixed <= slo_ms
    out[Param.CLOUD_LATE_SHARE] = make_input(
        Param.CLOUD_LATE_SHARE,
        0.005 if within else 0.01,
        Basis.ASSUMED,
        f"cloud profile '{cloud.name}': no latency distribution; p99"
        + (" within the bound, so at most 1 %" if within else " not within the bound"),
        low=0.0 if within else 0.01,
        high=0.01 if within else 1.0,
    )
    return out
