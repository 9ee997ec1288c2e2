"""The cost result format: version 1 files stay readable, and what the renderer needs is there."""

import json
from pathlib import Path

from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.result import COST_SCHEMA_VERSION, CostResult

FIXTURE = Path(__file__).parent / "fixtures" / "cost_v1.json"


def test_committed_v1_result_still_validates() -> None:
    # written by the hand-worked example (tests/calculator_factory.py) with a 50 % hybrid;
    # a change to CostResult that breaks this file must bump COST_SCHEMA_VERSION
    data = json.loads(FIXTURE.read_text())
    assert data["schema_version"] == 1 == COST_SCHEMA_VERSION
    result = CostResult.model_validate(data)
    analysis = result.analyses[0]
    assert [p.placement for p in analysis.placements] == [Placement.CLOUD, Placement.HYBRID]
    months = result.horizon_months
    for placement in (result.edge, *analysis.placements):
        assert len(placement.cumulative_cost) == months + 1
        assert placement.lines
    tip = analysis.comparison.tipping
    assert len(tip.curve_volume_per_day) == len(tip.curve_edge_annual)
    assert len(tip.curve_cloud_annual) == len(tip.curve_volume_per_day)
    mc = analysis.monte_carlo
    assert mc is not None and sum(mc.hist_savings.counts) == mc.draws
    assert analysis.tornado.rows and len(analysis.scenarios) == 3


def test_json_schema_names_the_version() -> None:
    schema = CostResult.model_json_schema()
    assert schema["properties"]["schema_version"]["const"] == 1
