"""Assembling the model's inputs from profiles and measured figures, with provenance.

Measured figures win over profile figures where both exist: edge throughput and energy from
the device's reports, cloud capacity (SLO-bound) and payload bytes from the HTTP report.
Workload payload bytes, when set, override the measured ones (the workload describes the
production payload; the benchmark may have used a test input).

Profiles are in USD; with another currency every money input is converted at the stated
exchange rate (an input of its own, with its source) before the model runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from tippingpoint.calculator.capacity import CloudFigures, EdgeFigures
from tippingpoint.calculator.model import SPLIT_PARAMS, ModelSpec
from tippingpoint.calculator.params import (
    Basis,
    InputValue,
    Param,
    ParamSet,
    from_sourced,
    make_input,
)
from tippingpoint.core.errors import CostInputError
from tippingpoint.profiles.schema import (
    Amortisation,
    CloudKind,
    CloudProfile,
    DeviceProfile,
    Distribution,
    EgressTier,
    EnergyProfile,
    NetworkProfile,
    ScalingMode,
    Sourced,
    WorkloadProfile,
)

STALE_AFTER_DAYS = 365
"""A sourced value older than this is flagged stale."""

NO_COST_EFFECT = (
    frozenset(
        {
            Param.EDGE_GRID,
            Param.CLOUD_GRID,
            Param.CLOUD_WATTS,
            Param.CLOUD_PUE,
            Param.HYBRID_EDGE_SHARE,
        }
    )
    | SPLIT_PARAMS
)
"""Inputs that change energy or carbon figures, or the hybrid or the split only, not
edge-vs-cloud cost."""

NOT_VARIED = frozenset({Param.BILLING_GRANULARITY, Param.MINIMUM_BILLED, Param.FX_RATE})
"""Contract terms and the exchange rate, not uncertain quantities of the decision: the
sensitivity analysis holds them fixed (a rate scales both placements alike)."""

MONEY = frozenset(
    {
        Param.DEVICE_PRICE,
        Param.DEVICE_RESIDUAL,
        Param.DEVICE_OPS,
        Param.EDGE_INTEGRATION,
        Param.ELECTRICITY_PRICE,
        Param.CLOUD_PRICE_HOUR,
        Param.API_PRICE,
        Param.TOKEN_PRICE_IN,
        Param.TOKEN_PRICE_OUT,
        Param.CLOUD_STORAGE,
        Param.CLOUD_OPS,
        Param.CLOUD_INTEGRATION,
        Param.NETWORK_COST,
        Param.DELAY_VALUE,
        Param.OUTAGE_VALUE,
    }
)
"""Inputs in USD, converted with --currency/--fx."""


@dataclass(frozen=True)
class Profiles:
    """The profiles of one calculation (the cloud is chosen per analysis)."""

    device: DeviceProfile
    network: NetworkProfile
    energy: EnergyProfile
    workload: WorkloadProfile


def _src(param: Param, sv: Sourced, kind: str, name: str) -> InputValue:
    return from_sourced(param, sv, f"{kind} profile '{name}'")


def edge_inputs(profiles: Profiles, edge: EdgeFigures) -> dict[Param, InputValue]:
    """Workload, device and energy inputs, with measured edge figures."""
    w, d, e = profiles.workload, profiles.device, profiles.energy
    out: dict[Param, InputValue] = {}
    for param, sv in (
        (Param.VOLUME, w.inferences_per_day),
        (Param.GROWTH, w.growth_per_year),
        (Param.PEAK_TO_AVERAGE, w.peak_to_average),
        (Param.DISCOUNT_RATE, w.discount_rate),
    ):
        out[param] = _src(param, sv, "workload", w.name)
    if w.hybrid_edge_share is not None:
        out[Param.HYBRID_EDGE_SHARE] = _src(
            Param.HYBRID_EDGE_SHARE, w.hybrid_edge_share, "workload", w.name
        )
    for param, opt in (
        (Param.EDGE_UPSTREAM, w.edge_upstream_share),
        (Param.DELAY_VALUE, w.delay_cost_per_late_request),
    ):
        if opt is not None:
            out[param] = _src(param, opt, "workload", w.name)
    for param, sv in (
        (Param.DEVICE_PRICE, d.purchase_price),
        (Param.DEVICE_LIFE, d.life_years),
        (Param.DEVICE_RESIDUAL, d.residual_value),
        (Param.DEVICE_IDLE_W, d.idle_watts),
        (Param.DEVICE_ACTIVE_W, d.active_watts),
        (Param.DEVICE_UTILISATION, d.target_utilisation),
        (Param.MAINTENANCE_SHARE, d.maintenance_share),
        (Param.DEVICE_OPS, d.ops_per_year),
        (Param.EDGE_INTEGRATION, d.integration_cost),
    ):
        out[param] = _src(param, sv, "device", d.name)
    if edge.idle_watts is not None:
        out[Param.DEVICE_IDLE_W] = make_input(
            Param.DEVICE_IDLE_W, edge.idle_watts, Basis.MEASURED, edge.energy_origin
        )
    out[Param.EDGE_THROUGHPUT] = make_input(
        Param.EDGE_THROUGHPUT,
        edge.throughput,
        Basis.MEASURED,
        edge.throughput_origin,
        low=edge.throughput_low,
        high=edge.throughput_high,
    )
    if edge.joules_per_inference is not None:
        out[Param.EDGE_JOULES] = make_input(
            Param.EDGE_JOULES,
            edge.joules_per_inference,
            edge.energy_basis,
            edge.energy_origin,
            low=edge.joules_low,
            high=edge.joules_high,
        )
    out[Param.ELECTRICITY_PRICE] = _src(Param.ELECTRICITY_PRICE, e.price_per_kwh, "energy", e.name)
    out[Param.EDGE_GRID] = _src(Param.EDGE_GRID, e.grid_gco2_per_kwh, "energy", e.name)
    out[Param.SITE_PUE] = _src(Param.SITE_PUE, e.pue, "energy", e.name)
    return out


def _bytes(
    param: Param, workload: WorkloadProfile, sv: Sourced | None, measured: float | None, origin: str
) -> InputValue:
    if sv is not None:
        return _src(param, sv, "workload", workload.name)
    if measured is not None:
        return make_input(param, measured, Basis.MEASURED, origin)
    raise CostInputError(
        f"no {param.value.replace('_', ' ')}: the workload sets none and no HTTP report "
        "measured it",
        f"set {param.value} in the workload file, or pass an HTTP report in --reports",
    )


def cloud_inputs(
    profiles: Profiles,
    cloud: CloudProfile,
    figures: CloudFigures | None,
    accept_flagged: bool = False,
) -> dict[Param, InputValue]:
    """Cloud, network and payload inputs, with the measured SLO-bound capacity.

    A measured capacity with a problem (no valid SLO search) is left out, so the instance is
    not priced, unless ``accept_flagged``; then its throughput is used, labelled so.
    """
    w, n = profiles.workload, profiles.network
    origin = figures.capacity_origin if figures else ""
    out: dict[Param, InputValue] = {
        Param.REQUEST_BYTES: _bytes(
            Param.REQUEST_BYTES,
            w,
            w.request_bytes,
            figures.request_bytes if figures else None,
            origin,
        ),
        Param.RESPONSE_BYTES: _bytes(
            Param.RESPONSE_BYTES,
            w,
            w.response_bytes,
            figures.response_bytes if figures else None,
            origin,
        ),
        Param.NETWORK_COST: _src(Param.NETWORK_COST, n.cost_per_gb, "network", n.name),
    }
    if w.outage_cost_per_inference is not None:
        down = _unavailability(n)
        if down is not None:
            out[Param.UNAVAILABILITY] = down
            out[Param.OUTAGE_VALUE] = _src(
                Param.OUTAGE_VALUE, w.outage_cost_per_inference, "workload", w.name
            )
    for param, sv in (
        (Param.CLOUD_STORAGE, cloud.storage_per_month),
        (Param.CLOUD_OPS, cloud.ops_per_year),
        (Param.CLOUD_INTEGRATION, cloud.integration_cost),
    ):
        out[param] = _src(param, sv, "cloud", cloud.name)
    out[Param.EGRESS_SCALE] = _egress_input(w, cloud, out[Param.RESPONSE_BYTES].value)
    if cloud.kind is CloudKind.API:
        fee = cloud.price_per_million_requests or Sourced(
            value=0.0, source="no per-request fee: token-priced", distribution=Distribution.FIXED
        )
        out[Param.API_PRICE] = _src(Param.API_PRICE, fee, "cloud", cloud.name)
        if cloud.price_per_million_input_tokens and cloud.price_per_million_output_tokens:
            out.update(_token_inputs(w, cloud))
        return out
    assert cloud.price_per_hour is not None
    out[Param.CLOUD_PRICE_HOUR] = _src(
        Param.CLOUD_PRICE_HOUR, cloud.price_per_hour, "cloud", cloud.name
    )
    out[Param.CLOUD_UTILISATION] = _src(
        Param.CLOUD_UTILISATION, cloud.target_utilisation, "cloud", cloud.name
    )
    watts = cloud.instance_watts or Sourced(value=0.0, distribution=Distribution.FIXED)
    out[Param.CLOUD_WATTS] = _src(Param.CLOUD_WATTS, watts, "cloud", cloud.name)
    out[Param.CLOUD_PUE] = _src(Param.CLOUD_PUE, cloud.pue, "cloud", cloud.name)
    grid = cloud.grid_gco2_per_kwh or Sourced(value=0.0, distribution=Distribution.FIXED)
    out[Param.CLOUD_GRID] = _src(Param.CLOUD_GRID, grid, "cloud", cloud.name)
    if cloud.scaling is ScalingMode.AUTOSCALE:
        for param, sv in (
            (Param.BILLING_GRANULARITY, cloud.billing_granularity_s),
            (Param.MINIMUM_BILLED, cloud.minimum_billed_s),
        ):
            fixed = sv.model_copy(update={"distribution": Distribution.FIXED})
            out[param] = _src(param, fixed, "cloud", cloud.name)
    if figures is not None:
        if figures.capacity_problem is None or accept_flagged:
            out[Param.CLOUD_CAPACITY] = make_input(
                Param.CLOUD_CAPACITY, figures.capacity_qps, figures.capacity_basis, origin
            )
    elif cloud.capacity_qps is not None:
        out[Param.CLOUD_CAPACITY] = _src(
            Param.CLOUD_CAPACITY, cloud.capacity_qps, "cloud", cloud.name
        )
    else:
        raise CostInputError(
            f"no capacity for cloud profile '{cloud.name}': no HTTP report and no capacity_qps",
            "pass a server-scenario report of the endpoint in --reports, or set capacity_qps",
        )
    return out


def _egress_input(w: WorkloadProfile, cloud: CloudProfile, response_bytes: float) -> InputValue:
    """The egress price scale, sourced when every tier the traffic reaches names a source.

    The traffic is the workload's busiest month: the base daily volume grown to the horizon's
    last month (or the first, if it shrinks) times 365/12 days times the response bytes. A
    tier above that volume does not price it, so its provenance does not label the line.
    """
    origin = f"cloud profile '{cloud.name}' egress tiers"
    if not cloud.egress_tiers:
        return make_input(Param.EGRESS_SCALE, 1.0, Basis.ASSUMED, origin + " (none given)")
    growth = max(1.0, (1.0 + w.growth_per_year.value) ** ((12 * w.horizon_years - 1) / 12.0))
    gb = w.inferences_per_day.value * growth * 365.0 / 12.0 * response_bytes / 1e9
    lower = 0.0
    reached: list[tuple[float, EgressTier]] = []
    for t in cloud.egress_tiers:
        if lower < gb or not reached:  # the first tier prices even a month of 0 GB
            reached.append((lower, t))
        lower = t.up_to_gb if t.up_to_gb is not None else math.inf
    unsourced = [lo for lo, t in reached if t.price_per_gb.assumed]
    if unsourced:
        return make_input(
            Param.EGRESS_SCALE,
            1.0,
            Basis.ASSUMED,
            f"{origin}: the busiest month's {gb:.4g} GB reaches the tier above "
            f"{unsourced[0]:g} GB/month, which has no source",
        )
    note = f"{origin}: busiest month {gb:.4g} GB"
    if any(t.price_per_gb.assumed for t in cloud.egress_tiers[len(reached) :]):
        note += ", below the tiers that have no source"
    prices = [t.price_per_gb for _, t in reached]
    dates = [sv.as_of for sv in prices]
    return make_input(
        Param.EGRESS_SCALE,
        1.0,
        Basis.SOURCED,
        note,
        source="; ".join(dict.fromkeys(sv.source for sv in prices if sv.source)),
        as_of=None if any(d is None for d in dates) else min(d for d in dates if d is not None),
    )


def _unavailability(n: NetworkProfile) -> InputValue | None:
    """The share of time the cloud is unreachable over the link, from the network profile."""
    origin = f"network profile '{n.name}'"
    if n.availability is not None:
        a = n.availability
        return make_input(
            Param.UNAVAILABILITY,
            1.0 - a.value,
            Basis.ASSUMED if a.assumed else Basis.SOURCED,
            f"{origin}: 1 - availability {a.value:g}",
            low=None if a.high is None else 1.0 - a.high,
            high=None if a.low is None else 1.0 - a.low,
            distribution=a.distribution,
            source=a.source,
            as_of=a.as_of,
        )
    if n.outage_hours_per_year is not None:
        h = n.outage_hours_per_year
        return make_input(
            Param.UNAVAILABILITY,
            h.value / 8760.0,
            Basis.ASSUMED if h.assumed else Basis.SOURCED,
            f"{origin}: {h.value:g} outage hours a year / 8760",
            low=None if h.low is None else h.low / 8760.0,
            high=None if h.high is None else h.high / 8760.0,
            distribution=h.distribution,
            source=h.source,
            as_of=h.as_of,
        )
    return None


def _token_inputs(w: WorkloadProfile, cloud: CloudProfile) -> dict[Param, InputValue]:
    assert cloud.price_per_million_input_tokens and cloud.price_per_million_output_tokens
    if w.tokens_in_per_request is None or w.tokens_out_per_request is None:
        raise CostInputError(
            f"cloud profile '{cloud.name}' is priced per token, but workload '{w.name}' gives "
            "no tokens per request",
            "set tokens_in_per_request and tokens_out_per_request in the workload",
        )
    return {
        Param.TOKEN_PRICE_IN: _src(
            Param.TOKEN_PRICE_IN, cloud.price_per_million_input_tokens, "cloud", cloud.name
        ),
        Param.TOKEN_PRICE_OUT: _src(
            Param.TOKEN_PRICE_OUT, cloud.price_per_million_output_tokens, "cloud", cloud.name
        ),
        Param.TOKENS_IN: _src(Param.TOKENS_IN, w.tokens_in_per_request, "workload", w.name),
        Param.TOKENS_OUT: _src(Param.TOKENS_OUT, w.tokens_out_per_request, "workload", w.name),
    }


def model_spec(
    profiles: Profiles,
    cloud: CloudProfile,
    energy_from_power: bool,
    params: ParamSet | None = None,
    fx_rate: float = 1.0,
) -> ModelSpec:
    """The structural choices: horizon, amortisation, cloud kind, egress tiers (converted at
    ``fx_rate``), and the optional lines the inputs in ``params`` switch on."""
    w = profiles.workload
    have = set(params or ())
    bounds = tuple(t.up_to_gb if t.up_to_gb is not None else math.inf for t in cloud.egress_tiers)
    months = w.months
    return ModelSpec(
        months=months,
        horizon_years=months / 12.0,
        use_crf=w.amortisation is Amortisation.CRF,
        cloud_kind=cloud.kind,
        egress_bounds_gb=bounds,
        egress_prices=tuple(t.price_per_gb.value * fx_rate for t in cloud.egress_tiers),
        min_instances=cloud.min_instances,
        autoscale=cloud.kind is CloudKind.INSTANCE and cloud.scaling is ScalingMode.AUTOSCALE,
        energy_from_power=energy_from_power,
        token_priced=cloud.price_per_million_input_tokens is not None,
        edge_upstream=Param.EDGE_UPSTREAM in have,
        delay_cost={Param.DELAY_VALUE, Param.EDGE_LATE_SHARE, Param.CLOUD_LATE_SHARE} <= have,
        outage_cost={Param.UNAVAILABILITY, Param.OUTAGE_VALUE} <= have,
    )


def convert(params: dict[Param, InputValue], fx: InputValue, currency: str) -> None:
    """Every money input in ``currency`` at ``fx`` units per USD, in place; ``fx`` added."""
    rate = fx.value
    for p in MONEY & set(params):
        iv = params[p]
        params[p] = iv.model_copy(
            update={
                "value": iv.value * rate,
                "low": iv.low * rate,
                "high": iv.high * rate,
                "unit": iv.unit.replace("USD", currency),
                "origin": f"{iv.origin}; converted at {rate:g} {currency}/USD",
            }
        )
    params[Param.FX_RATE] = fx.model_copy(update={"unit": f"{currency} per USD"})


def is_stale(iv: InputValue, today: date) -> bool:
    """Whether a sourced value's ``as_of`` is older than STALE_AFTER_DAYS."""
    return iv.as_of is not None and (today - iv.as_of).days > STALE_AFTER_DAYS


def varied_params(params: ParamSet) -> list[Param]:
    """The inputs the tornado and the Monte Carlo move: those that change a cost."""
    unused = {Param.DEVICE_ACTIVE_W} if Param.EDGE_JOULES in params else set()
    return [p for p in params if p not in NO_COST_EFFECT | NOT_VARIED and p not in unused]


def freeze(params: dict[Param, InputValue]) -> ParamSet:
    """A read-only view of an input set."""
    return MappingProxyType(params)
