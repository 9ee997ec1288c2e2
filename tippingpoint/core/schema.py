"""The run report: one JSON document per benchmark run, validated by pydantic.

Format history (``schema_version``):

* 1: first version. Latencies in milliseconds, raw per-query samples in an ``.npz`` sidecar
  referenced by relative path and sha256, a content ``digest`` over the canonical JSON.
  Added since, optional and left out of the JSON when absent (so digests of earlier files
  still verify): ``results.phases``; the convergence stop (``scenario.stop.mode``,
  ``window_s``, ``converge_windows``, ``converge_threshold``; ``scenario.warmup.until_steady``;
  ``warmup.until_steady``; ``results.stop``, ``results.drift``, ``results.converged_segment``;
  ``http.sweep[].converged``) and the ``drifting`` flag. A report without ``stop.mode`` was
  stopped by the fixed rule.
  Repetitions (``run --repeat``): ``repetition`` (group, index, count, series, position,
  order, seed, fresh_process), optional and left out of the JSON when absent; a report
  without it is a single run.
  Network links (``run --network``): ``http.link`` (the profile, the shaper and the reason it
  was chosen, handshake RTT, goodput each way, stalls, resets, outages, kernel counters),
  optional and left out of the JSON when absent; a report without it ran on the bare path.
  Generative runs (issue 18): ``generation`` (token-level figures: TTFT, TPOT, E2EL, chunk
  gaps, token counts, tokens/s, goodput against the SLO, J per output token, the peak rate
  search), optional and left out of the JSON when absent; the ``gamma`` arrival process.

Bump ``SCHEMA_VERSION`` on any breaking change and keep a reader for the previous version in
:mod:`tippingpoint.core.io`; adding an optional field is not breaking.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.links import LinkRecord
from tippingpoint.core.types import BackendDescription, Frozen, TensorSpec

SCHEMA_VERSION: Final = 1


class RunStatus(str, Enum):
    """How a run ended."""

    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class RunFlag(str, Enum):
    """Conditions a reader of the report must see next to the figures."""

    QUICK = "quick"
    INTERRUPTED = "interrupted"
    UNSTABLE = "unstable"
    MIN_QUERIES_NOT_MET = "min-queries-not-met"
    EMULATED = "emulated"
    THROTTLED = "throttled"
    BELOW_ACCURACY_FLOOR = "below-accuracy-floor"
    SEND_LAG_INVALID = "send-lag-invalid"
    ENERGY_INVALID = "energy-invalid"
    ENERGY_ESTIMATED = "energy-estimated"
    LOCAL_STANDIN = "local-standin"
    ERROR_RATE = "error-rate"
    """A network run where more than 1% of the requests failed (``http.error_rate``): its
    latencies describe the requests that succeeded only, so the run is not a valid figure."""
    DRIFTING = "drifting"
    """Window throughput trends over the measured part: the 95% interval of the slope
    excludes 0 and the fitted change across the part exceeds the stability threshold."""


WITHIN_RUN_FLAGS = frozenset({RunFlag.UNSTABLE, RunFlag.DRIFTING})
"""Flags judged from one run's own windows. A run that is one of a repetition group does not
carry them: the group is one measurement whose validity is its runs' agreement (between-run
CV, see ``core.runstats.GROUP_CV_THRESHOLD``); the run's ``stability`` and ``drift`` sections
still record its windows."""


def _omit_absent(data: dict[str, Any], *names: str) -> dict[str, Any]:
    """``data`` without the named keys whose value is None: fields added after v1 was first
    written are left out when absent, so digests of reports written before them still verify."""
    for name in names:
        if data.get(name, 0) is None:
            del data[name]
    return data


class ToolInfo(Frozen):
    """The tippingpoint that produced the report."""

    name: Literal["tippingpoint"] = "tippingpoint"
    version: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    argv: tuple[str, ...] = ()


class ContainerInfo(Frozen):
    """Whether the run happened inside a container, and the evidence."""

    detected: bool
    kind: str | None = None
    evidence: str | None = None


class GpuInfo(Frozen):
    """One GPU as seen by the run."""

    name: str
    index: int = 0
    driver: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    memory_total_bytes: int | None = None
    settings: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="e.g. cudnn.benchmark, allow_tf32"
    )


class HostFingerprint(Frozen):
    """The machine and software environment the figures were measured on."""

    hostname_hash: str = Field(description="sha256 prefix of the hostname, not the name itself")
    machine: str = Field(description="platform.machine(), e.g. x86_64 or aarch64")
    cpu_model: str | None = None
    cpu_count_logical: int | None = None
    cpu_count_physical: int | None = None
    cpu_affinity: int | None = Field(default=None, description="CPUs this process may run on")
    cpu_governor: str | None = None
    cpu_freq_mhz: tuple[float, ...] = Field(default=(), description="current clocks, per CPU")
    memory_total_bytes: int | None = None
    os: str
    kernel: str
    python: str
    container: ContainerInfo
    emulated: bool = Field(description="True when running under an emulator (qemu)")
    emulator: str | None = None
    runtime_versions: dict[str, str] = Field(default_factory=dict)
    gpus: tuple[GpuInfo, ...] = ()
    board: str | None = Field(default=None, description="device-tree model, e.g. Raspberry Pi 5")


class ModelSource(str, Enum):
    """Where a model file came from."""

    SUITE = "suite"
    BUILTIN = "builtin"
    FILE = "file"
    REMOTE = "remote"
    """No local file: the model exists only on the endpoint (``-m NAME --endpoint URL``)."""


class SpecSource(str, Enum):
    """Where a network run took its input and output specs from."""

    METADATA = "metadata"
    """The server's model metadata."""
    FILE = "file"
    """The local model file (the server's metadata lists no inputs)."""
    OPTION = "option"
    """``--opt inputs=NAME:DTYPE:SHAPE`` (no metadata, no local file)."""


class RemoteModel(Frozen):
    """The model of a network run as the endpoint states it (added after v1 was first
    written: a report without it ran no network model)."""

    name: str = Field(description="the model's name on the endpoint")
    version: str | None = Field(default=None, description="as the server states it")
    platform: str | None = Field(default=None, description="as the server states it")
    endpoint: str = Field(description="URL without credentials")
    protocol: str
    specs_from: SpecSource
    local_file: bool = Field(
        description="False: the model exists only on the endpoint, so there is no local file "
        "to hash (sha256 is empty); True: the local file named by path was hashed"
    )
    warning: str | None = Field(
        default=None, description="the server's metadata and the local file disagree"
    )

    @model_serializer(mode="wrap")
    def _omit_absent_warning(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("warning", 0) is None:
            del data["warning"]
        return data


class ModelIdentity(Frozen):
    """Which model ran: name, variant, file hash and its tensors."""

    name: str
    variant: str = Field(description="e.g. fp32, fp16, int8")
    format: str = Field(description="file suffix, e.g. .onnx or .tflite")
    source: ModelSource
    path: str
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    parameters: int | None = None
    macs: int | None = None
    sha256_verified: bool = Field(
        default=False, description="True when checked against a manifest before loading"
    )
    remote: RemoteModel | None = Field(
        default=None, description="network runs: the model as the endpoint states it"
    )

    @model_serializer(mode="wrap")
    def _omit_absent_remote(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # added after v1 was first written: left out when absent so earlier digests verify
        data: dict[str, Any] = handler(self)
        if data.get("remote", 0) is None:
            del data["remote"]
        return data


class WarmupRule(Frozen):
    """Warm-up ends when both the query count and the duration are reached (and, with
    ``until_steady``, once the window rate has stopped moving)."""

    min_queries: int = Field(ge=0)
    min_duration_s: float = Field(ge=0)
    until_steady: bool | None = Field(
        default=None,
        description="after the minimums, warm up on until the last windows agree (the stop "
        "rule's windows, count and threshold), or the measured part's cap; absent: no",
    )

    @model_serializer(mode="wrap")
    def _omit_absent_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_absent(handler(self), "until_steady")


class StopMode(str, Enum):
    """What ends the measured part once its minimums are met."""

    FIXED = "fixed"
    """Nothing more: LoadGen's rule (stop at the minimums)."""
    CONVERGE = "converge"
    """Whole windows until the last few agree, or the cap (perf_analyzer's rule)."""


class StopRule(Frozen):
    """The measured part ends when both minimums are met, or at the cap; with the convergence
    mode, at the first window boundary after the minimums where the last ``converge_windows``
    windows agree within ``converge_threshold`` of their mean, or at the last boundary
    before the cap."""

    min_queries: int = Field(ge=1)
    min_duration_s: float = Field(ge=0)
    max_duration_s: float = Field(gt=0)
    mode: StopMode | None = Field(default=None, description="absent: fixed (LoadGen's rule)")
    window_s: float | None = Field(
        default=None,
        gt=0,
        description="convergence windows' nominal length; absent: the minimum measured "
        "duration over the scenario's windows (the run's length is fixed at the minimums)",
    )
    converge_windows: int | None = Field(default=None, ge=2, description="windows that agree")
    converge_threshold: float | None = Field(
        default=None, gt=0, description="largest relative deviation from their mean"
    )

    @model_serializer(mode="wrap")
    def _omit_absent_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_absent(
            handler(self), "mode", "window_s", "converge_windows", "converge_threshold"
        )


class ArrivalProcess(str, Enum):
    """Open-loop arrival process of the server scenario."""

    POISSON = "poisson"
    CONSTANT = "constant"
    GAMMA = "gamma"
    """Gamma-distributed gaps (vLLM's ``--burstiness``: shape = burstiness, mean = 1/rate);
    burstiness 1 is Poisson, below 1 burstier, above 1 more regular."""


class ScenarioSettings(Frozen):
    """Everything that defines how queries were issued."""

    kind: ScenarioKind
    batch_size: int = Field(ge=1)
    warmup: WarmupRule
    stop: StopRule
    windows: int = Field(ge=1, description="windows the measured part is split into")
    stability_threshold: float = Field(description="max relative deviation of a window")
    quick: bool = False
    seed: int = 0
    target_rate_qps: float | None = None
    arrival: ArrivalProcess | None = None
    concurrency: int | None = None
    input_source: str = Field(default="random", description="random (seeded) or a file name")


class ColdStart(Frozen):
    """Start-up costs, reported apart from steady state (as TFLite's benchmark_model)."""

    load_s: float = Field(description="model load and session creation, seconds")
    first_inference_ms: float | None = None
    first_load_in_process_s: float | None = Field(
        default=None,
        description="the first load of this model on this backend in this process (the "
        "pre-run check of the matrix), seconds, including the runtime's one-time set-up; when "
        "set, load_s is a repeat load in a process that has loaded the model before",
    )


class SteadyWarmup(Frozen):
    """How a warm-up extended until steady state ended."""

    steady: bool = Field(description="the last windows agreed before the cap")
    window_s: float
    windows: tuple[float, ...] = Field(description="queries per second in each warm-up window")
    extended_s: float = Field(description="warm-up beyond its minimums, seconds")


class WarmupSummary(Frozen):
    """What the warm-up did."""

    queries: int
    duration_s: float
    until_steady: SteadyWarmup | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_absent(handler(self), "until_steady")


class ConfidenceInterval(Frozen):
    """A two-sided confidence interval of a statistic."""

    low: float
    high: float
    level: float = 0.95
    method: str
    resamples: int | None = None


class LatencyStats(Frozen):
    """Summary of per-query latencies, in milliseconds."""

    unit: Literal["ms"] = "ms"
    count: int
    min: float
    max: float
    mean: float
    std: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    percentile_method: Literal["nearest-rank"] = "nearest-rank"
    ci: dict[str, ConfidenceInterval] = Field(
        default_factory=dict, description="keyed by statistic name, e.g. 'p50', 'p99'"
    )


class Throughput(Frozen):
    """Queries and samples per second over the measured part."""

    queries_per_s: float
    samples_per_s: float
    duration_s: float
    queries: int
    samples: int


class Stability(Frozen):
    """Throughput per window and whether the windows agree."""

    windows: tuple[float, ...] = Field(description="queries per second in each window")
    cv: float = Field(description="coefficient of variation of the window throughputs")
    max_relative_deviation: float
    threshold: float
    stable: bool
    longest_agreeing_run: int | None = Field(
        default=None,
        description="most consecutive windows whose throughputs all lie within threshold of "
        "that run's mean",
    )
    rule: str | None = Field(
        default=None,
        description="what 'stable' required: every window within threshold of the mean (local "
        "runs), or N consecutive agreeing windows (network load, as perf_analyzer)",
    )


class StopReason(str, Enum):
    """What ended the measured part."""

    MINIMUMS = "minimums"
    """Both minimums were met (the fixed rule)."""
    CONVERGED = "converged"
    """The last windows agreed (the convergence rule)."""
    CAP = "cap"
    """The duration cap: the minimums were not met, or the windows never agreed."""
    INTERRUPTED = "interrupted"


class StopOutcome(Frozen):
    """Which stop rule ended the measured part, when, and whether its windows converged."""

    mode: StopMode
    reason: StopReason
    duration_s: float = Field(description="the measured part, seconds")
    converged: bool | None = Field(
        default=None, description="convergence rule: the last windows agreed before the cap"
    )
    window_s: float | None = Field(
        default=None, description="convergence rule: the windows' length, fixed at the minimums"
    )
    windows: int | None = Field(default=None, description="whole windows measured")
    converge_windows: int | None = None
    tolerance: float | None = Field(
        default=None,
        description="the agreement the windows were held to: the threshold, widened to twice "
        "the Poisson counting noise of an open loop's windows where that is larger",
    )


class Drift(Frozen):
    """The throughput trend over the measured part: a least-squares line through the window
    throughputs against time, its slope relative to their mean."""

    slope_pct_per_s: float = Field(description="percent of the mean window throughput per second")
    ci: ConfidenceInterval = Field(description="of the slope, %/s")
    change_pct: float = Field(description="the fitted change across the measured part, percent")
    windows: int
    significant: bool = Field(description="the interval excludes 0")
    drifting: bool = Field(description="significant, and the change exceeds the threshold")


class SegmentFigures(Frozen):
    """Figures of the converged segment: the agreeing windows that ended the run."""

    start_s: float = Field(description="from the start of the measured part")
    end_s: float
    latency: LatencyStats
    throughput: Throughput


class RawSamples(Frozen):
    """The sidecar with per-query samples, so any statistic can be recomputed."""

    path: str = Field(description="relative to the report file")
    sha256: str
    count: int
    arrays: dict[str, str] = Field(description="array name -> unit, e.g. latency_ns -> ns")


class DevicePhases(Frozen):
    """Per-query time of each phase of an accelerator's timed call, in milliseconds."""

    timed_region: str = Field(description="what the end-to-end latency spans, e.g. h2d+compute+d2h")
    method: str = Field(description="how phases were timed, e.g. cuda-events")
    h2d: LatencyStats = Field(description="host-to-device copy of the inputs")
    compute: LatencyStats
    d2h: LatencyStats = Field(description="device-to-host copy of the outputs")


class PerformanceResults(Frozen):
    """The steady-state figures of one run."""

    latency: LatencyStats
    throughput: Throughput
    stability: Stability | None = None
    raw: RawSamples | None = None
    phases: DevicePhases | None = Field(
        default=None, description="copy and compute times apart, where the session measures them"
    )
    stop: StopOutcome | None = None
    drift: Drift | None = None
    converged_segment: SegmentFigures | None = Field(
        default=None,
        description="the agreeing windows that ended a converged run (perf_analyzer's figures); "
        "latency and throughput above cover the whole measured part (MLPerf's)",
    )

    @model_serializer(mode="wrap")
    def _omit_absent_phases(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # added after v1 was first written: left out when absent so digests of reports written
        # before them still verify
        return _omit_absent(handler(self), "phases", "stop", "drift", "converged_segment")


class HttpResults(Frozen):
    """Network figures of a remote-endpoint run (filled by the HTTP backend)."""

    protocol: str
    endpoint: str = Field(description="URL without credentials")
    requests: int
    successes: int
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    status_counts: dict[str, int] = Field(
        default_factory=dict,
        description="HTTP status code -> responses (requests without one "
        "are in errors_by_kind only)",
    )
    error_rate: float
    bytes_sent_per_request: float = Field(
        description="mean bytes sent per successful request (the payload egress is priced from)"
    )
    bytes_received_per_request: float = Field(
        description="mean bytes received per successful request"
    )
    bytes_sent_total: int
    bytes_received_total: int
    server_time: LatencyStats | None = None
    network_time: LatencyStats | None = None
    send_lag: LatencyStats | None = None
    late_fraction: float | None = Field(default=None, description="share sent over 1 ms late")
    offered_rate_qps: float | None = None
    achieved_rate_qps: float | None = None
    retries: int = 0
    tls_verify: bool | None = None
    auth: str | None = Field(default=None, description="kind of auth used, never the secret")
    peak_rate_qps: float | None = Field(
        default=None, description="highest rate meeting the p99 bound (FindPeakPerformance)"
    )
    latency_bound_ms: float | None = None
    sweep: tuple[SweepPoint, ...] = ()
    link: LinkRecord | None = Field(
        default=None,
        description="run --network: the profile, the shaper and why, and what the link did",
    )

    @model_serializer(mode="wrap")
    def _omit_absent_link(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # added after v1 was first written: left out when absent so digests still verify
        return _omit_absent(handler(self), "link")


class SweepPoint(Frozen):
    """One step of a concurrency sweep or a rate search."""

    concurrency: int | None = None
    offered_rate_qps: float | None = None
    achieved_rate_qps: float
    p50_ms: float
    p99_ms: float
    error_rate: float
    meets_bound: bool | None = None
    send_lag_invalid: bool | None = Field(
        default=None, description="open loop: over 1% sent over 1 ms late (the probe fails)"
    )
    converged: bool | None = Field(
        default=None, description="convergence stop: the probe's last windows agreed"
    )

    @model_serializer(mode="wrap")
    def _omit_absent_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_absent(handler(self), "converged")


class AccuracyKind(str, Enum):
    """Labelled accuracy on real data, or agreement with the fp32 reference."""

    LABELLED = "labelled"
    AGREEMENT = "agreement"


class AccuracyGate(Frozen):
    """One agreement metric against its own floor, judged on its 95% interval."""

    metric: str = Field(description="top1-agreement, cosine or relative-error")
    value: float
    interval: ConfidenceInterval
    floor: float = Field(description="the limit: a lowest value, or a highest for errors")
    higher_is_better: bool = Field(description="False for relative-error (a ceiling)")
    verdict: Literal["pass", "below-floor", "inconclusive"] = Field(
        description="below-floor: the whole interval is on the wrong side of the floor; "
        "inconclusive: the interval straddles it"
    )


class AccuracyResult(Frozen):
    """An AccuracyOnly pass over the evaluation set, on the same code path.

    The reference is the fp32 PyTorch model: for ``labelled`` results its accuracy on the same
    samples (from the suite manifest); for ``agreement`` results, and for every agreement
    figure here (top-1 agreement, absolute errors, cosine), the fp32 torch model's outputs
    stored in the evaluation set next to its inputs. ``run --baseline`` compares against the
    baseline file's outputs on the same inputs instead (``reference_variant`` "baseline").
    """

    kind: AccuracyKind
    dataset: str
    samples: int
    metric: str = Field(description="e.g. top1, auc, reconstruction-mse")
    value: float
    reference_variant: str | None = Field(
        default=None,
        description="'fp32': the fp32 torch model (its outputs are stored in the evaluation "
        "set); 'baseline': the --baseline file run on the same inputs",
    )
    reference_value: float | None = Field(
        default=None,
        description="the reference's value of the metric: fp32 torch accuracy for labelled "
        "results, 1.0 for agreement results",
    )
    relative_to_reference: float | None = Field(
        default=None, description="value / reference_value (compared with floor)"
    )
    delta: float | None = Field(
        default=None,
        description="value - reference_value: the accuracy change against the reference "
        "(negative when worse); absent in reports written before it was added",
    )
    agreement_top1: float | None = Field(
        default=None, description="share of samples whose top-1 matches the reference outputs"
    )
    max_abs_error: float | None = Field(
        default=None, description="largest absolute difference from the reference outputs"
    )
    mean_abs_error: float | None = Field(
        default=None, description="mean absolute difference from the reference outputs"
    )
    cosine_similarity: float | None = Field(
        default=None, description="mean per-sample cosine similarity with the reference outputs"
    )
    floor: float = 0.99
    below_floor: bool = Field(
        default=False,
        description="the result fails its floor: the whole 95% interval of a gate is on the "
        "wrong side of it (the point value alone when no interval was computed); treat as invalid",
    )
    inconclusive: bool | None = Field(
        default=None,
        description="a gate's 95% interval straddles its floor and none is wholly below: more "
        "samples are needed to decide (a caution, not a failure)",
    )
    interval: ConfidenceInterval | None = Field(
        default=None, description="95% interval of value (Wilson for proportions, bootstrap)"
    )
    relative_error: float | None = Field(
        default=None,
        description="mean absolute error over the baseline's output range (max - min)",
    )
    metric_rule: str | None = Field(
        default=None, description="why this agreement metric: the output rule or the override"
    )
    gates: tuple[AccuracyGate, ...] | None = Field(
        default=None, description="each metric judged against its own floor, with its interval"
    )
    sample_target_half_width: float | None = Field(
        default=None, description="generated samples grow until every interval is this narrow"
    )
    sample_time_cap_s: float | None = Field(
        default=None, description="generated samples stop growing after this many seconds"
    )
    sample_stop: str | None = Field(
        default=None, description="why the sample count stopped: interval, time cap, max count"
    )

    @model_serializer(mode="wrap")
    def _omit_absent_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_absent(
            handler(self),
            "inconclusive",
            "interval",
            "relative_error",
            "metric_rule",
            "gates",
            "sample_target_half_width",
            "sample_time_cap_s",
            "sample_stop",
        )


class MeasurementMethod(str, Enum):
    """How a collector obtained its values."""

    COUNTER = "counter"
    SAMPLED = "sampled"
    ESTIMATED = "estimated"


class Measurement(Frozen):
    """One named value with its unit."""

    quantity: str
    value: float
    unit: str
    note: str | None = None


class CollectorResult(Frozen):
    """What one collector measured over the measured window."""

    name: str
    source: str = Field(description="e.g. /sys/class/powercap/intel-rapl:0, nvml:0")
    method: MeasurementMethod
    scope: str | None = Field(default=None, description="cpu-package, gpu-board, process, ...")
    sample_rate_hz: float | None = None
    resolution: str | None = None
    window_start_ns: int
    window_end_ns: int
    valid: bool = True
    invalid_reason: str | None = None
    measurements: tuple[Measurement, ...] = ()
    formula: str | None = Field(default=None, description="for estimates: formula and constants")
    window_energy_j: tuple[float, ...] = Field(
        default=(), description="energy sources: joules in each equal sub-window, in order"
    )


class CollectorSkip(Frozen):
    """A requested collector that did not run, and why."""

    name: str
    reason: str


class EnergySummary(Frozen):
    """Joules per inference over the measured window, with provenance."""

    source: str
    method: MeasurementMethod
    scope: str
    joules_per_inference: float | None = Field(
        description="gross, the headline figure; None when no window was valid"
    )
    dynamic_joules_per_inference: float | None = Field(
        default=None, description="above idle baseline"
    )
    idle_watts_before: float | None = None
    idle_watts_after: float | None = None
    average_watts: float | None = None
    windows: int = 1
    iqr_joules_per_inference: float | None = None
    valid: bool = True
    note: str | None = None
    total_joules: float | None = Field(default=None, description="gross, whole window")
    window_joules_per_inference: tuple[float, ...] = Field(
        default=(), description="gross joules per inference of each sub-window"
    )
    warnings: tuple[str, ...] = ()


class CollectorsSection(Frozen):
    """Collectors requested, run, skipped, and their outputs."""

    requested: tuple[str, ...] = ()
    ran: tuple[str, ...] = ()
    skipped: tuple[CollectorSkip, ...] = ()
    results: tuple[CollectorResult, ...] = ()
    energy: EnergySummary | None = None


class ErrorRecord(Frozen):
    """An error met during the run."""

    phase: str = Field(description="load, warmup, measure, accuracy, collector, write")
    kind: str
    message: str
    count: int = 1


class InterleaveOrder(str, Enum):
    """The order in which the runs of a series of repetitions are made."""

    ALTERNATE = "alternate"
    """Round by round, each cell once per round in matrix order: A B A B ..."""
    SHUFFLE = "shuffle"
    """Round by round, each cell once per round in a seeded random order."""


class Repetition(Frozen):
    """This run is one of ``count`` repetitions of one cell: together they are a group, one
    measurement with ``count`` values. The groups of one invocation were interleaved in one
    series, so runs of different groups with the same ``index`` ran side by side."""

    group: str = Field(description="id shared by the repetitions of one cell")
    index: int = Field(ge=1, description="this repetition, from 1")
    count: int = Field(ge=1, description="repetitions asked for in the group")
    series: str = Field(description="id shared by every group interleaved with this one")
    position: int = Field(ge=1, description="this run's place in the series, from 1")
    order: InterleaveOrder
    seed: int | None = Field(default=None, description="shuffle: the seed of the order")
    fresh_process: bool = Field(
        default=False, description="the run had a process of its own (as pyperf's runs do)"
    )


class SplitCandidate(Frozen):
    """One placement of a split run's profile, measured through the same link: all-edge, all-cloud
    or a cut. Times are medians over the profiling requests, milliseconds."""

    name: str = Field(description="the cut tensor, or <all-edge> / <all-cloud>")
    head_ms: float = Field(description="edge compute: the head (the whole model for all-edge)")
    tail_ms: float | None = Field(
        default=None, description="server-reported time of the tail request; None: all-edge"
    )
    transfer_ms: float | None = Field(
        default=None, description="end-to-end minus head minus server time; None: all-edge"
    )
    e2e_ms: float = Field(description="end-to-end latency of one inference")
    raw_bytes: int | None = Field(
        default=None, description="the activation (or input) as produced, bytes per request"
    )
    sent_bytes: float | None = Field(
        default=None, description="the request on the wire (header + binary tensors), bytes"
    )
    energy_j: float | None = Field(
        default=None, description="estimated: head time x the device's active watts"
    )
    max_abs_error: float | None = Field(
        default=None, description="largest output difference from the full model"
    )
    top1_agreement: float | None = Field(
        default=None, description="share of rows whose arg-max matches the full model's"
    )


class SplitRecord(Frozen):
    """A split run (head on the edge, tail behind the endpoint): the cut, how the activation was
    sent, and the profile the cut was chosen from."""

    cut: str
    chosen_by: Literal["auto", "given"]
    objective: str = Field(description="latency, energy or cost")
    compression: str = Field(description="none, fp16 or int8 (static scale, calibrated)")
    activation_bytes: int | None = Field(
        default=None, description="the cut tensor as the head produced it, bytes per request"
    )
    network_profile: str | None = None
    device_watts: float | None = Field(
        default=None, description="active watts behind the energy estimates"
    )
    candidates: tuple[SplitCandidate, ...] = ()
    crossover_bandwidth_bps: float | None = Field(
        default=None,
        description="bandwidth at which the chosen placement and all-edge are equally fast "
        "(the profile's fixed costs, its bytes); None: they never cross",
    )


# ---- generative runs (issue 18; definitions in tippingpoint.core.token_metrics) ------------


class Slo(Frozen):
    """Bounds a good request meets (each optional), in milliseconds: ``--slo ttft=MS,...``."""

    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)
    e2el_ms: float | None = Field(default=None, gt=0)

    def describe(self) -> str:
        """``ttft<=200ms, tpot<=50ms``-style text of the bounds set."""
        parts = [
            f"{name}<={value:g}ms"
            for name, value in (
                ("ttft", self.ttft_ms),
                ("tpot", self.tpot_ms),
                ("e2el", self.e2el_ms),
            )
            if value is not None
        ]
        return ", ".join(parts) or "none"


class TokenCounts(Frozen):
    """Output tokens as each side counted them, over the successful requests."""

    server_total: int | None = Field(description="sum of reported usage; None if none reported")
    client_total: int | None = Field(description="sum of the client's counts; None if none")
    compared: int = Field(description="requests with both counts")
    differing: int = Field(description="of those, requests whose counts differ")
    difference: int = Field(description="sum of server - client over the compared requests")


class Goodput(Frozen):
    """Requests meeting the SLO."""

    slo: Slo
    good: int
    requests_per_s: float
    good_fraction: float = Field(description="good / every request sent, failures included")


class TokenMetrics(Frozen):
    """One generative run's figures (latencies in ms; see tippingpoint.core.token_metrics)."""

    origin: str = Field(description="what latencies are measured from")
    requests: int
    succeeded: int
    failed: dict[str, int] = Field(description="failed requests by error kind")
    duration_s: float
    ttft: LatencyStats | None
    tpot: LatencyStats | None = Field(description="over requests with >= 2 output tokens")
    e2el: LatencyStats | None
    chunk_gap: LatencyStats | None = Field(description="pooled gaps between chunks (vLLM's ITL)")
    output_tokens: int = Field(description="of the successful requests")
    prompt_tokens: int | None
    output_tokens_per_s: float
    total_tokens_per_s: float | None
    requests_per_s: float
    tokens_per_chunk: float | None = Field(
        description="mean over chunks with a known count, else reported output tokens / chunks"
    )
    multi_token_chunks: bool = Field(
        description="some chunk carried several tokens: chunk gaps are not per-token times"
    )
    token_counts: TokenCounts
    goodput: Goodput | None


class GoodputPoint(Frozen):
    """One probe of a peak-rate search or one level of a generative concurrency sweep."""

    offered_rate_rps: float | None = None
    concurrency: int | None = None
    requests: int
    requests_per_s: float
    output_tokens_per_s: float
    ttft_p50_ms: float | None
    tpot_p50_ms: float | None
    goodput_rps: float | None
    good_fraction: float | None
    meets: bool | None = Field(
        default=None, description="peak search: good fraction >= the target and valid send lag"
    )


class GenerationResults(Frozen):
    """Token-level figures of a generative run (``run`` on a generative backend)."""

    metrics: TokenMetrics
    prompts: str = Field(description="where prompts came from: the seeded set or a file")
    max_tokens_mean: float = Field(description="mean output tokens asked for per request")
    ignore_eos: bool = Field(description="exactly max_tokens asked for (vLLM's --ignore-eos)")
    burstiness: float | None = Field(default=None, description="gamma arrivals' shape")
    joules_per_output_token: float | None = Field(
        default=None, description="energy over the timed window / output tokens in it"
    )
    joules_per_request: float | None = Field(
        default=None, description="energy over the timed window / successful requests"
    )
    energy_method: MeasurementMethod | None = Field(
        default=None, description="measured, or estimated (labelled): the energy's method"
    )
    peak_rate_rps: float | None = Field(
        default=None, description="peak search: highest rate whose good fraction met the target"
    )
    peak_target_fraction: float | None = None
    sweep: tuple[GoodputPoint, ...] = ()


class HybridResults(Frozen):
    """How a hybrid run (the ``hybrid`` backend) routed its requests: the policy, the share
    offloaded to the endpoint, fallbacks, deadline misses, cache hits and the policy's own
    measured overhead. Rates are over the requests the router decided (``decided``); failed
    requests count (a failure is a deadline miss)."""

    policy: str
    fallback: bool = Field(description="a failed cloud request was answered locally")
    cache: bool = Field(description="the result cache was on")
    slo_ms: float | None = Field(default=None, description="the latency objective, if set")
    requests: int = Field(description="requests in the measured part")
    decided: int = Field(description="requests with a routing record")
    offload_rate: float = Field(description="share the policy sent to the cloud (fallbacks too)")
    fallback_rate: float = Field(description="share whose cloud request failed, answered locally")
    deadline_miss_rate: float | None = Field(
        default=None, description="share over slo_ms end to end, failures included"
    )
    cache_hit_rate: float | None = Field(
        default=None, description="share answered by the cache; None when it was off"
    )
    answered_by: dict[str, int] = Field(description="local, cloud, cache -> requests answered")
    reasons: dict[str, int] = Field(description="the policy's reason -> requests")
    cloud_errors: dict[str, int] = Field(
        default_factory=dict, description="failed cloud requests by kind (fallbacks included)"
    )
    policy_overhead_us_mean: float = Field(
        description="mean time the router spent deciding (and the cache lookup), microseconds"
    )
    policy_overhead_us_p99: float


class Report(Frozen):
    """One benchmark run: environment, model, backend, scenario, results."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime
    tool: ToolInfo
    host: HostFingerprint
    model: ModelIdentity
    backend: BackendDescription | None = Field(
        default=None, description="None when the backend failed before a session existed"
    )
    scenario: ScenarioSettings
    cold_start: ColdStart | None = None
    warmup: WarmupSummary | None = None
    results: PerformanceResults | None = None
    http: HttpResults | None = None
    accuracy: AccuracyResult | None = None
    collectors: CollectorsSection = Field(default_factory=CollectorsSection)
    errors: tuple[ErrorRecord, ...] = ()
    warnings: tuple[str, ...] = ()
    flags: tuple[RunFlag, ...] = ()
    repetition: Repetition | None = Field(
        default=None, description="one of a group of repeated runs; absent: a single run"
    )
    split: SplitRecord | None = Field(
        default=None, description="a split run's cut and profile; absent: not a split run"
    )
    hybrid: HybridResults | None = Field(
        default=None, description="a hybrid run's routing figures; absent: not a hybrid run"
    )
    generation: GenerationResults | None = Field(
        default=None, description="a generative run's token-level figures; absent: not one"
    )
    digest: str | None = Field(
        default=None, description="sha256 of the canonical JSON without this field"
    )

    @model_serializer(mode="wrap")
    def _omit_absent_repetition(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # added after v1 was first written: left out when absent so digests of reports written
        # before it still verify
        data: dict[str, Any] = handler(self)
        if data.get("repetition") is None:
            data.pop("repetition", None)
        return _omit_absent(data, "split", "hybrid", "generation")


HttpResults.model_rebuild()
