"""The cost result: a versioned JSON document the report renderer plots without recomputing.

Format history (``schema_version``):

* 1: first version. USD throughout; monthly cumulative cost curves per placement (index 0 =
  upfront); tipping-point curve over daily volume; tornado rows; Monte Carlo percentiles and
  histograms; best / typical / worst presets. Bump on any breaking change.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Literal

from pydantic import Field

from tippingpoint.calculator.latency import LatencyCheck
from tippingpoint.calculator.model import Component, Placement
from tippingpoint.calculator.params import Basis, InputValue, Param
from tippingpoint.core.types import Frozen
from tippingpoint.profiles.schema import Amortisation, CloudKind

COST_SCHEMA_VERSION = 1


class InputRow(InputValue):
    """An input as used, with whether it is stale (``as_of`` older than the threshold)."""

    stale: bool = False
    assumed_value: bool = Field(description="True when nothing backs the value")


class CostLine(Frozen):
    """One component of a placement's cost, in three views, with its basis."""

    component: Component
    annual_usd: float = Field(description="year one, capital annualised")
    tco_usd: float = Field(description="horizon, undiscounted")
    pv_usd: float = Field(description="horizon, discounted")
    basis: Basis
    note: str = ""
    assumed_inputs: tuple[Param, ...] = Field(
        default=(), description="inputs behind this line that have no source"
    )


class PlacementResult(Frozen):
    """Cost, energy and feasibility of one placement."""

    placement: Placement
    label: str
    cloud: str | None = None
    edge_share: float
    feasible: bool
    latency: LatencyCheck
    edge_units_year1: float | None = None
    cloud_instances_year1: float | None = None
    cost_per_million: float = Field(description="USD per million inferences, year one")
    annual_cost: float = Field(description="USD, year one, capital annualised")
    tco: float = Field(description="USD over the horizon, undiscounted, salvage included")
    pv: float = Field(description="USD over the horizon, discounted")
    eac: float = Field(description="equivalent annual cost, USD per year")
    kwh_per_year: float | None = None
    kwh_basis: Basis | None = None
    co2e_kg_per_year: float | None = None
    lines: tuple[CostLine, ...]
    cumulative_cost: tuple[float, ...] = Field(
        description="USD spent by the end of month t, t = 0 (upfront) .. horizon"
    )


class Crossing(Frozen):
    """A daily volume where edge and cloud annual costs are equal."""

    volume_per_day: float
    edge_cheaper_above: bool


class TippingPoint(Frozen):
    """Where edge and cloud cost the same, by volume, and the curve to plot it."""

    volume_per_day: float | None = Field(
        description="lowest volume above which edge stays cheaper (year-one annual cost); None "
        "when the costs never cross that way in the range studied (see cheaper_throughout)"
    )
    crossings: tuple[Crossing, ...] = ()
    cheaper_throughout: Placement | None = Field(
        default=None, description="the placement cheaper at every volume studied, if one is"
    )
    linear_volume_per_day: float | None = Field(
        default=None, description="V* = fixed / (v_cloud - v_edge), one device, no steps"
    )
    linear_note: str = ""
    base_volume_per_day: float
    curve_volume_per_day: tuple[float, ...]
    curve_edge_annual: tuple[float, ...]
    curve_cloud_annual: tuple[float, ...]


class Comparison(Frozen):
    """Edge against one cloud placement over the horizon."""

    npv_savings: float = Field(description="PV(cloud) - PV(edge): positive means edge saves")
    simple_payback_months: float | None = None
    discounted_payback_month: int | None = None
    break_even_month: int | None = Field(
        default=None, description="first month from which edge's cumulative cost stays lower"
    )
    tipping: TippingPoint


class TornadoRow(Frozen):
    """One input at its low and high with the rest at base."""

    param: Param
    unit: str
    base_value: float
    low: float
    high: float
    metric_low: float
    metric_high: float
    swing: float


class Tornado(Frozen):
    """One-at-a-time sensitivity of the edge saving (PV cloud - PV edge), sorted by swing."""

    metric: str = "npv_savings"
    base: float
    rows: tuple[TornadoRow, ...]


class Stats(Frozen):
    """Summary of a Monte Carlo output, USD."""

    mean: float
    std: float
    p5: float
    p50: float
    p95: float
    var95: float = Field(description="95th percentile (value at risk) of the cost")
    cvar95: float = Field(description="mean of the values at or above VaR95")


class Histogram(Frozen):
    """Counts per bin; ``edges`` has one more entry than ``counts``."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


class MonteCarlo(Frozen):
    """Monte Carlo over every input's range: PV of edge and cloud costs, and the saving."""

    draws: int
    seed: int
    edge_pv: Stats
    cloud_pv: Stats
    savings: Stats
    p_edge_cheaper: float
    hist_edge_pv: Histogram
    hist_cloud_pv: Histogram
    hist_savings: Histogram


class ScenarioPreset(str, Enum):
    """Best, typical and worst case for the move to the edge."""

    BEST = "best"
    TYPICAL = "typical"
    WORST = "worst"


class ScenarioResult(Frozen):
    """Both placements under one preset."""

    preset: ScenarioPreset
    description: str
    values: dict[Param, float] = Field(description="inputs that differ from the base case")
    edge_pv: float
    cloud_pv: float
    npv_savings: float
    edge_cost_per_million: float
    cloud_cost_per_million: float
    cheaper: Placement


class CloudAnalysis(Frozen):
    """Everything computed against one cloud profile."""

    cloud: str
    cloud_kind: CloudKind
    inputs: tuple[InputRow, ...]
    placements: tuple[PlacementResult, ...] = Field(description="cloud, then hybrid if asked")
    comparison: Comparison
    tornado: Tornado
    monte_carlo: MonteCarlo | None = None
    scenarios: tuple[ScenarioResult, ...] = ()


class Recommendation(Frozen):
    """The cheapest placement that meets the SLO, by present value over the horizon."""

    label: str | None
    pv: float | None
    reason: str


class CostResult(Frozen):
    """The calculator's output for one edge device against one or more cloud placements."""

    schema_version: Literal[1] = 1
    tool_version: str
    computed_on: date
    currency: Literal["USD"] = "USD"
    model: str | None = None
    variant: str | None = Field(
        default=None, description="model variant of the edge reports costed, e.g. fp32"
    )
    cloud_variant: str | None = Field(
        default=None, description="model variant the endpoint was measured on, if any"
    )
    device: str
    network: str
    energy: str
    workload: str
    horizon_months: int
    amortisation: Amortisation
    slo_p99_ms: float | None = None
    edge: PlacementResult
    analyses: tuple[CloudAnalysis, ...]
    recommendation: Recommendation
    warnings: tuple[str, ...] = ()
