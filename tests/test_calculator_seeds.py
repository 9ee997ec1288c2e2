"""Hand-worked examples of the figures issue 13 adds: the NPV-root tipping volume, switching
values, the loss-side risk, link capacity, the cost of delay and the cost of outages.

Every expected number is derived in the comments beside it, on the hand-worked example of
tests/test_calculator_handworked.py (1,000,000 inferences/day, 1,000 B each way, a 1,200 USD
device living 1 year, 0.05 J/inference at 0.20 USD/kWh, horizon 1 year at 0 %) unless a case
changes it.
"""

from datetime import date

import numpy as np
import pytest

from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.inputs import Profiles
from tippingpoint.calculator.model import Component, Placement
from tippingpoint.calculator.montecarlo import monte_carlo, stats
from tippingpoint.calculator.params import Basis, Param
from tippingpoint.calculator.result import CostResult
from tippingpoint.calculator.service import share_over_samples, wilson
from tippingpoint.core.schema import Report
from tippingpoint.profiles.schema import CloudProfile, Distribution, NetworkProfile

from .calculator_factory import (
    cloud_report,
    edge_report,
    hand_api,
    hand_cloud,
    hand_params,
    hand_profiles,
    sourced,
    with_range,
)

TODAY = date(2026, 11, 23)
EDGE = edge_report(100, 20, joules=0.05)
CLOUD = cloud_report(peak_rate_qps=50, server_p99_ms=10)


def _calc(
    reports: list[Report],
    cloud: CloudProfile | None = None,
    profiles: Profiles | None = None,
    **kw: object,
) -> CostResult:
    return calculate(
        reports,
        profiles=profiles or hand_profiles(),
        clouds=[cloud or hand_cloud()],
        today=TODAY,
        tool_version="test",
        draws=0,
        **kw,  # type: ignore[arg-type]
    )


def _with_network(profiles: Profiles, **fields: object) -> Profiles:
    base = {
        "name": "link",
        "rtt_ms": sourced(1),
        "uplink_mbps": sourced(1000),
        "downlink_mbps": sourced(1000),
        "loss": sourced(0),
        "cost_per_gb": sourced(0),
    }
    network = NetworkProfile.model_validate({**base, **fields})
    return Profiles(
        device=profiles.device, network=network, energy=profiles.energy, workload=profiles.workload
    )


def _line(placement, comp: Component):
    return next(ln for ln in placement.lines if ln.component is comp)


def test_tipping_volume_is_the_root_of_the_npv_over_the_horizon() -> None:
    # Against a 10 USD/M API, over 2 years at 10 % a year (monthly factor d = 1.1^(-1/12) =
    # 0.9920889): the edge pays 1,200 now and 1,200 for the replacement at month 12 (life 1
    # year, worth 0 at the horizon); each inference saves 1e-5 - 2.7778e-9 = 9.99722e-6 USD.
    # NPV(V) = V * 365/12 * 9.99722e-6 * sum_{t=1..24} d^t - 1,200 * (1 + d^12), with
    # sum d^t = 21.764568 and d^12 = 1/1.1 = 0.9090909:
    # V = 1,200 * 1.9090909 / (30.416667 * 9.99722e-6 * 21.764568) = 346,152.0 a day.
    # (The year-one annual cost, the old basis, put it at 328,858.5 a day whatever the rate.)
    profiles = hand_profiles(horizon_years=2, discount_rate=sourced(0.10))
    result = _calc([EDGE], cloud=hand_api(10.0), profiles=profiles)
    a = result.analyses[0]
    assert a.comparison is not None
    tip = a.comparison.tipping
    assert tip.basis == "pv-horizon"
    assert tip.volume_per_day == pytest.approx(346_152.0, rel=1e-6)
    cross = tip.crossings[0]
    assert cross.bracket_low is not None and cross.bracket_high is not None
    assert cross.bracket_low < 346_152.0 < cross.bracket_high
    # the curve is the NPV's own: at the workload's volume (the middle of the sweep), its gap
    # is the NPV
    i = len(tip.curve_volume_per_day) // 2
    assert tip.curve_volume_per_day[i] == pytest.approx(1e6)
    gap = tip.curve_cloud[i] - tip.curve_edge[i]
    assert gap == pytest.approx(a.comparison.npv_savings, rel=1e-9)
    # the switching value of the volume is the same root, found another way
    sv = next(s for s in a.switching if s.param is Param.VOLUME)
    assert sv.value == pytest.approx(346_152.0, rel=1e-6)
    # above the root the edge saves, so the NPV at 1e6 a day is positive and edge is chosen
    assert a.comparison.npv_savings > 0 and result.recommendation.label == result.edge.label


def test_switching_values_against_a_per_request_api() -> None:
    # 1 year at 0 %: NPV = 365e6 inferences * API price / 1e6 - (device price + 1.013889
    # energy). It flips where the API price is 1,201.013889 / 365 = 3.290449 USD per million
    # (the edge's own cost per million), and where the device costs 3,650 - 1.013889 =
    # 3,648.986 USD; beyond either, the cloud is cheaper.
    result = _calc([EDGE], cloud=hand_api(10.0))
    by = {s.param: s for s in result.analyses[0].switching}
    api = by[Param.API_PRICE]
    assert api.value == pytest.approx(3.290449, rel=1e-6)
    assert api.change == pytest.approx(3.290449 / 10 - 1, rel=1e-5)
    assert not api.within_range  # sourced, +-20 %: 8 .. 12
    assert api.cheaper_beyond is Placement.CLOUD
    assert by[Param.DEVICE_PRICE].value == pytest.approx(3648.986111, rel=1e-6)
    assert result.edge.cost_per_million == pytest.approx(3.290449, rel=1e-6)


def test_loss_side_value_at_risk() -> None:
    x = np.arange(1.0, 101.0)
    # numpy's linear P5 of 1..100 is 5.95; the values at or below it are 1..5, mean 3
    low = stats(x, tail="low")
    assert low.tail == "low" and low.var95 == pytest.approx(5.95) and low.cvar95 == pytest.approx(3)
    # a cost keeps its risk on the high tail: P95 95.05, mean of 96..100 = 98
    high = stats(x)
    assert high.var95 == pytest.approx(95.05) and high.cvar95 == pytest.approx(98.0)


def test_probability_of_loss_converges_to_the_analytic_value() -> None:
    # The saving falls by 1 USD per USD of device price (1-year life, no residual), so with a
    # uniform price on [5,000, 12,000] the edge loses money above the break-even price c*:
    # P(loss) = (12,000 - c*) / 7,000, c* = 8,784.5 - 1.013889 = 8,783.486 (cloud 8,784.5 a
    # year): P(loss) = 3,216.514 / 7,000 = 0.459502. The expected saving is the saving at the
    # mean price 8,500: 8,784.5 - 8,501.013889 = 283.486.
    params, spec = hand_params()
    params = with_range(params, Param.DEVICE_PRICE, 5000.0, 12000.0, Distribution.UNIFORM)
    draws = 100_000
    mc = monte_carlo(params, spec, [Param.DEVICE_PRICE], draws, seed=5)
    assert mc.savings.tail == "low"
    tolerance = 4 * np.sqrt(0.459502 * (1 - 0.459502) / draws)
    assert abs(mc.p_loss - 0.459502) < tolerance
    assert mc.expected_saving == pytest.approx(283.486, abs=4 * 7000 / np.sqrt(12 * draws))
    # the loss side: P5 of a uniform saving on [8,784.5 - 12,001.01, 8,784.5 - 5,001.01] =
    # [-3,216.51, 3,783.49] is -3,216.51 + 0.05 * 7,000 = -2,866.51; the mean below it is
    # halfway to the low end, -3,041.51
    assert mc.savings.var95 == pytest.approx(-2866.51, abs=30)
    assert mc.savings.cvar95 == pytest.approx(-3041.51, abs=30)


def test_link_capacity_and_the_edges_upstream_share() -> None:
    # Peak upload of the cloud: 1e6 / 86,400 = 11.574 inferences/s x 1,000 B x 8 =
    # 0.0926 Mbit/s, over a 0.05 Mbit/s uplink: infeasible. The edge sends a quarter of its
    # request bytes up: 0.0231 Mbit/s, which fits. Growth of 20 % a year over 2 years makes the
    # busiest month (23 months in) 1.2^(23/12) = 1.41829 times busier: 0.1313 Mbit/s.
    profiles = _with_network(
        hand_profiles(edge_upstream_share=sourced(0.25)),
        uplink_mbps=sourced(0.05),
        cost_per_gb=sourced(2.0),
    )
    result = _calc([EDGE, CLOUD], profiles=profiles)
    cloud = result.analyses[0].placements[0]
    assert cloud.link is not None and not cloud.link.feasible and not cloud.feasible
    assert cloud.link.peak_upload_mbps == pytest.approx(1e6 / 86400 * 8000 / 1e6, rel=1e-9)
    assert cloud.reason is not None and "exceeds the 0.05 Mbit/s uplink" in cloud.reason
    edge = result.edge
    assert edge.link is not None and edge.link.feasible
    assert edge.link.peak_upload_mbps == pytest.approx(0.25 * 1e6 / 86400 * 8000 / 1e6)
    # the edge's upstream traffic is priced: 365e6 x 0.25 x 1,000 B = 91.25 GB x 2 USD =
    # 182.5 USD a year; the cloud's: 365e6 x 2,000 B = 730 GB x 2 USD = 1,460 USD a year
    assert _line(edge, Component.NETWORK).annual == pytest.approx(182.5)
    assert _line(cloud, Component.NETWORK).annual == pytest.approx(1460.0)
    assert result.recommendation.label == edge.label
    grown = _with_network(
        hand_profiles(horizon_years=2, growth_per_year=sourced(0.2)), uplink_mbps=sourced(1.0)
    )
    cloud = _calc([EDGE, CLOUD], profiles=grown).analyses[0].placements[0]
    assert cloud.link is not None and cloud.link.feasible
    assert cloud.link.peak_upload_mbps == pytest.approx(0.131323, rel=1e-5)
    # an edge that sends nothing up has no link check
    assert _calc([EDGE, CLOUD], profiles=grown).edge.link is None


def test_cost_of_delay_from_raw_samples_and_from_percentiles() -> None:
    # The edge run's raw latencies: 970 at 20 ms and 30 at 150 ms: 3 % over the 100 ms SLO
    # (measured), with the Wilson 95 % interval over 1,000 requests, 0.021094 .. 0.042503.
    # The cloud has no raw samples: its server p99 is 90 ms, so its percentiles are p99 90,
    # p99.9 108 (the factory's); the network adds 1 + 0.008 + 0.008 = 1.016 ms, so a request
    # is late when the server takes over 98.984 ms: between p99 and p99.9 the distribution is
    # interpolated, F = 0.99 + (98.984 - 90) / 18 x 0.009 = 0.994492, 0.5508 % late
    # (estimated). At 0.001 USD per late request: edge 365e6 x 0.03 x 0.001 = 10,950 USD a
    # year; cloud 365e6 x 0.005508 x 0.001 = 2,010.42 USD a year.
    profiles = hand_profiles(delay_cost_per_late_request=sourced(0.001))
    raw = np.array([20.0] * 970 + [150.0] * 30)
    slow = cloud_report(peak_rate_qps=50, server_p99_ms=90)
    result = _calc([EDGE, slow], profiles=profiles, samples={EDGE.run_id: raw})
    rows = {r.param: r for r in result.analyses[0].inputs}
    edge_late = rows[Param.EDGE_LATE_SHARE]
    assert edge_late.value == pytest.approx(0.03) and edge_late.basis is Basis.MEASURED
    assert (edge_late.low, edge_late.high) == pytest.approx((0.0210937, 0.0425034), rel=1e-5)
    cloud_late = rows[Param.CLOUD_LATE_SHARE]
    assert cloud_late.value == pytest.approx(1 - 0.994492, rel=1e-6)
    assert cloud_late.basis is Basis.ESTIMATED
    assert _line(result.edge, Component.DELAY).annual == pytest.approx(10_950.0)
    cloud = result.analyses[0].placements[0]
    assert _line(cloud, Component.DELAY).annual == pytest.approx(2010.42, rel=1e-5)
    # a retransmission pushes the 10 % of requests that lose a packet over the bound:
    # 50 + 40 = 90 ms is in time, 50 + 40 + 200 ms is not
    assert share_over_samples(np.full(100, 50.0), 100, 40, 0.1, 200) == pytest.approx(0.1)
    assert wilson(0.0, 0) == (0.0, 1.0)


def test_outage_cost_of_the_cloud_while_the_edge_keeps_working() -> None:
    # availability 0.999: the cloud is unreachable 0.1 % of the time; each inference lost is
    # worth 0.01 USD: 365e6 x 0.001 x 0.01 = 3,650 USD a year. A 50 % hybrid loses half
    # (1,825); the edge loses nothing and has no outage line.
    profiles = _with_network(
        hand_profiles(outage_cost_per_inference=sourced(0.01), hybrid_edge_share=sourced(0.5)),
        availability=sourced(0.999),
    )
    result = _calc([EDGE, CLOUD], profiles=profiles)
    cloud, hybrid = result.analyses[0].placements
    assert _line(cloud, Component.OUTAGE).annual == pytest.approx(3650.0)
    assert _line(hybrid, Component.OUTAGE).annual == pytest.approx(1825.0)
    assert all(ln.component is not Component.OUTAGE for ln in result.edge.lines)
    row = next(r for r in result.analyses[0].inputs if r.param is Param.UNAVAILABILITY)
    assert row.value == pytest.approx(0.001) and row.basis is Basis.SOURCED
    # outage hours instead: 8.76 h a year is the same 0.1 %
    hours = _with_network(
        hand_profiles(outage_cost_per_inference=sourced(0.01)),
        outage_hours_per_year=sourced(8.76),
    )
    cloud = _calc([EDGE, CLOUD], profiles=hours).analyses[0].placements[0]
    assert _line(cloud, Component.OUTAGE).annual == pytest.approx(3650.0)


def test_capex_and_opex_subtotals() -> None:
    # edge: 1,200 of hardware (capex) + 1.013889 of energy (opex); cloud: 8,784.5 of opex
    result = _calc([EDGE, CLOUD])
    assert result.edge.capex_tco == pytest.approx(1200.0)
    assert result.edge.opex_tco == pytest.approx(1.013889, rel=1e-6)
    cloud = result.analyses[0].placements[0]
    assert cloud.capex_tco == 0 and cloud.opex_tco == pytest.approx(8784.5)
    # the monthly cash flows by component add up to the cumulative curve
    total = np.sum([cf.values for cf in result.edge.cash_flows], axis=0)
    assert np.cumsum(total) == pytest.approx(result.edge.cumulative_cost)
