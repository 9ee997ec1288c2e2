"""Monotonicity properties of the cost model, over inputs drawn by hypothesis."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tippingpoint.calculator.finance import crf
from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.params import Param
from tippingpoint.calculator.tco import evaluate, present_costs

from .calculator_factory import hand_params

PARAMS, SPEC = hand_params(horizon_years=3)
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


@st.composite
def inputs(draw: st.DrawFn) -> dict[Param, float]:
    """A physically consistent set of inputs: busy power is at least idle power."""
    x = draw(st.floats(1.0, 1000.0))
    head = draw(st.floats(1.0, 5000.0))  # a split's head: its own throughput and energy
    idle = draw(st.floats(0.0, 20.0))
    price = draw(st.floats(0.0, 5000.0))
    values = {p: iv.value for p, iv in PARAMS.items()}
    values.update(
        {
            Param.EDGE_THROUGHPUT: x,
            Param.DEVICE_IDLE_W: idle,
            Param.EDGE_JOULES: idle / x + draw(st.floats(0.0, 5.0)),
            Param.DEVICE_PRICE: price,
            Param.DEVICE_RESIDUAL: price * draw(st.floats(0.0, 1.0)),
            Param.DEVICE_LIFE: draw(st.floats(0.25, 6.0)),
            Param.DEVICE_UTILISATION: draw(st.floats(0.1, 1.0)),
            Param.MAINTENANCE_SHARE: draw(st.floats(0.0, 0.3)),
            Param.ELECTRICITY_PRICE: draw(st.floats(0.0, 1.0)),
            Param.CLOUD_PRICE_HOUR: draw(st.floats(0.01, 10.0)),
            Param.CLOUD_CAPACITY: draw(st.floats(1.0, 5000.0)),
            Param.CLOUD_UTILISATION: draw(st.floats(0.1, 1.0)),
            Param.GROWTH: draw(st.floats(0.0, 0.5)),
            Param.PEAK_TO_AVERAGE: draw(st.floats(1.0, 5.0)),
            Param.RESPONSE_BYTES: draw(st.floats(0.0, 1e6)),
            Param.REQUEST_BYTES: draw(st.floats(0.0, 1e6)),
            Param.NETWORK_COST: draw(st.floats(0.0, 5.0)),
            Param.DISCOUNT_RATE: draw(st.floats(0.0, 0.2)),
            Param.HYBRID_EDGE_SHARE: draw(st.floats(0.0, 1.0)),
            Param.SPLIT_HEAD_THROUGHPUT: head,
            Param.SPLIT_JOULES: idle / head + draw(st.floats(0.0, 5.0)),
            Param.SPLIT_TAIL_CAPACITY: draw(st.floats(1.0, 5000.0)),
            Param.SPLIT_REQUEST_BYTES: draw(st.floats(0.0, 1e6)),
        }
    )
    return values


def _pair(values: dict[Param, float], param: Param, a: float, b: float) -> dict[Param, np.ndarray]:
    out = {p: np.full(2, v) for p, v in values.items()}
    out[param] = np.array([a, b])
    return out


def _leq(a: float, b: float) -> bool:
    return a <= b + 1e-9 * max(1.0, abs(b))


def _savings(values: dict[Param, float], param: Param, a: float, b: float) -> tuple[float, float]:
    """The cloud's cost minus the edge's with ``param`` at ``a`` and at ``b``."""
    edge, cloud = present_costs(_pair(values, param, a, b), SPEC)
    saving = cloud - edge
    return float(saving[0]), float(saving[1])


@SETTINGS
@given(inputs(), st.floats(1e2, 1e8), st.floats(1.0, 100.0))
def test_more_volume_never_lowers_total_cost(
    values: dict[Param, float], volume: float, factor: float
) -> None:
    pair = _pair(values, Param.VOLUME, volume, volume * factor)
    for placement in Placement:
        _, summary = evaluate(placement, pair, SPEC)
        for figure in (summary.pv, summary.tco, summary.annual):
            assert _leq(float(figure[0]), float(figure[1])), placement


@SETTINGS
@given(inputs(), st.floats(0.0, 3.0), st.floats(0.0, 3.0))
def test_higher_egress_price_never_favours_cloud(
    values: dict[Param, float], scale: float, extra: float
) -> None:
    low, high = _savings(values, Param.EGRESS_SCALE, scale, scale + extra)
    assert _leq(low, high)


@SETTINGS
@given(inputs(), st.floats(0.0, 1e6), st.floats(0.0, 1e6))
def test_larger_responses_never_favour_cloud(
    values: dict[Param, float], size: float, extra: float
) -> None:
    low, high = _savings(values, Param.RESPONSE_BYTES, size, size + extra)
    assert _leq(low, high)


@SETTINGS
@given(inputs(), st.floats(0.0, 5000.0), st.floats(0.0, 5000.0))
def test_dearer_device_never_favours_edge(
    values: dict[Param, float], price: float, extra: float
) -> None:
    values = {**values, Param.DEVICE_RESIDUAL: 0.0}
    low, high = _savings(values, Param.DEVICE_PRICE, price, price + extra)
    assert _leq(high, low)


@SETTINGS
@given(st.floats(0.0, 0.5), st.integers(1, 30))
def test_crf_bounds(rate: float, years: int) -> None:
    # recovering capital at a positive rate costs at least straight line, at most all at once
    value = float(crf(rate, years))
    assert 1.0 / years * (1 - 1e-12) <= value <= (1.0 + rate) * (1 + 1e-12)
    # over one year the whole capital plus one year's interest: CRF(r, 1) = 1 + r
    assert abs(float(crf(rate, 1)) - (1.0 + rate)) <= 1e-12


@SETTINGS
@given(inputs())
def test_costs_are_never_negative_and_salvage_never_exceeds_purchases(
    values: dict[Param, float],
) -> None:
    one = {p: np.array([v]) for p, v in values.items()}
    for placement in Placement:
        flows, summary = evaluate(placement, one, SPEC)
        assert float(summary.pv[0]) >= -1e-9 and float(summary.tco[0]) >= -1e-9
        assert -float(flows.salvage.sum()) <= float(flows.hardware.sum()) + 1e-9


@SETTINGS
@given(
    inputs(),
    st.sampled_from([1.0, 60.0, 3600.0]),
    st.floats(0.0, 200_000.0),
    st.floats(1.0, 10.0),
)
def test_autoscaling_never_costs_more_than_always_on_and_grows_with_volume(
    v: dict[Param, float], granularity: float, minimum: float, volume_scale: float
) -> None:
    import dataclasses

    values = dict(v)
    values[Param.BILLING_GRANULARITY] = granularity
    values[Param.MINIMUM_BILLED] = minimum
    scaled = dataclasses.replace(SPEC, autoscale=True)
    pair = {p: np.full(2, x) for p, x in values.items()}
    always_pv, auto_pv = (
        float(evaluate(Placement.CLOUD, pair, spec)[1].pv[0]) for spec in (SPEC, scaled)
    )
    assert _leq(auto_pv, always_pv)
    more = _pair(values, Param.VOLUME, values[Param.VOLUME], values[Param.VOLUME] * volume_scale)
    pv = evaluate(Placement.CLOUD, more, scaled)[1].pv
    assert _leq(float(pv[0]), float(pv[1]))
