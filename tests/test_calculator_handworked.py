"""Hand-worked examples: every expected number is derived in the comments beside it.

The example (tests/calculator_factory.py, hand_profiles and hand_cloud), all values sourced:
  workload  1,000,000 inferences/day, no growth, peak = average, 1,000 B each way,
            SLO p99 100 ms, horizon 1 year, discount rate 0, straight-line amortisation
  device    1,200 USD, life 1 year, residual 0, idle 0 W, target utilisation 1.0, no upkeep
  edge run  100 inferences/s measured, 0.05 J/inference measured, p99 20 ms
  energy    0.20 USD/kWh, 400 gCO2e/kWh
  cloud     1.00 USD/h, SLO-bound capacity 50 inferences/s, target utilisation 0.5,
            egress: first 10 GB/month free, then 0.10 USD/GB; 70 W board at PUE 1.1
  network   RTT 1 ms, 1,000 Mbit/s both ways, no loss, no transfer fee
Derived quantities used below:
  inferences a month  = 1e6 * 365/12            = 30,416,666.67
  inferences a year   = 1e6 * 365               = 365,000,000
  peak rate           = 1e6 / 86,400            = 11.574 inferences/s
"""

from datetime import date

import pytest

from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.finance import (
    add_months,
    annual_capital_charge,
    break_even_month,
    crf,
    equivalent_annual_cost,
    payback_months,
    present_value,
)
from tippingpoint.calculator.model import Component, Placement
from tippingpoint.calculator.params import Basis, Param
from tippingpoint.calculator.result import CostResult
from tippingpoint.core.errors import CostInputError
from tippingpoint.profiles.schema import CloudKind, CloudProfile

from .calculator_factory import (
    cloud_report,
    edge_report,
    hand_api,
    hand_cloud,
    hand_profiles,
    sourced,
)

TODAY = date(2026, 11, 23)


def _run(**workload: object) -> CostResult:
    reports = [edge_report(100, 20, joules=0.05), cloud_report(peak_rate_qps=50, server_p99_ms=10)]
    return calculate(
        reports,
        profiles=hand_profiles(**workload),
        clouds=[hand_cloud()],
        today=TODAY,
        tool_version="test",
        draws=0,
    )


def test_capital_recovery_factor() -> None:
    # CRF(8 %, 4 y): 1.08^4 = 1.36048896; 0.08 * 1.36048896 / 0.36048896 = 0.3019208
    assert float(crf(0.08, 4)) == pytest.approx(0.3019208, rel=1e-6)
    # CRF(0, n) is straight line: 1/5
    assert float(crf(0.0, 5)) == pytest.approx(0.2)
    # a Pi 5 at 80 USD, no residual, 4 years at 8 %: 80 * 0.3019208 = 24.1537 USD a year
    assert float(annual_capital_charge(80, 0, 4, 0.08, True)) == pytest.approx(24.15366, rel=1e-6)
    # with a 20 USD residual: 20/1.36048896 = 14.70061; (80 - 14.70061) * 0.3019208 = 19.71525
    assert float(annual_capital_charge(80, 20, 4, 0.08, True)) == pytest.approx(19.71525, rel=1e-6)
    # straight-line: (80 - 20) / 4 = 15
    assert float(annual_capital_charge(80, 20, 4, 0.08, False)) == pytest.approx(15.0)


def test_npv_eac_and_paybacks() -> None:
    # an annual rate whose monthly equivalent is exactly 1 %: 1.01^12 - 1
    annual = 1.01**12 - 1
    # -1000 now, then 500 at the end of months 1..3:
    # -1000 + 500/1.01 + 500/1.0201 + 500/1.030301 = -1000 + 495.0495 + 490.1480 + 485.2951
    assert float(present_value([-1000, 500, 500, 500], annual)) == pytest.approx(470.4926, abs=1e-3)
    # EAC of a PV of 1,000 over 2 years at 10 %: CRF = 0.1 * 1.21 / 0.21 = 0.5761905
    assert float(equivalent_annual_cost(1000, 0.10, 2)) == pytest.approx(576.1905, rel=1e-6)
    # 1,200 extra upfront recovered at 300 a month, undiscounted: exactly 4 months; never at
    # a loss; at once when nothing extra is spent upfront
    assert payback_months([-1200, 300, 300, 300, 300], None) == pytest.approx(4.0)
    assert payback_months([-1200, -1, -1], None) is None
    assert payback_months([5, 10], None) == 0.0
    # discounted at 1 %/month: cumulative -1000, -504.95, -14.80 after 2 months, +470.49
    # after 3; the saving is spread over the month, so 2 + 14.80 / 485.30 = 2.0305 months
    assert payback_months([-1000, 500, 500, 500], annual) == pytest.approx(2.03050, abs=1e-5)
    # a calendar date from a start: 2.0305 months after 2026-01-15 is 2026-03-15 plus
    # 0.0305 of the 31 days to 2026-04-15, rounded to 1 day
    assert add_months(date(2026, 1, 15), 2.0305) == date(2026, 3, 16)
    # the day is clamped to the month's length: a month after 31 January is 28 February
    assert add_months(date(2026, 1, 31), 1.0) == date(2026, 2, 28)
    # cumulative 100, 150, 200 (edge) against 0, 120, 240 (cloud): lower from month 2 onward
    assert break_even_month([100, 150, 200], [0, 120, 240]) == 2
    assert break_even_month([100, 150, 250], [0, 120, 240]) is None


def test_edge_cost_per_million_and_tco() -> None:
    edge = _run().edge
    # units: ceil(11.574 / (100 * 1.0)) = 1 device
    assert edge.edge_units_year1 == 1
    lines = {line.component: line for line in edge.lines}
    # hardware, straight-line: (1200 - 0) / 1 year = 1,200 USD a year
    assert lines[Component.HARDWARE].annual == pytest.approx(1200.0)
    # energy: 365e6 * 0.05 J = 18.25e6 J = 5.069444 kWh; * 0.20 USD = 1.013889 USD a year
    assert lines[Component.ENERGY].annual == pytest.approx(1.013889, rel=1e-6)
    # the line's basis is the weakest of its inputs: measured J/inference, sourced price
    assert lines[Component.ENERGY].basis is Basis.SOURCED
    assert edge.kwh_per_year == pytest.approx(5.069444, rel=1e-6)
    # carbon: 5.069444 kWh * 400 g = 2.027778 kg
    assert edge.co2e_kg_per_year == pytest.approx(2.027778, rel=1e-6)
    # annual 1,201.013889 USD over 365 million inferences = 3.290449 USD per million
    assert edge.annual_cost == pytest.approx(1201.013889, rel=1e-9)
    assert edge.cost_per_million == pytest.approx(3.290449, rel=1e-6)
    # TCO over 12 months: 1,200 bought now + 1.013889 of energy; the 1-year-old device is
    # worth its residual (0) at the horizon. Discount rate 0: PV = TCO, EAC = PV * CRF(0, 1)
    assert edge.tco == pytest.approx(1201.013889, rel=1e-9)
    assert edge.pv == pytest.approx(edge.tco)
    assert edge.eac == pytest.approx(edge.tco)
    # cumulative curve: 1,200 upfront, 1,200.084491 after month 1 (1.013889 / 12)
    assert edge.cumulative_cost[0] == pytest.approx(1200.0)
    assert edge.cumulative_cost[1] == pytest.approx(1200.084491, rel=1e-9)
    assert len(edge.cumulative_cost) == 13


def test_cloud_cost_per_million_tco_and_latency() -> None:
    result = _run()
    cloud = result.analyses[0].placements[0]
    # instances: ceil(11.574 / (50 * 0.5)) = 1, always on: 1 * 1.00 * 730 h = 730 USD a month
    assert cloud.cloud_instances_year1 == 1
    lines = {line.component: line for line in cloud.lines}
    assert lines[Component.COMPUTE].annual == pytest.approx(8760.0)
    # SLO-bound capacity, sourced price and utilisation: the weakest, sourced
    assert lines[Component.COMPUTE].basis is Basis.SOURCED
    assert Param.CLOUD_CAPACITY in lines[Component.COMPUTE].inputs
    # egress: 30,416,666.67 * 1,000 B = 30.41667 GB a month; (30.41667 - 10 free) * 0.10
    # = 2.041667 USD a month = 24.5 USD a year
    assert lines[Component.EGRESS].annual == pytest.approx(24.5, rel=1e-9)
    # annual 8,784.5 USD / 365 million = 24.06712 USD per million
    assert cloud.annual_cost == pytest.approx(8784.5)
    assert cloud.cost_per_million == pytest.approx(24.067123, rel=1e-6)
    # 12 months of 732.041667 = 8,784.5 USD
    assert cloud.tco == pytest.approx(8784.5)
    # p99: server 10 ms + RTT 1 ms + 1,000 B * 8 / 1e9 bit/s = 0.008 ms each way = 11.016 ms
    assert cloud.latency.p99_ms == pytest.approx(11.016)
    assert cloud.feasible
    # energy estimate: 70 W * 1.1 PUE * 8,760 h = 674.52 kWh a year
    assert cloud.kwh_per_year == pytest.approx(674.52)
    assert cloud.kwh_basis is Basis.ESTIMATED


def test_comparison_npv_payback_and_break_even() -> None:
    comparison = _run().analyses[0].comparison
    # NPV at 0 %: 8,784.5 - 1,201.013889 = 7,583.486111 USD in favour of the edge
    assert comparison.npv_savings == pytest.approx(7583.486111, rel=1e-9)
    # payback: 1,200 extra upfront / (732.041667 - 0.084491) a month = 1.639440 months;
    # at a 0 % rate the discounted payback is the same (it was "month 2" when whole months
    # were counted); 1.639440 x 730 h = 1,196.79 h; from 2026-11-23 (the start, today):
    # 2026-12-23 plus 0.639440 of the 31 days to 2027-01-23 = 19.8, rounded to 20 days
    assert comparison.payback_months == pytest.approx(1.639440, rel=1e-6)
    assert comparison.discounted_payback_months == pytest.approx(1.639440, rel=1e-6)
    assert comparison.discounted_payback_hours == pytest.approx(1196.791, rel=1e-6)
    assert comparison.payback_date == date(2027, 1, 12)
    # cumulative: month 1 edge 1,200.08 > cloud 732.04; month 2 edge 1,200.17 < cloud 1,464.08
    assert comparison.break_even_month == 2
    # one 1,200 USD device a year against an always-on 8,760 USD instance: edge is cheaper
    # at every volume from 1,000 to 1e9 a day (116 devices, 139,200 USD, against 463
    # instances, 4.06 million USD, at the top), so there is no tipping volume
    tipping = comparison.tipping
    assert tipping.volume_per_day is None and tipping.crossings == ()
    assert tipping.cheaper_throughout is Placement.EDGE


def test_cloud_cost_per_inference_at_full_capacity_matches_the_formula() -> None:
    # at 2,160,000/day the peak is 25/s = capacity 50 * utilisation 0.5: one instance, fully
    # used. Compute per inference = price / (3600 * X * U) = 1 / (3600 * 25) = 11.1111 USD/M
    cloud = _run(inferences_per_day=2_160_000).analyses[0].placements[0]
    compute = next(line for line in cloud.lines if line.component is Component.COMPUTE)
    assert cloud.cloud_instances_year1 == 1
    assert compute.annual / (2_160_000 * 365) * 1e6 == pytest.approx(11.1111, rel=1e-5)
    # one more inference a second needs a second instance (the step function)
    cloud2 = _run(inferences_per_day=2_160_000 + 86_400).analyses[0].placements[0]
    assert cloud2.cloud_instances_year1 == 2


def test_break_even_volume_against_a_per_request_api() -> None:
    # The tipping volume is the root of NPV(volume) = PV(API) - PV(edge) = 0 over the 1-year
    # horizon at 0 %: edge 1,200 USD for the device + 0.05 J * 0.20 USD / 3.6e6 J/kWh =
    # 2.7778e-9 USD per inference; API 10 USD per million = 1e-5 USD per inference.
    # 1,200 = V * 365 * (1e-5 - 2.7778e-9): V = 328,858.5 a day; one device carries up to
    # 100/s = 8.64 million a day, so no step intervenes
    result = calculate(
        [edge_report(100, 20, joules=0.05)],
        profiles=hand_profiles(),
        clouds=[hand_api(10.0)],
        today=TODAY,
        tool_version="test",
        draws=0,
    )
    tipping = result.analyses[0].comparison.tipping
    expected = 1200 / (365 * (1e-5 - 0.05 * 0.20 / 3.6e6))
    assert expected == pytest.approx(328_858.5, rel=1e-6)
    assert tipping.basis == "pv-horizon"
    assert tipping.volume_per_day == pytest.approx(expected, rel=1e-9)
    assert len(tipping.crossings) == 1 and tipping.crossings[0].edge_cheaper_above
    # the root lies in the bracket the volume sweep found
    cross = tipping.crossings[0]
    assert cross.bracket_low is not None and cross.bracket_high is not None
    assert cross.bracket_low <= expected <= cross.bracket_high
    assert tipping.cheaper_throughout is None
    # the plotted curve brackets the tipping point: API cheaper below it, edge above
    curve = list(
        zip(
            tipping.curve_volume_per_day,
            tipping.curve_edge,
            tipping.curve_cloud,
            strict=True,
        )
    )
    assert all(e > c for v, e, c in curve if v < expected * 0.99)
    assert all(e < c for v, e, c in curve if v > expected * 1.01)


def test_token_priced_api() -> None:
    # 200 input tokens at 0.50 USD/M + 50 output tokens at 1.50 USD/M, no request fee:
    # 200 * 0.5e-6 + 50 * 1.5e-6 = 1.75e-4 USD a request; 365e6 requests = 63,875 USD a year
    api = CloudProfile(
        name="llm",
        kind=CloudKind.API,
        price_per_million_input_tokens=sourced(0.50),
        price_per_million_output_tokens=sourced(1.50),
        server_p99_ms=sourced(40),
    )
    profiles = hand_profiles(tokens_in_per_request=sourced(200), tokens_out_per_request=sourced(50))
    result = calculate(
        [edge_report(100, 20, joules=0.05)],
        profiles=profiles,
        clouds=[api],
        today=TODAY,
        tool_version="test",
        draws=0,
    )
    cloud = result.analyses[0].placements[0]
    compute = next(line for line in cloud.lines if line.component is Component.COMPUTE)
    assert compute.annual == pytest.approx(63_875.0)
    assert cloud.cost_per_million == pytest.approx(175.0)
    assert "200 input tokens" in compute.note
    with pytest.raises(CostInputError, match="priced per token"):
        calculate(
            [edge_report(100, 20)],
            profiles=hand_profiles(),
            clouds=[api],
            today=TODAY,
            tool_version="test",
            draws=0,
        )


def _autoscaled(granularity_s: float, minimum_s: float, draws: int = 0) -> CostResult:
    cloud = hand_cloud(
        scaling="autoscale",
        billing_granularity_s=sourced(granularity_s),
        minimum_billed_s=sourced(minimum_s),
    )
    reports = [edge_report(100, 20, joules=0.05), cloud_report(peak_rate_qps=50, server_p99_ms=10)]
    return calculate(
        reports,
        profiles=hand_profiles(peak_to_average=sourced(3.5)),
        clouds=[cloud],
        today=TODAY,
        tool_version="test",
        draws=draws,
    )


def _compute(result: CostResult):
    cloud = result.analyses[0].placements[0]
    return cloud, next(line for line in cloud.lines if line.component is Component.COMPUTE)


def test_autoscaled_instances_billed_by_granularity() -> None:
    # Peak-to-average k = 3.5 on the hand example: average A = 1e6 / 86,400 = 11.574/s.
    # The autoscale day: 24 / (k + 1) = 24 / 4.5 = 5.3333 h (19,200 s) at the peak rate
    # k * A = 40.509/s, and 18.6667 h off-peak at A / k = 3.3069/s. Day's volume check:
    # (5.3333 * 40.509 + 18.6667 * 3.3069) * 3600 = (216.05 + 61.73) * 3600 = 1e6.
    # Capacity per instance 50 * 0.5 = 25/s: peak ceil(40.509 / 25) = 2, off-peak 1.
    # Always on, 2 instances run 730 h: 2 * 730 * 1.00 USD * 12 = 17,520 USD a year.
    always = _run(peak_to_average=sourced(3.5))
    assert _compute(always)[1].annual == pytest.approx(17_520.0)
    assert "always on" in _compute(always)[1].note

    # Hourly billing: the second instance runs 5.3333 h a day, billed ceil(5.3333) = 6 h.
    # Hours a month: 1 * 730 + 1 * 6 * 365/12 = 730 + 182.5 = 912.5; a year 10,950 USD.
    cloud, compute = _compute(_autoscaled(3600, 0))
    assert compute.annual == pytest.approx(10_950.0)
    # the average billed fleet: 912.5 / 730 = 1.25 instances
    assert cloud.cloud_instances_year1 == pytest.approx(1.25)
    assert "5.33 h at the peak" in compute.note and "billed 6 h a day" in compute.note
    # energy follows the billed fleet: 1.25 * 70 W * 1.1 * 8,760 h = 843.15 kWh
    assert cloud.kwh_per_year == pytest.approx(843.15)

    # Per-second billing with a 60 s minimum: 19,200 s is billed as is (5.3333 h).
    # 730 + 5.3333 * 30.41667 = 730 + 162.2222 = 892.2222 h a month; a year 10,706.667 USD.
    assert _compute(_autoscaled(1, 60))[1].annual == pytest.approx(10_706.667, rel=1e-6)

    # A minimum of 8 h (28,800 s) per start outweighs the 5.3333 h peak:
    # 730 + 8 * 30.41667 = 973.3333 h a month; a year 11,680 USD.
    assert _compute(_autoscaled(1, 28_800))[1].annual == pytest.approx(11_680.0)

    # A minimum above a day is capped at 24 h: the peak instance is then always on,
    # 2 * 730 h = the always-on cost again.
    assert _compute(_autoscaled(3600, 100_000))[1].annual == pytest.approx(17_520.0)


def test_autoscale_inputs_are_shown_fixed_and_the_risk_analysis_runs() -> None:
    result = _autoscaled(3600, 0, draws=5000)
    a = result.analyses[0]
    rows = {r.param.value: r for r in a.inputs}
    assert rows["billing_granularity_s"].value == 3600
    assert rows["billing_granularity_s"].low == rows["billing_granularity_s"].high == 3600
    assert rows["minimum_billed_s"].basis is Basis.SOURCED
    # contract terms are not swept: not in the tornado
    assert "billing_granularity_s" not in {r.param.value for r in a.tornado.rows}
    assert a.monte_carlo is not None and 0.0 <= a.monte_carlo.p_edge_cheaper <= 1.0
    # the tipping curve is computed with the autoscaled cloud too
    assert a.comparison is not None and a.comparison.tipping.curve_cloud
