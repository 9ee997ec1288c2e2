"""The cost result: a versioned JSON document the report renderer plots without recomputing.

Format history (``schema_version``):

* 1: first version. USD throughout; monthly cumulative cost curves per placement (index 0 =
  upfront); tipping-point curve over daily volume (year-one annual cost); tornado rows; Monte
  Carlo percentiles and histograms (VaR95/CVaR95 of the saving on its upper tail); best /
  typical / worst presets.
* 2: one cash-flow basis and the risk on the loss side. The tipping volume is the root of
  NPV(volume) = 0 over the horizon (curves are present values; the linear V* is gone);
  paybacks in fractional months, hours and calendar dates from ``start``; the saving's VaR95
  and CVaR95 are on its loss tail (P5 and the mean at or below it), with P(loss) and the
  expected saving; switching values; cost lines named ``annual``/``tco``/``pv`` in
  ``currency`` (any, converted at ``fx_rate``), each with the weakest basis of its inputs,
  its inputs and caveats; capex and opex subtotals and monthly cash flows by component per
  placement; link capacity, cost-of-delay and outage lines; placements "not measured" and an
  inconclusive recommendation where a deciding figure is invalid; the host a proxy run was
  measured on. :func:`read_cost_data` reads version 1 files, upgraded, with a warning naming
  what version 1 did not compute. Added since, without a version change (a version 2 file
  without them reads as before): the ``split`` placement and its inputs (``split_*``), costed
  from a measured split run.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any, Literal

from pydantic import Field

from tippingpoint.calculator.latency import LatencyCheck
from tippingpoint.calculator.model import CAPITAL, Component, Placement
from tippingpoint.calculator.params import Basis, InputValue, Param
from tippingpoint.core.types import Frozen
from tippingpoint.profiles.schema import Amortisation, CloudKind

COST_SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Versions :func:`read_cost_data` reads (older ones upgraded)."""


class InputRow(InputValue):
    """An input as used, with whether it is stale (``as_of`` older than the threshold)."""

    stale: bool = False
    assumed_value: bool = Field(description="True when nothing backs the value")


class CostLine(Frozen):
    """One component of a placement's cost, in three views, with its basis."""

    component: Component
    category: Literal["capex", "opex"]
    annual: float = Field(description="year one, capital annualised, in the result's currency")
    tco: float = Field(description="horizon, undiscounted")
    pv: float = Field(description="horizon, discounted")
    basis: Basis = Field(description="the weakest basis among the inputs behind the line")
    inputs: tuple[Param, ...] = Field(default=(), description="the inputs behind this line")
    note: str = ""
    assumed_inputs: tuple[Param, ...] = Field(
        default=(), description="inputs behind this line that have no source"
    )
    caveats: tuple[str, ...] = Field(
        default=(), description="what a reader must know: proxy host, accepted flags"
    )


class ComponentFlows(Frozen):
    """One component's cash flows by month, undiscounted: index 0 upfront, t the end of t."""

    component: Component
    values: tuple[float, ...]


class LinkCheck(Frozen):
    """A placement's peak upload against the network profile's uplink."""

    network: str
    peak_upload_mbps: float = Field(description="busiest month's peak rate x bytes sent up")
    uplink_mbps: float
    feasible: bool
    reason: str | None = None


class PlacementResult(Frozen):
    """Cost, energy and feasibility of one placement."""

    placement: Placement
    label: str
    cloud: str | None = None
    edge_share: float = Field(
        description="share of inferences served at the edge (a split's head runs there for all)"
    )
    feasible: bool = Field(description="meets the SLO, the data constraints and the uplink")
    latency: LatencyCheck
    link: LinkCheck | None = None
    edge_units_year1: float | None = None
    cloud_instances_year1: float | None = None
    cost_per_million: float = Field(
        description="levelised: PV(costs) / PV(inferences) x 1e6, in the result's currency"
    )
    annual_cost: float = Field(description="year one, capital annualised")
    tco: float = Field(description="over the horizon, undiscounted, salvage included")
    pv: float = Field(description="over the horizon, discounted")
    eac: float = Field(description="equivalent annual cost: PV x CRF(r, horizon)")
    capex_tco: float = Field(description="hardware, salvage and one-time costs, undiscounted")
    opex_tco: float = Field(description="every other cost line, undiscounted")
    capex_pv: float
    opex_pv: float
    kwh_per_year: float | None = None
    kwh_basis: Basis | None = None
    co2e_kg_per_year: float | None = None
    lines: tuple[CostLine, ...]
    cumulative_cost: tuple[float, ...] = Field(
        description="spent by the end of month t, t = 0 (upfront) .. horizon"
    )
    cash_flows: tuple[ComponentFlows, ...] = Field(
        default=(), description="monthly cash flows by component (empty when read from v1)"
    )
    caveats: tuple[str, ...] = ()

    @property
    def reason(self) -> str | None:
        """Why the placement is infeasible: the latency or the link reason."""
        if self.feasible:
            return None
        if self.link is not None and not self.link.feasible:
            lat = self.latency.reason if not self.latency.feasible else None
            return "; ".join(r for r in (lat, self.link.reason) if r)
        return self.latency.reason or "infeasible"


class Crossing(Frozen):
    """A daily volume where the NPV of choosing edge changes sign."""

    volume_per_day: float
    edge_cheaper_above: bool
    bracket_low: float | None = Field(default=None, description="sweep volume below the root")
    bracket_high: float | None = Field(default=None, description="sweep volume above the root")


class TippingPoint(Frozen):
    """Where edge and cloud cost the same, by volume, and the curve to plot it."""

    basis: Literal["pv-horizon", "annual-year-one"] = Field(
        default="pv-horizon",
        description="pv-horizon: roots of NPV(volume) = 0 on the monthly cash flows; "
        "annual-year-one: a version 1 result's year-one annual costs",
    )
    volume_per_day: float | None = Field(
        description="lowest volume above which edge stays cheaper; None when the costs never "
        "cross that way in the range studied (see cheaper_throughout)"
    )
    crossings: tuple[Crossing, ...] = ()
    cheaper_throughout: Placement | None = Field(
        default=None, description="the placement cheaper at every volume studied, if one is"
    )
    base_volume_per_day: float
    curve_volume_per_day: tuple[float, ...]
    curve_edge: tuple[float, ...] = Field(description="edge cost at each volume (see basis)")
    curve_cloud: tuple[float, ...]


class Comparison(Frozen):
    """Edge against one cloud placement over the horizon, all from the monthly cash flows."""

    npv_savings: float = Field(description="PV(cloud) - PV(edge): positive means edge saves")
    payback_months: float | None = Field(
        default=None, description="months until the undiscounted cumulative saving reaches 0"
    )
    payback_hours: float | None = None
    payback_date: date | None = None
    discounted_payback_months: float | None = Field(
        default=None, description="months until the discounted cumulative saving reaches 0"
    )
    discounted_payback_hours: float | None = None
    discounted_payback_date: date | None = None
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


class SwitchingValue(Frozen):
    """The value of one input, the rest at base, at which the NPV of edge changes sign."""

    param: Param
    unit: str
    base_value: float
    value: float | None = Field(description="None when it does not flip within the limits")
    change: float | None = Field(
        default=None, description="value / base - 1; None when the base is 0 or no value"
    )
    within_range: bool = Field(description="whether the value lies in the input's range")
    searched_low: float
    searched_high: float
    cheaper_beyond: Placement | None = Field(
        default=None, description="the placement cheaper on the far side of the value"
    )


class Stats(Frozen):
    """Summary of a Monte Carlo output, in the result's currency."""

    mean: float
    std: float
    p5: float
    p50: float
    p95: float
    tail: Literal["high", "low"] = Field(
        default="high", description="the tail that hurts: high for a cost, low for a saving"
    )
    var95: float = Field(description="value at risk: P95 of a cost, P5 of a saving")
    cvar95: float | None = Field(
        description="mean of the values at or beyond VaR95 on the tail that hurts "
        "(None when read from a version 1 result)"
    )


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
    savings: Stats = Field(description="NPV of choosing edge; its risk is on the low tail")
    p_edge_cheaper: float
    p_loss: float = Field(description="P(NPV of choosing edge < 0)")
    expected_saving: float = Field(description="mean NPV of choosing edge")
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
    not_measured: str | None = Field(
        default=None,
        description="why the cloud placement has no valid measured figure, and the fix; "
        "then nothing is priced against it",
    )
    inputs: tuple[InputRow, ...]
    placements: tuple[PlacementResult, ...] = Field(
        description="cloud, then hybrid if asked, then split when a split run was measured"
    )
    comparison: Comparison | None = None
    tornado: Tornado | None = None
    switching: tuple[SwitchingValue, ...] = ()
    monte_carlo: MonteCarlo | None = None
    scenarios: tuple[ScenarioResult, ...] = ()


class RecommendationStatus(str, Enum):
    """Whether the figures decide."""

    DECIDED = "decided"
    INCONCLUSIVE = "inconclusive"
    NONE_FEASIBLE = "none-feasible"


class Recommendation(Frozen):
    """The cheapest placement that meets the SLO, by present value over the horizon."""

    status: RecommendationStatus = RecommendationStatus.DECIDED
    label: str | None = Field(description="None unless the figures decide")
    pv: float | None
    reason: str
    leaning: str | None = Field(
        default=None, description="inconclusive: the cheapest feasible placement priced"
    )
    invalid_inputs: tuple[str, ...] = Field(
        default=(), description="the invalid or unmeasured figures that keep it from deciding"
    )


class ProxyHost(Frozen):
    """Edge figures measured on one machine and costed as another device."""

    measured_on: str
    costed_as: str
    reason: str


class CostResult(Frozen):
    """The calculator's output for one edge device against one or more cloud placements."""

    schema_version: Literal[2] = 2
    tool_version: str
    computed_on: date
    start: date = Field(description="month 0 of the cash flows: payback dates count from it")
    currency: str = Field(default="USD", description="ISO 4217 code of every amount")
    fx_rate: float = Field(default=1.0, description="units of currency per USD (profiles: USD)")
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
    proxy: ProxyHost | None = Field(
        default=None, description="set when the edge was measured on another machine"
    )
    illustrative: tuple[str, ...] = Field(
        default=(),
        description="why the result illustrates rather than decides: a proxy host, a "
        "loopback stand-in for the cloud",
    )
    caveats: tuple[str, ...] = Field(
        default=(), description="labels every line carries: proxy host, accepted flagged runs"
    )
    edge: PlacementResult
    analyses: tuple[CloudAnalysis, ...]
    recommendation: Recommendation
    warnings: tuple[str, ...] = ()


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version 1 result as version 2: renamed fields, figures v1 lacks left empty."""

    def line(ln: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in ln.items() if not k.endswith("_usd")}
        out.update(annual=ln["annual_usd"], tco=ln["tco_usd"], pv=ln["pv_usd"])
        out["category"] = "capex" if Component(ln["component"]) in CAPITAL else "opex"
        return out

    def placement(p: dict[str, Any]) -> dict[str, Any]:
        lines = [line(ln) for ln in p["lines"]]
        out = {**p, "lines": lines}
        for view in ("tco", "pv"):
            out[f"capex_{view}"] = sum(ln[view] for ln in lines if ln["category"] == "capex")
            out[f"opex_{view}"] = sum(ln[view] for ln in lines if ln["category"] == "opex")
        return out

    def stats(s: dict[str, Any], saving: bool) -> dict[str, Any]:
        if not saving:
            return {**s, "tail": "high"}
        return {**s, "tail": "low", "var95": s["p5"], "cvar95": None}

    analyses = []
    for a in data["analyses"]:
        comp = dict(a["comparison"])
        tip = dict(comp.pop("tipping"))
        tip.pop("linear_volume_per_day", None)
        tip.pop("linear_note", None)
        tip["basis"] = "annual-year-one"
        tip["curve_edge"] = tip.pop("curve_edge_annual")
        tip["curve_cloud"] = tip.pop("curve_cloud_annual")
        comparison = {
            "npv_savings": comp["npv_savings"],
            "break_even_month": comp.get("break_even_month"),
            "tipping": tip,
        }
        mc = a.get("monte_carlo")
        if mc is not None:
            mc = {
                **mc,
                "edge_pv": stats(mc["edge_pv"], False),
                "cloud_pv": stats(mc["cloud_pv"], False),
                "savings": stats(mc["savings"], True),
                "p_loss": 1.0 - mc["p_edge_cheaper"],
                "expected_saving": mc["savings"]["mean"],
            }
        analyses.append(
            {
                **a,
                "placements": [placement(p) for p in a["placements"]],
                "comparison": comparison,
                "monte_carlo": mc,
            }
        )
    rec = dict(data["recommendation"])
    rec["status"] = "decided" if rec.get("label") else "none-feasible"
    note = (
        "read from a cost result of schema version 1: paybacks, switching values, the "
        "saving's CVaR95, cash flows by component and the NPV-based tipping point were not "
        "computed (its tipping point is on year-one annual cost); re-run 'tippingpoint cost'"
    )
    return {
        **data,
        "schema_version": 2,
        "start": data["computed_on"],
        "edge": placement(data["edge"]),
        "analyses": analyses,
        "recommendation": rec,
        "warnings": [*data.get("warnings", ()), note],
    }


def read_cost_data(data: Any) -> CostResult:
    """A cost result from parsed JSON: this version as is, version 1 upgraded.

    Raises ``ValueError`` naming the version when it is not one this tippingpoint reads, and
    pydantic's ``ValidationError`` when the document does not fit its version.
    """
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_VERSIONS:
        raise ValueError(
            f"cost schema_version {version!r}; this tippingpoint reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    assert isinstance(data, dict)
    if version == 1:
        try:
            data = _upgrade_v1(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"cost schema_version 1 with {exc} missing") from None
    return CostResult.model_validate(data)
