"""Discounting, capital recovery, NPV, equivalent annual cost and paybacks (pure functions).

Conventions: cash-flow arrays are indexed by month-end, index 0 is "now" (upfront), index t is
the end of month t; rates are annual and converted to monthly as r_m = (1 + r)^(1/12) - 1.
Functions accept numpy arrays and broadcast, so the Monte Carlo can call them on many draws.
"""

from __future__ import annotations

import calendar
import math
from datetime import date, timedelta

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
    out: FloatArray = np.where(small, 1.0 / n, safe_r * np.exp(log_growth) / np.expm1(log_growth))
    return out


def discount_factors(annual: ArrayLike, months: int) -> FloatArray:
    """(1 + r_m)^-t for t = 0..months; shape (..., months + 1)."""
    log_step = np.log1p(np.asarray(annual, dtype=float))[..., None] / 12.0
    out: FloatArray = np.exp(-log_step * np.arange(months + 1, dtype=float))
    return out


def present_value(
    flows: ArrayLike, annual: ArrayLike, factors: FloatArray | None = None
) -> FloatArray:
    """Present value of month-end cash flows (last axis = months 0..T).

    ``factors`` are precomputed discount factors, to share them between placements.
    """
    f = np.asarray(flows, dtype=float)
    df = discount_factors(annual, f.shape[-1] - 1) if factors is None else factors
    out: FloatArray = np.einsum("...t,...t->...", f, np.broadcast_to(df, f.shape))
    return out


def annual_capital_charge(
    price: ArrayLike, residual: ArrayLike, life_years: ArrayLike, rate: ArrayLike, use_crf: bool
) -> FloatArray:
    """Yearly cost of owning one unit: (C0 - S)/n straight-line, or (C0 - S/(1+r)^n)·CRF(r, n)."""
    c0 = np.asarray(price, dtype=float)
    s = np.asarray(residual, dtype=float)
    n = np.asarray(life_years, dtype=float)
    out: FloatArray
    if not use_crf:
        out = (c0 - s) / n
        return out
    r = np.asarray(rate, dtype=float)
    out = (c0 - s / (1.0 + r) ** n) * crf(r, n)
    return out


def annualise_one_time(
    amount: ArrayLike, rate: ArrayLike, years: float, use_crf: bool
) -> FloatArray:
    """A one-time cost spread over the horizon: amount·CRF(r, H), or amount / H."""
    a = np.asarray(amount, dtype=float)
    if not use_crf:
        return a / years
    return a * crf(rate, years)


def equivalent_annual_cost(pv: ArrayLike, rate: ArrayLike, years: float) -> FloatArray:
    """EAC = PV(costs)·CRF(r, H): the level yearly payment with the same present value."""
    return np.asarray(pv, dtype=float) * crf(rate, years)


def payback_months(saving_flows: ArrayLike, annual: float | None) -> float | None:
    """Months until the cumulative (discounted, unless ``annual`` is None) saving reaches 0.

    The saving of month t is spread evenly over the month, so the crossing inside the month is
    interpolated linearly: with S the cumulative saving, the payback is
    (T - 1) + (-S[T-1]) / (S[T] - S[T-1]) for the first T with S[T] >= 0. 0 when nothing extra
    is spent upfront; None when the saving never catches up within the horizon.
    """
    f = np.asarray(saving_flows, dtype=float)
    if annual is not None:
        f = f * discount_factors(annual, f.shape[-1] - 1)
    cum = np.cumsum(f)
    hits = np.nonzero(cum >= 0)[0]
    if not hits.size:
        return None
    t = int(hits[0])
    if t == 0:
        return 0.0
    before, after = float(cum[t - 1]), float(cum[t])
    return (t - 1) + (-before) / (after - before)


def add_months(start: date, months: float) -> date:
    """The calendar date ``months`` months after ``start``: whole months by the calendar (the
    day clamped to the month's length), the fraction as that share of the next month's days."""
    whole = math.floor(months)
    frac = months - whole

    def shift(d: date, n: int) -> date:
        y, m = divmod(d.month - 1 + n, 12)
        year, month = d.year + y, m + 1
        return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))

    base = shift(start, whole)
    days = (shift(start, whole + 1) - base).days
    return base + timedelta(days=round(frac * days))


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
