"""Load scenarios over the network, for any :class:`~tippingpoint.backends.network.NetworkSession`:
single-stream, closed-loop concurrency, the open-loop server scenario, the search for the peak
rate whose p99 meets a bound (LoadGen's FindPeakPerformance) and concurrency sweeps.

The session supplies the transport only (one request, its completion); warm-up, the measured
part and every scheduling decision are made here, with :mod:`tippingpoint.harness.loadgen` on
the session's event loop. :func:`run_network_scenario` returns the raw samples (successes
only), the performance figures and the report's :class:`HttpResults`. Failed requests are
counted by kind and never enter the latencies.

Usage::

    run = run_network_scenario(session, feeds, scenario, on_measure_start=open_window)
    run.http.achieved_rate_qps, run.results.latency.p99
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tippingpoint.backends.network import NetworkInfo, NetworkSession, RequestFn
from tippingpoint.core import stats
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import (
    ArrivalProcess,
    HttpResults,
    HybridResults,
    LatencyStats,
    PerformanceResults,
    RunFlag,
    ScenarioSettings,
    StopMode,
    StopRule,
    SweepPoint,
    WarmupSummary,
)
from tippingpoint.harness.convergence import measure_tracking, steady_warmup, warmup_tracking
from tippingpoint.harness.hybrid import hybrid_results
from tippingpoint.harness.loadgen import (
    DRAIN_MARGIN_S,
    LoadRun,
    ProgressFn,
    closed_loop,
    open_loop,
)
from tippingpoint.harness.measured import Samples, performance_results

MAX_PROBES = 12
"""Cap on the open-loop runs of one peak search."""
PEAK_PRECISION = 0.05
"""The search stops when the passing and failing rates are within 5% of each other."""
MIN_RATE_FRACTION = 1 / 16
"""When no probe passes, the search halves the rate down to this share of the start rate."""
MAX_ERROR_RATE = 0.01
"""A probe with more failed requests than this share fails the search."""
ERROR_RATE_LIMIT = MAX_ERROR_RATE
"""A run with more failed requests than this share is flagged ``error-rate`` (not valid)."""
STABLE_WINDOWS = 3
"""A network load is stable when this many consecutive windows agree within the scenario's
threshold (perf_analyzer's rule: 3 measurement windows within 10%)."""
BUDGET_MARGIN_S = 60.0
"""Slack beyond a phase's planned length before waiting for it gives up."""


@dataclass(frozen=True)
class NetworkRun:
    """What one network run contributes to a report."""

    samples: Samples | None
    results: PerformanceResults | None
    http: HttpResults
    warmup: WarmupSummary
    flags: tuple[RunFlag, ...]
    load: LoadRun
    hybrid: HybridResults | None = None
    """A hybrid session's routing figures (its completions carried route records)."""

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C stopped the measured part (the figures cover what ran)."""
        return self.load.interrupted


def _stats_or_none(values_ns: np.ndarray, seed: int) -> LatencyStats | None:
    if len(values_ns) == 0:
        return None
    return stats.latency_stats(values_ns, seed=seed, with_ci=len(values_ns) >= 2)


def summarize(
    load: LoadRun, info: NetworkInfo, scenario: ScenarioSettings
) -> tuple[Samples | None, PerformanceResults | None, HttpResults]:
    """Samples and figures of the successful requests, and the network section of the report."""
    ok = load.ok
    n = len(load.errors)
    successes = int(ok.sum())
    samples = None
    results = None
    if successes:
        lat = load.latency_ns[ok]
        end = load.end_ns[ok]
        window_end = int(end.max())
        samples = Samples(
            latency_ns=lat.astype(np.int64),
            end_ns=(end - load.window_start_ns).astype(np.int64),
            window_start_ns=load.window_start_ns,
            window_end_ns=window_end,
        )
        results = performance_results(samples, scenario, STABLE_WINDOWS, load.stop)
    server = load.server_ns[ok]
    has_server = server >= 0
    server_ok = server[has_server]
    network = np.clip(load.service_ns[ok][has_server] - server_ok, 0, None)
    duration_s = (load.window_end_ns - load.window_start_ns) / 1e9
    errors = Counter(e for e in load.errors if e is not None)
    codes = Counter(int(c) for c in load.status if c > 0)
    sent_total = int(load.bytes_sent.sum())
    recv_total = int(load.bytes_received.sum())
    # Per *successful* request: the payload an inference costs (egress is priced from these);
    # failed requests (often 0 bytes received) would understate it. Totals count everything.
    sent_ok = int(load.bytes_sent[ok].sum())
    recv_ok = int(load.bytes_received[ok].sum())
    http = HttpResults(
        protocol=info.protocol,
        endpoint=info.endpoint,
        requests=n,
        successes=successes,
        errors_by_kind=dict(sorted(errors.items())),
        status_counts={str(k): v for k, v in sorted(codes.items())},
        error_rate=(n - successes) / n if n else 0.0,
        bytes_sent_per_request=sent_ok / successes if successes else 0.0,
        bytes_received_per_request=recv_ok / successes if successes else 0.0,
        bytes_sent_total=sent_total,
        bytes_received_total=recv_total,
        server_time=_stats_or_none(server_ok, scenario.seed),
        network_time=_stats_or_none(network, scenario.seed),
        send_lag=_stats_or_none(load.send_lag_ns, scenario.seed) if load.open_loop else None,
        late_fraction=load.late_fraction if load.open_loop else None,
        offered_rate_qps=load.offered_rate_qps,
        achieved_rate_qps=successes / duration_s if duration_s > 0 else 0.0,
        retries=load.retries,
        tls_verify=info.tls_verify,
        auth=info.auth,
    )
    return samples, results, http


def _warm_rule(scenario: ScenarioSettings) -> StopRule:
    return StopRule(
        min_queries=max(scenario.warmup.min_queries, 1),
        min_duration_s=scenario.warmup.min_duration_s,
        max_duration_s=scenario.stop.max_duration_s,
    )


def _warmup_summary(warm: LoadRun, scenario: ScenarioSettings) -> WarmupSummary:
    duration_s = (warm.window_end_ns - warm.window_start_ns) / 1e9
    steady = steady_warmup(warm.stop, duration_s, scenario.warmup)
    return WarmupSummary(queries=len(warm.errors), duration_s=duration_s, until_steady=steady)


def _point(load: LoadRun, bound_ms: float | None, concurrency: int | None) -> SweepPoint:
    ok = load.ok
    lat = np.sort(load.latency_ns[ok])
    n = len(load.errors)
    duration_s = (load.window_end_ns - load.window_start_ns) / 1e9
    p50 = stats.percentile_nearest_rank(lat, 50) / 1e6 if len(lat) else float("nan")
    p99 = stats.percentile_nearest_rank(lat, 99) / 1e6 if len(lat) else float("nan")
    err = (n - len(lat)) / n if n else 1.0
    meets = None
    if bound_ms is not None:
        meets = bool(
            len(lat) and p99 <= bound_ms and err <= MAX_ERROR_RATE and not load.lag_invalid
        )
    return SweepPoint(
        concurrency=concurrency,
        offered_rate_qps=load.offered_rate_qps,
        achieved_rate_qps=len(lat) / duration_s if duration_s > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
        error_rate=err,
        meets_bound=meets,
        send_lag_invalid=load.lag_invalid if load.open_loop else None,
        converged=(
            load.stop.converged
            if load.stop is not None and load.stop.mode is StopMode.CONVERGE
            else None
        ),
    )


def _open_loop(
    session: NetworkSession,
    send: RequestFn,
    scenario: ScenarioSettings,
    rate: float,
    arrival: ArrivalProcess,
    seed: int,
    budget_s: float,
    progress: ProgressFn | None,
    phase: str = "measure",
) -> LoadRun:
    """An open-loop run at ``rate`` under ``scenario.stop``; in-flight requests get the
    request budget and the drain margin after the last send."""
    limits = session.limits
    return session.run_async(
        open_loop(
            send,
            rate,
            scenario.stop,
            arrival=arrival,
            seed=seed,
            max_inflight=limits.max_inflight,
            drain_timeout_s=limits.request_budget_s + DRAIN_MARGIN_S,
            phase=phase,
            progress=progress,
            tracking=measure_tracking(scenario, poisson=arrival is ArrivalProcess.POISSON),
        ),
        budget_s,
    )


def run_network_scenario(
    session: NetworkSession,
    feeds: Sequence[np.ndarray],
    scenario: ScenarioSettings,
    *,
    latency_bound_ms: float | None = None,
    progress: ProgressFn | None = None,
    on_measure_start: Callable[[int], None] | None = None,
) -> NetworkRun:
    """Warm up, then run ``scenario`` against the session's endpoint.

    ``on_measure_start(t_ns)`` (``perf_counter_ns``) is called once the warm-up is over and
    right before the measured part starts: the runner opens its collectors' window there, so
    energy never includes the warm-up.

    * single-stream and offline: one request in flight at a time;
    * concurrency: ``scenario.concurrency`` requests in flight (closed loop);
    * server: open loop at ``scenario.target_rate_qps`` (Poisson unless ``arrival`` says
      constant), latency from scheduled send; with ``latency_bound_ms`` (default: the
      session's), a peak-rate search starting at that rate, whose passing probe's figures
      are reported.
    """
    kind = scenario.kind
    limits = session.limits
    if latency_bound_ms is None and kind is ScenarioKind.SERVER:
        latency_bound_ms = limits.latency_bound_ms
    concurrency = scenario.concurrency or 1
    if kind is ScenarioKind.SERVER and not scenario.target_rate_qps:
        raise InvalidOptionError(
            "the server scenario needs a target rate", "pass --rate QUERIES_PER_SECOND"
        )
    send = session.request_fn(kind, feeds)
    budget = (
        scenario.stop.max_duration_s
        + (
            scenario.stop.max_duration_s
            if scenario.warmup.until_steady
            else scenario.warmup.min_duration_s
        )
        + limits.request_budget_s
        + BUDGET_MARGIN_S
    )
    warm = session.run_async(
        closed_loop(
            send,
            concurrency if kind is ScenarioKind.CONCURRENCY else 1,
            _warm_rule(scenario),
            phase="warmup",
            progress=progress,
            tracking=warmup_tracking(scenario),
        ),
        budget,
    )
    if warm.interrupted:
        raise KeyboardInterrupt
    warmup = _warmup_summary(warm, scenario)
    if on_measure_start is not None:
        on_measure_start(time.perf_counter_ns())
    sweep: tuple[SweepPoint, ...] = ()
    peak: float | None = None
    if kind is ScenarioKind.SERVER:
        rate = float(scenario.target_rate_qps or 0)
        arrival = scenario.arrival or ArrivalProcess.POISSON
        if latency_bound_ms is not None:
            load, peak, points = find_peak(
                session, send, scenario, latency_bound_ms, rate, arrival, progress
            )
            sweep = tuple(points)
        else:
            load = _open_loop(
                session, send, scenario, rate, arrival, scenario.seed, budget * 2, progress
            )
    else:
        n = concurrency if kind is ScenarioKind.CONCURRENCY else 1
        load = session.run_async(
            closed_loop(
                send, n, scenario.stop, progress=progress, tracking=measure_tracking(scenario)
            ),
            budget,
        )
    samples, results, http = summarize(load, session.network_info(), scenario)
    if latency_bound_ms is not None:
        http = http.model_copy(
            update={"peak_rate_qps": peak, "latency_bound_ms": latency_bound_ms, "sweep": sweep}
        )
    flags: list[RunFlag] = []
    if load.lag_invalid:
        flags.append(RunFlag.SEND_LAG_INVALID)
    if http.error_rate > ERROR_RATE_LIMIT:
        flags.append(RunFlag.ERROR_RATE)
    hybrid = None
    if load.routes:
        hybrid, arrays = hybrid_results(load, session.describe().options)
        if samples is not None:
            samples.extra.update(arrays)
    return NetworkRun(samples, results, http, warmup, tuple(flags), load, hybrid)


def find_peak(
    session: NetworkSession,
    send: RequestFn,
    scenario: ScenarioSettings,
    bound_ms: float,
    start_rate: float,
    arrival: ArrivalProcess,
    progress: ProgressFn | None = None,
) -> tuple[LoadRun, float | None, list[SweepPoint]]:
    """The highest open-loop rate whose p99 (from scheduled send) is within ``bound_ms`` with
    at most 1% errors and a valid send lag: double from ``start_rate`` until a probe fails,
    then bisect until the bracket is within 5%; when the start rate fails, halve down to 1/16
    of it. At most 12 probes, each under ``scenario.stop``.

    Returns the passing probe at the peak (or the last probe when none passed), the peak rate
    (None when none passed) and every probe as a sweep point.
    """
    if bound_ms <= 0 or start_rate <= 0:
        raise InvalidOptionError(
            "the peak search needs a positive latency bound and start rate",
            "pass --latency-bound MS and --rate QPS",
        )
    good: float | None = None
    bad: float | None = None
    best: LoadRun | None = None
    last: LoadRun | None = None
    points: list[SweepPoint] = []
    rate = start_rate
    budget = scenario.stop.max_duration_s + session.limits.request_budget_s + BUDGET_MARGIN_S
    for i in range(MAX_PROBES):
        load = _open_loop(
            session,
            send,
            scenario,
            rate,
            arrival,
            scenario.seed + i,
            budget * 2,
            progress,
            phase=f"probe {rate:.0f}/s",
        )
        last = load
        if load.interrupted:
            break
        point = _point(load, bound_ms, None)
        points.append(point)
        if point.meets_bound:
            good, best = rate, load
        else:
            bad = rate
        if bad is None:
            rate = rate * 2
        elif good is None:
            rate = rate / 2
            if rate < start_rate * MIN_RATE_FRACTION:
                break
        else:
            if (bad - good) / good <= PEAK_PRECISION:
                break
            rate = (good + bad) / 2
    assert last is not None
    return (best or last), good, points


def run_concurrency_sweep(
    session: NetworkSession,
    feeds: Sequence[np.ndarray],
    scenario: ScenarioSettings,
    levels: Sequence[int],
) -> list[NetworkRun]:
    """One closed-loop run per concurrency level (like perf_analyzer's sweep), each with the
    sweep's points so far in its network section."""
    runs: list[NetworkRun] = []
    points: list[SweepPoint] = []
    for level in levels:
        sc = scenario.model_copy(update={"kind": ScenarioKind.CONCURRENCY, "concurrency": level})
        run = run_network_scenario(session, feeds, sc)
        points.append(_point(run.load, None, level))
        http = run.http.model_copy(update={"sweep": tuple(points)})
        runs.append(
            NetworkRun(run.samples, run.results, http, run.warmup, run.flags, run.load, run.hybrid)
        )
    return runs
