"""The load generator: closed-loop (single-stream, concurrency N) and open-loop (server) runs
over any asynchronous request function, on one asyncio event loop.

Open loop follows wrk2 and LoadGen's Server scenario: arrival times are drawn in advance
(Poisson or constant), and each latency is measured from the request's **scheduled** send time,
so a server stall shows up in the percentiles instead of silently slowing the generator down
(coordinated omission). The lag between scheduled and actual send is recorded; when more than
1% of requests leave over 1 ms late, the generator, not the server, set the numbers and the run
is marked invalid.

Timing only: this module records nanosecond timestamps into arrays and formats nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tippingpoint.backends.network import Completion, RequestFn, RouteRecord
from tippingpoint.core.schema import ArrivalProcess, StopReason, StopRule
from tippingpoint.harness.convergence import StopRecord, StopTracker, Tracking

LATE_NS = 1_000_000
"""A request sent more than this after its scheduled time counts as late."""
LATE_FRACTION_LIMIT = 0.01
"""More late requests than this share invalidates an open-loop run."""
WAKE_MARGIN_NS = 2_500_000
"""The scheduler wakes at least this long before a send (for the kernel's wake-up slack) and
yields to the event loop from there (a spin that keeps serving I/O). On an idle 2-vCPU VM an
epoll wait overshoots by 0.2-0.5 ms typically and 2 ms at worst: with a 0.2 ms margin 6-13% of
the sends of a 100 requests/s run were over 1 ms late (run invalid); with 2.5 ms, under 1%.
At rates above ~400/s the gaps are shorter than the margin and the loop spins throughout."""
DRAIN_MARGIN_S = 1.0
"""Extra time given to in-flight requests after the last send, beyond the request timeout."""
CHUNK = 4096
"""Arrival intervals drawn at a time: the schedule is streamed, never materialised."""
MAX_RATE_QPS = 100_000.0
"""The highest open-loop rate accepted: a send every 10 us, twice the raw client's closed-loop
rate here (``make bench-loadgen``); above it the generator, not the server, sets the timing."""
MAX_BURST = 1024
"""Most due sends handled before the scheduler yields to the event loop, so an overloaded
generator still answers Ctrl-C and serves its responses."""
TICK_NS = 250_000_000
"""How often the loops hand progress to the callback."""


class LoadProgress(NamedTuple):
    """A snapshot for a progress display."""

    phase: str
    sent: int
    completed: int
    elapsed_s: float
    target_s: float


ProgressFn = Callable[[LoadProgress], None]

OVERLOAD = "client-overload"
"""Error kind of a request the generator dropped because too many were already in flight."""
DRAIN_TIMEOUT = "timeout"
"""Error kind of a request still unanswered when the drain deadline passed."""


@dataclass(frozen=True)
class LoadRun:
    """Per-request arrays of one measured run, in ``perf_counter_ns``.

    ``scheduled_ns`` equals ``start_ns`` in closed-loop runs. ``errors`` holds None for
    successes. ``window_start_ns`` is the first scheduled send, ``window_end_ns`` the last
    completion.
    """

    scheduled_ns: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    errors: tuple[str | None, ...]
    bytes_sent: np.ndarray
    bytes_received: np.ndarray
    server_ns: np.ndarray
    status: np.ndarray
    retries: int
    window_start_ns: int
    window_end_ns: int
    open_loop: bool
    offered_rate_qps: float | None
    interrupted: bool = False
    stop: StopRecord | None = None
    """What ended the run (when a stop tracker decided it)."""
    routes: tuple[RouteRecord | None, ...] = ()
    """A routing session's decision per request, in the order of the arrays; empty when no
    completion carried one (plain network sessions)."""

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of successful requests."""
        return np.fromiter((e is None for e in self.errors), dtype=bool, count=len(self.errors))

    @property
    def latency_ns(self) -> np.ndarray:
        """Latency of every request: from scheduled send (open loop) or actual send (closed)."""
        return np.asarray(self.end_ns - self.scheduled_ns)

    @property
    def service_ns(self) -> np.ndarray:
        """Time from actual send to response, every request."""
        return np.asarray(self.end_ns - self.start_ns)

    @property
    def send_lag_ns(self) -> np.ndarray:
        """Actual minus scheduled send time, every request (zero in closed loop)."""
        return np.asarray(self.start_ns - self.scheduled_ns)

    @property
    def late_fraction(self) -> float:
        """Share of requests sent more than 1 ms after their scheduled time."""
        n = len(self.start_ns)
        return float(np.count_nonzero(self.send_lag_ns > LATE_NS) / n) if n else 0.0

    @property
    def lag_invalid(self) -> bool:
        """True when the generator, not the server, set the timing (>1% sent >1 ms late)."""
        return self.open_loop and self.late_fraction > LATE_FRACTION_LIMIT


class _Recorder:
    """Appends completions to typed arrays (as cheap as lists in the hot path, 8 bytes a value
    instead of ~40: an overloaded run records every dropped request); numpy arrays at the end."""

    def __init__(self) -> None:
        self.sched = array("q")
        self.start = array("q")
        self.end = array("q")
        self.err: list[str | None] = []
        self.sent = array("q")
        self.recv = array("q")
        self.server = array("q")
        self.status = array("q")
        self.retries = 0
        self.routes: list[RouteRecord | None] = []
        self.routed = False

    def add(self, sched: int, c: Completion) -> None:
        self.sched.append(sched)
        self.start.append(c.start_ns)
        self.end.append(c.end_ns)
        self.err.append(c.error)
        self.sent.append(c.bytes_sent)
        self.recv.append(c.bytes_received)
        self.server.append(c.server_ns)
        self.status.append(c.status)
        self.retries += c.retries
        self.routes.append(c.route)
        if c.route is not None:
            self.routed = True

    def add_error(self, sched: int, kind: str, now: int, start: int | None = None) -> None:
        """A request that failed at ``now``; ``start`` is when it was sent (default ``now``:
        never sent, e.g. dropped by the generator)."""
        self.add(sched, Completion(now if start is None else start, now, kind, 0, 0, -1, 0))

    def finish(
        self, window_start: int, open_loop: bool, rate: float | None, interrupted: bool
    ) -> LoadRun:
        end = np.asarray(self.end, dtype=np.int64)
        order = np.argsort(np.asarray(self.sched, dtype=np.int64), kind="stable")

        def arr(values: array[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)[order]

        return LoadRun(
            scheduled_ns=arr(self.sched),
            start_ns=arr(self.start),
            end_ns=end[order],
            errors=tuple(self.err[i] for i in order),
            bytes_sent=arr(self.sent),
            bytes_received=arr(self.recv),
            server_ns=arr(self.server),
            status=arr(self.status),
            retries=self.retries,
            window_start_ns=window_start,
            window_end_ns=int(end.max()) if len(end) else window_start,
            open_loop=open_loop,
            offered_rate_qps=rate,
            interrupted=interrupted,
            routes=tuple(self.routes[i] for i in order) if self.routed else (),
        )


def pause_s(delta_ns: int) -> float:
    """How long the scheduler sleeps when the next send is ``delta_ns`` away.

    The event loop's timers wait in whole milliseconds, rounded up (epoll), so a plain sleep
    would send up to 1 ms late. This sleeps the whole milliseconds that end at least
    ``WAKE_MARGIN_NS`` before the send, and 0 (a yield to the loop) once less than that is left.
    """
    whole_ms = (delta_ns - WAKE_MARGIN_NS) // 1_000_000
    return whole_ms / 1000 - 0.0001 if whole_ms >= 1 else 0.0


def arrival_offsets(
    rate_qps: float,
    arrival: ArrivalProcess,
    rng: np.random.Generator,
    count: int,
    burstiness: float = 1.0,
) -> np.ndarray:
    """``count`` inter-arrival gaps in ns: exponential (Poisson process), constant, or gamma
    with shape ``burstiness`` and the same mean (vLLM's bursty arrivals)."""
    mean_ns = 1e9 / rate_qps
    if arrival is ArrivalProcess.CONSTANT:
        return np.full(count, mean_ns)
    if arrival is ArrivalProcess.GAMMA:
        return rng.gamma(burstiness, mean_ns / burstiness, size=count)
    return rng.exponential(mean_ns, size=count)


def _done(n: int, now: int, start: int, rule: StopRule) -> bool:
    return (n >= rule.min_queries and now - start >= rule.min_duration_s * 1e9) or (
        now - start >= rule.max_duration_s * 1e9
    )


@dataclass
class _LoopState:
    """Shared by the closed-loop workers: requests started, and whether to stop."""

    sent: int = 0
    stop: bool = False
    next_check: int = 0
    """With a stop tracker: when it decides next (the minimums' end, then window ends)."""
    reason: StopReason | None = None


def _tracked_done(
    state: _LoopState, tracker: StopTracker, rec: _Recorder, now: int, start: int, rule: StopRule
) -> bool:
    """The stop tracker's decision once the minimums are met, at its window boundaries (a
    worker finishing after another decided to stop changes nothing)."""
    if state.stop:
        return True
    if now - start >= rule.max_duration_s * 1e9:
        state.reason = StopReason.CAP
        return True
    if now < state.next_check or len(rec.end) < rule.min_queries:
        return False
    state.next_check = tracker.check_unsorted(now, rec.end, rec.err)
    return not state.next_check


def _record(run: LoadRun, tracker: StopTracker | None, reason: StopReason | None) -> LoadRun:
    if tracker is None:
        return run
    if run.interrupted:
        reason = StopReason.INTERRUPTED
    return dataclasses.replace(run, stop=tracker.record(reason))


async def closed_loop(
    send: RequestFn,
    concurrency: int,
    rule: StopRule,
    *,
    phase: str = "measure",
    progress: ProgressFn | None = None,
    tracking: Tracking | None = None,
) -> LoadRun:
    """``concurrency`` workers each send a request as soon as their previous one finished,
    until both the rule's query count and duration are met (or its cap passes); with
    ``tracking``, the tracker decides from the minimums on."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    clock = time.perf_counter_ns
    rec = _Recorder()
    start = clock()
    state = _LoopState(next_check=start + int(rule.min_duration_s * 1e9))
    tracker = tracking(start) if tracking is not None else None

    async def worker() -> None:
        while not state.stop:
            state.sent += 1
            c = await send()
            rec.add(c.start_ns, c)
            if tracker is not None:
                if _tracked_done(state, tracker, rec, c.end_ns, start, rule):
                    state.stop = True
            elif _done(len(rec.end), c.end_ns, start, rule):
                state.stop = True

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    interrupted = await _supervise(workers, start, rule, phase, state, rec, progress)
    return _record(rec.finish(start, False, None, interrupted), tracker, state.reason)


async def _supervise(
    tasks: Sequence[asyncio.Future[None]],
    start: int,
    rule: StopRule,
    phase: str,
    state: _LoopState,
    rec: _Recorder,
    progress: ProgressFn | None,
) -> bool:
    """Wait for the workers, ticking progress; cancel them on cancellation (Ctrl-C)."""
    try:
        while True:
            done, _ = await asyncio.wait(tasks, timeout=TICK_NS / 1e9)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    for other in tasks:
                        other.cancel()
                    raise t.exception()  # type: ignore[misc]
            if len(done) == len(tasks):
                return False
            if progress is not None:
                now = time.perf_counter_ns()
                progress(
                    LoadProgress(
                        phase,
                        state.sent,
                        len(rec.end),
                        (now - start) / 1e9,
                        rule.min_duration_s,
                    )
                )
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return True


async def open_loop(
    send: RequestFn,
    rate_qps: float,
    rule: StopRule,
    *,
    arrival: ArrivalProcess = ArrivalProcess.POISSON,
    burstiness: float = 1.0,
    seed: int = 0,
    max_inflight: int = 4096,
    drain_timeout_s: float = 30.0,
    phase: str = "measure",
    progress: ProgressFn | None = None,
    tracking: Tracking | None = None,
) -> LoadRun:
    """Send at ``rate_qps`` on a precomputed schedule until the rule is met in scheduled time
    (with ``tracking``: from the minimums on, until the tracker stops it at a window end).

    Latency is measured from each request's scheduled time. Requests are never sent early;
    when more than ``max_inflight`` are outstanding, a due request is dropped and counted as
    a ``client-overload`` error. After the last send, in-flight requests get
    ``drain_timeout_s``; those still pending then count as timeouts.
    """
    if rate_qps <= 0:
        raise ValueError("rate must be positive")
    loop = asyncio.get_running_loop()
    clock = time.perf_counter_ns
    rng = np.random.default_rng(seed)
    rec = _Recorder()
    inflight: set[asyncio.Task[None]] = set()
    pending_sched: dict[asyncio.Task[None], int] = {}
    started: dict[int, int] = {}  # scheduled -> actual send time, while in flight

    async def one(sched: int) -> None:
        started[sched] = clock()
        c = await send()
        rec.add(sched, c)

    def finished(task: asyncio.Task[None]) -> None:
        inflight.discard(task)
        started.pop(pending_sched.pop(task, -1), None)

    gc.collect()
    gc.freeze()  # older objects leave the collector's view: no long gen-2 pauses mid-run
    start = clock() + 1_000_000  # first arrival 1 ms from now
    gaps = arrival_offsets(rate_qps, arrival, rng, CHUNK, burstiness).cumsum()
    base = float(start)
    gi = 0
    t_next = start
    n = 0
    next_tick = start + TICK_NS
    interrupted = False
    min_end = start + rule.min_duration_s * 1e9
    cap = start + rule.max_duration_s * 1e9
    min_q = rule.min_queries
    tracker = tracking(start) if tracking is not None else None
    reason: StopReason | None = None
    try:
        while True:
            now = clock()
            stop = False
            burst = 0
            while t_next <= now and burst < MAX_BURST:
                burst += 1
                if len(inflight) >= max_inflight:
                    rec.add_error(t_next, OVERLOAD, now)
                else:
                    task = loop.create_task(one(t_next))
                    inflight.add(task)
                    pending_sched[task] = t_next
                    task.add_done_callback(finished)
                n += 1
                if gi == CHUNK:
                    base += gaps[-1]
                    gaps = arrival_offsets(rate_qps, arrival, rng, CHUNK, burstiness).cumsum()
                    gi = 0
                t_next = int(base + gaps[gi])
                gi += 1
                if t_next > cap:
                    stop, reason = True, StopReason.CAP
                    break
                if n >= min_q and t_next > min_end:
                    if tracker is None:
                        stop = True
                        break
                    min_end = tracker.check_unsorted(clock(), rec.end, rec.err)
                    if not min_end:
                        stop = True
                        break
                    min_q = 0
            if stop:
                break
            if now >= next_tick:
                next_tick = now + TICK_NS
                if progress is not None:
                    progress(
                        LoadProgress(
                            phase, n, len(rec.end), (now - start) / 1e9, rule.min_duration_s
                        )
                    )
            await asyncio.sleep(pause_s(t_next - clock()))
        if inflight:
            await asyncio.wait(set(inflight), timeout=drain_timeout_s)
    except asyncio.CancelledError:
        interrupted = True
    finally:
        gc.unfreeze()
    now = clock()
    for task, sched in list(pending_sched.items()):
        task.cancel()
        # sent on time (or not): a server that never answered must not look like send lag
        rec.add_error(sched, DRAIN_TIMEOUT, now, started.get(sched))
    if pending_sched:
        await asyncio.gather(*pending_sched, return_exceptions=True)
    return _record(rec.finish(start, True, rate_qps, interrupted), tracker, reason)
