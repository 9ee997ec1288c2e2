"""Monte Carlo over the inputs' ranges: percentiles, VaR95, CVaR95, P(edge cheaper), P(loss).

Risk sits on the tail that hurts: for a cost, the high tail (VaR95 = P95, CVaR95 = the mean of
the draws at or above it); for the saving of choosing edge, the low tail (VaR95 = P5, CVaR95 =
the mean of the draws at or below it). P(loss) is the share of draws where choosing edge loses
money (saving < 0); the expected saving is the mean.

Each varied input is drawn independently: triangular(low, base, high) by default, uniform or
fixed when its profile says so. The draws are evaluated in vectorised chunks by the same model
as the base case, so a draw at the base values reproduces the base figures exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from tippingpoint.calculator.model import ModelSpec
from tippingpoint.calculator.params import Param, ParamSet
from tippingpoint.calculator.result import Histogram, MonteCarlo, Stats
from tippingpoint.calculator.tco import present_costs
from tippingpoint.profiles.schema import Distribution

CHUNK = 16384
BINS = 40


def draw(
    params: ParamSet, varied: Sequence[Param], n: int, rng: np.random.Generator
) -> dict[Param, np.ndarray]:
    """``n`` draws of every input; those not in ``varied`` stay at base."""
    out: dict[Param, np.ndarray] = {}
    for p, iv in params.items():
        if p not in varied or iv.low == iv.high or iv.distribution is Distribution.FIXED:
            out[p] = np.full(n, iv.value)
        elif iv.distribution is Distribution.UNIFORM:
            out[p] = rng.uniform(iv.low, iv.high, n)
        else:
            out[p] = rng.triangular(iv.low, iv.value, iv.high, n)
    return out


def stats(x: np.ndarray, tail: Literal["high", "low"] = "high") -> Stats:
    """Mean, spread, percentiles, VaR95 and CVaR95 of a sample on the tail that hurts: high
    for a cost (P95 and the mean at or above it), low for a saving (P5 and the mean at or
    below it)."""
    p5, p50, p95 = np.percentile(x, [5, 50, 95])
    var = p95 if tail == "high" else p5
    beyond = x[x >= var] if tail == "high" else x[x <= var]
    return Stats(
        mean=float(x.mean()),
        std=float(x.std(ddof=1)) if x.size > 1 else 0.0,
        p5=float(p5),
        p50=float(p50),
        p95=float(p95),
        tail=tail,
        var95=float(var),
        cvar95=float(beyond.mean()) if beyond.size else float(var),
    )


def histogram(x: np.ndarray, edges: np.ndarray | int = BINS) -> Histogram:
    """Counts of ``x`` per bin."""
    counts, bin_edges = np.histogram(x, bins=edges)
    return Histogram(edges=tuple(float(e) for e in bin_edges), counts=tuple(int(c) for c in counts))


def simulate(
    params: ParamSet, spec: ModelSpec, varied: Sequence[Param], draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """PV of edge and cloud costs for ``draws`` draws, computed in chunks."""
    rng = np.random.default_rng(seed)
    values = draw(params, varied, draws, rng)
    edge = np.empty(draws)
    cloud = np.empty(draws)
    for start in range(0, draws, CHUNK):
        stop = min(start + CHUNK, draws)
        chunk = {p: v[start:stop] for p, v in values.items()}
        edge[start:stop], cloud[start:stop] = present_costs(chunk, spec)
    return edge, cloud


def monte_carlo(
    params: ParamSet, spec: ModelSpec, varied: Sequence[Param], draws: int, seed: int
) -> MonteCarlo:
    """Summary statistics and histograms of the simulated costs and saving."""
    edge, cloud = simulate(params, spec, varied, draws, seed)
    saving = cloud - edge
    lo = min(edge.min(), cloud.min())
    hi = max(edge.max(), cloud.max())
    shared = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
    return MonteCarlo(
        draws=draws,
        seed=seed,
        edge_pv=stats(edge),
        cloud_pv=stats(cloud),
        savings=stats(saving, tail="low"),
        p_edge_cheaper=float(np.mean(edge < cloud)),
        p_loss=float(np.mean(saving < 0)),
        expected_saving=float(saving.mean()),
        hist_edge_pv=histogram(edge, shared),
        hist_cloud_pv=histogram(cloud, shared),
        hist_savings=histogram(saving),
    )
