"""Generative scenarios: token streams measured under the same load discipline as any run.

A generative session (the in-process :class:`~tippingpoint.backends.generative.GenerativeSession`
on onnxruntime-genai, or the OpenAI-compatible streaming client of
:mod:`tippingpoint.backends.openai_client`) is driven here by the harness's load generator
(:mod:`tippingpoint.harness.loadgen`), request by request:

* **single-stream**: one request in flight (closed loop);
* **concurrency**: ``scenario.concurrency`` requests in flight (closed loop; one run per level
  makes the sweep);
* **server**: the open loop at ``--rate`` requests/s, Poisson, constant or gamma-bursty
  arrivals, every latency measured from the request's scheduled send (no coordinated omission);
  with ``find_peak``, a search for the highest rate whose good fraction against the SLO meets
  the target (DistServe's SLO attainment, 90% by default): doubling from ``--rate`` until a
  probe fails, then bisecting to within 5%, at most 12 probes.

Warm-up, the stop rule (fixed or converging windows) and the collectors' window are those of any
run. Every request of the measured part is kept as a
:class:`~tippingpoint.backends.generative.StreamCompletion`; the figures
(:mod:`tippingpoint.core.token_metrics`) and the raw per-request and per-chunk arrays of the
samples sidecar come from those records only.

In process, requests are generated one at a time on one worker thread (onnxruntime-genai
batches nothing across requests here): with several in flight, the wait for the device is part
of each request's time to first token, as it would be for a user.

Usage::

    settings = GenerationSettings(slo=parse_slo("ttft=200,tpot=50"))
    run = run_generative_scenario(driver_for(session), scenario, settings)
    run.generation.metrics.tpot.p50, run.generation.metrics.goodput
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

import numpy as np

from tippingpoint.backends.base import Session
from tippingpoint.backends.generative import (
    GenerativeSession,
    StreamCompletion,
    request_timings,
)
from tippingpoint.backends.network import Completion
from tippingpoint.backends.openai_client import OpenAiSession, OpenAiStreamClient
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import (
    ArrivalProcess,
    GenerationResults,
    GoodputPoint,
    PerformanceResults,
    RunFlag,
    ScenarioSettings,
    Slo,
    StopRule,
    TokenMetrics,
    WarmupSummary,
)
from tippingpoint.core.token_metrics import UNKNOWN, summarize
from tippingpoint.harness.convergence import measure_tracking, steady_warmup, warmup_tracking
from tippingpoint.harness.loadgen import LoadRun, ProgressFn, closed_loop, open_loop
from tippingpoint.harness.measured import Samples, performance_results

DEFAULT_PROMPT_WORDS = 32
"""Words of each synthetic prompt (about as many tokens on a word-level tokenizer)."""
DEFAULT_OUTPUT_TOKENS = 64
"""Output tokens asked for per request (``max_tokens``), with ``ignore_eos``."""
SYNTHETIC_PROMPTS = 256
"""Prompts in the seeded synthetic set (cycled)."""
PEAK_TARGET = 0.9
"""The good fraction a rate must reach in the peak search (DistServe's 90% attainment)."""
MAX_PROBES = 12
PEAK_PRECISION = 0.05
MIN_RATE_FRACTION = 1 / 16
STABLE_WINDOWS = 3
MAX_ERROR_RATE = 0.01
"""A run with more failed requests than this share is flagged ``error-rate``."""
REQUEST_TIMEOUT_S = 120.0
"""In-flight requests get this long after the last send of an open loop."""

_WORDS = (
    "the sensor reads a value from the line and the model answers with the next word of "
    "a short report about power latency cost edge cloud device network battery signal "
    "temperature pressure river wind light field machine packet queue window"
).split()


@dataclass(frozen=True)
class Prompt:
    """One request's prompt and how many tokens it asks for."""

    text: str
    max_tokens: int


@dataclass(frozen=True)
class PromptSet:
    """The prompts a run cycles through, and where they came from (for the report)."""

    prompts: tuple[Prompt, ...]
    source: str

    @property
    def max_tokens_mean(self) -> float:
        """Mean output tokens asked for per prompt."""
        return float(np.mean([p.max_tokens for p in self.prompts]))

    @classmethod
    def synthetic(
        cls, seed: int, words: int = DEFAULT_PROMPT_WORDS, max_tokens: int = DEFAULT_OUTPUT_TOKENS
    ) -> PromptSet:
        """A seeded set of prompts of ``words`` words drawn from a fixed vocabulary."""
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(_WORDS), size=(SYNTHETIC_PROMPTS, words))
        prompts = tuple(Prompt(" ".join(_WORDS[i] for i in row), max_tokens) for row in picks)
        return cls(prompts, f"synthetic (seed {seed}, {words} words, max_tokens {max_tokens})")

    @classmethod
    def from_jsonl(cls, path: Path, default_max_tokens: int = DEFAULT_OUTPUT_TOKENS) -> PromptSet:
        """One JSON object per line: ``{"prompt": TEXT, "max_tokens": N}`` (``max_tokens``
        optional; ``output_tokens`` is accepted for it). A bad line is a one-line usage error."""
        fix = 'write one {"prompt": "...", "max_tokens": N} object per line'
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidOptionError(f"cannot read --prompts {path}: {exc}", fix) from None
        prompts: list[Prompt] = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                raise InvalidOptionError(f"--prompts {path}:{n} is not JSON", fix) from None
            text = doc.get("prompt") if isinstance(doc, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise InvalidOptionError(f"--prompts {path}:{n} has no non-empty 'prompt'", fix)
            limit = doc.get("max_tokens", doc.get("output_tokens", default_max_tokens))
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise InvalidOptionError(
                    f"--prompts {path}:{n}: max_tokens must be a positive integer", fix
                )
            prompts.append(Prompt(text, limit))
        if not prompts:
            raise InvalidOptionError(f"--prompts {path} holds no prompts", fix)
        return cls(tuple(prompts), f"file {path.name} ({len(prompts)} prompts)")


@dataclass(frozen=True)
class GenerationSettings:
    """What a generative cell asks for beyond its scenario."""

    slo: Slo | None = None
    prompts_file: Path | None = None
    prompt_words: int = DEFAULT_PROMPT_WORDS
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    burstiness: float = 1.0
    """Shape of gamma arrivals (``--arrival gamma``); 1 is Poisson."""
    find_peak: bool = False
    """Server scenario: search the peak rate whose good fraction meets ``peak_target``."""
    peak_target: float = PEAK_TARGET
    ignore_eos: bool = True

    def prompt_set(self, seed: int) -> PromptSet:
        """The prompts of a run: the file's, else the seeded synthetic set."""
        if self.prompts_file is not None:
            return PromptSet.from_jsonl(self.prompts_file, self.output_tokens)
        return PromptSet.synthetic(seed, self.prompt_words, self.output_tokens)


# ---- drivers: one generative request to one StreamCompletion -----------------------------


class Driver(Protocol):
    """Sends one generative request on the caller's event loop (an async context manager)."""

    async def __aenter__(self) -> Driver: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send(self, prompt: Prompt, sent_ns: int) -> StreamCompletion:
        """The request's record, ``scheduled_ns`` set to ``sent_ns``; never raises for a
        failed request."""
        ...


class GenAiDriver:
    """An in-process generative session, one generation at a time on a worker thread."""

    def __init__(self, session: GenerativeSession, ignore_eos: bool = True) -> None:
        self.session = session
        self.ignore_eos = ignore_eos
        self._pool: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> GenAiDriver:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def send(self, prompt: Prompt, sent_ns: int) -> StreamCompletion:
        """Generate in the worker thread (tokenizing the prompt inside the timed request)."""
        assert self._pool is not None, "use the driver as 'async with'"
        session, ignore = self.session, self.ignore_eos

        def run() -> StreamCompletion:
            try:
                gen = session.generate(
                    prompt.text, prompt.max_tokens, ignore_eos=ignore, scheduled_ns=sent_ns
                )
            except Exception as exc:  # the runtime's own error: counted by kind, the run goes on
                now = time.perf_counter_ns()
                kind = type(exc).__name__
                return StreamCompletion(sent_ns, sent_ns, now, error=f"runtime-{kind}")
            return gen.completion

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, run)


class OpenAiDriver:
    """An OpenAI-compatible endpoint through the streaming client."""

    def __init__(self, session: OpenAiSession) -> None:
        self.session = session
        self._client: OpenAiStreamClient | None = None

    async def __aenter__(self) -> OpenAiDriver:
        self._client = await self.session.client().__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.__aexit__(exc_type, exc, tb)
            self._client = None

    async def send(self, prompt: Prompt, sent_ns: int) -> StreamCompletion:
        """One streaming request."""
        assert self._client is not None, "use the driver as 'async with'"
        return await self._client.complete(prompt.text, prompt.max_tokens, scheduled_ns=sent_ns)


def is_generative(session: Session) -> bool:
    """Whether the harness drives ``session`` with generative scenarios."""
    return isinstance(session, (OpenAiSession, GenerativeSession))


def driver_for(session: Session, settings: GenerationSettings) -> Driver:
    """The driver of a generative session."""
    if isinstance(session, OpenAiSession):
        return OpenAiDriver(session)
    if isinstance(session, GenerativeSession):
        return GenAiDriver(session, settings.ignore_eos)
    raise TypeError(f"{type(session).__name__} is not a generative session")


# ---- one phase: the load generator over a driver -------------------------------------------


class _Phase:
    """The load generator's request function over a driver, keeping every record by the
    ``start_ns`` the load generator sees (its key back to the schedule)."""

    def __init__(self, driver: Driver, prompts: PromptSet, offset: int = 0) -> None:
        self.driver = driver
        self.prompts = prompts.prompts
        self.next = offset
        self.records: dict[int, StreamCompletion] = {}

    async def send(self) -> Completion:
        prompt = self.prompts[self.next % len(self.prompts)]
        self.next += 1
        sent = time.perf_counter_ns()
        while sent in self.records:  # two sends within one clock tick: keep keys distinct
            sent += 1
        c = await self.driver.send(prompt, sent)
        self.records[sent] = c
        error = None if c.ok else (c.error or "no-output")
        return Completion(sent, c.end_ns, error, 0, 0, -1, 0, c.status)

    def completions(self, load: LoadRun) -> list[StreamCompletion]:
        """Every request of ``load`` in schedule order, with its scheduled time; a request the
        load generator failed itself (dropped, or unanswered at the drain) has no chunks."""
        out: list[StreamCompletion] = []
        for i, sched in enumerate(load.scheduled_ns.tolist()):
            rec = self.records.get(int(load.start_ns[i]))
            if rec is not None and int(load.end_ns[i]) == rec.end_ns:
                out.append(dataclasses.replace(rec, scheduled_ns=int(sched)))
            else:
                start, end = int(load.start_ns[i]), int(load.end_ns[i])
                out.append(StreamCompletion(int(sched), start, end, error=load.errors[i] or "lost"))
        return out


@dataclass
class GenerativeRun:
    """What one generative run contributes to a report."""

    generation: GenerationResults
    completions: list[StreamCompletion]
    samples: Samples | None
    results: PerformanceResults | None
    warmup: WarmupSummary
    flags: tuple[RunFlag, ...]
    interrupted: bool
    window_output_tokens: int
    """Output tokens of every request completed inside the collectors' window (all probes of
    a peak search): what energy per token divides by."""
    window_requests: int
    first_generation_ms: float | None = None
    extra_samples: dict[str, np.ndarray] = field(default_factory=dict)


def _warm_rule(scenario: ScenarioSettings) -> StopRule:
    return StopRule(
        min_queries=max(scenario.warmup.min_queries, 1),
        min_duration_s=scenario.warmup.min_duration_s,
        max_duration_s=scenario.stop.max_duration_s,
    )


def _metrics(
    completions: Sequence[StreamCompletion], load: LoadRun, slo: Slo | None
) -> TokenMetrics:
    duration = max(load.window_end_ns - load.window_start_ns, 1)
    return summarize(request_timings(completions), duration_ns=duration, slo=slo, with_ci=True)


def _point(metrics: TokenMetrics, load: LoadRun, target: float | None) -> GoodputPoint:
    """One probe's figures; with ``target``, whether it meets it (see :func:`_lag_fails`)."""
    good = metrics.goodput
    meets = None
    if target is not None:
        errors = (metrics.requests - metrics.succeeded) / metrics.requests
        meets = bool(
            good is not None
            and good.good_fraction >= target
            and errors <= MAX_ERROR_RATE
            and not _lag_fails(load, good.slo)
        )
    return GoodputPoint(
        offered_rate_rps=load.offered_rate_qps,
        concurrency=None,
        requests=metrics.requests,
        requests_per_s=metrics.requests_per_s,
        output_tokens_per_s=metrics.output_tokens_per_s,
        ttft_p50_ms=metrics.ttft.p50 if metrics.ttft else None,
        tpot_p50_ms=metrics.tpot.p50 if metrics.tpot else None,
        goodput_rps=good.requests_per_s if good else None,
        good_fraction=good.good_fraction if good else None,
        meets=meets,
    )


def _lag_fails(load: LoadRun, slo: Slo) -> bool:
    """Whether the generator's late sends fail a peak-search probe.

    TTFT and E2EL are measured from the scheduled send, so a request sent late carries its
    lag into both and is judged against a TTFT or E2EL bound with it: the lag can only lower
    the good fraction, never raise it, and a generator that falls behind fails the bound on
    its own. Only a TPOT-only SLO, which no send lag reaches, needs the lag rule to keep the
    search from reporting a rate the server never saw. (On a loaded machine a few-millisecond
    scheduling delay fails the 1 ms rule at any rate, even 0.4 requests/s.)"""
    return load.lag_invalid and slo.ttft_ms is None and slo.e2el_ms is None


def _samples(load: LoadRun, completions: Sequence[StreamCompletion]) -> Samples | None:
    """E2EL of the successful requests (the report's latency section), ends in the window."""
    ok = np.asarray([c.ok for c in completions], dtype=bool)
    if not ok.any():
        return None
    lat = (load.end_ns - load.scheduled_ns)[ok]
    end = load.end_ns[ok]
    return Samples(
        latency_ns=lat.astype(np.int64),
        end_ns=(end - load.window_start_ns).astype(np.int64),
        window_start_ns=load.window_start_ns,
        window_end_ns=int(end.max()),
    )


def sample_arrays(completions: Sequence[StreamCompletion], origin_ns: int) -> dict[str, np.ndarray]:
    """Every request and chunk of the measured part as arrays for the samples sidecar (times
    in ns since ``origin_ns``, the measured window's start; -1 for an unknown count)."""
    t = request_timings(completions)
    return {
        "gen_scheduled_ns": t.scheduled_ns - origin_ns,
        "gen_start_ns": t.start_ns - origin_ns,
        "gen_end_ns": t.end_ns - origin_ns,
        "gen_output_tokens": t.output_tokens,
        "gen_output_tokens_server": t.output_tokens_server,
        "gen_output_tokens_client": t.output_tokens_client,
        "gen_prompt_tokens": t.prompt_tokens,
        "gen_error": np.asarray([e or "" for e in t.errors], dtype=str),
        "gen_chunk_ns": t.chunk_ns - origin_ns,
        "gen_chunk_tokens": t.chunk_tokens,
        "gen_chunk_offsets": t.chunk_offsets,
    }


def _tokens(completions: Sequence[StreamCompletion]) -> int:
    return sum(c.output_tokens or 0 for c in completions if c.ok and c.output_tokens != UNKNOWN)


async def _first(driver: Driver, prompts: PromptSet) -> float | None:
    """One request before the warm-up: the cold first generation's end-to-end ms."""
    sent = time.perf_counter_ns()
    c = await driver.send(prompts.prompts[0], sent)
    return (c.end_ns - sent) / 1e6 if c.ok else None


def run_generative_scenario(
    driver: Driver,
    scenario: ScenarioSettings,
    settings: GenerationSettings,
    *,
    progress: ProgressFn | None = None,
    on_measure_start: Callable[[int], None] | None = None,
) -> GenerativeRun:
    """Cold first request, warm-up, then the scenario's measured part (see the module)."""
    prompts = settings.prompt_set(scenario.seed)
    kind = scenario.kind
    if kind is ScenarioKind.OFFLINE:
        raise InvalidOptionError(
            "the offline scenario has no meaning for a generative model",
            "use -s single-stream, -s concurrency or -s server",
        )
    if kind is ScenarioKind.SERVER and not scenario.target_rate_qps:
        raise InvalidOptionError(
            "the server scenario needs a target rate", "pass --rate REQUESTS_PER_SECOND"
        )
    if settings.find_peak and (kind is not ScenarioKind.SERVER or settings.slo is None):
        raise InvalidOptionError(
            "--find-peak searches the server scenario's rate against --slo",
            "run -s server --rate START --slo ttft=MS,tpot=MS --find-peak",
        )
    return _run_loop(_scenario(driver, scenario, settings, prompts, progress, on_measure_start))


def _run_loop(coro: Coroutine[object, object, GenerativeRun]) -> GenerativeRun:
    """Run ``coro`` on a fresh event loop; on Ctrl-C its task is cancelled and what it returns
    then (the load generator returns its partial run) is returned."""
    loop = asyncio.new_event_loop()
    task = loop.create_task(coro)
    try:
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            try:
                return loop.run_until_complete(task)
            except asyncio.CancelledError:
                raise KeyboardInterrupt from None
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _scenario(
    driver: Driver,
    scenario: ScenarioSettings,
    settings: GenerationSettings,
    prompts: PromptSet,
    progress: ProgressFn | None,
    on_measure_start: Callable[[int], None] | None,
) -> GenerativeRun:
    kind = scenario.kind
    level = (scenario.concurrency or 1) if kind is ScenarioKind.CONCURRENCY else 1
    async with driver:
        first_ms = await _first(driver, prompts)
        warm_phase = _Phase(driver, prompts, 1)
        warm = await closed_loop(
            warm_phase.send,
            level,
            _warm_rule(scenario),
            phase="warmup",
            progress=progress,
            tracking=warmup_tracking(scenario),
        )
        warm_s = (warm.window_end_ns - warm.window_start_ns) / 1e9
        warmup = WarmupSummary(
            queries=len(warm.errors),
            duration_s=warm_s,
            until_steady=steady_warmup(warm.stop, warm_s, scenario.warmup),
        )
        if warm.interrupted:
            raise KeyboardInterrupt
        if on_measure_start is not None:
            on_measure_start(time.perf_counter_ns())
        arrival = scenario.arrival or ArrivalProcess.POISSON
        points: list[GoodputPoint] = []
        peak: float | None = None
        window_tokens = window_requests = 0
        if kind is ScenarioKind.SERVER and settings.find_peak:
            load, phase, peak, points, window_tokens, window_requests = await _find_peak(
                driver, scenario, settings, prompts, arrival, progress
            )
        else:
            phase = _Phase(driver, prompts, warm_phase.next)
            if kind is ScenarioKind.SERVER:
                load = await _open(phase, scenario, settings, arrival, scenario.seed, progress)
            else:
                load = await closed_loop(
                    phase.send,
                    level,
                    scenario.stop,
                    progress=progress,
                    tracking=measure_tracking(scenario),
                )
    completions = phase.completions(load)
    if not points:
        window_tokens, window_requests = _tokens(completions), sum(c.ok for c in completions)
    metrics = _metrics(completions, load, settings.slo)
    samples = _samples(load, completions)
    results = (
        performance_results(samples, scenario, STABLE_WINDOWS, load.stop)
        if samples is not None
        else None
    )
    flags: list[RunFlag] = []
    if load.lag_invalid:
        flags.append(RunFlag.SEND_LAG_INVALID)
    if metrics.requests and (metrics.requests - metrics.succeeded) / metrics.requests > (
        MAX_ERROR_RATE
    ):
        flags.append(RunFlag.ERROR_RATE)
    if kind is ScenarioKind.CONCURRENCY:
        points = [_point(metrics, load, None).model_copy(update={"concurrency": level})]
    generation = GenerationResults(
        metrics=metrics,
        prompts=prompts.source,
        max_tokens_mean=prompts.max_tokens_mean,
        ignore_eos=settings.ignore_eos,
        burstiness=settings.burstiness if arrival is ArrivalProcess.GAMMA else None,
        peak_rate_rps=peak,
        peak_target_fraction=settings.peak_target if settings.find_peak else None,
        sweep=tuple(points),
    )
    return GenerativeRun(
        generation=generation,
        completions=completions,
        samples=samples,
        results=results,
        warmup=warmup,
        flags=tuple(flags),
        interrupted=load.interrupted,
        window_output_tokens=window_tokens,
        window_requests=window_requests,
        first_generation_ms=first_ms,
        extra_samples=sample_arrays(completions, load.window_start_ns),
    )


async def _open(
    phase: _Phase,
    scenario: ScenarioSettings,
    settings: GenerationSettings,
    arrival: ArrivalProcess,
    seed: int,
    progress: ProgressFn | None,
    rate: float | None = None,
    label: str = "measure",
) -> LoadRun:
    return await open_loop(
        phase.send,
        float(rate or scenario.target_rate_qps or 0),
        scenario.stop,
        arrival=arrival,
        burstiness=settings.burstiness,
        seed=seed,
        drain_timeout_s=REQUEST_TIMEOUT_S,
        phase=label,
        progress=progress,
        tracking=measure_tracking(scenario, poisson=arrival is ArrivalProcess.POISSON),
    )


async def _find_peak(
    driver: Driver,
    scenario: ScenarioSettings,
    settings: GenerationSettings,
    prompts: PromptSet,
    arrival: ArrivalProcess,
    progress: ProgressFn | None,
) -> tuple[LoadRun, _Phase, float | None, list[GoodputPoint], int, int]:
    """The highest open-loop rate whose good fraction meets the target with at most 1% errors
    (and a valid send lag where the SLO has no TTFT or E2EL bound); returns the probe at the
    peak (or the last), its phase, the peak (None when no probe passed), every probe, and the
    tokens and requests of all probes."""
    start = float(scenario.target_rate_qps or 0)
    rate = start
    good_rate: float | None = None
    bad: float | None = None
    best: tuple[LoadRun, _Phase] | None = None
    last: tuple[LoadRun, _Phase] | None = None
    points: list[GoodputPoint] = []
    tokens = requests = 0
    for i in range(MAX_PROBES):
        phase = _Phase(driver, prompts, i * 7919)
        load = await _open(
            phase,
            scenario,
            settings,
            arrival,
            scenario.seed + i,
            progress,
            rate,
            f"probe {rate:g}/s",
        )
        last = (load, phase)
        completions = phase.completions(load)
        tokens += _tokens(completions)
        requests += sum(c.ok for c in completions)
        if load.interrupted:
            break
        point = _point(_metrics(completions, load, settings.slo), load, settings.peak_target)
        points.append(point)
        if point.meets:
            good_rate, best = rate, (load, phase)
        else:
            bad = rate
        if bad is None:
            rate *= 2
        elif good_rate is None:
            rate /= 2
            if rate < start * MIN_RATE_FRACTION:
                break
        else:
            if (bad - good_rate) / good_rate <= PEAK_PRECISION:
                break
            rate = (good_rate + bad) / 2
    assert last is not None
    chosen = best or last
    return chosen[0], chosen[1], good_rate, points, tokens, requests
