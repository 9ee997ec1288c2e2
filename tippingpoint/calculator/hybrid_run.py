"""A hybrid placement costed from a measured hybrid run instead of a fixed share.

A report of the ``hybrid`` backend (``report.hybrid`` set) measured how its policy routed real
requests: the share answered on the edge is ``1 - offload rate`` (fallbacks count as offloaded:
they were sent first) and its client p99 covers both sides as they ran. The calculator takes
the edge share from it (basis measured, naming the run) in place of the workload's
``hybrid_edge_share``, and the hybrid latency from its p99 when the run was measured under the
cost's network profile (else the slower side's, as without a run). Hybrid reports never feed
the edge or cloud figures: they measured neither side alone.

Usage::

    hybrid, rest, notes = split_hybrid_runs(kept)
    if hybrid is not None:
        hybrid.edge_share, hybrid.origin
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tippingpoint.core.schema import Report


@dataclass(frozen=True)
class HybridFigures:
    """What one measured hybrid run gives the calculator."""

    edge_share: float
    """1 - the run's offload rate."""
    p99_ms: float | None
    """The run's client p99 (both sides, as routed), ms."""
    network: str | None
    """The network profile the run was shaped by (``run --network``); None on the bare path."""
    origin: str
    """``hybrid run 1a2b3c4d (queue-depth, offload 23.0%)``."""
    run_id: str


def _figures(r: Report) -> HybridFigures:
    h = r.hybrid
    assert h is not None
    link = r.http.link if r.http is not None else None
    return HybridFigures(
        edge_share=1.0 - h.offload_rate,
        p99_ms=r.results.latency.p99 if r.results is not None else None,
        network=link.profile.name if link is not None else None,
        origin=f"hybrid run {r.run_id[:8]} ({h.policy}, offload {h.offload_rate:.1%})",
        run_id=r.run_id,
    )


def split_hybrid_runs(
    reports: Sequence[Report],
) -> tuple[HybridFigures | None, list[Report], list[str]]:
    """The hybrid figures of the latest complete hybrid run (None without one), the other
    reports, and a note per hybrid run left out."""
    hybrid = [r for r in reports if r.hybrid is not None and r.results is not None]
    rest = [r for r in reports if r.hybrid is None]
    if not hybrid:
        return None, rest, []
    hybrid.sort(key=lambda r: r.finished_at)
    chosen = hybrid[-1]
    notes = [
        f"hybrid run {r.run_id[:8]} not used: the latest hybrid run "
        f"({chosen.run_id[:8]}) gives the hybrid placement's edge share"
        for r in hybrid[:-1]
    ]
    return _figures(chosen), rest, notes
