"""Cost profiles: devices, clouds, network links, energy regions and workloads, validated.

Every number is a :class:`Sourced` value: the figure, where it came from (``source``), when it
was true (``as_of``), and optionally a range (``low``, ``high``) and a distribution for the
sensitivity sweep and the Monte Carlo. In TOML a value is either a bare number, which is then
*assumed* and shown as such everywhere, or an inline table::

    purchase_price = { value = 80, source = "raspberrypi.com launch post", as_of = 2023-09-28 }
    life_years = { value = 4, low = 3, high = 6 }   # assumed (no source), with its range

An assumed value should state its range (``low``/``high``): the sensitivity analysis and the
Monte Carlo sweep it. Without one the calculator applies a default spread by basis (see
:mod:`tippingpoint.calculator.params`), holds a value of 0 fixed, and says so in its warnings;
a default spread that a physical limit cuts (a PUE below 1) is made one-sided, and said so too.
Defaults of optional fields are assumed values without a range, documented on each field.
"""

from __future__ import annotations

import math
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from tippingpoint.core.links import (
    GilbertElliott,
    JitterDistribution,
    LinkSpec,
    OutageWindow,
)
from tippingpoint.core.types import Frozen


class Distribution(str, Enum):
    """How the Monte Carlo draws a value between its low and high."""

    TRIANGULAR = "triangular"
    UNIFORM = "uniform"
    FIXED = "fixed"


class Sourced(Frozen):
    """A number with its provenance; without a ``source`` it is an assumption."""

    value: float
    source: str | None = None
    as_of: date | None = None
    low: float | None = None
    high: float | None = None
    distribution: Distribution = Distribution.TRIANGULAR

    @property
    def assumed(self) -> bool:
        """True when no source backs the value."""
        return not self.source

    @model_validator(mode="after")
    def _range_holds_value(self) -> Sourced:
        if not math.isfinite(self.value):
            raise ValueError(f"value must be a finite number, got {self.value}")
        if self.low is not None and self.low > self.value:
            raise ValueError(f"low {self.low} is above the value {self.value}")
        if self.high is not None and self.high < self.value:
            raise ValueError(f"high {self.high} is below the value {self.value}")
        return self


def _coerce(raw: Any) -> Any:
    """A bare number becomes an assumed Sourced value."""
    if isinstance(raw, bool):
        raise ValueError("expected a number or a {value=..., source=..., as_of=...} table")
    if isinstance(raw, int | float):
        return {"value": raw}
    return raw


def _bound(lo: float | None, hi: float | None, lo_open: bool = False) -> Any:
    def check(v: Sourced) -> Sourced:
        for name, x in (("value", v.value), ("low", v.low), ("high", v.high)):
            if x is None:
                continue
            if lo is not None and (x < lo or (lo_open and x == lo)):
                op = ">" if lo_open else ">="
                raise ValueError(f"{name} must be {op} {lo:g}, got {x:g}")
            if hi is not None and x > hi:
                raise ValueError(f"{name} must be <= {hi:g}, got {x:g}")
        return v

    return check


NonNegative = Annotated[Sourced, BeforeValidator(_coerce), AfterValidator(_bound(0.0, None))]
"""A price, a power, a count: zero or more."""
Positive = Annotated[Sourced, BeforeValidator(_coerce), AfterValidator(_bound(0.0, None, True))]
"""A life, a bandwidth, a capacity: strictly more than zero."""
Fraction = Annotated[Sourced, BeforeValidator(_coerce), AfterValidator(_bound(0.0, 1.0, True))]
"""A utilisation or a share: in (0, 1]."""
Probability = Annotated[Sourced, BeforeValidator(_coerce), AfterValidator(_bound(0.0, 1.0))]
"""A loss rate or a share that may be zero: in [0, 1]."""
Growth = Annotated[Sourced, BeforeValidator(_coerce), AfterValidator(_bound(-0.99, None))]
"""A yearly growth or discount rate: above -99 %."""
AtLeastOne = Annotated[Sourced, BeforeValidator(_coerce), AfterValidator(_bound(1.0, None))]
"""A peak-to-average ratio: 1 or more."""


def assumed(value: float) -> Sourced:
    """A default with no source: shown as assumed in every output."""
    return Sourced(value=value)


class ProfileKind(str, Enum):
    """The five kinds of profile; a TOML file holds tables named ``[<kind>.<name>]``."""

    DEVICE = "device"
    CLOUD = "cloud"
    NETWORK = "network"
    ENERGY = "energy"
    WORKLOAD = "workload"


class ProfileBase(Frozen):
    """Name, description and the file a profile was read from."""

    name: str = Field(min_length=1)
    description: str = ""
    origin: str = Field(default="", description="file the profile was read from")


ARCHITECTURE_ALIASES = {"arm64": "aarch64", "amd64": "x86_64", "x64": "x86_64"}
"""Other spellings of platform.machine()'s architecture names."""


def normalise_architecture(name: str) -> str:
    """x86_64 and aarch64 for their other spellings (amd64, arm64), lower case."""
    low = name.strip().lower()
    return ARCHITECTURE_ALIASES.get(low, low)


class DeviceIdentity(Frozen):
    """How a report's host fingerprint is recognised as this device.

    A report matches when its architecture (``platform.machine()``) is ``architecture`` and one
    of ``cpu`` or ``board`` is found (case-insensitive substring) in the host's board model
    (``/proc/device-tree/model`` on Arm boards, which names the Jetson module too) or its CPU
    model (``/proc/cpuinfo``; on a Raspberry Pi its ``Model`` line names the board).
    """

    architecture: str | None = Field(default=None, description="e.g. aarch64 or x86_64")
    cpu: tuple[str, ...] = Field(default=(), description="CPU/SoC model substrings")
    board: tuple[str, ...] = Field(default=(), description="board or module model substrings")

    @model_validator(mode="after")
    def _something_declared(self) -> DeviceIdentity:
        if self.architecture is None and not self.cpu and not self.board:
            raise ValueError("an identity needs an architecture, a cpu or a board")
        if any(not p.strip() for p in (*self.cpu, *self.board)):
            raise ValueError("identity cpu and board entries must not be empty")
        return self


class DeviceProfile(ProfileBase):
    """An edge device: price, life, residual value, power, upkeep. USD, years, watts.

    Defaults (assumed): target utilisation 0.7 (0.5 .. 0.85); and, with no range (the
    calculator holds them and says so), residual value 0, maintenance share 0, ops 0,
    integration 0.
    """

    purchase_price: NonNegative = Field(description="USD per unit")
    life_years: Positive
    residual_value: NonNegative = Field(default_factory=lambda: assumed(0.0))
    idle_watts: NonNegative
    active_watts: NonNegative = Field(description="used only when no measured energy exists")
    target_utilisation: Fraction = Field(
        default_factory=lambda: Sourced(value=0.7, low=0.5, high=0.85),
        description="share of capacity planned for; default 0.7 (assumed, 0.5 .. 0.85)",
    )
    maintenance_share: NonNegative = Field(
        default_factory=lambda: assumed(0.0), description="maintenance per year, share of price"
    )
    ops_per_year: NonNegative = Field(
        default_factory=lambda: assumed(0.0), description="USD per unit per year (labour, SIM)"
    )
    integration_cost: NonNegative = Field(
        default_factory=lambda: assumed(0.0), description="one-time USD for the deployment"
    )
    identity: DeviceIdentity | None = Field(
        default=None,
        description="architecture, CPU/SoC and board of the device, checked against each edge "
        "report's host fingerprint; without it the reports' host cannot be checked",
    )

    @model_validator(mode="after")
    def _residual_below_price(self) -> DeviceProfile:
        if self.residual_value.value > self.purchase_price.value:
            raise ValueError("residual_value is above purchase_price")
        return self


class CloudKind(str, Enum):
    """A dedicated instance billed per hour, or a managed API billed per request."""

    INSTANCE = "instance"
    API = "api"


class PricingModel(str, Enum):
    """How an instance is bought."""

    ON_DEMAND = "on-demand"
    RESERVED = "reserved"
    SPOT = "spot"


class ScalingMode(str, Enum):
    """How an instance fleet follows the load over the day.

    ``always-on``: the fleet sized for the peak runs around the clock (730 h a month).
    ``autoscale``: the day is modelled as peak hours and off-peak hours (see
    :mod:`tippingpoint.calculator.model`); instances added for the peak are billed for the
    peak hours rounded up to the billing granularity, at least the minimum billed time.
    """

    ALWAYS_ON = "always-on"
    AUTOSCALE = "autoscale"


class EgressTier(Frozen):
    """Price per GB of the traffic a month up to ``up_to_gb`` (None: no upper bound)."""

    up_to_gb: float | None = Field(default=None, gt=0)
    price_per_gb: NonNegative


class CloudProfile(ProfileBase):
    """A cloud placement: an instance type or an inference API, with egress tiers. USD."""

    kind: CloudKind
    provider: str = ""
    instance: str | None = None
    region: str | None = None
    pricing: PricingModel | None = None
    price_per_hour: NonNegative | None = None
    target_utilisation: Fraction = Field(
        default_factory=lambda: Sourced(value=0.7, low=0.5, high=0.85),
        description="share of capacity planned for; default 0.7 (assumed, 0.5 .. 0.85)",
    )
    min_instances: int = Field(default=1, ge=0)
    scaling: ScalingMode = Field(
        default=ScalingMode.ALWAYS_ON,
        description="always-on: the peak fleet runs 24 h; autoscale: peak and off-peak fleets",
    )
    billing_granularity_s: Positive = Field(
        default_factory=lambda: assumed(3600.0),
        description="instance time is billed in whole steps of this many seconds (autoscale)",
    )
    minimum_billed_s: NonNegative = Field(
        default_factory=lambda: assumed(0.0),
        description="each start of an instance is billed for at least this long (autoscale)",
    )
    capacity_qps: Positive | None = Field(
        default=None, description="inferences/s per instance; used only without an HTTP report"
    )
    price_per_million_requests: NonNegative | None = None
    price_per_million_input_tokens: NonNegative | None = Field(
        default=None, description="token-priced APIs: USD per million input tokens"
    )
    price_per_million_output_tokens: NonNegative | None = Field(
        default=None, description="token-priced APIs: USD per million output tokens"
    )
    server_p99_ms: NonNegative | None = Field(
        default=None, description="used only without an HTTP report"
    )
    egress_tiers: tuple[EgressTier, ...] = ()
    storage_per_month: NonNegative = Field(default_factory=lambda: assumed(0.0))
    ops_per_year: NonNegative = Field(default_factory=lambda: assumed(0.0))
    integration_cost: NonNegative = Field(default_factory=lambda: assumed(0.0))
    instance_watts: NonNegative | None = Field(
        default=None, description="board power per instance, for kWh and CO2e only"
    )
    pue: Positive = Field(
        default_factory=lambda: Sourced(value=1.1, low=1.05, high=1.2),
        description="data-centre PUE; default 1.1 (assumed, 1.05 .. 1.2)",
    )
    grid_gco2_per_kwh: NonNegative | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> CloudProfile:
        if self.kind is CloudKind.INSTANCE and self.price_per_hour is None:
            raise ValueError("an instance profile needs price_per_hour")
        tokens = (self.price_per_million_input_tokens, self.price_per_million_output_tokens)
        if (tokens[0] is None) != (tokens[1] is None):
            raise ValueError("give both input and output token prices, or neither")
        if self.kind is CloudKind.API and self.price_per_million_requests is None:
            if tokens[0] is None:
                raise ValueError("an api profile needs price_per_million_requests or token prices")
        if self.kind is CloudKind.INSTANCE and tokens[0] is not None:
            raise ValueError("token prices apply to api profiles only")
        if self.kind is CloudKind.API and self.scaling is ScalingMode.AUTOSCALE:
            raise ValueError("scaling = 'autoscale' applies to instance profiles only")
        if self.pricing is PricingModel.RESERVED and self.scaling is ScalingMode.AUTOSCALE:
            raise ValueError(
                "a reservation is billed every hour of its term: use scaling = 'always-on'"
            )
        bounds = [t.up_to_gb for t in self.egress_tiers]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last egress tier may omit up_to_gb")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(set(finite)):
            raise ValueError("egress tiers must have increasing up_to_gb")
        return self


class NetworkProfile(ProfileBase):
    """The link between the data's source and the cloud: latency, bandwidth, loss, cost.

    The calculator reads ``rtt_ms``, the rates, ``loss`` and ``cost_per_gb``; the network
    shapers (``tippingpoint run --network NAME``) apply :meth:`link`: the one-way delays (half
    the RTT each way unless given), jitter, random or bursty loss, the rates, MTU and outages.
    A profile read from a file outside tippingpoint's own data is marked user-defined.
    """

    rtt_ms: NonNegative
    uplink_mbps: Positive
    downlink_mbps: Positive
    loss: Probability = Field(default_factory=lambda: assumed(0.0))
    cost_per_gb: NonNegative = Field(
        default_factory=lambda: assumed(0.0), description="metered transfer, USD per GB"
    )
    delay_up_ms: NonNegative | None = Field(
        default=None, description="one-way delay to the cloud; default: half of rtt_ms"
    )
    delay_down_ms: NonNegative | None = Field(
        default=None, description="one-way delay from the cloud; default: rtt_ms minus up"
    )
    jitter_ms: NonNegative = Field(default_factory=lambda: assumed(0.0))
    jitter_distribution: JitterDistribution = JitterDistribution.NORMAL
    seed: int = Field(default=1, ge=0, description="seed of the shaper's jitter and loss draws")
    bursty_loss: GilbertElliott | None = Field(
        default=None, description="Gilbert-Elliott loss; replaces random loss in the shapers"
    )
    mtu: int = Field(default=1500, ge=576, le=65535)
    outages: tuple[OutageWindow, ...] = ()
    caveat: str = Field(default="", description="what the figures do not cover")
    availability: Probability | None = Field(
        default=None,
        description="share of the time the cloud is reachable over this link (the calculator "
        "prices the rest with the workload's outage_cost_per_inference)",
    )
    outage_hours_per_year: NonNegative | None = Field(
        default=None, description="hours a year the cloud is unreachable (instead of availability)"
    )

    @model_validator(mode="after")
    def _one_availability(self) -> NetworkProfile:
        if self.availability is not None and self.outage_hours_per_year is not None:
            raise ValueError("give availability or outage_hours_per_year, not both")
        hours = self.outage_hours_per_year
        if hours is not None and max(hours.value, hours.high or 0.0) > 8760:
            raise ValueError("outage_hours_per_year must be <= 8760 (a year)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _loss_from_bursty(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("bursty_loss") is not None and "loss" not in data:
            ge = GilbertElliott.model_validate(data["bursty_loss"])
            data = {**data, "loss": {"value": ge.mean_loss, "source": "mean of bursty_loss"}}
        return data

    @model_validator(mode="after")
    def _delays_match_rtt(self) -> NetworkProfile:
        rtt = self.rtt_ms.value
        up, down = self.delay_up_ms, self.delay_down_ms
        for name, d in (("delay_up_ms", up), ("delay_down_ms", down)):
            if d is not None and d.value > rtt * (1 + 1e-6):
                raise ValueError(f"{name} {d.value:g} is above rtt_ms {rtt:g}")
        if (
            up is not None
            and down is not None
            and not math.isclose(up.value + down.value, rtt, rel_tol=1e-3, abs_tol=1e-6)
        ):
            raise ValueError(
                f"delay_up_ms + delay_down_ms = {up.value + down.value:g} differs from "
                f"rtt_ms {rtt:g}"
            )
        if self.bursty_loss is not None and not math.isclose(
            self.loss.value, self.bursty_loss.mean_loss, rel_tol=0.05, abs_tol=1e-9
        ):
            raise ValueError(
                f"loss {self.loss.value:g} differs from bursty_loss's mean "
                f"{self.bursty_loss.mean_loss:.4g}: drop loss (it is then derived) or match it"
            )
        return self

    @property
    def user_defined(self) -> bool:
        """True unless the profile was read from tippingpoint's own data folder."""
        if not self.origin:
            return True
        builtin = Path(__file__).with_name("data").resolve()
        return Path(self.origin).resolve().parent != builtin

    def one_way_ms(self) -> tuple[float, float]:
        """(up, down) one-way delays: as given, else split from ``rtt_ms``."""
        rtt = self.rtt_ms.value
        up, down = self.delay_up_ms, self.delay_down_ms
        if up is not None and down is not None:
            return up.value, down.value
        if up is not None:
            return up.value, max(rtt - up.value, 0.0)
        if down is not None:
            return max(rtt - down.value, 0.0), down.value
        return rtt / 2, rtt / 2

    def link(self) -> LinkSpec:
        """The emulation parameters the network shapers apply."""
        up, down = self.one_way_ms()
        cited = [
            v.source + (f" ({v.as_of.isoformat()})" if v.as_of else "")
            for v in (self.rtt_ms, self.uplink_mbps, self.downlink_mbps)
            if v.source
        ]
        return LinkSpec(
            name=self.name,
            user_defined=self.user_defined,
            source="; ".join(dict.fromkeys(cited)),
            caveat=self.caveat,
            delay_up_ms=up,
            delay_down_ms=down,
            jitter_ms=self.jitter_ms.value,
            jitter_distribution=self.jitter_distribution,
            seed=self.seed,
            loss=0.0 if self.bursty_loss is not None else min(self.loss.value, 0.999),
            bursty_loss=self.bursty_loss,
            rate_up_mbps=self.uplink_mbps.value,
            rate_down_mbps=self.downlink_mbps.value,
            mtu=self.mtu,
            outages=self.outages,
        )


class EnergyProfile(ProfileBase):
    """Electricity where the edge devices run: price, grid carbon intensity, site PUE."""

    region: str = ""
    price_per_kwh: NonNegative = Field(description="USD per kWh")
    grid_gco2_per_kwh: NonNegative
    pue: Positive = Field(
        default_factory=lambda: Sourced(value=1.0, distribution=Distribution.FIXED),
        description="power usage effectiveness of the site; default 1, fixed: a device in the "
        "field has no facility overhead (set it, with a range, for a server room)",
    )


class Amortisation(str, Enum):
    """How capital is spread over the years of its life."""

    STRAIGHT_LINE = "straight-line"
    CRF = "crf"


class WorkloadProfile(ProfileBase):
    """The load to serve, its latency bound, and the horizon and rate of the analysis.

    Defaults (assumed): growth 0 and no range (held, and said so), peak-to-average 1 (a flat
    day; its default spread is one-sided, as a day cannot be flatter), discount rate 8 %
    (default spread), no upstream traffic from the edge, no value on late or lost inferences.
    ``horizon_months``, when set, overrides ``horizon_years``.
    """

    inferences_per_day: Positive
    growth_per_year: Growth = Field(default_factory=lambda: assumed(0.0))
    peak_to_average: AtLeastOne = Field(default_factory=lambda: assumed(1.0))
    request_bytes: NonNegative | None = Field(
        default=None, description="default: what the HTTP report measured"
    )
    response_bytes: NonNegative | None = Field(
        default=None, description="default: what the HTTP report measured"
    )
    slo_p99_ms: float | None = Field(default=None, gt=0)
    tokens_in_per_request: NonNegative | None = Field(
        default=None, description="for token-priced APIs"
    )
    tokens_out_per_request: NonNegative | None = Field(
        default=None, description="for token-priced APIs"
    )
    must_stay_on_premises: bool = False
    horizon_years: int = Field(default=3, ge=1, le=30)
    discount_rate: Growth = Field(default_factory=lambda: assumed(0.08))
    amortisation: Amortisation = Amortisation.CRF
    hybrid_edge_share: Probability | None = None
    horizon_months: int | None = Field(
        default=None, ge=1, le=360, description="horizon in months; overrides horizon_years"
    )
    edge_upstream_share: Probability | None = Field(
        default=None,
        description="share of the request bytes the edge still sends upstream (summaries, "
        "alerts): its transfer is priced and must fit the uplink; none when unset",
    )
    delay_cost_per_late_request: NonNegative | None = Field(
        default=None,
        description="USD lost per request answered over slo_p99_ms, applied to the share of "
        "measured requests over it",
    )
    outage_cost_per_inference: NonNegative | None = Field(
        default=None,
        description="USD lost per inference the cloud cannot serve while unreachable (the "
        "network profile's availability)",
    )

    @property
    def months(self) -> int:
        """The horizon in months: ``horizon_months``, else 12 x ``horizon_years``."""
        return self.horizon_months if self.horizon_months is not None else 12 * self.horizon_years


PROFILE_TYPES: dict[ProfileKind, type[ProfileBase]] = {
    ProfileKind.DEVICE: DeviceProfile,
    ProfileKind.CLOUD: CloudProfile,
    ProfileKind.NETWORK: NetworkProfile,
    ProfileKind.ENERGY: EnergyProfile,
    ProfileKind.WORKLOAD: WorkloadProfile,
}
"""The model class of each profile kind."""
