"""The cost result format: version 1 and 2 files stay readable, and what the renderer needs is
there."""

import json
from pathlib import Path

import pytest

from tippingpoint.calculator.model import Component, Placement
from tippingpoint.calculator.result import (
    COST_SCHEMA_VERSION,
    CostResult,
    RecommendationStatus,
    read_cost_data,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _renderable(result: CostResult) -> None:
    analysis = result.analyses[0]
    assert [p.placement for p in analysis.placements] == [Placement.CLOUD, Placement.HYBRID]
    months = result.horizon_months
    for placement in (result.edge, *analysis.placements):
        assert len(placement.cumulative_cost) == months + 1
        assert placement.lines
        capex = sum(ln.tco for ln in placement.lines if ln.category == "capex")
        assert placement.capex_tco == pytest.approx(capex)
    assert analysis.comparison is not None
    tip = analysis.comparison.tipping
    assert len(tip.curve_volume_per_day) == len(tip.curve_edge) == len(tip.curve_cloud)
    mc = analysis.monte_carlo
    assert mc is not None and sum(mc.hist_savings.counts) == mc.draws
    assert analysis.tornado is not None and analysis.tornado.rows
    assert len(analysis.scenarios) == 3


def test_committed_v1_result_is_read_upgraded() -> None:
    # written by the hand-worked example (tests/calculator_factory.py) with a 50 % hybrid
    data = json.loads((FIXTURES / "cost_v1.json").read_text())
    assert data["schema_version"] == 1
    result = read_cost_data(data)
    assert result.schema_version == COST_SCHEMA_VERSION == 2
    _renderable(result)
    a = result.analyses[0]
    assert a.comparison is not None
    # version 1's tipping point was on year-one annual cost: kept, and labelled so
    assert a.comparison.tipping.basis == "annual-year-one"
    assert a.comparison.payback_months is None  # version 1 counted it another way
    # version 1's VaR of the saving was its upside: the loss side is its P5, CVaR unknown
    mc = a.monte_carlo
    assert mc is not None and mc.savings.tail == "low"
    assert mc.savings.var95 == mc.savings.p5 and mc.savings.cvar95 is None
    assert mc.p_loss == pytest.approx(1 - mc.p_edge_cheaper)
    hardware = next(ln for ln in result.edge.lines if ln.component is Component.HARDWARE)
    assert hardware.category == "capex"
    assert result.recommendation.status is RecommendationStatus.DECIDED
    assert any("schema version 1" in w for w in result.warnings)


def test_committed_v2_result_still_validates() -> None:
    # written by tests/test_calculator_exports.py's case; a change to CostResult that breaks
    # this file must bump COST_SCHEMA_VERSION and keep a reader for version 2
    data = json.loads((FIXTURES / "cost_v2.json").read_text())
    assert data["schema_version"] == 2
    result = read_cost_data(data)
    _renderable(result)
    a = result.analyses[0]
    assert a.switching and a.comparison is not None
    assert a.comparison.tipping.basis == "pv-horizon"
    assert result.edge.cash_flows


def test_unknown_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="cost schema_version 99"):
        read_cost_data({"schema_version": 99})
    with pytest.raises(ValueError, match="cost schema_version None"):
        read_cost_data([])


def test_json_schema_names_the_version() -> None:
    schema = CostResult.model_json_schema()
    assert schema["properties"]["schema_version"]["const"] == 2
