"""The vectorised cost model: monthly cash flows of each placement, for one or many draws.

Every input arrives as an array of shape (n, 1) (or a scalar), so the same code computes the
base case (n = 1), the tornado (n = 2 x inputs + 1) and the Monte Carlo (n = 100,000).
Cash flows have shape (n, T + 1): index 0 is upfront, index t the end of month t.

The rules, in the order the code applies them:

* Volume in month t: V · (365/12) · (1 + g)^((t-1)/12); peak rate: V·(1+g)^(...)/86400 · k.
* Edge units: ceil(edge share · peak / (throughput · utilisation)), at least 1, never sold
  before the horizon (running maximum). Units are bought upfront or at the end of the month
  before they are needed; the whole fleet is replaced every ``life`` (rounded to months) at
  price minus residual value; at the horizon the fleet is sold at straight-line book value
  (units bought for growth are valued as old as the fleet: a small, conservative simplification).
* Edge energy: inferences · J/inference + idle watts · idle seconds (device-seconds not busy),
  times the site PUE, priced per kWh. J/inference is measured, or active watts / throughput.
  Busy seconds are 1 / throughput per inference, except a split's measured J/inference, which
  covers its window's seconds per inference (the head and the wait for the tail).
* Edge upkeep: units · (maintenance share · price + ops per year) / 12 per month.
* Cloud instances, always on (the default): ceil(cloud share · peak / (capacity ·
  utilisation)), at least ``min_instances``, running 730 h a month: instances · price/hour ·
  730. Billing granularity does not matter to a fleet that never stops.
* Cloud instances, autoscale: the day is two periods. With peak-to-average ratio k and average
  rate A, the peak lasts 24/(k+1) hours at rate k·A and the off-peak the other 24·k/(k+1) hours
  at A/k (the trough as far below the average as the peak is above it, by ratio), which keeps
  the day's volume at 24·A; k = 1 is a flat day. Instances per period: ceil(cloud share ·
  rate / (capacity · utilisation)), at least ``min_instances``. The off-peak fleet runs all
  month (730 h); each instance added for the peak starts once a day and is billed for the peak
  hours rounded up to the billing granularity, at least the minimum billed time, at most 24 h:
  hours = N_off · 730 + (N_peak - N_off) · billed peak hours · 365/12. ``instances`` is then
  the average billed fleet, hours / 730. An API is billed per request instead.
* Egress: response bytes of the cloud's share of inferences, priced by the monthly tiers,
  times a scale factor (the sensitivity input). Metered link: request + response bytes · USD/GB.
* Edge upstream (when the workload sets a share): the share of the request bytes the edge
  still sends to the cloud, priced on the metered link like the cloud's traffic.
* Cost of delay (when the workload values a late request): inferences x the measured share
  of requests over the latency bound x the value, per placement side.
* Outage (when the workload values a lost inference): the cloud's inferences x the share of
  time the link leaves the cloud unreachable x the value; the edge keeps working.
* One-time integration costs fall at index 0.
* Split (the model's head on the edge, its tail in the cloud): both sides serve every inference.
  The edge side is the edge's rules with the head's throughput and J/inference
  (``split_head_throughput``, ``split_joules_per_inference``; without a measured J, active
  watts / head throughput); the cloud side is the cloud's rules with the tail's capacity
  (``split_tail_capacity``) and the activation sent in place of the request
  (``split_request_bytes``), and the split's own late share (``split_late_share``) in place of
  the cloud's. The edge sends nothing else upstream and has no late share of its own: a split
  request is late or not as a whole. See :func:`split_sides`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tippingpoint.calculator.finance import FloatArray
from tippingpoint.calculator.params import Param
from tippingpoint.profiles.schema import CloudKind

DAYS_PER_MONTH = 365.0 / 12.0
HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = DAYS_PER_MONTH * 86400.0
J_PER_KWH = 3.6e6


class Placement(str, Enum):
    """Where inference runs."""

    EDGE = "edge"
    CLOUD = "cloud"
    HYBRID = "hybrid"
    SPLIT = "split"


class Component(str, Enum):
    """A line of the cost breakdown."""

    HARDWARE = "hardware"
    SALVAGE = "salvage"
    ENERGY = "energy"
    COMPUTE = "compute"
    EGRESS = "egress"
    NETWORK = "network"
    STORAGE = "storage"
    OPS = "ops"
    ONE_TIME = "one-time"
    DELAY = "delay"
    OUTAGE = "outage"


CAPITAL = (Component.HARDWARE, Component.SALVAGE, Component.ONE_TIME)
"""Components that are capital expenditure (capex); every other component is opex."""


@dataclass(frozen=True)
class ModelSpec:
    """The structural choices of one evaluation (not varied by the sensitivity analysis)."""

    months: int
    horizon_years: float
    use_crf: bool
    cloud_kind: CloudKind
    egress_bounds_gb: tuple[float, ...] = ()
    egress_prices: tuple[float, ...] = ()
    min_instances: int = 1
    autoscale: bool = False
    energy_from_power: bool = False
    token_priced: bool = False
    edge_upstream: bool = False
    delay_cost: bool = False
    outage_cost: bool = False


@dataclass(frozen=True)
class Flows:
    """Monthly cash flows by component and the physical quantities behind them.

    ``monthly`` arrays broadcast to (n, T), month t at index t - 1; ``hardware`` is (n, T + 1)
    (purchases and replacements); ``one_time`` falls at index 0 and ``salvage`` at index T.
    """

    monthly: Mapping[Component, FloatArray]
    hardware: FloatArray
    salvage: FloatArray
    one_time: FloatArray
    inferences: FloatArray
    units: FloatArray
    instances: FloatArray
    kwh: FloatArray
    cloud_kw: FloatArray

    @property
    def shape(self) -> tuple[int, int]:
        """(draws, months + 1)."""
        return self.hardware.shape[0], self.hardware.shape[1]

    @property
    def cloud_kwh(self) -> FloatArray:
        """Estimated kWh of the cloud instances per month, PUE included."""
        return self.instances * self.cloud_kw * HOURS_PER_MONTH

    def cash(self, comp: Component) -> FloatArray:
        """One component's cash flows, shape (n, T + 1)."""
        n, t1 = self.shape
        out = np.zeros((n, t1))
        if comp is Component.HARDWARE:
            out += self.hardware
        elif comp is Component.SALVAGE:
            out[:, -1] = self.salvage
        elif comp is Component.ONE_TIME:
            out[:, 0] = self.one_time
        elif comp in self.monthly:
            out[:, 1:] = self.monthly[comp]
        return out

    def total(self) -> FloatArray:
        """All components summed: shape (n, T + 1)."""
        out: FloatArray = self.hardware.copy()
        recurring = out[:, 1:]
        for arr in self.monthly.values():
            recurring += arr
        out[:, 0] += self.one_time
        out[:, -1] += self.salvage
        return out


Values = Mapping[Param, ArrayLike]
"""Input values by parameter: scalars or arrays of shape (n,) or (n, 1)."""


def column(values: Values, p: Param) -> FloatArray:
    """One input as a column of shape (n, 1)."""
    return np.asarray(values[p], dtype=float).reshape(-1, 1)


def tiered_cost(gb: FloatArray, bounds: tuple[float, ...], prices: tuple[float, ...]) -> FloatArray:
    """Cost of ``gb`` GB in a month under tiers with upper bounds ``bounds`` (last may be inf).

    Traffic beyond the last finite bound is priced at the last tier's price.
    """
    if not bounds:
        return np.zeros_like(gb)
    knots, cum, lower = [0.0], [0.0], 0.0
    for upper, price in zip(bounds, prices, strict=True):
        if not np.isfinite(upper):
            break
        cum.append(cum[-1] + price * (upper - lower))
        knots.append(upper)
        lower = upper
    cost = np.interp(gb, knots, cum)
    beyond = gb - knots[-1]
    np.maximum(beyond, 0.0, out=beyond)
    beyond *= prices[-1]
    cost += beyond
    return cost


def monthly_volume(values: Values, months: int) -> tuple[FloatArray, FloatArray]:
    """Inferences per month and peak rate (inferences/s) per month, each (n, months)."""
    v = column(values, Param.VOLUME)
    g = column(values, Param.GROWTH)
    k = column(values, Param.PEAK_TO_AVERAGE)
    t = np.arange(months, dtype=float) / 12.0
    daily = np.exp(np.log1p(g) * t) if np.any(g != 0) else np.ones((1, months))
    return daily * (v * DAYS_PER_MONTH), daily * (v * k / 86400.0)


@dataclass(frozen=True)
class _Part:
    monthly: dict[Component, FloatArray]
    hardware: FloatArray | None
    salvage: FloatArray
    one_time: FloatArray
    units: FloatArray
    instances: FloatArray
    kwh: FloatArray
    cloud_kw: FloatArray


def api_price_per_request(values: Values, spec: ModelSpec) -> FloatArray:
    """USD per API request: the request fee plus, when token-priced, tokens x token prices."""
    price = column(values, Param.API_PRICE) / 1e6
    if spec.token_priced:
        price = (
            price
            + (
                column(values, Param.TOKENS_IN) * column(values, Param.TOKEN_PRICE_IN)
                + column(values, Param.TOKENS_OUT) * column(values, Param.TOKEN_PRICE_OUT)
            )
            / 1e6
        )
    return price


def _count(
    peak: FloatArray, per_unit: FloatArray, minimum: float, on: NDArray[np.bool_]
) -> FloatArray:
    need = peak * per_unit
    need -= 1e-9  # a rate exactly at capacity needs no extra unit despite float noise
    np.ceil(need, out=need)
    np.maximum(need, minimum, out=need)
    if not np.all(on):
        need = np.where(on, need, 0.0)
    return need


def peak_hours(values: Values) -> FloatArray:
    """Hours a day at the peak rate in the autoscale model: 24 / (k + 1), shape (n, 1)."""
    return 24.0 / (column(values, Param.PEAK_TO_AVERAGE) + 1.0)


def billed_peak_hours(values: Values) -> FloatArray:
    """Billed hours a day of an instance started for the peak: the peak hours rounded up to
    the billing granularity, at least the minimum billed time, at most 24 h; shape (n, 1)."""
    g = column(values, Param.BILLING_GRANULARITY)
    steps = peak_hours(values) * 3600.0 / g
    steps -= 1e-9  # a peak of exactly whole steps bills no extra step despite float noise
    np.ceil(steps, out=steps)
    billed = np.maximum(steps * g, column(values, Param.MINIMUM_BILLED))
    return np.minimum(billed / 3600.0, 24.0)


def _autoscaled(
    values: Values,
    peak: FloatArray,
    per_instance: FloatArray,
    minimum: float,
    on: NDArray[np.bool_],
) -> FloatArray:
    """The average billed fleet of the autoscale model (see the module notes), (n, months)."""
    k = column(values, Param.PEAK_TO_AVERAGE)
    n_peak = _count(peak, per_instance, minimum, on)
    n_off = _count(peak / (k * k), per_instance, minimum, on)
    extra = n_peak - n_off
    extra *= billed_peak_hours(values) * (DAYS_PER_MONTH / HOURS_PER_MONTH)
    return n_off + extra


def _edge(
    values: Values, spec: ModelSpec, share: FloatArray, vol: FloatArray, peak: FloatArray
) -> _Part:
    n, t_count = vol.shape
    x = column(values, Param.EDGE_THROUGHPUT)
    c0 = column(values, Param.DEVICE_PRICE)
    s = np.minimum(column(values, Param.DEVICE_RESIDUAL), c0)  # independent draws may cross
    need = _count(peak, share / (x * column(values, Param.DEVICE_UTILISATION)), 1.0, share > 0)
    growing = bool(np.all(column(values, Param.GROWTH) >= 0))  # need never falls: no running max
    units = need if growing else np.maximum.accumulate(need, axis=1)
    hardware = np.zeros((n, t_count + 1))
    hardware[:, 0] = units[:, 0] * c0[:, 0]
    buys = hardware[:, 1:t_count]
    np.subtract(units[:, 1:], units[:, :-1], out=buys)
    buys *= c0
    life_m = np.maximum(np.rint(12.0 * column(values, Param.DEVICE_LIFE)), 1.0).astype(np.int64)
    life_m = np.broadcast_to(life_m, (n, 1))
    net_price = np.broadcast_to(c0 - s, (n, 1))
    rows = np.arange(n)
    for k in range(1, int((t_count - 1) // life_m.min()) + 1 if t_count > 1 else 1):
        month = (k * life_m)[:, 0]
        due = month < t_count
        if not due.any():
            break
        r, m = rows[due], month[due]
        hardware[r, m] += units[r, m - 1] * net_price[due, 0]
    age_m = t_count - life_m * np.floor((t_count - 1) / life_m)
    book = np.maximum(c0 - (c0 - s) * age_m / life_m, s)
    salvage = -(units[:, -1:] * book)[:, 0]
    edge_vol = vol if np.all(share == 1) else vol * share
    if spec.energy_from_power:
        joules = column(values, Param.DEVICE_ACTIVE_W) / x
    else:
        joules = column(values, Param.EDGE_JOULES)
    idle_s = units * SECONDS_PER_MONTH
    # the device-seconds its J/inference already covers: 1 / throughput, or (a split's window
    # energy) the measuring window's seconds per inference, head and wait for the tail alike
    busy = column(values, Param.EDGE_BUSY_S) if Param.EDGE_BUSY_S in values else 1.0 / x
    idle_s -= edge_vol * busy
    np.maximum(idle_s, 0.0, out=idle_s)
    idle_s *= column(values, Param.DEVICE_IDLE_W)
    kwh = edge_vol * joules
    kwh += idle_s
    kwh *= column(values, Param.SITE_PUE) / J_PER_KWH
    upkeep = c0 * column(values, Param.MAINTENANCE_SHARE) + column(values, Param.DEVICE_OPS)
    one_time = np.where(share > 0, column(values, Param.EDGE_INTEGRATION), 0.0)[:, 0]
    monthly = {
        Component.ENERGY: kwh * column(values, Param.ELECTRICITY_PRICE),
        Component.OPS: units * (upkeep / 12.0),
    }
    if spec.edge_upstream:
        gb = column(values, Param.EDGE_UPSTREAM) * column(values, Param.REQUEST_BYTES) / 1e9
        monthly[Component.NETWORK] = edge_vol * (gb * column(values, Param.NETWORK_COST))
    if spec.delay_cost:
        late = column(values, Param.EDGE_LATE_SHARE) * column(values, Param.DELAY_VALUE)
        monthly[Component.DELAY] = edge_vol * late
    return _Part(
        monthly=monthly,
        hardware=hardware,
        salvage=np.broadcast_to(salvage, (n,)),
        one_time=np.broadcast_to(one_time, (n,)),
        units=units,
        instances=np.zeros((1, t_count)),
        kwh=kwh,
        cloud_kw=np.zeros((1, 1)),
    )


def _cloud(
    values: Values, spec: ModelSpec, share: FloatArray, vol: FloatArray, peak: FloatArray
) -> _Part:
    n, t_count = vol.shape
    on = share > 0
    monthly: dict[Component, FloatArray] = {}
    instances = np.zeros((1, t_count))
    cloud_kw = np.zeros((1, 1))
    if spec.cloud_kind is CloudKind.INSTANCE:
        cap = column(values, Param.CLOUD_CAPACITY) * column(values, Param.CLOUD_UTILISATION)
        if spec.autoscale:
            instances = _autoscaled(values, peak, share / cap, float(spec.min_instances), on)
        else:
            instances = _count(peak, share / cap, float(spec.min_instances), on)
        price = column(values, Param.CLOUD_PRICE_HOUR) * HOURS_PER_MONTH
        monthly[Component.COMPUTE] = instances * price
        cloud_kw = column(values, Param.CLOUD_WATTS) * column(values, Param.CLOUD_PUE) / 1000.0
    else:
        monthly[Component.COMPUTE] = vol * (share * api_price_per_request(values, spec))
    out_bytes = column(values, Param.RESPONSE_BYTES)
    gb_out = vol * (share * out_bytes / 1e9)
    egress = tiered_cost(gb_out, spec.egress_bounds_gb, spec.egress_prices)
    egress *= column(values, Param.EGRESS_SCALE)
    monthly[Component.EGRESS] = egress
    link = (out_bytes + column(values, Param.REQUEST_BYTES)) / 1e9
    monthly[Component.NETWORK] = vol * (share * link * column(values, Param.NETWORK_COST))
    if spec.delay_cost:
        late = column(values, Param.CLOUD_LATE_SHARE) * column(values, Param.DELAY_VALUE)
        monthly[Component.DELAY] = vol * (share * late)
    if spec.outage_cost:
        lost = column(values, Param.UNAVAILABILITY) * column(values, Param.OUTAGE_VALUE)
        monthly[Component.OUTAGE] = vol * (share * lost)
    monthly[Component.STORAGE] = on * column(values, Param.CLOUD_STORAGE)
    monthly[Component.OPS] = on * column(values, Param.CLOUD_OPS) / 12.0
    one_time = np.where(on, column(values, Param.CLOUD_INTEGRATION), 0.0)[:, 0]
    return _Part(
        monthly=monthly,
        hardware=None,
        salvage=np.zeros(n),
        one_time=np.broadcast_to(one_time, (n,)),
        units=np.zeros((1, t_count)),
        instances=instances,
        kwh=np.zeros((1, t_count)),
        cloud_kw=cloud_kw,
    )


V = TypeVar("V")

SPLIT_SIDES: dict[Param, Param | None] = {
    Param.EDGE_THROUGHPUT: Param.SPLIT_HEAD_THROUGHPUT,
    Param.EDGE_JOULES: Param.SPLIT_JOULES,
    Param.CLOUD_CAPACITY: Param.SPLIT_TAIL_CAPACITY,
    Param.REQUEST_BYTES: Param.SPLIT_REQUEST_BYTES,
    Param.CLOUD_LATE_SHARE: Param.SPLIT_LATE_SHARE,
    Param.EDGE_LATE_SHARE: None,
    Param.EDGE_UPSTREAM: None,
    Param.EDGE_BUSY_S: Param.SPLIT_BUSY_S,
}
"""The input each side of a split reads in place of the edge's or the cloud's (None: none)."""
SPLIT_PARAMS = frozenset(p for p in SPLIT_SIDES.values() if p is not None)


def split_sides(values: Mapping[Param, V]) -> dict[Param, V]:
    """The inputs as the split's two sides read them: each of :data:`SPLIT_SIDES` replaced by
    the split's own input (dropped when the split has none)."""
    out = {p: v for p, v in values.items() if p not in SPLIT_SIDES and p not in SPLIT_PARAMS}
    for side, own in SPLIT_SIDES.items():
        if own is not None and own in values:
            out[side] = values[own]
    return out


def split_spec(spec: ModelSpec, sides: Mapping[Param, object]) -> ModelSpec:
    """The structural choices of a split's sides (``sides`` from :func:`split_sides`): energy
    from the device's power without a measured J/inference, no edge upstream, a cost of delay
    only with the split's own late share."""
    return replace(
        spec,
        energy_from_power=Param.EDGE_JOULES not in sides,
        edge_upstream=False,
        delay_cost=spec.delay_cost and Param.CLOUD_LATE_SHARE in sides,
    )


def edge_share(placement: Placement, values: Values) -> FloatArray:
    """The share of inferences served at the edge by a placement, shape (n, 1) (a split's head
    runs there for every inference)."""
    if placement is Placement.EDGE or placement is Placement.SPLIT:
        return np.ones((1, 1))
    if placement is Placement.CLOUD:
        return np.zeros((1, 1))
    return column(values, Param.HYBRID_EDGE_SHARE)


def cash_flows(
    placement: Placement,
    values: Values,
    spec: ModelSpec,
    volume: tuple[FloatArray, FloatArray] | None = None,
) -> Flows:
    """Monthly cash flows of one placement for every draw in ``values``.

    ``volume`` is :func:`monthly_volume`'s result, to share it between placements.
    """
    n = max((np.size(v) for v in values.values()), default=1)
    vol, peak = volume if volume is not None else monthly_volume(values, spec.months)
    vol = np.broadcast_to(vol, (n, spec.months))
    peak = np.broadcast_to(peak, (n, spec.months))
    share_e = np.broadcast_to(edge_share(placement, values), (n, 1))
    parts = []
    if placement is Placement.SPLIT:  # both sides serve every inference
        values = split_sides(values)
        spec = split_spec(spec, values)
        parts.append(_edge(values, replace(spec, delay_cost=False), share_e, vol, peak))
        parts.append(_cloud(values, spec, share_e, vol, peak))
    else:
        if placement is not Placement.CLOUD:
            parts.append(_edge(values, spec, share_e, vol, peak))
        if placement is not Placement.EDGE:
            parts.append(_cloud(values, spec, 1.0 - share_e, vol, peak))
    monthly: dict[Component, FloatArray] = {}
    for part in parts:
        for comp, arr in part.monthly.items():
            monthly[comp] = monthly[comp] + arr if comp in monthly else arr
    hardware = next((p.hardware for p in parts if p.hardware is not None), None)
    edge = next((p for p in parts if p.hardware is not None), None)
    cloud = next((p for p in parts if p.hardware is None), None)
    shape = (n, spec.months)
    none = np.broadcast_to(0.0, shape)
    return Flows(
        monthly=monthly,
        hardware=hardware if hardware is not None else np.zeros((n, spec.months + 1)),
        salvage=sum((p.salvage for p in parts), start=np.zeros(n)),
        one_time=sum((p.one_time for p in parts), start=np.zeros(n)),
        inferences=vol,
        units=np.broadcast_to(edge.units, shape) if edge else none,
        instances=np.broadcast_to(cloud.instances, shape) if cloud else none,
        kwh=np.broadcast_to(edge.kwh, shape) if edge else none,
        cloud_kw=np.broadcast_to(cloud.cloud_kw, (n, 1)) if cloud else none[:, :1],
    )
