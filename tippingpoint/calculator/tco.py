"""Summary figures of a placement's cash flows: TCO, PV, EAC, annual cost, cost per million.

Two views, both reported:

* Horizon view, from the monthly cash flows: TCO (undiscounted sum, salvage included), PV at
  the discount rate, EAC = PV·CRF(r, H).
* Annual view, year one: recurring costs of months 1-12, plus hardware as a yearly capital
  charge (straight-line or CRF, per the workload's ``amortisation``) on the mean number of units
  in service, plus one-time costs spread over the horizon. A view for reading, not for
  deciding: every decision figure comes from the monthly cash flows.

Cost per million inferences is levelised on the cash flows: PV(costs) / PV(inferences) x 1e6,
inferences discounted month by month like the costs (the cost per million that, charged on
every inference, pays for the placement over the horizon). Capex (hardware, salvage, one-time)
and opex (everything else) subtotals are sums of the components.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tippingpoint.calculator.finance import (
    FloatArray,
    annual_capital_charge,
    annualise_one_time,
    discount_factors,
    equivalent_annual_cost,
    present_value,
)
from tippingpoint.calculator.model import (
    CAPITAL,
    Component,
    Flows,
    ModelSpec,
    Placement,
    Values,
    cash_flows,
    column,
    monthly_volume,
)
from tippingpoint.calculator.params import Param


@dataclass(frozen=True)
class Summary:
    """Headline figures of one placement for every draw: arrays of shape (n,)."""

    pv: FloatArray
    tco: FloatArray
    eac: FloatArray
    annual: FloatArray
    cost_per_million: FloatArray
    annual_by_component: Mapping[Component, FloatArray]
    tco_by_component: Mapping[Component, FloatArray]
    pv_by_component: Mapping[Component, FloatArray]

    def subtotal(self, capex: bool, view: str = "pv") -> FloatArray:
        """Capex (``capex``) or opex subtotal of the ``pv``, ``tco`` or ``annual`` view."""
        by = {"pv": self.pv_by_component, "tco": self.tco_by_component}.get(
            view, self.annual_by_component
        )
        parts = [a for c, a in by.items() if (c in CAPITAL) == capex]
        return sum(parts, start=np.zeros_like(self.pv))


def summarise(flows: Flows, values: Values, spec: ModelSpec) -> Summary:
    """Horizon and annual figures from a placement's cash flows."""
    rate = column(values, Param.DISCOUNT_RATE)[:, 0]
    year = min(12, spec.months)
    annual: dict[Component, FloatArray] = {}
    cash_by = {c: flows.cash(c) for c in Component}
    for comp, cash in cash_by.items():
        if comp is Component.HARDWARE:
            price = column(values, Param.DEVICE_PRICE)[:, 0]
            charge = annual_capital_charge(
                price,
                np.minimum(column(values, Param.DEVICE_RESIDUAL)[:, 0], price),
                column(values, Param.DEVICE_LIFE)[:, 0],
                rate,
                spec.use_crf,
            )
            annual[comp] = flows.units[:, :year].mean(axis=1) * charge
        elif comp is Component.SALVAGE:
            annual[comp] = np.zeros(cash.shape[0])
        elif comp is Component.ONE_TIME:
            annual[comp] = annualise_one_time(cash[:, 0], rate, spec.horizon_years, spec.use_crf)
        else:
            annual[comp] = cash[:, 1 : year + 1].sum(axis=1) * 12.0 / year
    total_annual = sum(annual.values(), start=np.zeros_like(rate))
    df = discount_factors(rate, spec.months)
    pv_by = {c: present_value(cash, rate, df) for c, cash in cash_by.items()}
    pv = sum(pv_by.values(), start=np.zeros_like(rate))
    inferences = np.zeros((flows.inferences.shape[0], spec.months + 1))
    inferences[:, 1:] = flows.inferences
    pv_inferences = present_value(inferences, rate, df)
    return Summary(
        pv=pv,
        tco=flows.total().sum(axis=1),
        eac=equivalent_annual_cost(pv, rate, spec.horizon_years),
        annual=total_annual,
        cost_per_million=pv / pv_inferences * 1e6,
        annual_by_component=annual,
        tco_by_component={c: cash.sum(axis=1) for c, cash in cash_by.items()},
        pv_by_component=pv_by,
    )


def evaluate(placement: Placement, values: Values, spec: ModelSpec) -> tuple[Flows, Summary]:
    """Cash flows and their summary for one placement."""
    flows = cash_flows(placement, values, spec)
    return flows, summarise(flows, values, spec)


def present_costs(values: Values, spec: ModelSpec) -> tuple[FloatArray, FloatArray]:
    """PV of edge and cloud costs for every draw: the quantity sensitivity and risk vary."""
    rate = column(values, Param.DISCOUNT_RATE)[:, 0]
    df = discount_factors(rate, spec.months)
    volume = monthly_volume(values, spec.months)
    edge = present_value(cash_flows(Placement.EDGE, values, spec, volume).total(), rate, df)
    cloud = present_value(cash_flows(Placement.CLOUD, values, spec, volume).total(), rate, df)
    return edge, cloud
