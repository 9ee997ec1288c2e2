"""The numeric inputs of the cost model: names, units, provenance and ranges.

Every input the model reads is a :class:`Param`. An :class:`InputValue` holds its base value,
the range the tornado sweeps and the Monte Carlo draws from, where the value came from, and
its basis (measured, sourced, assumed, ...). A value without a stated range gets a default
spread around its base by basis: measured ±10 %, estimated ±30 %, sourced ±20 %, assumed ±50 %.
No range is changed silently: a default spread that a physical limit cuts (a PUE below 1) is
one-sided and the input says so (``range_note``); a value of 0 without a stated range has no
spread to apply, is held at 0 and says so too. The calculator lists both kinds in its warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from enum import Enum

from pydantic import Field

from tippingpoint.core.types import Frozen
from tippingpoint.profiles.schema import Distribution, Sourced


class Basis(str, Enum):
    """Where a figure comes from; shown next to every input and cost line."""

    MEASURED = "measured"
    SLO_BOUND = "slo-bound"
    MEASURED_THROUGHPUT = "measured-throughput"
    ESTIMATED = "estimated"
    SOURCED = "sourced"
    ASSUMED = "assumed"


BASIS_ORDER: tuple[Basis, ...] = (
    Basis.MEASURED,
    Basis.SLO_BOUND,
    Basis.MEASURED_THROUGHPUT,
    Basis.SOURCED,
    Basis.ESTIMATED,
    Basis.ASSUMED,
)
"""Strongest first: measured (an SLO-bound rate, then a bare throughput) > sourced > estimated
> assumed. A figure computed from several inputs is only as good as the weakest of them."""


def weakest(bases: Iterable[Basis]) -> Basis:
    """The weakest basis among ``bases`` (assumed when there are none)."""
    return max(bases, key=BASIS_ORDER.index, default=Basis.ASSUMED)


class Param(str, Enum):
    """One numeric input of the cost model."""

    VOLUME = "inferences_per_day"
    GROWTH = "growth_per_year"
    PEAK_TO_AVERAGE = "peak_to_average"
    REQUEST_BYTES = "request_bytes"
    RESPONSE_BYTES = "response_bytes"
    DISCOUNT_RATE = "discount_rate"
    HYBRID_EDGE_SHARE = "hybrid_edge_share"
    DEVICE_PRICE = "device_price"
    DEVICE_LIFE = "device_life_years"
    DEVICE_RESIDUAL = "device_residual_value"
    DEVICE_IDLE_W = "device_idle_watts"
    DEVICE_ACTIVE_W = "device_active_watts"
    DEVICE_UTILISATION = "device_target_utilisation"
    MAINTENANCE_SHARE = "device_maintenance_share"
    DEVICE_OPS = "device_ops_per_year"
    EDGE_INTEGRATION = "edge_integration_cost"
    SITE_PUE = "edge_site_pue"
    EDGE_THROUGHPUT = "edge_throughput"
    EDGE_JOULES = "edge_joules_per_inference"
    ELECTRICITY_PRICE = "electricity_price"
    EDGE_GRID = "edge_grid_intensity"
    CLOUD_PRICE_HOUR = "cloud_price_per_hour"
    CLOUD_UTILISATION = "cloud_target_utilisation"
    CLOUD_CAPACITY = "cloud_capacity"
    BILLING_GRANULARITY = "billing_granularity_s"
    MINIMUM_BILLED = "minimum_billed_s"
    API_PRICE = "api_price_per_million"
    TOKEN_PRICE_IN = "api_price_per_million_input_tokens"
    TOKEN_PRICE_OUT = "api_price_per_million_output_tokens"
    TOKENS_IN = "tokens_in_per_request"
    TOKENS_OUT = "tokens_out_per_request"
    EGRESS_SCALE = "egress_price_scale"
    CLOUD_STORAGE = "cloud_storage_per_month"
    CLOUD_OPS = "cloud_ops_per_year"
    CLOUD_INTEGRATION = "cloud_integration_cost"
    CLOUD_WATTS = "cloud_instance_watts"
    CLOUD_PUE = "cloud_pue"
    CLOUD_GRID = "cloud_grid_intensity"
    NETWORK_COST = "network_cost_per_gb"
    EDGE_UPSTREAM = "edge_upstream_share"
    DELAY_VALUE = "delay_cost_per_late_request"
    EDGE_LATE_SHARE = "edge_late_share"
    CLOUD_LATE_SHARE = "cloud_late_share"
    UNAVAILABILITY = "cloud_unavailability"
    OUTAGE_VALUE = "outage_cost_per_inference"
    FX_RATE = "fx_rate"
    SPLIT_HEAD_THROUGHPUT = "split_head_throughput"
    SPLIT_JOULES = "split_joules_per_inference"
    SPLIT_TAIL_CAPACITY = "split_tail_capacity"
    SPLIT_REQUEST_BYTES = "split_request_bytes"
    SPLIT_LATE_SHARE = "split_late_share"
    SPLIT_BUSY_S = "split_device_seconds_per_inference"
    EDGE_BUSY_S = "edge_device_seconds_per_inference"


UNITS: dict[Param, str] = {
    Param.VOLUME: "inferences/day",
    Param.GROWTH: "per year",
    Param.PEAK_TO_AVERAGE: "ratio",
    Param.REQUEST_BYTES: "bytes",
    Param.RESPONSE_BYTES: "bytes",
    Param.DISCOUNT_RATE: "per year",
    Param.HYBRID_EDGE_SHARE: "share",
    Param.DEVICE_PRICE: "USD/unit",
    Param.DEVICE_LIFE: "years",
    Param.DEVICE_RESIDUAL: "USD/unit",
    Param.DEVICE_IDLE_W: "W",
    Param.DEVICE_ACTIVE_W: "W",
    Param.DEVICE_UTILISATION: "share",
    Param.MAINTENANCE_SHARE: "of price/year",
    Param.DEVICE_OPS: "USD/unit/year",
    Param.EDGE_INTEGRATION: "USD",
    Param.SITE_PUE: "ratio",
    Param.EDGE_THROUGHPUT: "inferences/s/unit",
    Param.EDGE_JOULES: "J/inference",
    Param.ELECTRICITY_PRICE: "USD/kWh",
    Param.EDGE_GRID: "gCO2e/kWh",
    Param.CLOUD_PRICE_HOUR: "USD/hour",
    Param.CLOUD_UTILISATION: "share",
    Param.CLOUD_CAPACITY: "inferences/s/instance",
    Param.BILLING_GRANULARITY: "s",
    Param.MINIMUM_BILLED: "s",
    Param.API_PRICE: "USD/million requests",
    Param.TOKEN_PRICE_IN: "USD/million tokens",
    Param.TOKEN_PRICE_OUT: "USD/million tokens",
    Param.TOKENS_IN: "tokens/request",
    Param.TOKENS_OUT: "tokens/request",
    Param.EGRESS_SCALE: "x tier prices",
    Param.CLOUD_STORAGE: "USD/month",
    Param.CLOUD_OPS: "USD/year",
    Param.CLOUD_INTEGRATION: "USD",
    Param.CLOUD_WATTS: "W/instance",
    Param.CLOUD_PUE: "ratio",
    Param.CLOUD_GRID: "gCO2e/kWh",
    Param.NETWORK_COST: "USD/GB",
    Param.EDGE_UPSTREAM: "share of request bytes",
    Param.DELAY_VALUE: "USD/late request",
    Param.EDGE_LATE_SHARE: "share of requests",
    Param.CLOUD_LATE_SHARE: "share of requests",
    Param.UNAVAILABILITY: "share of time",
    Param.OUTAGE_VALUE: "USD/inference lost",
    Param.FX_RATE: "currency per USD",
    Param.SPLIT_HEAD_THROUGHPUT: "inferences/s/unit",
    Param.SPLIT_JOULES: "J/inference",
    Param.SPLIT_TAIL_CAPACITY: "inferences/s/instance",
    Param.SPLIT_REQUEST_BYTES: "bytes",
    Param.SPLIT_LATE_SHARE: "share of requests",
    Param.SPLIT_BUSY_S: "s/inference",
    Param.EDGE_BUSY_S: "s/inference",
}
"""The unit of each input."""

LIMITS: dict[Param, tuple[float, float]] = {
    Param.GROWTH: (-0.99, float("inf")),
    Param.DISCOUNT_RATE: (-0.99, float("inf")),
    Param.PEAK_TO_AVERAGE: (1.0, float("inf")),
    Param.HYBRID_EDGE_SHARE: (0.0, 1.0),
    Param.DEVICE_UTILISATION: (1e-6, 1.0),
    Param.CLOUD_UTILISATION: (1e-6, 1.0),
    Param.DEVICE_LIFE: (1.0 / 12.0, float("inf")),
    Param.SITE_PUE: (1.0, float("inf")),
    Param.CLOUD_PUE: (1.0, float("inf")),
    Param.EDGE_THROUGHPUT: (1e-9, float("inf")),
    Param.CLOUD_CAPACITY: (1e-9, float("inf")),
    Param.BILLING_GRANULARITY: (1e-3, float("inf")),
    Param.VOLUME: (1e-9, float("inf")),
    Param.EDGE_UPSTREAM: (0.0, 1.0),
    Param.EDGE_LATE_SHARE: (0.0, 1.0),
    Param.CLOUD_LATE_SHARE: (0.0, 1.0),
    Param.UNAVAILABILITY: (0.0, 1.0),
    Param.FX_RATE: (1e-12, float("inf")),
    Param.SPLIT_HEAD_THROUGHPUT: (1e-9, float("inf")),
    Param.SPLIT_TAIL_CAPACITY: (1e-9, float("inf")),
    Param.SPLIT_LATE_SHARE: (0.0, 1.0),
}
"""Physical limits a default spread is clipped to; anything not listed is at least zero."""

DEFAULT_SPREAD: dict[Basis, float] = {
    Basis.MEASURED: 0.10,
    Basis.SLO_BOUND: 0.10,
    Basis.MEASURED_THROUGHPUT: 0.10,
    Basis.ESTIMATED: 0.30,
    Basis.SOURCED: 0.20,
    Basis.ASSUMED: 0.50,
}
"""Relative half-width of the range of an input that states none, by basis."""


class InputValue(Frozen):
    """One input: base value, range, distribution and provenance."""

    param: Param
    value: float
    low: float
    high: float
    distribution: Distribution = Distribution.TRIANGULAR
    basis: Basis
    range_stated: bool = Field(description="False when the range is the default spread")
    range_note: str | None = Field(
        default=None,
        description="how a range without a statement was set: a default spread cut at a "
        "physical limit (one-sided), or a value of 0 held with no spread",
    )
    source: str | None = None
    as_of: date | None = None
    origin: str = Field(description="profile or report the value came from")
    unit: str

    @property
    def assumed(self) -> bool:
        """True when nothing backs the value."""
        return self.basis is Basis.ASSUMED


def limits(param: Param) -> tuple[float, float]:
    """The physical limits of an input: LIMITS, else zero or more."""
    return LIMITS.get(param, (0.0, float("inf")))


def _clip(param: Param, x: float) -> float:
    lo, hi = limits(param)
    return min(max(x, lo), hi)


def _default_range(param: Param, value: float, basis: Basis) -> tuple[float, float, str | None]:
    """The default spread of an unstated range, and a note when it is not symmetric."""
    spread = DEFAULT_SPREAD[basis] * abs(value)
    if spread == 0:
        return value, value, "no range stated and the value is 0: held at 0 (state low/high)"
    lo, hi = _clip(param, value - spread), _clip(param, value + spread)
    share = f"±{DEFAULT_SPREAD[basis]:.0%}"
    if lo > value - spread:
        return lo, hi, f"default {share} cut at the lower limit {lo:g}: one-sided below"
    if hi < value + spread:
        return lo, hi, f"default {share} cut at the upper limit {hi:g}: one-sided above"
    return lo, hi, None


def make_input(
    param: Param,
    value: float,
    basis: Basis,
    origin: str,
    *,
    low: float | None = None,
    high: float | None = None,
    distribution: Distribution = Distribution.TRIANGULAR,
    source: str | None = None,
    as_of: date | None = None,
) -> InputValue:
    """An input with its range: the stated one, else the default spread for its basis."""
    stated = low is not None or high is not None
    note = None
    if distribution is Distribution.FIXED:
        lo = hi = value
        stated = True
    elif stated:
        lo = low if low is not None else value
        hi = high if high is not None else value
    else:
        lo, hi, note = _default_range(param, value, basis)
    return InputValue(
        param=param,
        value=value,
        low=min(lo, value),
        high=max(hi, value),
        distribution=distribution,
        basis=basis,
        range_stated=stated,
        range_note=note,
        source=source,
        as_of=as_of,
        origin=origin,
        unit=UNITS[param],
    )


def from_sourced(param: Param, sv: Sourced, origin: str) -> InputValue:
    """An input from a profile value: sourced when it names a source, else assumed."""
    return make_input(
        param,
        sv.value,
        Basis.ASSUMED if sv.assumed else Basis.SOURCED,
        origin,
        low=sv.low,
        high=sv.high,
        distribution=sv.distribution,
        source=sv.source,
        as_of=sv.as_of,
    )


ParamSet = Mapping[Param, InputValue]
"""All inputs of one evaluation, keyed by parameter."""


def base_values(params: ParamSet) -> dict[Param, float]:
    """The base value of every input."""
    return {p: iv.value for p, iv in params.items()}
