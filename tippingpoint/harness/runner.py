"""The runner: cold start, warm-up, the measured part, and the report of one run.

A local session is measured by the timed loop here: it holds the bound inference call between
two ``perf_counter_ns`` reads and nothing else; bookkeeping happens after the second read. A
:class:`~tippingpoint.backends.network.NetworkSession` is measured by the harness's network
scenarios (:mod:`tippingpoint.harness.network`). Either ends in a
:class:`~tippingpoint.harness.measured.MeasuredPart`, which one end-of-measurement path turns
into the report's collectors, energy, flags, samples and status. Progress is handed to an
optional callback as a typed :class:`Progress`; rendering happens elsewhere.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from tippingpoint.backends.base import Session
from tippingpoint.backends.gpuinfo import with_torch_settings
from tippingpoint.backends.network import NetworkSession, RemoteModelSession
from tippingpoint.backends.phases import PhaseTimedSession, summarize_phases
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import TippingPointError
from tippingpoint.core.schema import (
    AccuracyResult,
    ColdStart,
    CollectorResult,
    CollectorSkip,
    CollectorsSection,
    DevicePhases,
    EnergySummary,
    ErrorRecord,
    GenerationResults,
    HostFingerprint,
    HttpResults,
    HybridResults,
    ModelIdentity,
    PerformanceResults,
    Report,
    RunFlag,
    RunStatus,
    ScenarioSettings,
    StopReason,
    StopRule,
    ToolInfo,
    WarmupRule,
    WarmupSummary,
)
from tippingpoint.core.token_metrics import joules_per_token
from tippingpoint.core.types import BackendDescription, OptionValue
from tippingpoint.harness.collectors.base import Collector
from tippingpoint.harness.collectors.throttle import is_throttled
from tippingpoint.harness.convergence import (
    StopRecord,
    Tracking,
    measure_tracking,
    steady_warmup,
    warmup_tracking,
)
from tippingpoint.harness.energy import (
    EnergyAccounting,
    is_energy_collector,
    min_measured_s,
    window_sample_counts,
)
from tippingpoint.harness.fingerprint import host_fingerprint, tool_info
from tippingpoint.harness.generative import (
    GenerationSettings,
    driver_for,
    is_generative,
    run_generative_scenario,
)
from tippingpoint.harness.inputs import query_feeds
from tippingpoint.harness.interrupts import interrupted_since
from tippingpoint.harness.loadgen import LoadProgress
from tippingpoint.harness.measured import MeasuredPart, Samples, performance_results
from tippingpoint.harness.network import run_network_scenario
from tippingpoint.harness.remote import with_remote
from tippingpoint.models.registry import ModelRef, identity, unloaded_identity, verify

TICK_NS = 250_000_000
"""How often the loops hand progress to the callback."""


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run in progress, for a progress bar."""

    phase: str
    queries: int
    elapsed_s: float
    target_s: float
    live_p50_ms: float | None


ProgressCallback = Callable[[Progress], None]
AccuracyHook = Callable[[Session], AccuracyResult]
LOG = logging.getLogger("tippingpoint.harness")
"""A failed run's traceback goes here at debug level (shown by ``tippingpoint --debug``)."""


@dataclass(frozen=True)
class RunSpec:
    """One cell of the run matrix: a model on a backend under a scenario."""

    model: ModelRef
    backend: str
    scenario: ScenarioSettings
    backend_options: Mapping[str, OptionValue] = field(default_factory=dict)
    shape_overrides: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    feeds: Mapping[str, np.ndarray] | None = None
    """User-supplied inputs by name (from --inputs), rows are samples (a query takes
    ``batch_size`` rows); generated from the input specs when None."""
    accuracy: AccuracyHook | None = None
    """This cell's AccuracyOnly pass (--accuracy); overrides the runner-wide hook."""
    first_load_in_process_s: float | None = None
    """Load time of this model on this backend when the process first loaded it (the
    preflight check), reported beside this cell's own (repeat) load time."""
    generation: GenerationSettings | None = None
    """A generative cell's prompts, SLO and search (None: the defaults, for a generative
    session; ignored by other sessions)."""


@dataclass
class RunOutcome:
    """A finished (or interrupted, or failed) run: its report and raw samples."""

    report: Report
    samples: Samples | None


@dataclass
class _LoopResult:
    latency: list[int]
    ends: list[int]
    start_ns: int
    end_ns: int
    interrupted: bool
    stop: StopRecord | None = None


def _loop(
    call: Callable[[], object],
    rule: WarmupRule | StopRule,
    phase: str,
    progress: ProgressCallback | None,
    max_s: float,
    tracking: Tracking | None = None,
) -> _LoopResult:
    """Run ``call`` until both the query and duration minimums are met, or ``max_s`` passes;
    with ``tracking``, the tracker decides from the minimums on (at window boundaries only,
    so each query still costs one comparison after the second clock read)."""
    clock = time.perf_counter_ns
    latency: list[int] = []
    ends: list[int] = []
    lat_append = latency.append
    end_append = ends.append
    min_q = rule.min_queries
    start = clock()
    min_end = start + int(rule.min_duration_s * 1e9)
    cap = start + int(max_s * 1e9)
    next_tick = start + TICK_NS
    n = 0
    interrupted = False
    tracker = tracking(start) if tracking is not None else None
    reason: StopReason | None = None
    try:
        while True:
            t0 = clock()
            call()
            t1 = clock()
            lat_append(t1 - t0)
            end_append(t1)
            n += 1
            if n >= min_q and t1 >= min_end:
                if tracker is None:
                    break
                min_end = tracker.check(t1, ends)
                if not min_end:
                    break
                min_q = 0
            if t1 >= next_tick:
                if t1 >= cap:
                    reason = StopReason.CAP
                    break
                next_tick = t1 + TICK_NS
                if progress is not None:
                    tail = latency[-1000:]
                    progress(
                        Progress(
                            phase,
                            n,
                            (t1 - start) / 1e9,
                            rule.min_duration_s,
                            float(np.median(tail)) / 1e6,
                        )
                    )
    except KeyboardInterrupt:
        interrupted = True
        reason = StopReason.INTERRUPTED
    end = clock()
    stop = tracker.record(reason) if tracker is not None else None
    return _LoopResult(latency, ends, start, end, interrupted, stop)


def _loop_samples(meas: _LoopResult) -> Samples | None:
    """The timed loop's lists as raw samples (None when no query ran)."""
    if not meas.latency:
        return None
    return Samples(
        latency_ns=np.asarray(meas.latency, dtype=np.int64),
        end_ns=np.asarray(meas.ends, dtype=np.int64) - meas.start_ns,
        window_start_ns=meas.start_ns,
        window_end_ns=meas.end_ns,
    )


def _with_energy(
    generation: GenerationResults, part: MeasuredPart, energy: EnergySummary | None
) -> GenerationResults:
    """``generation`` with the energy of the collectors' window per output token and per
    request (gross joules over the whole window; its method, measured or estimated, kept)."""
    total = energy.total_joules if energy is not None and energy.valid else None
    if total is None or energy is None:
        return generation
    return generation.model_copy(
        update={
            "joules_per_output_token": joules_per_token(total, part.window_output_tokens),
            "joules_per_request": total / part.queries if part.queries else None,
            "energy_method": energy.method,
        }
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Runner:
    """Runs :class:`RunSpec` cells and returns their outcomes; it writes nothing itself."""

    def __init__(
        self,
        *,
        host: HostFingerprint | None = None,
        tool: ToolInfo | None = None,
        progress: ProgressCallback | None = None,
        collectors: Sequence[Collector] = (),
        collectors_skipped: Sequence[CollectorSkip] = (),
        collectors_requested: Sequence[str] = (),
        accuracy: AccuracyHook | None = None,
        energy: EnergyAccounting | None = None,
    ) -> None:
        self.host = host or host_fingerprint()
        self.tool = tool or tool_info()
        self.progress = progress
        self.collectors = tuple(collectors)
        self.collectors_skipped = tuple(collectors_skipped)
        self.collectors_requested = tuple(collectors_requested)
        self.accuracy = accuracy
        self.energy = energy

    def run(self, spec: RunSpec) -> RunOutcome:
        """Execute one run; failures become a FAILED report, Ctrl-C an INTERRUPTED one."""
        ctx = _RunContext(spec=spec, run_id=uuid.uuid4().hex, started_at=_now())
        ctx.scenario, ctx.lengthened = self._energy_scenario(spec.scenario)
        began = time.monotonic()
        try:
            return self._run(ctx)
        except TippingPointError as exc:
            LOG.debug("the run failed in its %s phase", ctx.phase, exc_info=True)
            ctx.errors.append(
                ErrorRecord(phase=ctx.phase, kind=type(exc).__name__, message=exc.one_line())
            )
            ctx.status = _failed_or_interrupted(began)
        except KeyboardInterrupt:
            ctx.status = RunStatus.INTERRUPTED
        except Exception as exc:  # a runtime's own exception during inference
            LOG.debug("the run failed in its %s phase", ctx.phase, exc_info=True)
            msg = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            ctx.errors.append(ErrorRecord(phase=ctx.phase, kind=type(exc).__name__, message=msg))
            ctx.status = _failed_or_interrupted(began)
        finally:
            if ctx.session is not None:
                ctx.session.close()
        return RunOutcome(self._report(ctx), ctx.samples)

    def _energy_scenario(self, scenario: ScenarioSettings) -> tuple[ScenarioSettings, str | None]:
        """The scenario to run: with an energy collector, its minimum measured duration raised
        so that each of the ``windows`` sub-windows is long enough for the slowest source (and
        a note saying so); unchanged otherwise."""
        need = min_measured_s(self.collectors, scenario.windows)
        if need <= scenario.stop.min_duration_s:
            return scenario, None
        stop = scenario.stop.model_copy(
            update={
                "min_duration_s": need,
                "max_duration_s": max(scenario.stop.max_duration_s, need),
            }
        )
        slowest = max(
            (c for c in self.collectors if is_energy_collector(c)),
            key=lambda c: min_measured_s([c], scenario.windows),
        )
        note = (
            f"measured part lengthened from {scenario.stop.min_duration_s:g} s to {need:.3g} s "
            f"so each of {scenario.windows} windows is long enough for {slowest.name}"
        )
        return scenario.model_copy(update={"stop": stop}), note

    def _refresh_host(self, ctx: _RunContext) -> None:
        """Re-read torch's cuDNN/TF32 settings into the host's GPUs once a session loaded."""
        host = ctx.host or self.host
        gpus = with_torch_settings(host.gpus)
        if gpus != host.gpus:
            ctx.host = host.model_copy(update={"gpus": gpus})

    def _run(self, ctx: _RunContext) -> RunOutcome:
        spec = ctx.spec
        scenario = ctx.scenario or spec.scenario
        if self.energy is not None:
            ctx.phase = "idle"
            self.energy.before_run()
        ctx.phase = "load"
        digest = verify(spec.model)
        ctx.model = identity(spec.model, digest)
        backend = get_backend(spec.backend)()
        t0 = time.perf_counter_ns()
        session = backend.load(spec.model.path, spec.backend_options)
        load_s = (time.perf_counter_ns() - t0) / 1e9
        ctx.session = session
        self._refresh_host(ctx)
        ctx.backend = session.describe()
        ctx.model = identity(spec.model, digest, tuple(session.inputs), tuple(session.outputs))
        if isinstance(session, RemoteModelSession):  # named and described by the endpoint
            ctx.model = with_remote(ctx.model, session.remote_model())

        if is_generative(session):
            part = self._measure_generative(ctx, session, load_s)
            return self._finish(ctx, session, part)

        ctx.phase = "inputs"
        feeds = query_feeds(
            session.inputs,
            scenario.batch_size,
            spec.shape_overrides,
            scenario.seed,
            spec.feeds,
            resizable=session.resizes_fixed_batch,
        )
        call = session.bind(feeds)

        ctx.phase = "first-inference"
        t0 = time.perf_counter_ns()
        call()
        first_ms = (time.perf_counter_ns() - t0) / 1e6
        ctx.cold_start = ColdStart(
            load_s=load_s,
            first_inference_ms=first_ms,
            first_load_in_process_s=spec.first_load_in_process_s,
        )
        self._refresh_host(ctx)  # lazy runtimes set up CUDA/cuDNN on the first call

        if isinstance(session, NetworkSession):
            part = self._measure_network(ctx, session, feeds)
        else:
            part = self._measure_local(ctx, session, call)
        return self._finish(ctx, session, part)

    def _measure_local(
        self, ctx: _RunContext, session: Session, call: Callable[[], object]
    ) -> MeasuredPart:
        """Warm-up and measurement by the timed loop, the collectors' window around the
        measured loop only."""
        scenario = ctx.scenario or ctx.spec.scenario
        ctx.phase = "warmup"
        warm = _loop(
            call,
            scenario.warmup,
            "warmup",
            self.progress,
            scenario.stop.max_duration_s,
            warmup_tracking(scenario),
        )
        warm_s = (warm.end_ns - warm.start_ns) / 1e9
        ctx.warmup = WarmupSummary(
            queries=len(warm.latency),
            duration_s=warm_s,
            until_steady=steady_warmup(warm.stop, warm_s, scenario.warmup),
        )
        if warm.interrupted:
            raise KeyboardInterrupt

        ctx.phase = "measure"
        if isinstance(session, PhaseTimedSession):
            session.reset_phases()
        t_begin = time.perf_counter_ns()
        for c in self.collectors:
            c.begin_window(t_begin)
        meas = _loop(
            call,
            scenario.stop,
            "measure",
            self.progress,
            scenario.stop.max_duration_s,
            measure_tracking(scenario),
        )
        return MeasuredPart(
            window_start_ns=t_begin,
            window_end_ns=meas.end_ns,
            queries=len(meas.latency),
            warmup=ctx.warmup,
            interrupted=meas.interrupted,
            samples=lambda: _loop_samples(meas),
            stop=meas.stop,
        )

    def _measure_network(
        self, ctx: _RunContext, session: NetworkSession, feeds: Sequence[np.ndarray]
    ) -> MeasuredPart:
        """Warm-up and measurement by the harness's network scenarios (open or closed loop);
        the collectors' window opens when the warm-up is over."""
        scenario = ctx.scenario or ctx.spec.scenario
        ctx.phase = "warmup"
        opened: list[int] = []
        begin = self._window_opener(ctx, opened)
        relay = self._load_relay()
        net = run_network_scenario(session, feeds, scenario, progress=relay, on_measure_start=begin)
        end_ns = time.perf_counter_ns()
        ctx.backend = session.describe()  # the description names the client that measured
        return MeasuredPart(
            window_start_ns=opened[0],
            window_end_ns=end_ns,
            queries=net.http.successes,
            warmup=net.warmup,
            interrupted=net.interrupted,
            samples=lambda: net.samples,
            results=net.results,  # computed under the network stability rule
            http=net.http,
            flags=net.flags,
            hybrid=net.hybrid,
        )

    def _window_opener(self, ctx: _RunContext, opened: list[int]) -> Callable[[int], None]:
        """The callback that ends the warm-up: it notes the time in ``opened`` and opens the
        collectors' window."""

        def begin(t_ns: int) -> None:
            opened.append(t_ns)
            ctx.phase = "measure"
            for c in self.collectors:
                c.begin_window(t_ns)

        return begin

    def _load_relay(self) -> Callable[[LoadProgress], None] | None:
        """The load generator's progress relayed to the runner's progress callback, if any."""
        progress = self.progress
        if progress is None:
            return None

        def relay(p: LoadProgress) -> None:
            progress(Progress(p.phase, p.completed, p.elapsed_s, p.target_s, None))

        return relay

    def _measure_generative(
        self, ctx: _RunContext, session: Session, load_s: float
    ) -> MeasuredPart:
        """A generative session under the harness's generative scenarios: a cold first
        request, the warm-up, then the measured part inside the collectors' window."""
        scenario = ctx.scenario or ctx.spec.scenario
        settings = ctx.spec.generation or GenerationSettings()
        ctx.phase = "warmup"
        opened: list[int] = []
        begin = self._window_opener(ctx, opened)
        relay = self._load_relay()
        run = run_generative_scenario(
            driver_for(session, settings),
            scenario,
            settings,
            progress=relay,
            on_measure_start=begin,
        )
        end_ns = time.perf_counter_ns()
        ctx.cold_start = ColdStart(
            load_s=load_s,
            first_inference_ms=run.first_generation_ms,
            first_load_in_process_s=ctx.spec.first_load_in_process_s,
        )
        samples = run.samples
        if samples is not None:
            samples.extra = run.extra_samples
        return MeasuredPart(
            window_start_ns=opened[0],
            window_end_ns=end_ns,
            queries=run.window_requests,
            warmup=run.warmup,
            interrupted=run.interrupted,
            samples=lambda: samples,
            results=run.results,
            flags=run.flags,
            generation=run.generation,
            window_output_tokens=run.window_output_tokens,
        )

    def _finish(self, ctx: _RunContext, session: Session, part: MeasuredPart) -> RunOutcome:
        """The one end of measurement: close the collectors' window, account energy with
        per-window sample counts, flag throttling, keep the samples and what the scenario
        adds, then the accuracy pass unless interrupted."""
        scenario = ctx.scenario or ctx.spec.scenario
        ctx.phase = "collector"
        n_samples = part.queries * scenario.batch_size
        collector_results = [
            c.end_window(part.window_end_ns, queries=part.queries, samples=n_samples)
            for c in self.collectors
        ]
        ctx.collector_results = collector_results
        if isinstance(session, PhaseTimedSession):
            phase_samples = session.phase_samples()
            if phase_samples is not None:
                ctx.phases = summarize_phases(phase_samples, session.timed_region)
        ctx.samples = part.samples()
        if self.energy is not None:
            ends: list[int] = []
            if ctx.samples is not None:
                ends = (ctx.samples.end_ns + ctx.samples.window_start_ns).tolist()
            counts = window_sample_counts(
                ends,
                part.window_start_ns,
                part.window_end_ns,
                scenario.windows,
                scenario.batch_size,
            )
            ctx.energy = self.energy(collector_results, n_samples, counts)
        if is_throttled(collector_results):
            ctx.flags.append(RunFlag.THROTTLED)
        ctx.warmup = part.warmup
        ctx.results = part.results
        ctx.stop = part.stop
        ctx.http = part.http
        ctx.hybrid = part.hybrid
        if part.generation is not None:
            ctx.generation = _with_energy(part.generation, part, ctx.energy)
        ctx.flags.extend(part.flags)
        if part.interrupted:
            ctx.status = RunStatus.INTERRUPTED
            ctx.flags.append(RunFlag.INTERRUPTED)
            return RunOutcome(self._report(ctx), ctx.samples)

        hook = ctx.spec.accuracy or self.accuracy
        if hook is not None:
            ctx.phase = "accuracy"
            ctx.accuracy = hook(session)
        ctx.status = RunStatus.COMPLETE
        return RunOutcome(self._report(ctx), ctx.samples)

    def _report(self, ctx: _RunContext) -> Report:
        spec = ctx.spec
        scenario = ctx.scenario or spec.scenario
        host = ctx.host or self.host
        flags = list(ctx.flags)
        results = None
        if ctx.samples is not None and len(ctx.samples.latency_ns):
            results = ctx.results or performance_results(ctx.samples, scenario, stop=ctx.stop)
            if ctx.phases is not None:
                results = results.model_copy(update={"phases": ctx.phases})
            if results.stability is not None and not results.stability.stable:
                flags.append(RunFlag.UNSTABLE)
            if results.drift is not None and results.drift.drifting:
                flags.append(RunFlag.DRIFTING)
            if results.throughput.queries < scenario.stop.min_queries:
                flags.append(RunFlag.MIN_QUERIES_NOT_MET)
        if scenario.quick:
            flags.append(RunFlag.QUICK)
        if host.emulated:
            flags.append(RunFlag.EMULATED)
        if ctx.accuracy is not None and ctx.accuracy.below_floor:
            flags.append(RunFlag.BELOW_ACCURACY_FLOOR)
        if ctx.energy is not None:
            if not ctx.energy.valid:
                flags.append(RunFlag.ENERGY_INVALID)
            if ctx.energy.method.value == "estimated":
                flags.append(RunFlag.ENERGY_ESTIMATED)
        if ctx.status is RunStatus.INTERRUPTED and RunFlag.INTERRUPTED not in flags:
            flags.append(RunFlag.INTERRUPTED)
        energy = ctx.energy
        if energy is not None and ctx.lengthened is not None:
            note = "; ".join(x for x in (ctx.lengthened, energy.note) if x)
            energy = energy.model_copy(update={"note": note})
        warnings: list[str] = []
        remote = ctx.model.remote if ctx.model is not None else None
        if remote is not None and remote.warning:
            warnings.append(remote.warning)
        if host.emulated:
            warnings.append("run under emulation: timings are not representative of the target CPU")
        if ctx.energy is not None:
            warnings.extend(ctx.energy.warnings)
        return Report(
            run_id=ctx.run_id,
            status=ctx.status,
            started_at=ctx.started_at,
            finished_at=_now(),
            tool=self.tool,
            host=host,
            model=ctx.model or unloaded_identity(spec.model),
            backend=ctx.backend,
            scenario=scenario,
            cold_start=ctx.cold_start,
            warmup=ctx.warmup,
            results=results,
            http=ctx.http,
            hybrid=ctx.hybrid,
            generation=ctx.generation,
            accuracy=ctx.accuracy,
            collectors=CollectorsSection(
                requested=self.collectors_requested,
                ran=tuple(c.name for c in self.collectors),
                skipped=self.collectors_skipped,
                results=tuple(ctx.collector_results),
                energy=energy,
            ),
            errors=tuple(ctx.errors),
            warnings=tuple(warnings),
            flags=tuple(dict.fromkeys(flags)),
        )


@dataclass
class _RunContext:
    spec: RunSpec
    run_id: str
    started_at: datetime
    phase: str = "start"
    status: RunStatus = RunStatus.FAILED
    scenario: ScenarioSettings | None = None
    """The scenario as run (the spec's, with the measured part lengthened for energy)."""
    lengthened: str | None = None
    results: PerformanceResults | None = None
    """Figures a network scenario computed from its samples (local runs compute them here)."""
    host: HostFingerprint | None = None
    """The host with GPU settings re-read after the session loaded."""
    session: Session | None = None
    model: ModelIdentity | None = None
    backend: BackendDescription | None = None
    cold_start: ColdStart | None = None
    warmup: WarmupSummary | None = None
    samples: Samples | None = None
    stop: StopRecord | None = None
    """What ended the measured part (local runs; a network scenario's figures carry it)."""
    phases: DevicePhases | None = None
    accuracy: AccuracyResult | None = None
    energy: EnergySummary | None = None
    collector_results: list[CollectorResult] = field(default_factory=list)
    http: HttpResults | None = None
    hybrid: HybridResults | None = None
    generation: GenerationResults | None = None
    errors: list[ErrorRecord] = field(default_factory=list)
    flags: list[RunFlag] = field(default_factory=list)


def _failed_or_interrupted(began: float) -> RunStatus:
    """FAILED, or INTERRUPTED when an interrupt fired during the run: native code may have
    turned it into the exception caught (its record is kept with the run's errors)."""
    return RunStatus.INTERRUPTED if interrupted_since(began) else RunStatus.FAILED
