"""Best, typical and worst presets for the move to the edge, derived from the tornado.

Typical is the base case. Best sets every input to the end of its range (low or high) that
gave the larger edge saving in the tornado; worst to the end that gave the smaller one. The
presets are one output, so a reader sees how resilient the decision is to prices and traffic.
"""

from __future__ import annotations

import numpy as np

from tippingpoint.calculator.model import ModelSpec, Placement
from tippingpoint.calculator.params import Param, ParamSet
from tippingpoint.calculator.result import ScenarioPreset, ScenarioResult, Tornado
from tippingpoint.calculator.tco import evaluate

DESCRIPTIONS = {
    ScenarioPreset.BEST: "every input at the end of its range that favours the edge",
    ScenarioPreset.TYPICAL: "every input at its base value",
    ScenarioPreset.WORST: "every input at the end of its range that favours the cloud",
}


def preset_values(tornado: Tornado, preset: ScenarioPreset) -> dict[Param, float]:
    """The inputs a preset moves away from base, and where to."""
    out: dict[Param, float] = {}
    if preset is ScenarioPreset.TYPICAL:
        return out
    for row in tornado.rows:
        if row.metric_low == row.metric_high:
            continue
        low_better = row.metric_low > row.metric_high
        pick_low = low_better if preset is ScenarioPreset.BEST else not low_better
        out[row.param] = row.low if pick_low else row.high
    return out


def scenarios(params: ParamSet, spec: ModelSpec, tornado: Tornado) -> tuple[ScenarioResult, ...]:
    """Edge and cloud under the best, typical and worst presets."""
    results = []
    for preset in ScenarioPreset:
        moved = preset_values(tornado, preset)
        values = {p: np.array([moved.get(p, iv.value)]) for p, iv in params.items()}
        _, edge = evaluate(Placement.EDGE, values, spec)
        _, cloud = evaluate(Placement.CLOUD, values, spec)
        e_pv, c_pv = float(edge.pv[0]), float(cloud.pv[0])
        results.append(
            ScenarioResult(
                preset=preset,
                description=DESCRIPTIONS[preset],
                values=moved,
                edge_pv=e_pv,
                cloud_pv=c_pv,
                npv_savings=c_pv - e_pv,
                edge_cost_per_million=float(edge.cost_per_million[0]),
                cloud_cost_per_million=float(cloud.cost_per_million[0]),
                cheaper=Placement.EDGE if e_pv <= c_pv else Placement.CLOUD,
            )
        )
    return tuple(results)
