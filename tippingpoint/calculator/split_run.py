"""A split placement costed from a measured split run (issue 16).

A report of ``run --split`` (``report.split`` set) ran the model's head on the edge and its
tail behind the endpoint, and profiled every placement through the same link: per cut the
head's time here, the tail's server time, the bytes sent; all-cloud (the whole model served)
beside them. The calculator costs a split placement from the latest complete split run:

* edge side, every inference: units sized by the head's throughput at one stream,
  1000 / the cut's median head ms (measured); J/inference the run's own when its energy was
  measured over its window, else the device's active watts x the head's time (estimated);
* cloud side, every inference: the tail's capacity per instance is the cloud's measured
  capacity scaled by the run's ratio of server times, all-cloud's / the cut's tail (both from
  the same profile, the same server): estimated, derived from those measurements;
* the link: the cut's activation as sent (bytes on the wire) in place of the request; the
  response is the model's output, as the cloud's;
* latency: the run's client p99 when it ran under the cost's network profile (the same link);
  else not comparable, and the placement has no p99 to meet an SLO with.

Split reports never feed the edge or cloud figures: they measured neither side alone. Their
flags are the run's problems (unless accepted), and a loopback stand-in makes the result
illustrative, as for the cloud's figures.

Usage::

    split, rest, notes = split_split_runs(kept)
    if split is not None:
        params.update(split_inputs(split, params[Param.CLOUD_CAPACITY]))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tippingpoint.calculator.capacity import run_problems
from tippingpoint.calculator.latency import LatencyCheck, LatencyPart, check, link_differences
from tippingpoint.calculator.model import Placement
from tippingpoint.calculator.params import Basis, InputValue, Param, make_input
from tippingpoint.calculator.service import share_over_samples, share_over_stats, wilson
from tippingpoint.core.links import LinkSpec
from tippingpoint.core.schema import (
    LatencyStats,
    MeasurementMethod,
    Report,
    RunFlag,
    SplitCandidate,
)
from tippingpoint.profiles.schema import NetworkProfile

ALL_CLOUD = "<all-cloud>"
"""The profile's name of the all-cloud placement (tippingpoint.models.split.ALL_CLOUD)."""


@dataclass(frozen=True)
class SplitFigures:
    """What one measured split run gives the calculator (times in ms, bytes per request)."""

    run_id: str
    cut: str
    head_ms: float
    """The cut's median head time on the edge, one request at a time."""
    tail_ms: float
    """The cut's median server time of the tail."""
    cloud_tail_ms: float
    """All-cloud's median server time of the whole model, through the same server."""
    sent_bytes: float
    """The cut's activation as sent: header and tensor, median bytes per request."""
    joules: float | None
    """The run's J/inference measured over its window; None: not measured."""
    joules_origin: str
    window_s: float | None
    """Seconds of the run's measuring window per inference (1 / its throughput): the device
    time its measured J/inference covers; None with no measured J."""
    latency: LatencyStats | None
    """The run's client-side latency, the link included."""
    link: LinkSpec | None
    """The shaped link the run ran through (``run --network``); None: the bare path."""
    problems: tuple[str, ...]
    local_standin: bool
    origin: str
    """``split run 1a2b3c4d (cut X, compression none)``."""

    @property
    def network(self) -> str | None:
        """The network profile's name the run was shaped by; None on the bare path."""
        return self.link.name if self.link is not None else None


def _candidate(r: Report, name: str) -> SplitCandidate | None:
    assert r.split is not None
    return next((c for c in r.split.candidates if c.name == name), None)


def _incomplete(r: Report) -> str | None:
    """Why a split run cannot cost a split placement; None when it can."""
    assert r.split is not None
    cut = _candidate(r, r.split.cut)
    if cut is None or not cut.head_ms > 0:
        return f"its profile has no head time for the cut {r.split.cut}"
    if cut.tail_ms is None or not cut.tail_ms > 0 or cut.sent_bytes is None:
        return f"its profile has no server time or bytes sent for the cut {r.split.cut}"
    whole = _candidate(r, ALL_CLOUD)
    if whole is None or whole.tail_ms is None or not whole.tail_ms > 0:
        return "its profile has no all-cloud server time to scale the cloud's capacity by"
    return None


def _energy(r: Report, origin: str) -> tuple[float | None, str]:
    """The run's J/inference when measured over its window (not an estimate), and its origin."""
    es = r.collectors.energy
    j = es.joules_per_inference if es is not None else None
    if (
        es is None
        or not es.valid
        or es.method is MeasurementMethod.ESTIMATED
        or j is None
        or not math.isfinite(j)
        or j < 0
    ):
        return None, ""
    return j, f"{origin}: {es.source} ({es.method.value}, {es.scope}) over the run's window"


def _figures(r: Report, among: Sequence[Report]) -> SplitFigures:
    s = r.split
    assert s is not None and r.results is not None
    cut, whole = _candidate(r, s.cut), _candidate(r, ALL_CLOUD)
    assert cut is not None and whole is not None
    assert cut.tail_ms is not None and cut.sent_bytes is not None and whole.tail_ms is not None
    origin = f"split run {r.run_id[:8]} (cut {s.cut}, compression {s.compression})"
    joules, j_origin = _energy(r, origin)
    rate = r.results.throughput.samples_per_s
    link = r.http.link if r.http is not None else None
    return SplitFigures(
        run_id=r.run_id,
        cut=s.cut,
        head_ms=cut.head_ms,
        tail_ms=cut.tail_ms,
        cloud_tail_ms=whole.tail_ms,
        sent_bytes=cut.sent_bytes,
        joules=joules,
        joules_origin=j_origin,
        window_s=1.0 / rate if joules is not None and rate > 0 else None,
        latency=r.results.latency,
        link=link.profile if link is not None else None,
        problems=run_problems(r, among),
        local_standin=RunFlag.LOCAL_STANDIN in r.flags,
        origin=origin,
    )


def split_split_runs(
    reports: Sequence[Report],
) -> tuple[SplitFigures | None, list[Report], list[str]]:
    """The figures of the latest complete split run (None without one), the other reports,
    and a note per split run left out."""
    runs = [r for r in reports if r.split is not None and r.results is not None]
    rest = [r for r in reports if r.split is None]
    notes: list[str] = []
    complete = []
    for r in runs:
        why = _incomplete(r)
        if why is None:
            complete.append(r)
        else:
            notes.append(f"split run {r.run_id[:8]} not costed: {why}; re-run it with --split")
    if not complete:
        return None, rest, notes
    complete.sort(key=lambda r: r.finished_at)
    chosen = complete[-1]
    notes += [
        f"split run {r.run_id[:8]} not used: the latest split run ({chosen.run_id[:8]}) "
        "costs the split placement"
        for r in complete[:-1]
    ]
    return _figures(chosen, runs), rest, notes


def split_inputs(fig: SplitFigures, capacity: InputValue) -> dict[Param, InputValue]:
    """The split's own inputs: the head's throughput and energy, the tail's capacity (the
    cloud's measured ``capacity`` scaled by the run's ratio of server times) and the bytes
    sent."""
    ratio = fig.cloud_tail_ms / fig.tail_ms
    out = {
        Param.SPLIT_HEAD_THROUGHPUT: make_input(
            Param.SPLIT_HEAD_THROUGHPUT,
            1000.0 / fig.head_ms,
            Basis.MEASURED,
            f"{fig.origin}: 1000 / the head's median {fig.head_ms:.4g} ms, one request at a "
            "time (its profile)",
        ),
        Param.SPLIT_TAIL_CAPACITY: make_input(
            Param.SPLIT_TAIL_CAPACITY,
            capacity.value * ratio,
            Basis.ESTIMATED,
            f"derived from measurements: the cloud's capacity {capacity.value:.4g}/s "
            f"({capacity.basis.value}: {capacity.origin}) x all-cloud's server time "
            f"{fig.cloud_tail_ms:.4g} ms / the tail's {fig.tail_ms:.4g} ms ({fig.origin})",
        ),
        Param.SPLIT_REQUEST_BYTES: make_input(
            Param.SPLIT_REQUEST_BYTES,
            fig.sent_bytes,
            Basis.MEASURED,
            f"{fig.origin}: the activation as sent (header + tensor), median per request",
        ),
    }
    if fig.joules is not None:
        out[Param.SPLIT_JOULES] = make_input(
            Param.SPLIT_JOULES, fig.joules, Basis.MEASURED, fig.joules_origin
        )
    if fig.joules is not None and fig.window_s is not None:
        # the window's energy covered the device while it waited for the tail too: the idle
        # power is added only for the device-seconds outside it
        out[Param.SPLIT_BUSY_S] = make_input(
            Param.SPLIT_BUSY_S,
            fig.window_s,
            Basis.MEASURED,
            f"{fig.origin}: 1 / the run's {1.0 / fig.window_s:.4g} inferences/s, the window "
            "its J/inference was measured over",
        )
    return out


def _where(fig: SplitFigures) -> str:
    return f"network '{fig.network}'" if fig.network else "the bare path (no shaped link)"


def _differs(fig: SplitFigures, network: NetworkProfile) -> list[str] | None:
    """None when the run did not run under ``network``'s name; else how its link differs
    from the profile's (empty: the same link)."""
    if fig.link is None or fig.link.name != network.name:
        return None
    return link_differences(fig.link, network.link())


def split_late_input(
    fig: SplitFigures,
    network: NetworkProfile,
    slo_ms: float,
    samples: Mapping[str, NDArray[np.float64]],
) -> InputValue | None:
    """The share of split requests over ``slo_ms``, from the run's client-side latencies when it
    ran under ``network`` (raw samples: measured; percentiles: estimated); None otherwise."""
    if fig.latency is None or _differs(fig, network) != []:
        return None
    under = f"under network '{network.name}' over {slo_ms:g} ms"
    raw = samples.get(fig.run_id)
    if raw is not None and raw.size:
        share, n = share_over_samples(raw, slo_ms), int(raw.size)
        basis, what = Basis.MEASURED, f"{raw.size} raw client-side latencies"
    else:
        share, n = share_over_stats(fig.latency, slo_ms), fig.latency.count
        basis, what = Basis.ESTIMATED, "percentiles (no raw samples)"
    low, high = wilson(share, n)
    return make_input(
        Param.SPLIT_LATE_SHARE,
        share,
        basis,
        f"{fig.origin}: {what} {under}",
        low=min(low, share),
        high=max(high, share),
    )


def split_latency(
    fig: SplitFigures, network: NetworkProfile, slo_ms: float | None, on_premises: bool
) -> LatencyCheck:
    """The split's p99: the run's client p99 when it ran under ``network`` (the same link);
    else not comparable, with no figure to meet an SLO by."""
    differs = _differs(fig, network)
    if differs == [] and fig.latency is not None:
        part = LatencyPart(
            name=f"split p99 under network '{network.name}'",
            ms=fig.latency.p99,
            basis=Basis.MEASURED,
            origin=fig.origin,
        )
        result = check(Placement.SPLIT, [part], slo_ms, on_premises)
        method = f"measured under network '{network.name}': {fig.origin}"
        return result.model_copy(update={"basis": Basis.MEASURED, "method": method})
    p99 = f"p99 {fig.latency.p99:.3g} ms " if fig.latency is not None else ""
    if differs:
        where = (
            f"under a network named '{network.name}' that has changed since ({'; '.join(differs)})"
        )
    else:
        where = f"on {_where(fig)}, not under network '{network.name}'"
    method = (
        f"not comparable: {fig.origin} measured its {p99}{where}; re-run it with "
        f"--network {network.name}"
    )
    result = check(Placement.SPLIT, None, slo_ms, on_premises)
    if result.feasible or on_premises:
        return result.model_copy(update={"method": method})
    return result.model_copy(update={"reason": method, "method": method})
