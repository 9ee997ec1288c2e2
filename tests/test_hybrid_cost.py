"""The calculator costs a hybrid placement from a measured hybrid run: the edge share is
1 - the run's offload rate (basis measured, naming the run) instead of the workload's fixed
share, and the hybrid report feeds neither the edge nor the cloud figures."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.latency import LatencyCheck
from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.params import Basis, Param
from tippingpoint.calculator.result import CostResult
from tippingpoint.core.schema import HybridResults, Report

from .calculator_factory import cloud_report, edge_report, hand_cloud, hand_profiles, sourced

TODAY = date(2026, 11, 23)
EDGE = edge_report(100, 20, joules=0.05)
CLOUD = cloud_report(peak_rate_qps=50, server_p99_ms=10)


def hybrid_report(offload: float, run_id: str, p99_ms: float = 30.0, age_s: int = 0) -> Report:
    """A hybrid run's report: the cloud fixture with a hybrid section and its own p99."""
    base = cloud_report(peak_rate_qps=None, server_p99_ms=10, client_p99_ms=p99_ms)
    h = HybridResults(
        policy="queue-depth",
        fallback=False,
        cache=False,
        requests=1000,
        decided=1000,
        offload_rate=offload,
        fallback_rate=0.0,
        answered_by={"local": round(1000 * (1 - offload)), "cloud": round(1000 * offload)},
        reasons={"queue-ok": round(1000 * (1 - offload)), "queue-full": round(1000 * offload)},
        policy_overhead_us_mean=2.0,
        policy_overhead_us_p99=5.0,
    )
    when = datetime(2026, 11, 20, tzinfo=timezone.utc) - timedelta(seconds=age_s)
    return base.model_copy(update={"hybrid": h, "run_id": run_id, "finished_at": when})


def _calc(reports: list[Report], **workload: object) -> CostResult:
    return calculate(
        reports,
        profiles=hand_profiles(**workload),
        clouds=[hand_cloud()],
        today=TODAY,
        tool_version="test",
        draws=0,
    )


def _share(result: CostResult) -> tuple[float, Basis, str]:
    row = next(r for r in result.analyses[0].inputs if r.param is Param.HYBRID_EDGE_SHARE)
    return row.value, row.basis, row.origin


def test_measured_offload_rate_sets_the_hybrid_edge_share() -> None:
    result = _calc([EDGE, CLOUD, hybrid_report(0.3, "hyb1aaaaaaaa")])
    placements = result.analyses[0].placements
    assert [p.placement for p in placements] == [Placement.CLOUD, Placement.HYBRID]
    value, basis, origin = _share(result)
    assert value == 0.7  # 1 - 30% offloaded
    assert basis is Basis.MEASURED
    assert "hybrid run hyb1aaaa" in origin and "queue-depth" in origin
    assert "(measured)" in placements[1].label


def test_measured_share_replaces_the_workloads_fixed_share() -> None:
    fixed = _calc([EDGE, CLOUD], hybrid_edge_share=sourced(0.8))
    measured = _calc(
        [EDGE, CLOUD, hybrid_report(0.6, "hyb2aaaaaaaa")], hybrid_edge_share=sourced(0.8)
    )
    assert _share(fixed)[:2] == (0.8, Basis.SOURCED)
    assert _share(measured)[0] == 0.4
    # more traffic on the cloud: the hybrid's annual cost moves toward the cloud's
    hybrid = [
        next(p for p in r.analyses[0].placements if p.placement is Placement.HYBRID)
        for r in (fixed, measured)
    ]
    assert [h.edge_share for h in hybrid] == [0.8, 0.4]
    assert hybrid[0].annual_cost != hybrid[1].annual_cost


def test_a_hybrid_report_feeds_neither_side() -> None:
    """The cloud figures are the cloud run's, whatever the hybrid run measured."""
    alone = _calc([EDGE, CLOUD], hybrid_edge_share=sourced(0.5))
    beside = _calc([EDGE, CLOUD, hybrid_report(0.5, "hyb3aaaaaaaa", p99_ms=999.0)])
    cloud = [r.analyses[0].placements[0] for r in (alone, beside)]
    assert cloud[0].latency.p99_ms == cloud[1].latency.p99_ms
    assert cloud[0].annual_cost == cloud[1].annual_cost
    assert alone.edge.annual_cost == beside.edge.annual_cost


def test_the_latest_hybrid_run_is_used_and_the_others_named() -> None:
    old = hybrid_report(0.9, "oldaaaaaaaaa", age_s=3600)
    new = hybrid_report(0.2, "newaaaaaaaaa")
    result = _calc([EDGE, CLOUD, old, new])
    assert _share(result)[0] == 0.8
    assert any("hybrid run oldaaaaa not used" in w for w in result.warnings)


def test_a_hybrid_run_under_the_costs_network_gives_the_hybrid_p99(tmp_path: Path) -> None:
    """A real hybrid run shaped by --network lan: costed under 'lan' its own p99 is the hybrid
    latency (measured, naming the run); under another network, the slower side's as before."""
    from tippingpoint.core.io import read_report

    from .calculator_factory import hand_api
    from .helpers import QUICK, tp

    out = tmp_path / "r"
    p = tp(
        "run", "-m", "mlp-tiny", "-b", "hybrid", "--endpoint", "local", "--network", "lan",
        "-s", "single-stream", "--opt", "policy=always-cloud", "-o", str(out), *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    (path,) = out.glob("*.json")
    run = read_report(path)
    assert run.results is not None and run.http is not None and run.http.link is not None
    edge = edge_report(100, 20, model="mlp-tiny")
    profiles = hand_profiles()
    assert profiles.network.name == run.http.link.profile.name == "lan"

    def hybrid_latency(network_name: str) -> LatencyCheck:
        ps = dataclasses.replace(
            profiles, network=profiles.network.model_copy(update={"name": network_name})
        )
        result = calculate(
            [edge, run], profiles=ps, clouds=[hand_api()], today=TODAY, tool_version="test",
            draws=0, proxy_host=True, accept_flagged=True,
        )  # fmt: skip
        (hybrid,) = [p for p in result.analyses[0].placements if p.placement is Placement.HYBRID]
        assert hybrid.edge_share == 0.0  # always-cloud: everything offloaded
        return hybrid.latency

    same = hybrid_latency("lan")
    assert same.basis is Basis.MEASURED
    assert same.p99_ms == run.results.latency.p99
    assert f"hybrid run {run.run_id[:8]}" in (same.method or "")
    other = hybrid_latency("lte")
    assert f"hybrid run {run.run_id[:8]}" not in (other.method or "")
