"""Cost and energy per million output tokens, and the tipping point in tokens per day.

Pure functions over generative reports (their ``generation`` section) and profiles; nothing
here measures or prints. Three kinds of placement are priced for a daily volume of output
tokens ``V``:

* **edge**: devices of the device profile, each serving the output tokens/s measured on it
  (the goodput's tokens when the run had an SLO: only good requests count as capacity) at the
  profile's target utilisation; per day, the devices' capital (purchase less residual over
  their life), maintenance and operations, the energy of the tokens (J per output token of the
  report, measured or estimated, else the profile's active watts over the measured tokens/s,
  labelled estimated) and the idle power of the rest of the day, at the energy profile's price;
* **instance**: a cloud instance profile (USD per hour, always on) serving what a report
  measured against an endpoint on it: capacity = goodput at the SLO (the generative report's
  output tokens of good requests per second), else its output tokens/s, flagged;
* **api**: a token-priced API profile (USD per million input and output tokens, sourced and
  dated in ``profiles/data/clouds.toml``): per million output tokens, the output price plus the
  input price times the measured prompt-to-output token ratio.

The tipping point against each cloud option is the smallest daily volume at which the edge
costs no more per day, found on a log grid of volumes and refined by bisection; the edge's
cost steps up as devices are added, so the result also says whether the edge is still the
cheaper at the volume asked about.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from enum import Enum

import numpy as np
from pydantic import Field

from tippingpoint.core.errors import CostInputError
from tippingpoint.core.schema import GenerationResults, MeasurementMethod, Report
from tippingpoint.core.types import Frozen
from tippingpoint.profiles.schema import (
    CloudKind,
    CloudProfile,
    DeviceProfile,
    EnergyProfile,
    Sourced,
)

SECONDS_PER_DAY = 86_400.0
DAYS_PER_YEAR = 365.0
J_PER_KWH = 3.6e6
MIN_TOKENS_PER_DAY = 1.0
MAX_TOKENS_PER_DAY = 1e13
GRID_POINTS = 1200


class PlacementKind(str, Enum):
    """Where the tokens are generated."""

    EDGE = "edge"
    INSTANCE = "instance"
    API = "api"


class TokenPlacement(Frozen):
    """One placement at the volume asked about (USD; energy in joules)."""

    name: str
    kind: PlacementKind
    usd_per_million_output_tokens: float | None = Field(
        description="None when its capacity or price is not known"
    )
    joules_per_million_output_tokens: float | None = None
    energy_method: str | None = Field(
        default=None, description="measured, estimated from the run, or estimated from a profile"
    )
    capacity_output_tokens_per_s: float | None = Field(
        default=None, description="per device or instance; None for an API"
    )
    units: int | None = Field(default=None, description="devices or instances at the volume")
    usd_per_day: float | None = None
    tipping_tokens_per_day: float | None = Field(
        default=None,
        description="cloud options: the smallest daily volume from which the edge costs no more",
    )
    edge_cheaper_at_volume: bool | None = None
    notes: tuple[str, ...] = ()


class TokenCostResult(Frozen):
    """The token calculator's answer."""

    output_tokens_per_day: float
    volume_source: str
    prompt_to_output_ratio: float | None = Field(
        description="prompt tokens per output token, measured on the edge run"
    )
    edge_report: str = Field(description="run id of the edge report")
    placements: tuple[TokenPlacement, ...]
    notes: tuple[str, ...] = ()


def _v(s: Sourced | None, default: float = 0.0) -> float:
    return default if s is None else float(s.value)


def capacity_tokens_per_s(gen: GenerationResults) -> tuple[float, str]:
    """Output tokens/s one unit serves: of good requests when the run had an SLO (goodput),
    else of every successful request; with what it is."""
    m = gen.metrics
    if m.goodput is not None and m.succeeded:
        per_request = m.output_tokens / m.succeeded
        return m.goodput.requests_per_s * per_request, f"goodput at {m.goodput.slo.describe()}"
    return m.output_tokens_per_s, "output tokens/s (no SLO: every successful request counts)"


def prompt_ratio(gen: GenerationResults) -> float | None:
    """Prompt tokens per output token of the successful requests, when both are known."""
    m = gen.metrics
    if m.prompt_tokens is None or not m.output_tokens:
        return None
    return m.prompt_tokens / m.output_tokens


class EdgeModel:
    """The edge's cost and energy per day as a function of the daily output tokens."""

    def __init__(self, report: Report, device: DeviceProfile, energy: EnergyProfile) -> None:
        gen = report.generation
        if gen is None:
            raise CostInputError(
                f"report {report.run_id[:8]} has no generation section",
                "pass a report of 'tippingpoint run' on a generative backend",
            )
        self.capacity, self.capacity_note = capacity_tokens_per_s(gen)
        if self.capacity <= 0:
            raise CostInputError(
                f"the edge run {report.run_id[:8]} served no output tokens",
                "re-run it (its report holds no successful request)",
            )
        self.util = _v(device.target_utilisation, 0.7)
        life_days = _v(device.life_years) * DAYS_PER_YEAR
        price = _v(device.purchase_price)
        self.fixed_per_unit_day = (
            (price - _v(device.residual_value)) / life_days
            + price * _v(device.maintenance_share) / DAYS_PER_YEAR
            + _v(device.ops_per_year) / DAYS_PER_YEAR
        )
        self.idle_watts = _v(device.idle_watts)
        self.usd_per_j = _v(energy.price_per_kwh) * _v(energy.pue, 1.0) / J_PER_KWH
        if gen.joules_per_output_token is not None:
            self.j_per_token = gen.joules_per_output_token
            method = gen.energy_method
            kind = "estimated" if method is MeasurementMethod.ESTIMATED else "measured"
            how = f" ({method.value})" if method is not None else ""
            self.energy_method = f"{kind}{how} over the run's measured window"
        else:
            self.j_per_token = _v(device.active_watts) / self.capacity
            self.energy_method = (
                "estimated: the device profile's active watts / the measured output tokens/s"
            )

    def units(self, tokens_per_day: float) -> int:
        """Devices needed for ``tokens_per_day`` (at least one)."""
        per_unit = self.capacity * SECONDS_PER_DAY * self.util
        return max(1, math.ceil(tokens_per_day / per_unit - 1e-9))

    def joules_per_day(self, tokens_per_day: float) -> float:
        """The tokens' energy plus every device's idle power for the time it is not busy."""
        n = self.units(tokens_per_day)
        busy_s = tokens_per_day / self.capacity
        idle_s = max(n * SECONDS_PER_DAY - busy_s, 0.0)
        return tokens_per_day * self.j_per_token + idle_s * self.idle_watts

    def usd_per_day(self, tokens_per_day: float) -> float:
        """Capital, maintenance, operations and energy per day."""
        n = self.units(tokens_per_day)
        return n * self.fixed_per_unit_day + self.joules_per_day(tokens_per_day) * self.usd_per_j


def _instance_day(cloud: CloudProfile, capacity: float) -> Callable[[float], tuple[int, float]]:
    util = _v(cloud.target_utilisation, 0.7)
    hourly = _v(cloud.price_per_hour)

    def cost(tokens_per_day: float) -> tuple[int, float]:
        n = max(
            cloud.min_instances,
            math.ceil(tokens_per_day / (capacity * SECONDS_PER_DAY * util) - 1e-9),
            1,
        )
        return n, n * hourly * 24.0

    return cost


def tipping_point(edge: Callable[[float], float], other: Callable[[float], float]) -> float | None:
    """The smallest daily volume in [1, 1e13] at which ``edge(v) <= other(v)``, refined by
    bisection between grid points; None when the edge never costs less in that range."""
    grid = np.geomspace(MIN_TOKENS_PER_DAY, MAX_TOKENS_PER_DAY, GRID_POINTS)
    prev = None
    for v in grid:
        if edge(float(v)) <= other(float(v)):
            if prev is None:
                return float(v)
            lo, hi = prev, float(v)
            for _ in range(60):
                mid = math.sqrt(lo * hi)
                if edge(mid) <= other(mid):
                    hi = mid
                else:
                    lo = mid
                if hi / lo < 1.0001:
                    break
            return hi
        prev = float(v)
    return None


def token_costs(
    edge_report: Report,
    device: DeviceProfile,
    energy: EnergyProfile,
    clouds: Sequence[CloudProfile],
    *,
    output_tokens_per_day: float,
    volume_source: str,
    cloud_report: Report | None = None,
) -> TokenCostResult:
    """Every placement's USD and J per million output tokens at ``output_tokens_per_day``,
    and each cloud option's tipping point against the edge (see the module)."""
    if not output_tokens_per_day > 0 or not math.isfinite(output_tokens_per_day):
        raise CostInputError(
            f"the daily output tokens must be positive, got {output_tokens_per_day:g}",
            "give --tokens-per-day N (or a workload with inferences_per_day)",
        )
    edge = EdgeModel(edge_report, device, energy)
    assert edge_report.generation is not None
    ratio = prompt_ratio(edge_report.generation)
    v = output_tokens_per_day
    million = 1e6 / v
    edge_day = edge.usd_per_day(v)
    placements = [
        TokenPlacement(
            name=device.name,
            kind=PlacementKind.EDGE,
            usd_per_million_output_tokens=edge_day * million,
            joules_per_million_output_tokens=edge.joules_per_day(v) * million,
            energy_method=edge.energy_method,
            capacity_output_tokens_per_s=edge.capacity,
            units=edge.units(v),
            usd_per_day=edge_day,
            notes=(
                f"capacity: {edge.capacity_note}",
                f"measured on {edge_report.host.board or edge_report.host.cpu_model or '?'} "
                f"({edge_report.host.machine}); the {device.name} profile prices it",
                "one-off integration costs are left out; idle power of the devices' spare "
                "time is included",
            ),
        )
    ]
    notes: list[str] = []
    for cloud in clouds:
        placements.append(_cloud_placement(cloud, edge, v, ratio, cloud_report, notes))
    return TokenCostResult(
        output_tokens_per_day=v,
        volume_source=volume_source,
        prompt_to_output_ratio=ratio,
        edge_report=edge_report.run_id,
        placements=tuple(placements),
        notes=tuple(notes),
    )


def _cloud_placement(
    cloud: CloudProfile,
    edge: EdgeModel,
    v: float,
    ratio: float | None,
    cloud_report: Report | None,
    notes: list[str],
) -> TokenPlacement:
    million = 1e6 / v
    if cloud.kind is CloudKind.API:
        if cloud.price_per_million_output_tokens is None:
            return TokenPlacement(
                name=cloud.name,
                kind=PlacementKind.API,
                usd_per_million_output_tokens=None,
                notes=("priced per request, not per token: not comparable per token",),
            )
        p_in = _v(cloud.price_per_million_input_tokens)
        p_out = _v(cloud.price_per_million_output_tokens)
        per_million = p_out + p_in * (ratio or 0.0)
        src = cloud.price_per_million_output_tokens
        price_note = (
            f"prices: {src.source}, as of {src.as_of}"
            if src.source
            else "prices assumed (no source)"
        )
        api_notes = [price_note]
        if ratio is None:
            api_notes.append("input tokens unknown: the input price is left out")

        def api_day(x: float) -> float:
            return x / 1e6 * per_million

        tip = tipping_point(edge.usd_per_day, api_day)
        return TokenPlacement(
            name=cloud.name,
            kind=PlacementKind.API,
            usd_per_million_output_tokens=per_million,
            usd_per_day=api_day(v),
            tipping_tokens_per_day=tip,
            edge_cheaper_at_volume=edge.usd_per_day(v) <= api_day(v),
            notes=tuple(api_notes),
        )
    gen = cloud_report.generation if cloud_report is not None else None
    if gen is None:
        notes.append(
            f"{cloud.name}: no generative report measured against an endpoint, so its capacity "
            "is unknown; pass one (run --endpoint openai+http://...) to price it"
        )
        return TokenPlacement(
            name=cloud.name,
            kind=PlacementKind.INSTANCE,
            usd_per_million_output_tokens=None,
            notes=("capacity unknown: no endpoint report",),
        )
    capacity, what = capacity_tokens_per_s(gen)
    day = _instance_day(cloud, capacity)
    n, usd = day(v)
    joules = None
    method = None
    if cloud.instance_watts is not None:
        joules = n * _v(cloud.instance_watts) * _v(cloud.pue, 1.0) * SECONDS_PER_DAY * million
        method = "estimated: the profile's instance watts x PUE, always on"
    tip = tipping_point(edge.usd_per_day, lambda x: day(x)[1])
    return TokenPlacement(
        name=cloud.name,
        kind=PlacementKind.INSTANCE,
        usd_per_million_output_tokens=usd * million,
        joules_per_million_output_tokens=joules,
        energy_method=method,
        capacity_output_tokens_per_s=capacity,
        units=n,
        usd_per_day=usd,
        tipping_tokens_per_day=tip,
        edge_cheaper_at_volume=edge.usd_per_day(v) <= usd,
        notes=(f"capacity: {what} (report {cloud_report.run_id[:8] if cloud_report else '?'})",),
    )
