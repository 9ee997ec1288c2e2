"""The figures of a hybrid run, from the routing records its completions carried.

The hybrid backend's session (:mod:`tippingpoint.backends.hybrid`) hands every completion a
:class:`~tippingpoint.backends.network.RouteRecord`; the load generator keeps them beside its
per-request arrays. This module turns one measured load into the report's
:class:`~tippingpoint.core.schema.HybridResults` and into per-request arrays for the raw
samples sidecar (every request of the measured part, failures included, in send order).

Usage::

    if load.routes:
        results, arrays = hybrid_results(load, session.describe().options)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from tippingpoint.core import stats
from tippingpoint.core.schema import HybridResults
from tippingpoint.core.types import OptionValue
from tippingpoint.harness.loadgen import LoadRun


def _float_or_none(value: OptionValue) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def hybrid_results(
    load: LoadRun, options: Mapping[str, OptionValue]
) -> tuple[HybridResults, dict[str, np.ndarray]]:
    """The hybrid section and the per-request arrays of ``load`` (whose ``routes`` are set);
    ``options`` are the hybrid session's recorded options (policy, fallback, cache, slo_ms);
    the arrays' units are in :data:`tippingpoint.core.io.SAMPLE_ARRAYS`."""
    routes = load.routes
    n = len(routes)
    decided = [r for r in routes if r is not None]
    nd = len(decided)
    slo_ms = _float_or_none(options.get("slo_ms"))
    latency = np.asarray(load.latency_ns, dtype=np.int64)
    errors = load.errors
    offloaded = sum(1 for r in decided if r.route == "cloud" or r.fallback)
    fallbacks = sum(1 for r in decided if r.fallback)
    cache_on = bool(options.get("cache", False))
    hits = sum(1 for r in decided if r.route == "cache")
    answered = Counter(r.route for r in decided)
    reasons = Counter(r.reason for r in decided)
    cloud_errors = Counter(r.cloud_error for r in decided if r.cloud_error is not None)
    policy_ns = np.asarray([r.policy_ns for r in decided], dtype=np.int64)
    miss_rate = None
    if slo_ms is not None and n:
        failed = np.fromiter((e is not None for e in errors), dtype=bool, count=n)
        missed = failed | (latency > slo_ms * 1e6)
        miss_rate = float(missed.sum() / n)
    p99 = stats.percentile_nearest_rank(np.sort(policy_ns), 99) / 1e3 if nd else 0.0
    results = HybridResults(
        policy=str(options.get("policy", "")),
        fallback=bool(options.get("fallback", False)),
        cache=cache_on,
        slo_ms=slo_ms,
        requests=n,
        decided=nd,
        offload_rate=offloaded / nd if nd else 0.0,
        fallback_rate=fallbacks / nd if nd else 0.0,
        deadline_miss_rate=miss_rate,
        cache_hit_rate=(hits / nd if nd else 0.0) if cache_on else None,
        answered_by=dict(sorted(answered.items())),
        reasons=dict(sorted(reasons.items())),
        cloud_errors=dict(sorted(cloud_errors.items())),
        policy_overhead_us_mean=float(policy_ns.mean() / 1e3) if nd else 0.0,
        policy_overhead_us_p99=float(p99),
    )
    arrays = {
        "hybrid_route": np.asarray([r.route if r else "" for r in routes], dtype=str),
        "hybrid_reason": np.asarray([r.reason if r else "" for r in routes], dtype=str),
        "hybrid_fallback": np.asarray([bool(r and r.fallback) for r in routes], dtype=bool),
        "hybrid_policy_ns": np.asarray([r.policy_ns if r else -1 for r in routes], dtype=np.int64),
        "hybrid_latency_ns": latency,
        "hybrid_error": np.asarray([e or "" for e in errors], dtype=str),
    }
    return results, arrays
