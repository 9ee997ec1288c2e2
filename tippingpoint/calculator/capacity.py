"""What the reports measured, as the cost model needs it: capacity, latency, bytes, energy.

Reports with an ``http`` section describe the cloud endpoint; the others describe the edge
device. A capacity comes only from a valid measurement. Cloud capacity is SLO-bound: the
highest rate that met the p99 bound with a valid send lag in the server scenario's search
(``http.peak_rate_qps``, FindPeakPerformance), times the batch size. A search that found no
such rate, or no search at all, leaves the capacity *not measured* (``capacity_problem`` says
why and how to fix it); the measured throughput is kept only for a caller that accepts flagged
runs, labelled so. Edge capacity is the highest measured throughput (inferences/s) among valid
runs meeting the SLO; the edge p99 comes from the same run.

A cloud report measured through a shaped link (``run --network``: ``http.link``) also gives a
:class:`LinkLatency`: its client-side latency, which includes that link. The calculator uses it
as the cloud's latency when the cost's network profile is the one it was measured under; else
it projects (server time plus the profile's RTT and transfers) and says so.

A run is invalid for deciding when it carries one of ``INVALID_FLAGS`` (unstable or drifting
windows, min-queries-not-met, send-lag-invalid, error-rate), or when it is one of a repetition
group whose runs disagree (between-run CV of the median or throughput above 10%; a group's
members are judged as a group, not by their short windows): its figures carry ``problems``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import Field

from tippingpoint.calculator.params import Basis
from tippingpoint.calculator.repetitions import (
    group_input,
    group_members,
    group_value,
    one_per_group,
)
from tippingpoint.core.errors import CostInputError
from tippingpoint.core.links import LinkSpec
from tippingpoint.core.runstats import (
    DISAGREEMENT_FIGURES,
    GROUP_CV_THRESHOLD,
    RunFigure,
    between_run_cv,
    run_figures,
)
from tippingpoint.core.schema import LatencyStats, MeasurementMethod, Report, RunFlag, RunStatus
from tippingpoint.core.types import Device, Frozen

INVALID_FLAGS = (
    RunFlag.UNSTABLE,
    RunFlag.DRIFTING,
    RunFlag.MIN_QUERIES_NOT_MET,
    RunFlag.SEND_LAG_INVALID,
    RunFlag.ERROR_RATE,
)
"""Report flags that make a run's figures unfit to decide on (unless the user accepts them)."""

INVALID_FIX = "re-run it on a quiet machine for longer, or accept it with --accept-flagged"


def run_problems(r: Report, among: Sequence[Report] = ()) -> tuple[str, ...]:
    """Why a run's figures may not decide: its invalid flags, one string each, and, for one of
    a repetition group found in ``among``, its runs' disagreement (a between-run CV of the
    median or throughput above the threshold: the group measured no one state)."""
    problems = [f"{_label(r)} is flagged {f.value}" for f in r.flags if f in INVALID_FLAGS]
    members = group_members(among, r) if r.repetition is not None else [r]
    if len(members) > 1:
        spread = {
            fig: cv
            for fig in DISAGREEMENT_FIGURES
            if (cv := between_run_cv([v for m in members if (v := run_figures(m).get(fig))]))
            is not None
            and cv > GROUP_CV_THRESHOLD
        }
        problems.extend(
            f"{_label(r)}: its {len(members)} repeated runs disagree ({fig.value} between-run "
            f"CV {cv:.0%} > {GROUP_CV_THRESHOLD:.0%})"
            for fig, cv in spread.items()
        )
    return tuple(problems)


class EdgeFigures(Frozen):
    """Edge-device figures from the reports."""

    run_id: str = ""
    latency: LatencyStats | None = None
    problems: tuple[str, ...] = ()
    throughput: float
    throughput_low: float | None = None
    throughput_high: float | None = None
    throughput_origin: str
    p99_ms: float | None = None
    p99_origin: str = ""
    joules_per_inference: float | None = None
    joules_low: float | None = None
    joules_high: float | None = None
    energy_basis: Basis = Basis.ESTIMATED
    energy_origin: str = ""
    idle_watts: float | None = None


class LinkLatency(Frozen):
    """The client-side latency of a cloud report measured through a shaped link: server time,
    the link and the client together, as a request under that network saw them."""

    run_id: str
    profile: LinkSpec = Field(description="the link as the shaper applied it")
    shaper: str
    latency: LatencyStats
    p99_ms: float
    origin: str
    problems: tuple[str, ...] = Field(default=(), description="why it may not decide, if so")
    request_bytes: float = Field(description="mean bytes sent per request through the link")
    response_bytes: float = Field(description="mean bytes received per request")


class CloudFigures(Frozen):
    """Cloud-endpoint figures from an HTTP report.

    ``capacity_qps`` is SLO-bound when ``capacity_problem`` is None; otherwise it is the figure
    a caller accepting flagged runs may use (the measured throughput), and the problem says why
    it is no capacity and how to measure one.
    """

    run_id: str = ""
    latency: LatencyStats | None = None
    server_latency: LatencyStats | None = None
    problems: tuple[str, ...] = ()
    capacity_problem: str | None = None
    local_standin: bool = False
    capacity_qps: float
    capacity_basis: Basis
    capacity_origin: str
    server_p99_ms: float | None = None
    server_p99_origin: str = ""
    request_bytes: float | None = None
    response_bytes: float | None = None
    latency_bound_ms: float | None = None
    link_name: str | None = Field(
        default=None, description="the network profile this report ran under; None: bare path"
    )
    measured_links: tuple[LinkLatency, ...] = Field(
        default=(), description="one per network profile a valid cloud report ran under"
    )


CAUTION_FLAGS = (
    RunFlag.QUICK,
    RunFlag.UNSTABLE,
    RunFlag.EMULATED,
    RunFlag.LOCAL_STANDIN,
    RunFlag.THROTTLED,
    RunFlag.MIN_QUERIES_NOT_MET,
    RunFlag.INTERRUPTED,
    RunFlag.SEND_LAG_INVALID,
    RunFlag.BELOW_ACCURACY_FLOOR,
    RunFlag.DRIFTING,
    RunFlag.ERROR_RATE,
)
"""Report flags that make a cost figure less trustworthy; each becomes a warning (the
INVALID_FLAGS among them keep the figures from deciding; see :func:`run_problems`)."""


def _label(r: Report) -> str:
    backend = r.backend.name if r.backend else "?"
    sc = r.scenario
    what = f"{r.model.name}-{r.model.variant}, {backend}, {sc.kind.value} b{sc.batch_size}"
    return f"report {r.run_id[:8]} ({what})"


def is_cloud(report: Report) -> bool:
    """Whether a report measured a remote endpoint."""
    return report.http is not None or (
        report.backend is not None and report.backend.device is Device.REMOTE
    )


def _variant_of(reports: Sequence[Report], variant: str | None, model: str) -> str:
    """The variant to cost: the one asked for, else fp32 when measured, else the only one."""
    edge = sorted({r.model.variant for r in reports if not is_cloud(r)})
    every = sorted({r.model.variant for r in reports})
    if variant is not None:
        if variant not in every:
            raise CostInputError(
                f"no report of variant '{variant}' of model '{model}' among --reports",
                f"variants in these reports: {', '.join(every) or 'none'}",
            )
        if edge and variant not in edge:
            raise CostInputError(
                f"no on-device report of variant '{variant}' of model '{model}'",
                f"on-device variants in these reports: {', '.join(edge)}",
            )
        return variant
    candidates = edge or every
    if "fp32" in candidates:
        return "fp32"
    if len(candidates) == 1:
        return candidates[0]
    raise CostInputError(
        f"the reports of model '{model}' cover several variants ({', '.join(candidates)}) "
        "and none is fp32",
        "choose one with --variant NAME",
    )


def _of_variant(
    reports: Sequence[Report], variant: str | None, model: str
) -> tuple[list[Report], list[str]]:
    """The edge reports of one variant, and the cloud reports of the same variant if any.

    When no endpoint report measured that variant, the endpoint's own variant is used (fp32 if
    measured) and a warning says the comparison mixes variants.
    """
    if not reports:
        return [], []
    chosen = _variant_of(reports, variant, model)
    warnings: list[str] = []
    edge = [r for r in reports if not is_cloud(r) and r.model.variant == chosen]
    cloud_all = [r for r in reports if is_cloud(r)]
    cloud = [r for r in cloud_all if r.model.variant == chosen]
    if cloud_all and not cloud:
        others = sorted({r.model.variant for r in cloud_all})
        used = "fp32" if "fp32" in others else others[0]
        cloud = [r for r in cloud_all if r.model.variant == used]
        warnings.append(
            f"the edge is costed on variant {chosen} but the endpoint was measured on "
            f"{used} only: the comparison mixes variants (their speed and accuracy differ); "
            f"measure the endpoint with --variant {chosen}"
        )
    kept = {id(r) for r in (*edge, *cloud)}
    left = [r for r in reports if id(r) not in kept]
    if left:
        warnings.append(
            f"{len(left)} report(s) of variant {', '.join(sorted({r.model.variant for r in left}))}"
            f" not costed: this analysis is of {model}-{chosen}; cost another with --variant NAME"
        )
    return [r for r in reports if id(r) in kept], warnings


def usable(
    reports: Sequence[Report], model: str | None, variant: str | None = None
) -> tuple[list[Report], list[str]]:
    """Complete reports with results, of one model and one variant; and warnings about the rest.

    The variant is ``variant``, else fp32 when an on-device report measured it, else the only
    variant measured (several, none fp32: an error asking for one). Edge and cloud figures then
    come from that variant's reports; see :func:`_of_variant` for a cloud measured on another.
    """
    names = sorted({r.model.name for r in reports})
    if model is None and len(names) > 1:
        raise CostInputError(
            f"the reports cover several models ({', '.join(names)})", "choose one with --model NAME"
        )
    if model is not None and model not in names:
        raise CostInputError(
            f"no report of model '{model}' among --reports",
            f"models in these reports: {', '.join(names) or 'none'}",
        )
    name = model if model is not None else (names[0] if names else "")
    of_model = [r for r in reports if r.model.name == name]
    chosen, warnings = _of_variant(of_model, variant, name)
    out: list[Report] = []
    for r in chosen:
        if r.status is not RunStatus.COMPLETE or r.results is None:
            warnings.append(f"{_label(r)} ignored: status {r.status.value}, no results")
            continue
        caution = [f.value for f in r.flags if f in CAUTION_FLAGS and f not in INVALID_FLAGS]
        if caution:
            warnings.append(
                f"{_label(r)} is flagged {', '.join(caution)}: treat its cost with care"
            )
        out.append(r)
    return out, warnings


def _p99(r: Report) -> float:
    return r.results.latency.p99 if r.results is not None else math.inf


def edge_figures(
    reports: Sequence[Report], slo_ms: float | None = None
) -> tuple[EdgeFigures | None, list[str]]:
    """Throughput, p99 and energy of the edge device; None when no edge report is given.

    The fleet is sized by the highest-throughput run whose p99 meets ``slo_ms`` (every run
    when there is no SLO), and the device's p99 is that run's: serving at a batched run's
    throughput means waiting for the batch.
    """
    measured = [r for r in reports if not is_cloud(r) and r.results is not None]
    if not measured:
        return None, []
    warnings: list[str] = []
    # a group of repeated runs is one measurement, chosen by its runs' geometric means
    edge = one_per_group([r for r in measured if not run_problems(r, measured)] or measured)

    def tp_of(r: Report) -> float:
        return group_value(measured, r, RunFigure.THROUGHPUT) or 0.0

    def p99_of(r: Report) -> float:
        return group_value(measured, r, RunFigure.P99) or math.inf

    meeting = [r for r in edge if slo_ms is None or p99_of(r) <= slo_ms]
    best = max(meeting or edge, key=tp_of)
    assert best.results is not None
    origin = _label(best)
    if slo_ms is not None:
        faster = [r for r in edge if tp_of(r) > tp_of(best)]
        if not meeting:
            origin += f": no run meets the {slo_ms:g} ms SLO"
        elif faster:
            top = max(faster, key=tp_of)
            origin += f": highest throughput with p99 <= {slo_ms:g} ms"
            warnings.append(
                f"edge capacity excludes {_label(top)}: {tp_of(top):.4g}/s, but its p99 "
                f"{p99_of(top):.4g} ms exceeds the {slo_ms:g} ms SLO"
            )
    tp = best.results.throughput.samples_per_s
    if not tp > 0:
        raise CostInputError(
            f"{_label(best)} measured no throughput ({tp:g}/s)",
            "re-run the benchmark on the device; a failed run cannot size a fleet",
        )
    low = high = None
    stab = best.results.stability
    # a window that finished no query (a short, noisy run) bounds nothing: a capacity of 0
    # would size an infinite fleet; the range comes from the windows that measured a rate
    rates = [w for w in stab.windows if w > 0] if stab is not None else []
    if rates and best.results.throughput.queries_per_s > 0:
        per_query = tp / best.results.throughput.queries_per_s
        low, high = min(rates) * per_query, max(rates) * per_query
        low, high = min(low, tp), max(high, tp)
    p99, p99_origin = best.results.latency.p99, _label(best)
    # repeated runs: the group's geometric mean, ranged by its t interval (tornado, Monte Carlo)
    if (g := group_input(measured, best, RunFigure.THROUGHPUT)) is not None:
        tp, low, high, origin = g.value, g.low, g.high, f"{origin}; {g.note}"
    if (g := group_input(measured, best, RunFigure.P99)) is not None:
        p99, p99_origin = g.value, f"{p99_origin}; {g.note}"
    joules, j_low, j_high, basis, energy_origin, idle, w_energy = _edge_energy(edge, best)
    if (g := group_input(measured, best, RunFigure.JOULES)) is not None and joules is not None:
        joules, j_low, j_high = g.value, g.low, g.high
        energy_origin = f"{energy_origin}; {g.note}"
    return (
        EdgeFigures(
            run_id=best.run_id,
            latency=best.results.latency,
            problems=run_problems(best, measured),
            throughput=tp,
            throughput_low=low,
            throughput_high=high,
            throughput_origin=origin,
            p99_ms=p99,
            p99_origin=p99_origin,
            joules_per_inference=joules,
            joules_low=j_low,
            joules_high=j_high,
            energy_basis=basis,
            energy_origin=energy_origin,
            idle_watts=idle,
        ),
        warnings + w_energy,
    )


def _edge_energy(
    edge: Sequence[Report], best: Report
) -> tuple[float | None, float | None, float | None, Basis, str, float | None, list[str]]:
    """J/inference (with a range), its basis and origin, and idle watts, from the reports."""
    warnings: list[str] = []
    with_energy = [r for r in edge if r.collectors.energy is not None]
    for r in sorted(with_energy, key=lambda r: (r is not best, -_tp(r))):
        es = r.collectors.energy
        assert es is not None
        j = es.joules_per_inference
        if not es.valid or j is None or not math.isfinite(j) or j < 0:
            warnings.append(
                f"{_label(r)}: energy marked invalid ({es.note or 'no valid window'}), not used"
            )
            continue
        j_low = j_high = None
        if len(es.window_joules_per_inference) >= 2:
            j_low = min(min(es.window_joules_per_inference), j)
            j_high = max(max(es.window_joules_per_inference), j)
        elif es.iqr_joules_per_inference:
            j_low = max(j - es.iqr_joules_per_inference / 2, 0.0)
            j_high = j + es.iqr_joules_per_inference / 2
        basis = Basis.ESTIMATED if es.method is MeasurementMethod.ESTIMATED else Basis.MEASURED
        origin = f"{_label(r)}: {es.source} ({es.method.value}, {es.scope})"
        idle_vals = [w for w in (es.idle_watts_before, es.idle_watts_after) if w is not None]
        idle = sum(idle_vals) / len(idle_vals) if idle_vals else None
        if r is not best:
            warnings.append(
                "energy per inference comes from a different run than the throughput "
                f"({_label(r)}); at another load it holds a different share of idle power"
            )
        warnings.extend(f"{_label(r)} energy: {w}" for w in es.warnings)
        return j, j_low, j_high, basis, origin, idle, warnings
    origin = "device profile: active watts / measured throughput"
    return None, None, None, Basis.ESTIMATED, origin, None, warnings


def _tp(r: Report) -> float:
    return r.results.throughput.samples_per_s if r.results is not None else 0.0


def cloud_figures(reports: Sequence[Report]) -> tuple[CloudFigures | None, list[str]]:
    """SLO-bound capacity, server-side p99 and payload bytes of the cloud endpoint."""
    cloud = [r for r in reports if is_cloud(r) and r.results is not None]
    if not cloud:
        return None, []
    warnings: list[str] = []
    valid = [r for r in cloud if _search_problem(r) is None and not run_problems(r, cloud)]
    searched = [r for r in cloud if _searched(r)]
    pick = max(valid or searched or cloud, key=lambda r: (r.started_at, _tp(r)))
    if len(cloud) > 1:
        warnings.append(f"{len(cloud)} HTTP reports given; cloud figures use {_label(pick)}")
    assert pick.results is not None
    http = pick.http
    batch = pick.scenario.batch_size
    problem = _search_problem(pick)
    if problem is None:
        assert http is not None and http.peak_rate_qps is not None
        capacity = http.peak_rate_qps * batch
        basis = Basis.SLO_BOUND
        bound = f" at p99 <= {http.latency_bound_ms:g} ms" if http.latency_bound_ms else ""
        origin = f"{_label(pick)}: peak rate meeting the p99 bound{bound}"
    else:
        capacity = pick.results.throughput.samples_per_s
        basis = Basis.MEASURED_THROUGHPUT
        origin = (
            f"{_label(pick)}: measured throughput {capacity:.4g}/s, not an SLO-bound capacity "
            f"({problem})"
        )
    if not capacity > 0:
        raise CostInputError(
            f"{_label(pick)} measured no throughput ({capacity:g}/s)",
            "re-run the endpoint benchmark; a failed run cannot size instances",
        )
    if http is not None and http.server_time is not None:
        p99 = http.server_time.p99
        p99_origin = f"{_label(pick)}: server-side p99"
    else:
        p99 = pick.results.latency.p99
        p99_origin = f"{_label(pick)}: client-side p99 (includes the test's own network)"
    p99_origin += f", measured {link_of(pick)}"
    return (
        CloudFigures(
            run_id=pick.run_id,
            latency=pick.results.latency,
            server_latency=http.server_time if http is not None else None,
            problems=run_problems(pick, cloud),
            capacity_problem=(
                f"{_label(pick)}: {problem}; run the endpoint's server scenario with "
                "--latency-bound MS on a quiet machine, or accept its throughput with "
                "--accept-flagged"
                if problem is not None
                else None
            ),
            local_standin=RunFlag.LOCAL_STANDIN in pick.flags,
            capacity_qps=capacity,
            capacity_basis=basis,
            capacity_origin=origin,
            server_p99_ms=p99,
            server_p99_origin=p99_origin,
            request_bytes=http.bytes_sent_per_request if http else None,
            response_bytes=http.bytes_received_per_request if http else None,
            latency_bound_ms=http.latency_bound_ms if http else None,
            link_name=http.link.profile.name if http and http.link else None,
            measured_links=_measured_links(cloud),
        ),
        warnings,
    )


def link_of(r: Report) -> str:
    """Where a cloud report was measured: 'under network NAME (shaper)' or 'on the bare path
    (no shaped link)'."""
    link = r.http.link if r.http is not None else None
    if link is None:
        return "on the bare path (no shaped link)"
    return f"under network '{link.profile.name}' ({link.shaper.value})"


def _measured_links(cloud: Sequence[Report]) -> tuple[LinkLatency, ...]:
    """One :class:`LinkLatency` per network profile the cloud reports ran under: the latest
    valid report, else the latest, whose problems then keep it from deciding like any
    flagged run's."""
    latest: dict[str, LinkLatency] = {}
    runs = [r for r in cloud if r.http is not None and r.http.link and r.results is not None]
    problems = {id(r): run_problems(r, cloud) for r in runs}
    for r in sorted(runs, key=lambda r: (not problems[id(r)], r.started_at)):
        assert r.http is not None and r.http.link is not None and r.results is not None
        link = r.http.link
        latest[link.profile.name] = LinkLatency(
            run_id=r.run_id,
            profile=link.profile,
            shaper=link.shaper.value,
            latency=r.results.latency,
            p99_ms=r.results.latency.p99,
            origin=f"{_label(r)}: client-side p99 {link_of(r)}",
            problems=problems[id(r)],
            request_bytes=r.http.bytes_sent_per_request,
            response_bytes=r.http.bytes_received_per_request,
        )
    return tuple(latest.values())


def _searched(r: Report) -> bool:
    http = r.http
    return http is not None and (
        http.latency_bound_ms is not None or http.peak_rate_qps is not None or bool(http.sweep)
    )


def _search_problem(r: Report) -> str | None:
    """Why a report gives no SLO-bound capacity; None when its search found a valid peak.

    Valid: a peak rate above 0 whose probe met the bound with a valid send lag (when the
    report lists its probes).
    """
    http = r.http
    if http is None or not _searched(r):
        return "no SLO search ran (the server scenario with a latency bound)"
    bound = f"p99 <= {http.latency_bound_ms:g} ms" if http.latency_bound_ms else "the p99 bound"
    probes = ", ".join(
        f"{p.offered_rate_qps:g}/s "
        + ("send-lag-invalid" if p.send_lag_invalid else f"p99 {p.p99_ms:.3g} ms")
        for p in http.sweep
        if p.offered_rate_qps is not None
    )
    tried = f" (probes: {probes})" if probes else ""
    peak = http.peak_rate_qps
    if peak is None or not peak > 0:
        return f"the SLO search found no rate meeting {bound}{tried}"
    at_peak = [p for p in http.sweep if p.offered_rate_qps is not None]
    at_peak = [p for p in at_peak if math.isclose(p.offered_rate_qps or 0.0, peak, rel_tol=1e-9)]
    if at_peak and not any(p.meets_bound and not p.send_lag_invalid for p in at_peak):
        return f"the reported peak {peak:g}/s did not meet {bound} with a valid send lag{tried}"
    return None
