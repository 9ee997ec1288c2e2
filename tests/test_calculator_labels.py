"""Provenance labels (measured, estimated, SLO-bound, assumed) and latency feasibility."""

from datetime import date

import pytest

from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.model import Component, Placement
from tippingpoint.calculator.params import Basis, Param
from tippingpoint.calculator.result import CostResult, RecommendationStatus
from tippingpoint.core.errors import CostInputError
from tippingpoint.core.schema import MeasurementMethod, Report, RunFlag, SweepPoint
from tippingpoint.profiles.schema import NetworkProfile, Sourced

from .calculator_factory import (
    cloud_report,
    edge_report,
    hand_api,
    hand_cloud,
    hand_profiles,
    sourced,
)

TODAY = date(2026, 11, 23)


def _calc(reports: list[Report], cloud=None, profiles=None, **kw) -> CostResult:
    return calculate(
        reports,
        profiles=profiles or hand_profiles(),
        clouds=[cloud or hand_cloud()],
        today=TODAY,
        tool_version="test",
        draws=kw.pop("draws", 0),
        **kw,
    )


def _line(result: CostResult, comp: Component):
    return next(line for line in result.edge.lines if line.component is comp)


CLOUD = cloud_report(peak_rate_qps=50, server_p99_ms=10)
FAILED_SWEEP = (
    SweepPoint(
        offered_rate_qps=200.0,
        achieved_rate_qps=150.0,
        p50_ms=5.0,
        p99_ms=30.0,
        error_rate=0.0,
        meets_bound=False,
        send_lag_invalid=True,
    ),
    SweepPoint(
        offered_rate_qps=11.5,
        achieved_rate_qps=11.5,
        p50_ms=20.0,
        p99_ms=61.0,
        error_rate=0.0,
        meets_bound=False,
        send_lag_invalid=False,
    ),
)
"""make bench's failed search: the 200/s probe sent late, the last probe over the bound."""


def test_energy_without_measurement_is_estimated_from_power_and_labelled() -> None:
    result = _calc([edge_report(100, 20), CLOUD])
    energy = _line(result, Component.ENERGY)
    assert energy.basis is Basis.ESTIMATED
    assert "estimated 0.1 J/inference = active 10 W / 100" in energy.note
    # 365e6 inferences * (10 W / 100 per s = 0.1 J) / 3.6e6 * 0.20 USD = 2.027778 USD a year
    assert energy.annual == pytest.approx(2.027778, rel=1e-6)
    assert result.edge.kwh_basis is Basis.ESTIMATED
    assert any("J/inference is estimated" in w for w in result.warnings)
    assert Param.EDGE_JOULES not in {r.param for r in result.analyses[0].inputs}


def test_measured_energy_is_labelled_by_the_collector_method() -> None:
    counter = _calc([edge_report(100, 20, joules=0.05), CLOUD])
    # the kWh are measured; the energy cost line is as good as its weakest input, the
    # sourced electricity price
    assert counter.edge.kwh_basis is Basis.MEASURED
    assert _line(counter, Component.ENERGY).basis is Basis.SOURCED
    estimate = _calc([edge_report(100, 20, joules=0.05, method=MeasurementMethod.ESTIMATED), CLOUD])
    assert _line(estimate, Component.ENERGY).basis is Basis.ESTIMATED
    row = next(r for r in estimate.analyses[0].inputs if r.param is Param.EDGE_JOULES)
    assert row.basis is Basis.ESTIMATED and "estimated" in row.origin


def test_measured_idle_power_replaces_the_profile_figure() -> None:
    result = _calc([edge_report(100, 20, joules=0.05, idle_watts=2.5), CLOUD])
    row = next(r for r in result.analyses[0].inputs if r.param is Param.DEVICE_IDLE_W)
    assert row.value == 2.5 and row.basis is Basis.MEASURED
    # 0.05 J * 100/s = 5 W busy, above 2.5 W idle: consistent, no warning
    assert not any("disagree" in w for w in result.warnings)
    low = _calc([edge_report(100, 20, joules=0.01, idle_watts=2.5), CLOUD])
    assert any("below the idle" in w for w in low.warnings)


def test_slo_bound_capacity_and_a_run_without_a_search() -> None:
    result = _calc([edge_report(100, 20, joules=0.05), CLOUD])
    cap = next(r for r in result.analyses[0].inputs if r.param is Param.CLOUD_CAPACITY)
    assert cap.basis is Basis.SLO_BOUND and cap.value == 50
    assert result.recommendation.status is RecommendationStatus.DECIDED
    # no SLO search: the throughput is no capacity, so the instance is not measured and the
    # recommendation is inconclusive (it used to be costed at the throughput, "an upper bound")
    unsearched = [
        edge_report(100, 20, joules=0.05),
        cloud_report(peak_rate_qps=None, server_p99_ms=10),
    ]
    fallback = _calc(unsearched)
    a = fallback.analyses[0]
    assert a.not_measured is not None and "no SLO search ran" in a.not_measured
    assert "--latency-bound" in a.not_measured
    assert a.placements == () and a.comparison is None
    assert Param.CLOUD_CAPACITY not in {r.param for r in a.inputs}
    assert fallback.recommendation.status is RecommendationStatus.INCONCLUSIVE
    assert fallback.recommendation.label is None
    assert fallback.recommendation.leaning == fallback.edge.label
    # accepted: the throughput is used, labelled so, and every line says it was accepted
    accepted = _calc(unsearched, accept_flagged=True)
    cap = next(r for r in accepted.analyses[0].inputs if r.param is Param.CLOUD_CAPACITY)
    assert cap.basis is Basis.MEASURED_THROUGHPUT and cap.value == 500
    assert accepted.recommendation.status is RecommendationStatus.DECIDED
    lines = [ln for p in (accepted.edge, *accepted.analyses[0].placements) for ln in p.lines]
    assert all(any("accepted flagged run" in c for c in ln.caveats) for ln in lines)
    assert any("no SLO search ran" in c for c in accepted.caveats)


def test_cloud_missing_the_slo_is_infeasible_not_cheapest() -> None:
    # a very cheap API whose server p99 (150 ms) alone breaks the 100 ms SLO
    slow = cloud_report(peak_rate_qps=None, server_p99_ms=150)
    result = _calc([edge_report(100, 20, joules=0.05), slow], cloud=hand_api(0.01))
    cloud = result.analyses[0].placements[0]
    assert cloud.pv < result.edge.pv
    assert not cloud.feasible
    assert cloud.latency.reason is not None and "exceeds the 100 ms SLO" in cloud.latency.reason
    assert result.recommendation.label == result.edge.label


def test_slow_edge_loses_to_a_dearer_feasible_cloud() -> None:
    result = _calc([edge_report(100, 250, joules=0.05), CLOUD])
    assert not result.edge.feasible
    assert result.recommendation.label == "cloud: gpu"


def test_data_that_must_stay_on_premises_rules_out_cloud_and_hybrid() -> None:
    profiles = hand_profiles(must_stay_on_premises=True, hybrid_edge_share=sourced(0.5))
    result = _calc([edge_report(100, 20, joules=0.05), CLOUD], profiles=profiles)
    placements = result.analyses[0].placements
    assert [p.placement for p in placements] == [Placement.CLOUD, Placement.HYBRID]
    for p in placements:
        assert not p.feasible and p.latency.reason == "the workload's data must stay on premises"
    assert result.edge.feasible


def test_lossy_link_adds_a_retransmission_timeout() -> None:
    base = hand_profiles()
    lossy = NetworkProfile(
        name="lte",
        rtt_ms=sourced(60),
        uplink_mbps=sourced(10),
        downlink_mbps=sourced(40),
        loss=sourced(0.01),
    )
    result = _calc(
        [edge_report(100, 20), CLOUD],
        profiles=base.__class__(
            device=base.device, network=lossy, energy=base.energy, workload=base.workload
        ),
    )
    cloud = result.analyses[0].placements[0]
    parts = {p.name: p.ms for p in cloud.latency.parts}
    # 1,000 B each way = 1 + 1 packets + 2 = 4 packets; P(a loss) = 1 - 0.99^4 = 3.9 % >= 1 %
    assert parts["retransmission (loss)"] == 200.0
    # 10 + 60 + 1000*8/10e6 s = 0.8 ms + 1000*8/40e6 s = 0.2 ms + 200 = 271 ms
    assert cloud.latency.p99_ms == pytest.approx(271.0)


def test_payload_bytes_default_to_the_http_report() -> None:
    profiles = hand_profiles(request_bytes=None, response_bytes=None)
    result = _calc([edge_report(100, 20), CLOUD], profiles=profiles)
    rows = {r.param: r for r in result.analyses[0].inputs}
    assert (
        rows[Param.REQUEST_BYTES].value == 2000
        and rows[Param.REQUEST_BYTES].basis is Basis.MEASURED
    )
    assert rows[Param.RESPONSE_BYTES].value == 500
    with pytest.raises(CostInputError, match="no request bytes"):
        _calc([edge_report(100, 20)], cloud=hand_api(), profiles=profiles)


def test_assumed_values_are_flagged_everywhere() -> None:
    base = hand_profiles()
    device = base.device.model_copy(update={"ops_per_year": Sourced(value=50)})
    profiles = base.__class__(
        device=device, network=base.network, energy=base.energy, workload=base.workload
    )
    result = _calc([edge_report(100, 20, joules=0.05), CLOUD], profiles=profiles)
    row = next(r for r in result.analyses[0].inputs if r.param is Param.DEVICE_OPS)
    assert row.assumed_value and row.basis is Basis.ASSUMED and row.source is None
    ops = _line(result, Component.OPS)
    assert Param.DEVICE_OPS in ops.assumed_inputs and ops.basis is Basis.ASSUMED
    assert any("assumed: device_ops_per_year" in w for w in result.warnings)


def test_old_values_are_flagged_stale() -> None:
    result = calculate(
        [edge_report(100, 20, joules=0.05), CLOUD],
        profiles=hand_profiles(),
        clouds=[hand_cloud()],
        today=date(2028, 1, 1),
        tool_version="test",
        draws=0,
    )
    assert all(r.stale for r in result.analyses[0].inputs if r.as_of is not None)
    assert any("over 365 days old" in w for w in result.warnings)


def test_report_selection_errors() -> None:
    two_models = [edge_report(100, 20), edge_report(50, 20, model="resnet8"), CLOUD]
    with pytest.raises(CostInputError, match="several models") as info:
        _calc(two_models)
    assert info.value.exit_code == 2
    assert _calc(two_models, model="mlp-tiny").model == "mlp-tiny"
    with pytest.raises(CostInputError, match="no on-device report"):
        _calc([CLOUD])
    with pytest.raises(CostInputError, match="no capacity for cloud profile"):
        _calc([edge_report(100, 20)])


def test_edge_capacity_is_bounded_by_the_slo_too() -> None:
    # batch 32 gives 400/s but its batch p99 of 150 ms breaks the 100 ms SLO: the fleet is
    # sized on the 40/s batch-1 run, and the device p99 is that run's
    runs = [edge_report(40, 30, joules=0.2), edge_report(400, 150, batch=32), CLOUD]
    result = _calc(runs)
    rows = {r.param: r for r in result.analyses[0].inputs}
    assert rows[Param.EDGE_THROUGHPUT].value == 40
    assert "highest throughput with p99 <= 100 ms" in rows[Param.EDGE_THROUGHPUT].origin
    assert result.edge.latency.p99_ms == 30 and result.edge.feasible
    assert any("edge capacity excludes" in w for w in result.warnings)
    # with no SLO the fastest run sizes the fleet
    free = _calc(runs, profiles=hand_profiles(slo_p99_ms=None))
    rows = {r.param: r for r in free.analyses[0].inputs}
    assert rows[Param.EDGE_THROUGHPUT].value == 400


def test_invalid_energy_falls_back_to_the_estimate() -> None:
    report = edge_report(100, 20, joules=0.05)
    energy = report.collectors.energy
    assert energy is not None
    broken = energy.model_copy(
        update={"joules_per_inference": None, "valid": False, "note": "counter wrapped"}
    )
    report = report.model_copy(
        update={"collectors": report.collectors.model_copy(update={"energy": broken})}
    )
    result = _calc([report, CLOUD])
    assert _line(result, Component.ENERGY).basis is Basis.ESTIMATED
    assert any("energy marked invalid (counter wrapped)" in w for w in result.warnings)


def test_undated_sources_are_named() -> None:
    cloud = hand_cloud(price_per_hour=Sourced(value=1.0, source="a colleague's invoice"))
    result = _calc([edge_report(100, 20, joules=0.05), CLOUD], cloud=cloud)
    row = next(r for r in result.analyses[0].inputs if r.param is Param.CLOUD_PRICE_HOUR)
    assert row.basis is Basis.SOURCED and row.as_of is None and not row.stale
    assert any("no as_of date" in w and "cloud_price_per_hour" in w for w in result.warnings)


def test_runs_without_throughput_are_refused_and_a_failed_search_is_named() -> None:
    with pytest.raises(CostInputError, match="measured no throughput"):
        _calc([edge_report(0, 20), CLOUD])
    # a search that found no rate: the harness writes None (and a test once wrote 0.0)
    for peak in (None, 0.0):
        failed = cloud_report(peak_rate_qps=peak, server_p99_ms=10, sweep=FAILED_SWEEP)
        result = _calc([edge_report(100, 20), failed])
        a = result.analyses[0]
        assert a.not_measured is not None
        assert "found no rate meeting p99 <= 50 ms" in a.not_measured
        assert "200/s send-lag-invalid" in a.not_measured and "11.5/s p99 61 ms" in a.not_measured
        assert result.recommendation.status is RecommendationStatus.INCONCLUSIVE


def test_the_variant_costed_is_fp32_by_default_and_int8_runs_do_not_size_the_fleet() -> None:
    # make bench's mix: fp32 and int8 on the device, the endpoint measured on fp32. The int8
    # run is faster (400/s) and below the accuracy floor: it must not size the fleet by default.
    int8 = edge_report(400, 5, variant="int8", flags=(RunFlag.BELOW_ACCURACY_FLOOR,))
    reports = [edge_report(100, 20, joules=0.05), int8, CLOUD]
    result = _calc(reports)
    assert result.variant == "fp32" and result.cloud_variant == "fp32"
    tp = next(r for r in result.analyses[0].inputs if r.param is Param.EDGE_THROUGHPUT)
    assert tp.value == 100
    assert any("1 report(s) of variant int8 not costed" in w for w in result.warnings)
    assert not any("mixes variants" in w for w in result.warnings)

    # asked for int8: the fleet is sized on 400/s, the flag is a warning, and the endpoint
    # (fp32 only) makes the comparison mixed, which the result says
    chosen = _calc(reports, variant="int8")
    assert chosen.variant == "int8" and chosen.cloud_variant == "fp32"
    tp = next(r for r in chosen.analyses[0].inputs if r.param is Param.EDGE_THROUGHPUT)
    assert tp.value == 400
    assert any("below-accuracy-floor" in w for w in chosen.warnings)
    assert any("mixes variants" in w and "--variant int8" in w for w in chosen.warnings)


def test_variant_selection_errors_and_the_single_variant_default() -> None:
    only_int8 = [edge_report(400, 5, variant="int8"), CLOUD]
    assert _calc(only_int8).variant == "int8"  # the only on-device variant
    two = [edge_report(400, 5, variant="int8"), edge_report(200, 8, variant="fp16"), CLOUD]
    with pytest.raises(CostInputError, match=r"several variants \(fp16, int8\)") as info:
        _calc(two)
    assert info.value.exit_code == 2
    with pytest.raises(CostInputError, match="no report of variant 'bf16'"):
        _calc(two, variant="bf16")
    with pytest.raises(CostInputError, match="no on-device report of variant 'fp32'"):
        _calc(two, variant="fp32")  # only the endpoint measured fp32


def test_send_lag_invalid_endpoint_runs_keep_the_decision_open() -> None:
    lagged = CLOUD.model_copy(update={"flags": (RunFlag.SEND_LAG_INVALID,)})
    result = _calc([edge_report(100, 20, joules=0.05), lagged])
    # an invalid flag, not a caution: the recommendation is inconclusive and names the run
    assert result.recommendation.status is RecommendationStatus.INCONCLUSIVE
    assert any("send-lag-invalid" in w for w in result.recommendation.invalid_inputs)


def test_egress_is_sourced_unless_the_traffic_reaches_a_tier_without_a_source() -> None:
    from tippingpoint.profiles.schema import EgressTier

    tiers = (
        EgressTier(up_to_gb=10, price_per_gb=sourced(0.0)),
        EgressTier(up_to_gb=1000, price_per_gb=sourced(0.10)),
        EgressTier(price_per_gb=Sourced(value=0.10)),  # beyond the source: assumed
    )
    cloud = hand_cloud(egress_tiers=tiers)
    reports = [edge_report(100, 20, joules=0.05), CLOUD]

    def egress(result: CostResult):
        return next(r for r in result.analyses[0].inputs if r.param is Param.EGRESS_SCALE)

    # 1e6 a day x 365/12 x 1,000 B = 30.4 GB in the busiest month: tiers 1 and 2, both sourced
    low = egress(_calc(reports, cloud=cloud))
    assert low.basis is Basis.SOURCED and "busiest month 30.42 GB" in low.origin
    # dated and cited by the tiers it reaches, so it is not "undated"
    assert low.as_of == date(2026, 11, 1) and low.source == "hand-worked example"
    assert "below the tiers that have no source" in low.origin
    # 1e8 a day: 3,042 GB a month reaches the tier above 1,000 GB, which has no source
    busy = _calc(reports, cloud=cloud, profiles=hand_profiles(inferences_per_day=sourced(1e8)))
    high = egress(busy)
    assert high.basis is Basis.ASSUMED and "tier above 1000 GB/month" in high.origin
    assert "egress_price_scale" in " ".join(busy.warnings)  # listed among the assumed inputs


def test_a_line_is_as_good_as_its_weakest_input_and_unused_inputs_are_not_listed() -> None:
    base = hand_profiles()
    device = base.device.model_copy(update={"life_years": Sourced(value=1, low=1, high=2)})
    profiles = base.__class__(
        device=device, network=base.network, energy=base.energy, workload=base.workload
    )
    result = _calc([edge_report(100, 20, joules=0.05), CLOUD], profiles=profiles)
    hardware = _line(result, Component.HARDWARE)
    # a sourced price, a measured throughput and an assumed life: the line is assumed
    assert hardware.basis is Basis.ASSUMED
    assert {Param.DEVICE_PRICE, Param.EDGE_THROUGHPUT, Param.DEVICE_LIFE} <= set(hardware.inputs)
    assert hardware.assumed_inputs == (Param.DEVICE_LIFE,)
    # measured energy: the active watts are not behind the energy line
    assert Param.DEVICE_ACTIVE_W not in _line(result, Component.ENERGY).inputs
    # no hybrid is computed, so its share is no input
    assert Param.HYBRID_EDGE_SHARE not in {r.param for r in result.analyses[0].inputs}
    # an estimated J/inference is called estimated in the energy warning, not measured
    guess = MeasurementMethod.ESTIMATED
    low = _calc([edge_report(100, 20, joules=0.01, idle_watts=2.5, method=guess), CLOUD])
    assert any(w.startswith("estimated J/inference x throughput") for w in low.warnings)
