"""Discounting, capital recovery, NPV, equivalent annual cost and paybacks (pure functions).

Conventions: cash-flow arrays are indexed by month-end, index 0 is "now" (upfront), index t is
the end of month t; rates are annual and converted to monthly as r_m = (1 + r)^(1/12) - 1.
Functions accept numpy arrays and broadcast, so the Monte Carlo can call them on many draws.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def crf(rate: ArrayLike, years: ArrayLike) -> FloatArray:
    """Capital recovery factor r(1+r)^n / ((1+r)^n - 1); 1/n when r is 0."""
    r = np.asarray(rate, dtype=float)
    n = np.asarray(years, dtype=float)
    small = np.abs(r) < 1e-12
    safe_r = np.where(small, 1.0, r)
    log_growth = n * np.log1p(safe_r)  # expm1 keeps (1+r)^n - 1 exact for tiny rates
    return np.where(small, 1.0 / n, safe_r * np.exp(log_growth) / np.expm1(log_growth))


def monthly_rate(annual: ArrayLike) -> FloatArray:
    """The monthly rate equivalent to an annual one: (1 + r)^(1/12) - 1."""
    return (1.0 + np.asarray(annual, dtype=float)) ** (1.0 / 12.0) - 1.0


def discount_factors(annual: ArrayLike, months: int) -> FloatArray:
    """(1 + r_m)^-t for t = 0..months; shape (..., months + 1)."""
    log_step = np.log1p(np.asarray(annual, dtype=float))[..., None] / 12.0
    return np.exp(-log_step * np.arange(months + 1, dtype=float))


def present_value(
    flows: ArrayLike, annual: ArrayLike, factors: FloatArray | None = None
) -> FloatArray:
    """Present value of month-end cash flows (last axis = months 0..T).

    ``factors`` are precomputed discount factors, to share them between placements.
    """
    f = np.asarray(flows, dtype=float)
    df = discount_factors(annual, f.shape[-1] - 1) if factors is None else factors
    return np.einsum("...t,...t->...", f, np.broadcast_to(df, f.shape))


def annual_capital_charge(
    price: ArrayLike, residual: ArrayLike, life_years: ArrayLike, rate: ArrayLike, use_crf: bool
) -> FloatArray:
    """Yearly cost of owning one unit: (C0 - S)/n straight-line, or (C0 - S/(1+r)^n)·CRF(r, n)."""
    c0 = np.asarray(price, dtype=float)
    s = np.asarray(residual, dtype=float)
    n = np.asarray(life_years, dtype=float)
    if not use_crf:
        return (c0 - s) / n
    r = np.asarray(rate, dtype=float)
    return (c0 - s / (1.0 + r) ** n) * crf(r, n)


def annualise_one_time(amount: ArrayLike, rate: ArrayLike, years: int, use_crf: bool) -> FloatArray:
    """A one-time cost spread over the horizon: amount·CRF(r, H), or amount / H."""
    a = np.asarray(amount, dtype=float)
    if not use_crf:
        return a / years
    return a * crf(rate, years)


def equivalent_annual_cost(pv: ArrayLike, rate: ArrayLike, years: int) -> FloatArray:
    """EAC = PV(costs)·CRF(r, H): the level yearly payment with the same present value."""
    return np.asarray(pv, dtype=float) * crf(rate, years)


def simple_payback_months(extra_upfront: float, monthly_saving: float) -> float | None:
    """Months to recover extra upfront spending from a level monthly saving; None if never."""
    if extra_upfront <= 0:
        return 0.0
    if monthly_saving <= 0:
        return None
    return extra_upfront / monthly_saving


def discounted_payback_month(saving_flows: ArrayLike, annual: float) -> int | None:
    """First month T with sum over t <= T of discounted (cloud - edge) flows >= 0; None if never.

    ``saving_flows[0]`` is minus the extra upfront cost of edge; later entries are the monthly
    savings (cloud minus edge).
    """
    f = np.asarray(saving_flows, dtype=float)
    cum = np.cumsum(f * discount_factors(annual, f.shape[-1] - 1))
    hits = np.nonzero(cum >= 0)[0]
    return int(hits[0]) if hits.size else None


def break_even_month(cumulative_a: ArrayLike, cumulative_b: ArrayLike) -> int | None:
    """First month from which A's cumulative cost stays at or below B's; None if never.

    Month 0 (upfront) counts only when A is never dearer at all.
    """
    a = np.asarray(cumulative_a, dtype=float)
    b = np.asarray(cumulative_b, dtype=float)
    ok = a <= b + 1e-9 * np.maximum(np.abs(b), 1.0)
    if not ok[-1]:
        return None
    bad = np.nonzero(~ok)[0]
    return 0 if bad.size == 0 else int(bad[-1]) + 1
