"""Monte Carlo, tornado and presets: agreement with analytic values on cases that have them."""

import numpy as np
import pytest

from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.montecarlo import monte_carlo, simulate, stats
from tippingpoint.calculator.params import Param
from tippingpoint.calculator.result import ScenarioPreset
from tippingpoint.calculator.scenarios import scenarios
from tippingpoint.calculator.sensitivity import tornado
from tippingpoint.calculator.tco import evaluate, present_costs
from tippingpoint.profiles.schema import Distribution

from .calculator_factory import hand_params, with_range

DRAWS = 100_000


def _pv_at(params, spec, param: Param, value: float) -> tuple[float, float]:
    values = {p: np.array([iv.value]) for p, iv in params.items()}
    values[param] = np.array([value])
    edge, cloud = present_costs(values, spec)
    return float(edge[0]), float(cloud[0])


@pytest.mark.parametrize(
    ("dist", "mean_of"),
    [
        # uniform(a, b) has mean (a + b) / 2
        (Distribution.UNIFORM, lambda a, c, b: (a + b) / 2),
        # triangular(a, c, b) has mean (a + b + c) / 3
        (Distribution.TRIANGULAR, lambda a, c, b: (a + b + c) / 3),
    ],
)
def test_mean_converges_to_the_analytic_value(dist, mean_of) -> None:
    # the edge's present cost is linear in the electricity price, so its expectation is the
    # cost at the mean price; the Monte Carlo mean must fall within 4 standard errors of it
    params, spec = hand_params(horizon_years=3, discount_rate=0.08)
    low, high = 0.05, 0.60
    params = with_range(params, Param.ELECTRICITY_PRICE, low, high, dist)
    analytic, _ = _pv_at(params, spec, Param.ELECTRICITY_PRICE, mean_of(low, 0.20, high))
    edge, _ = simulate(params, spec, [Param.ELECTRICITY_PRICE], DRAWS, seed=7)
    stderr = edge.std(ddof=1) / np.sqrt(DRAWS)
    assert stderr > 0
    assert abs(edge.mean() - analytic) < 4 * stderr


def test_probability_edge_cheaper_converges_to_the_analytic_value() -> None:
    # with a one-year life and no residual the saving falls by exactly 1 USD per USD of device
    # price, so P(edge cheaper) for a uniform price on [lo, hi] is (c* - lo) / (hi - lo), c*
    # being the break-even price, found from two exact evaluations of the linear saving
    params, spec = hand_params()
    e1, c1 = _pv_at(params, spec, Param.DEVICE_PRICE, 1000.0)
    e2, c2 = _pv_at(params, spec, Param.DEVICE_PRICE, 2000.0)
    slope = ((c2 - e2) - (c1 - e1)) / 1000.0
    assert slope == pytest.approx(-1.0)
    c_star = 1000.0 + (c1 - e1) / -slope
    lo, hi = 5000.0, 12000.0
    assert lo < c_star < hi
    analytic = (c_star - lo) / (hi - lo)
    params = with_range(params, Param.DEVICE_PRICE, lo, hi, Distribution.UNIFORM)
    mc = monte_carlo(params, spec, [Param.DEVICE_PRICE], DRAWS, seed=3)
    tolerance = 4 * np.sqrt(analytic * (1 - analytic) / DRAWS)
    assert abs(mc.p_edge_cheaper - analytic) < tolerance
    assert sum(mc.hist_savings.counts) == DRAWS
    assert len(mc.hist_savings.edges) == len(mc.hist_savings.counts) + 1


def test_fixed_inputs_reproduce_the_base_case_and_seeds_repeat() -> None:
    params, spec = hand_params(horizon_years=2)
    edge, cloud = simulate(params, spec, [], 1000, seed=0)
    base_edge, base_cloud = _pv_at(params, spec, Param.VOLUME, params[Param.VOLUME].value)
    assert np.all(edge == base_edge) and np.all(cloud == base_cloud)
    varied = [Param.VOLUME, Param.CLOUD_PRICE_HOUR, Param.DEVICE_PRICE]
    a = monte_carlo(params, spec, varied, 5000, seed=11)
    b = monte_carlo(params, spec, varied, 5000, seed=11)
    c = monte_carlo(params, spec, varied, 5000, seed=12)
    assert a == b and a != c


def test_stats_value_at_risk_and_conditional() -> None:
    x = np.arange(1.0, 101.0)
    s = stats(x)
    # numpy's linear percentile of 1..100: P95 = 95.05; the values at or above it are 96..100
    assert s.p95 == pytest.approx(95.05) and s.var95 == s.p95
    assert s.cvar95 == pytest.approx(98.0)
    assert s.p50 == pytest.approx(50.5) and s.mean == pytest.approx(50.5)


def test_tornado_swings_are_sorted_and_exact_for_a_linear_input() -> None:
    params, spec = hand_params()
    varied = [p for p in params if p is not Param.HYBRID_EDGE_SHARE]
    sweep = tornado(params, spec, varied)
    swings = [r.swing for r in sweep.rows]
    assert swings == sorted(swings, reverse=True)
    base_edge, base_cloud = _pv_at(params, spec, Param.VOLUME, params[Param.VOLUME].value)
    assert sweep.base == pytest.approx(base_cloud - base_edge)
    price = next(r for r in sweep.rows if r.param is Param.DEVICE_PRICE)
    # sourced with no stated range: +-20 % of 1,200 = 960 .. 1,440; slope -1: swing 480
    assert (price.low, price.high) == pytest.approx((960.0, 1440.0))
    assert price.swing == pytest.approx(480.0)
    assert price.metric_high < price.metric_low


def test_presets_order_best_typical_worst() -> None:
    params, spec = hand_params(horizon_years=3)
    sweep = tornado(params, spec, [p for p in params if p is not Param.HYBRID_EDGE_SHARE])
    presets = {s.preset: s for s in scenarios(params, spec, sweep)}
    assert set(presets) == set(ScenarioPreset)
    best, typical, worst = (presets[p] for p in ScenarioPreset)
    assert best.npv_savings >= typical.npv_savings >= worst.npv_savings
    assert typical.values == {}
    assert typical.npv_savings == pytest.approx(sweep.base)
    _, edge = evaluate(Placement.EDGE, {p: np.array([iv.value]) for p, iv in params.items()}, spec)
    assert typical.edge_pv == pytest.approx(float(edge.pv[0]))
