"""Seed 003's Table 1 from measurements: cloud, edge, hybrid and split placements side by side
(latency, energy, cost, bandwidth used), each cell naming the run (or cost result) it comes
from. Only measured figures enter: a placement without a run is left out, an estimated energy
is not shown, and cost comes only from a supplied cost result (computed from measured runs).

Usage::

    table = placements_table(runs, cost)     # None when fewer than two placements were run
    table.note, table.caption, table.headers, table.rows
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tippingpoint.core.schema import MeasurementMethod, Report, RunStatus
from tippingpoint.core.types import Device
from tippingpoint.reports.runs import RunData

if TYPE_CHECKING:
    from tippingpoint.calculator.result import CostResult, PlacementResult

PLACEMENTS = ("cloud", "edge", "hybrid", "split")
NOTE = (
    "Seed 003's Table 1 (cloud-centric, edge-centric, hybrid) built from these runs: latency "
    "p50 / p99 of the row's single-stream run (else its first), energy per inference where a "
    "collector measured it (estimates are not shown), cost per million inferences from the "
    "cost result (computed from the measured runs and the profiles), bytes sent and received "
    "per inference. Each cell names its source."
)


@dataclass(frozen=True)
class PlacementsTable:
    """The table's note, caption, headers and one row per placement that was run."""

    note: str
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def placement_of(report: Report) -> str:
    """cloud, edge, hybrid or split: how the run placed its inference."""
    if report.hybrid is not None:
        return "hybrid"
    if report.split is not None:
        return "split"
    remote = report.backend is not None and report.backend.device is Device.REMOTE
    return "cloud" if report.http is not None or remote else "edge"


def _rid(r: RunData) -> str:
    return f"run {r.report.run_id[:8]}"


def _chosen(runs: Sequence[RunData]) -> RunData:
    """The run a row's latency and bandwidth come from: a single-stream run if there is one
    (latencies comparable across rows), else the first."""
    for r in runs:
        if r.report.scenario.kind.value == "single-stream":
            return r
    return runs[0]


def _energy(runs: Sequence[RunData]) -> str:
    for r in runs:
        e = r.report.collectors.energy
        if (
            e is not None
            and e.valid
            and e.method is not MeasurementMethod.ESTIMATED
            and e.joules_per_inference is not None
        ):
            return f"{e.joules_per_inference:.3g} J ({_rid(r)})"
    return "not measured"


def _bandwidth(r: RunData, placement: str) -> str:
    http = r.report.http
    if http is None:
        return "none: no network" if placement == "edge" else "-"
    per = http.bytes_sent_per_request + http.bytes_received_per_request
    return f"{per:,.0f} B ({_rid(r)})"


def _cost(placement: str, cost: CostResult | None) -> str:
    if cost is None:
        return "no cost result"
    found: PlacementResult | None = None
    if placement == "edge":
        found = cost.edge
    else:
        for analysis in cost.analyses:
            for p in analysis.placements:
                if p.placement.value == placement:
                    found = p
                    break
            if found is not None:
                break
    if found is None:
        return "not costed"
    return f"{found.cost_per_million:,.2f} {cost.currency}/M ({found.label})"


def placements_table(runs: Sequence[RunData], cost: CostResult | None) -> PlacementsTable | None:
    """The table, one row per placement that was run (at least two, else None)."""
    by: dict[str, list[RunData]] = {}
    for r in runs:
        if r.report.status is RunStatus.COMPLETE and r.report.results is not None:
            by.setdefault(placement_of(r.report), []).append(r)
    if len(by) < 2:
        return None
    rows = []
    for placement in PLACEMENTS:
        group = by.get(placement)
        if not group:
            continue
        r = _chosen(group)
        lat = r.report.results.latency if r.report.results is not None else None
        latency = f"{lat.p50:.3g} / {lat.p99:.3g} ms ({_rid(r)})" if lat is not None else "-"
        extra = ""
        if r.report.hybrid is not None:
            extra = f", offload {r.report.hybrid.offload_rate:.0%}"
        link = r.report.http.link if r.report.http is not None else None
        network = (
            f", {link.profile.name}"
            if link is not None
            else (", bare path" if placement != "edge" else "")  # no shaped link: say so
        )
        rows.append(
            (
                placement + extra + network,
                latency,
                _energy(group),
                _cost(placement, cost),
                _bandwidth(r, placement),
            )
        )
    return PlacementsTable(
        note=NOTE,
        caption="Placements: cloud, edge, hybrid, split (only those run)",
        headers=("placement", "latency p50 / p99", "energy", "cost", "bandwidth"),
        rows=tuple(rows),
    )
