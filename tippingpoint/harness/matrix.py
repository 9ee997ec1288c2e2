"""The run matrix: what a run asks for, as a typed request, and the cells it expands to.

:class:`RunRequest` holds what the command-line flags (or any other caller) ask for;
:func:`with_suite` lays a suite file under it, the request winning where it says something;
:func:`expand` validates it and expands it into a :class:`Matrix` of
:class:`~tippingpoint.harness.runner.RunSpec` cells: models x backends x scenarios x batch sizes
x concurrency levels. Every mistake is a one-line ``UsageError`` raised here, before anything
is measured. Nothing here loads a model to run it, measures or writes:
:func:`~tippingpoint.harness.execute.execute` runs the cells.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tippingpoint.backends.registry import backend_names, get_backend
from tippingpoint.core.errors import (
    InvalidOptionError,
    InvalidShapeError,
    ModelFileError,
    RuntimeNotInstalledError,
    UnknownModelError,
)
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.links import LinkSpec
from tippingpoint.core.schema import (
    ArrivalProcess,
    InterleaveOrder,
    ScenarioSettings,
    SplitRecord,
    StopMode,
    StopRule,
    WarmupRule,
)
from tippingpoint.core.types import OptionValue
from tippingpoint.harness.baseline import baseline_hook
from tippingpoint.harness.collectors.options import CollectorOptions
from tippingpoint.harness.config import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_STOP,
    DEFAULT_STOP_MODE,
    DEFAULT_WARMUP,
    DEFAULT_WARMUP_UNTIL_STEADY,
    QUICK_STOP,
    QUICK_WARMUP,
    STABILITY_THRESHOLD,
    SuiteFile,
    scenario_settings,
)
from tippingpoint.harness.convergence import DEFAULT_CONVERGE_WINDOWS
from tippingpoint.harness.energy import DEFAULT_IDLE_S
from tippingpoint.harness.generative import GenerationSettings
from tippingpoint.harness.links.select import ShaperSelection, select_shaper
from tippingpoint.harness.loadgen import MAX_RATE_QPS
from tippingpoint.harness.runner import AccuracyHook, RunSpec
from tippingpoint.models.accuracy import AgreementMetric, accuracy_hook
from tippingpoint.models.registry import (
    DEFAULT_SUITE,
    ModelRef,
    for_backend,
    is_remote,
    looks_like_path,
    remote_ref,
    resolve_model,
)

LOCAL_ENDPOINT = "local"
"""The endpoint value that starts the reference server on loopback as a stand-in."""
ENDPOINT_BACKEND = "http"
GRPC_BACKEND = "grpc"
"""The backend of a ``grpc://`` or ``grpcs://`` endpoint (KServe v2 over gRPC)."""
"""The backend an endpoint runs on (KServe v2 over HTTP), the protocol the stand-in speaks."""
DEFAULT_BACKEND = "onnxruntime"
SPLIT_BACKEND = "split"
HYBRID_BACKEND = "hybrid"
OPENAI_BACKEND = "openai"
"""The backend of an ``openai+http://`` or ``openai+https://`` endpoint (OpenAI-compatible
streaming; the URL without the ``openai+`` prefix is the base URL, with or without ``/v1``)."""
OPENAI_PREFIX = "openai+"
GENERATIVE_BACKENDS = frozenset({OPENAI_BACKEND, "onnxruntime-genai", "llama-cpp"})
"""Backends the harness drives with generative scenarios (token streams)."""
GENERATIVE_MIN_QUERIES = 50
"""A generative run's minimum measured requests unless --min-queries says otherwise (a request
is a whole generation: 662 of them would take minutes on a small device)."""
"""The hybrid router's backend: its cloud side is the endpoint (or the stand-in)."""
"""The backend of ``--split`` cells (head here, tail on the endpoint or the stand-in)."""
NETWORK_SCENARIOS = (ScenarioKind.SERVER, ScenarioKind.CONCURRENCY)


@dataclass(frozen=True)
class BackendOption:
    """One backend option (``--opt``): for one backend, or for every backend of the run."""

    key: str
    value: OptionValue
    backend: str | None = None
    """The backend it is for; None: every backend of the run."""


@dataclass(frozen=True)
class NetworkRequest:
    """What the server and concurrency scenarios ask for."""

    rate_qps: float | None = None
    """Server scenario: the target rate of the open loop (required by that scenario)."""
    arrival: ArrivalProcess = ArrivalProcess.POISSON
    concurrency: tuple[int, ...] = (1,)
    """Concurrency scenario: in-flight requests, one run per level."""
    latency_bound_ms: float | None = None
    """Server scenario: find the peak rate whose p99 meets this bound."""


@dataclass(frozen=True)
class RunRequest:
    """What a run asks for. Empty or None fields take the defaults when expanded."""

    models: tuple[str, ...] = ()
    """Suite model names or model file paths; empty: the default suite."""
    backends: tuple[str, ...] = ()
    """Empty: onnxruntime, or the endpoint backend when an endpoint is given."""
    scenarios: tuple[ScenarioKind, ...] = ()
    """Empty: single-stream and offline."""
    batch_sizes: tuple[int, ...] | None = None
    """Batch sizes of the offline scenario; None: 1, 8 and 32."""
    variant: str | None = None
    quick: bool = False
    min_queries: int | None = None
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    warmup_queries: int | None = None
    warmup_s: float | None = None
    stop: StopMode | None = None
    """What ends the measured part after its minimums; None: the default (converge)."""
    converge_windows: int | None = None
    """Convergence stop: windows that must agree; None: 3."""
    converge_threshold: float | None = None
    """Convergence stop: their largest relative deviation from their mean; None: 0.10."""
    window_s: float | None = None
    """Convergence stop: the windows' nominal length; None: the minimum duration over 5."""
    warmup_until_steady: bool | None = None
    """Warm up on until the window rate stops moving; None: the default."""
    seed: int | None = None
    """Seed of generated inputs and the bootstrap; None: 0."""
    accuracy: bool = False
    """Score each run on the suite model's evaluation set."""
    baseline: Path | None = None
    """Score each run's outputs against this model file's (not with ``accuracy``)."""
    agreement_metric: AgreementMetric | None = None
    """``baseline``'s metric; None: chosen from the output (top-1 for class scores)."""
    endpoint: str | None = None
    """A remote endpoint's URL, or :data:`LOCAL_ENDPOINT` for the loopback stand-in."""
    network: NetworkRequest = field(default_factory=NetworkRequest)
    backend_options: Mapping[str, Mapping[str, OptionValue]] = field(default_factory=dict)
    """Options by backend (a suite file's ``[backend_options.<backend>]`` tables)."""
    options: tuple[BackendOption, ...] = ()
    """Options laid over ``backend_options`` (``--opt``)."""
    shape_overrides: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    inputs: Path | None = None
    """An .npz of input arrays by input name (rows are samples) instead of random data."""
    collectors: tuple[str, ...] = ()
    collector_options: CollectorOptions = field(default_factory=CollectorOptions)
    idle_s: float = DEFAULT_IDLE_S
    """Idle power measured before and after each run, seconds (0: skip)."""
    repeat: int = 1
    """Runs of each cell (``--repeat``): a group of that many separate runs, each with a fresh
    session, interleaved with the other cells' runs; 1: each cell runs once (a single run)."""
    order: InterleaveOrder = InterleaveOrder.ALTERNATE
    """The order of the repetitions: A B A B, or each round in a random order seeded by
    ``seed``."""
    fresh_process: bool = False
    """Each repetition in a process of its own (pyperf's way), not only a fresh session."""
    link: LinkSpec | None = None
    """``--network``: the profile's link, shaped between the client and the endpoint (the CLI
    resolves the profile: the harness does not read profiles)."""
    shaper: str = "auto"
    """``--shaper``: auto, proxy, tc, netem or tbf (see :func:`select_shaper`)."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """Generative backends: prompts, SLO, bursty arrivals, the peak search."""


@dataclass(frozen=True)
class Matrix:
    """The cells of a run and what executing them needs besides the cells."""

    cells: tuple[RunSpec, ...]
    collectors: tuple[str, ...] = ()
    collector_options: CollectorOptions = field(default_factory=CollectorOptions)
    idle_s: float = DEFAULT_IDLE_S
    standin_models: tuple[Path, ...] | None = None
    """Model files for the local stand-in server; None: no stand-in is started."""
    repeat: int = 1
    """Runs of each cell; above 1 each cell's runs are a repetition group."""
    order: InterleaveOrder = InterleaveOrder.ALTERNATE
    order_seed: int = 0
    """The seed of a shuffled order."""
    fresh_process: bool = False
    request: RunRequest | None = None
    """The request the cells were expanded from: a fresh process expands it again to rebuild
    its cell (a cell's accuracy hook does not cross a process boundary)."""
    link: ShaperSelection | None = None
    """``--network``: the shaper put in front of the endpoint of each network cell."""
    split: SplitRecord | None = None
    """``--split``: the cut and profile every split cell's report carries."""
    standin_url: str | None = None
    """A local stand-in the caller started and keeps running (``--split`` runs on its profiling
    server): the cells it serves are flagged local-standin as with ``standin_models``."""


@dataclass(frozen=True)
class Slot:
    """One run of a series: cell ``cell`` (an index into the matrix's cells), repetition
    ``index`` (from 1)."""

    cell: int
    index: int


def schedule(cells: int, repeat: int, order: InterleaveOrder, seed: int = 0) -> tuple[Slot, ...]:
    """The order of the runs of ``cells`` cells repeated ``repeat`` times: round by round, each
    cell once per round, so that a slow phase of the machine falls on every cell alike (A B A B
    ...); with :attr:`InterleaveOrder.SHUFFLE` each round's order is a permutation drawn from
    ``seed`` (the same seed, the same order)."""
    rng = np.random.default_rng(seed)
    slots: list[Slot] = []
    for index in range(1, repeat + 1):
        round_order = list(range(cells))
        if order is InterleaveOrder.SHUFFLE:
            round_order = [int(i) for i in rng.permutation(cells)]
        slots.extend(Slot(cell=c, index=index) for c in round_order)
    return tuple(slots)


def with_suite(request: RunRequest, suite: SuiteFile) -> RunRequest:
    """``request`` with what it leaves unsaid taken from ``suite`` (the request wins)."""
    run = suite.run
    backends = request.backends
    if not backends and request.endpoint is None:  # an endpoint picks its backend
        backends = run.backends

    def given(value: float | None, fallback: float | None) -> float | None:
        return value if value is not None else fallback

    fixed = (request.stop or run.stop) is StopMode.FIXED

    return dataclasses.replace(
        request,
        models=request.models or run.models,
        backends=backends,
        scenarios=request.scenarios or run.scenarios,
        batch_sizes=request.batch_sizes if request.batch_sizes is not None else run.batch_sizes,
        variant=request.variant or run.variant,
        quick=request.quick or run.quick,
        min_queries=request.min_queries or run.min_queries,
        min_duration_s=given(request.min_duration_s, run.min_duration_s),
        max_duration_s=request.max_duration_s or run.max_duration_s,
        warmup_queries=(
            request.warmup_queries if request.warmup_queries is not None else run.warmup_queries
        ),
        warmup_s=given(request.warmup_s, run.warmup_s),
        seed=request.seed if request.seed is not None else run.seed,
        stop=request.stop or run.stop,
        # the suite's convergence knobs fall away when the command line asks for --stop fixed
        converge_windows=request.converge_windows or (None if fixed else run.converge_windows),
        converge_threshold=given(
            request.converge_threshold, None if fixed else run.converge_threshold
        ),
        window_s=given(request.window_s, None if fixed else run.window_s),
        warmup_until_steady=(
            request.warmup_until_steady
            if request.warmup_until_steady is not None
            else run.warmup_until_steady
        ),
        accuracy=request.accuracy or (run.accuracy and request.baseline is None),
        collectors=request.collectors or run.collectors,
        backend_options={
            **{b: dict(o) for b, o in suite.backend_options.items()},
            **request.backend_options,
        },
    )


def endpoint_backend_of(endpoint: str | None) -> str:
    """The backend an ``--endpoint`` runs on: ``grpc`` for ``grpc://``/``grpcs://`` (KServe
    v2 over gRPC), else ``http``."""
    if endpoint is not None and endpoint.startswith(("grpc://", "grpcs://")):
        return GRPC_BACKEND
    if endpoint is not None and endpoint.startswith(OPENAI_PREFIX):
        return OPENAI_BACKEND
    return ENDPOINT_BACKEND


def endpoint_url(endpoint: str) -> str:
    """The URL the endpoint's backend is given (``openai+`` names the backend, not the URL)."""
    return endpoint[len(OPENAI_PREFIX) :] if endpoint.startswith(OPENAI_PREFIX) else endpoint


def served_by_standin(cell: RunSpec) -> bool:
    """Whether the local stand-in server, when one runs, serves this cell."""
    return cell.backend in (ENDPOINT_BACKEND, SPLIT_BACKEND, HYBRID_BACKEND)


def options_by_backend(
    options: Sequence[BackendOption], backends: Sequence[str]
) -> dict[str, dict[str, OptionValue]]:
    """Each backend's options; one naming a backend not in ``backends`` is a usage error."""
    out: dict[str, dict[str, OptionValue]] = {b: {} for b in backends}
    for opt in options:
        for b in [opt.backend] if opt.backend is not None else backends:
            if b not in out:
                value = str(opt.value).lower() if isinstance(opt.value, bool) else opt.value
                raise InvalidOptionError(
                    f"--opt '{b}.{opt.key}={value}' names backend '{b}', which is not in this run",
                    f"backends in this run: {', '.join(backends)}",
                )
            out[b][opt.key] = opt.value
    return out


def load_input_file(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an ``--inputs`` .npz file, by name; problems are one-line usage errors: not
    a file, not an .npz (a bare .npy, text), no arrays, or an input with no finite value."""
    fix = "pass an .npz written by numpy.savez(PATH, INPUT_NAME=array, ...)"
    if path.is_dir():
        raise InvalidShapeError(f"--inputs {path} is a directory, not an .npz file", fix)
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise InvalidShapeError(
            f"cannot read --inputs {path}: {exc.strerror or exc}", fix
        ) from None
    if magic.startswith(b"\x93NUMPY"):
        raise InvalidShapeError(f"--inputs {path} is a single .npy array, not an .npz", fix)
    if not magic.startswith(b"PK"):
        raise InvalidShapeError(f"--inputs {path} is not an .npz file (no zip archive)", fix)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise InvalidShapeError(f"cannot read --inputs {path}: {exc}", fix) from None
    if not arrays:
        raise InvalidShapeError(f"--inputs {path} holds no arrays", "save one array per input")
    for name, arr in arrays.items():
        if arr.dtype.kind in "fc" and arr.size and not np.isfinite(arr).any():
            raise InvalidShapeError(
                f"every value of --inputs array '{name}' is NaN or infinite: a benchmark on it "
                "measures no real input",
                "save real (finite) values",
            )
    return arrays


def cell_label(cell: RunSpec) -> str:
    """'model · backend · scenario' (and the batch of an offline cell), for progress and notes."""
    batch = f" b{cell.scenario.batch_size}" if cell.scenario.kind is ScenarioKind.OFFLINE else ""
    return f"{cell.model.name} · {cell.backend} · {cell.scenario.kind.value}{batch}"


def expand(request: RunRequest) -> Matrix:
    """Validate ``request`` and expand it into the cells of the matrix, in run order."""
    if request.accuracy and request.baseline is not None:
        raise InvalidOptionError(
            "--accuracy and --baseline both score the run's outputs, and a report holds one "
            "accuracy result",
            "pass one of them (run twice for both)",
        )
    check_run_limits(request)
    link = _link_selection(request)
    local_standin = request.endpoint == LOCAL_ENDPOINT
    endpoint_backend = endpoint_backend_of(request.endpoint)
    backends = list(request.backends) or [
        endpoint_backend if request.endpoint is not None else DEFAULT_BACKEND
    ]
    options = {b: dict(o) for b, o in request.backend_options.items()}
    if request.endpoint is not None and not local_standin:
        options.setdefault(endpoint_backend, {}).setdefault(
            "endpoint", endpoint_url(request.endpoint)
        )
        if HYBRID_BACKEND in backends:  # its cloud side
            options.setdefault(HYBRID_BACKEND, {}).setdefault("endpoint", request.endpoint)
    _check_installed(backends)
    network = request.network
    _check_network(network)
    if network.latency_bound_ms is not None:
        options.setdefault(endpoint_backend, {})["latency_bound_ms"] = network.latency_bound_ms
    for b, values in options_by_backend(request.options, backends).items():
        options.setdefault(b, {}).update(values)
    seed = request.seed if request.seed is not None else 0
    if request.repeat < 1:
        raise InvalidOptionError(
            f"--repeat must be at least 1, got {request.repeat}", "e.g. --repeat 5"
        )
    feeds = load_input_file(request.inputs) if request.inputs is not None else None
    refs = [_model_ref(m, request) for m in request.models or DEFAULT_SUITE]
    # one AccuracyOnly hook per model; a model without an evaluation set is a usage error
    hooks = {ref.name: accuracy_hook(ref.name) for ref in refs} if request.accuracy else {}
    base_hooks = (
        _baseline_hooks(
            request.baseline,
            backends,
            options,
            seed,
            request.shape_overrides,
            feeds,
            request.agreement_metric,
        )
        if request.baseline is not None
        else {}
    )
    warmup, stop = _rules(request)
    generative = [b for b in backends if b in GENERATIVE_BACKENDS]
    _check_generation(request, generative, seed)
    gen_stop = stop
    if generative and request.min_queries is None:
        gen_stop = stop.model_copy(
            update={"min_queries": min(stop.min_queries, GENERATIVE_MIN_QUERIES)}
        )
    scenarios = request.scenarios or (ScenarioKind.SINGLE_STREAM, ScenarioKind.OFFLINE)
    batches = request.batch_sizes if request.batch_sizes is not None else DEFAULT_BATCH_SIZES
    cells: list[RunSpec] = []
    for ref in refs:
        for b in backends:
            for kind in scenarios:
                if b in GENERATIVE_BACKENDS and kind is ScenarioKind.OFFLINE:
                    if request.scenarios:
                        raise InvalidOptionError(
                            f"the offline scenario has no meaning for the generative backend {b}",
                            "use -s single-stream, -s concurrency or -s server",
                        )
                    continue  # the default pair: single-stream only for a token stream
                sizes = batches if kind is ScenarioKind.OFFLINE else (1,)
                levels = network.concurrency if kind is ScenarioKind.CONCURRENCY else (None,)
                for bs, level in ((b_, n_) for b_ in sizes for n_ in levels):
                    settings = scenario_settings(
                        kind,
                        bs,
                        quick=request.quick,
                        warmup=warmup,
                        stop=gen_stop if b in GENERATIVE_BACKENDS else stop,
                        seed=seed,
                        input_source=request.inputs.name
                        if request.inputs is not None
                        else "random",
                    )
                    if kind in NETWORK_SCENARIOS:
                        settings = _network_settings(settings, network, level)
                    cells.append(
                        RunSpec(
                            model=for_backend(ref, get_backend(b).formats),
                            backend=b,
                            scenario=settings,
                            backend_options=_cell_options(ref, options.get(b, {}), b),
                            shape_overrides=request.shape_overrides,
                            feeds=feeds,
                            accuracy=hooks.get(ref.name) or base_hooks.get(b),
                            generation=request.generation if b in GENERATIVE_BACKENDS else None,
                        )
                    )
    unsupported = [
        c
        for c in cells
        if c.scenario.kind in NETWORK_SCENARIOS
        and not get_backend(c.backend).network
        and c.backend not in GENERATIVE_BACKENDS
    ]
    if unsupported:
        raise InvalidOptionError(
            f"scenario '{unsupported[0].scenario.kind.value}' needs a network backend",
            "use single-stream or offline with local backends",
        )
    served = tuple(for_backend(r, (".onnx",)).path for r in refs) if local_standin else None
    return Matrix(
        cells=tuple(cells),
        collectors=request.collectors,
        collector_options=request.collector_options,
        idle_s=request.idle_s,
        standin_models=served,
        repeat=request.repeat,
        order=request.order,
        order_seed=seed,
        fresh_process=request.fresh_process,
        request=request,
        link=link,
    )


def _check_generation(request: RunRequest, generative: Sequence[str], seed: int) -> None:
    """Generative flags without a generative backend, or a bad ``--prompts`` file, are usage
    errors before anything runs."""
    gen = request.generation
    if not generative:
        if gen != GenerationSettings():
            raise InvalidOptionError(
                "--slo, --prompts, --output-tokens, --burstiness and --find-peak apply to "
                "generative backends",
                "add -b onnxruntime-genai or --endpoint openai+http://HOST:PORT/v1",
            )
        return
    if gen.output_tokens < 1 or gen.prompt_words < 1:
        raise InvalidOptionError(
            "--output-tokens and --prompt-words must be at least 1", "e.g. --output-tokens 64"
        )
    if not (0 < gen.burstiness < float("inf")):
        raise InvalidOptionError(
            f"--burstiness must be a positive number, got {gen.burstiness:g}",
            "e.g. --burstiness 0.5 (burstier than Poisson)",
        )
    if gen.find_peak and gen.slo is None:
        raise InvalidOptionError(
            "--find-peak searches the rate whose goodput meets --slo, and none is given",
            "add --slo ttft=MS,tpot=MS",
        )
    gen.prompt_set(seed)  # a bad --prompts file fails here, before anything runs


def _link_selection(request: RunRequest) -> ShaperSelection | None:
    """The shaper of ``--network`` (None without it); a usage error before anything runs."""
    if request.link is None:
        if request.shaper != "auto":
            raise InvalidOptionError("--shaper needs --network", "add --network PROFILE")
        return None
    if request.endpoint is None:
        raise InvalidOptionError(
            "--network shapes the link to a remote endpoint and none is given",
            "add --endpoint http://HOST:PORT (or --endpoint local for the stand-in)",
        )
    scheme = request.endpoint.split("://", 1)[0] if "://" in request.endpoint else ""
    if request.endpoint != LOCAL_ENDPOINT and scheme not in ("http", "https", "grpc", "grpcs"):
        raise InvalidOptionError(
            f"--network shapes http(s):// and grpc(s):// endpoints, not {scheme}://",
            "point --endpoint at the server's HTTP(S) or gRPC port",
        )
    if request.fresh_process:
        raise InvalidOptionError(
            "--network and --fresh-process cannot be combined yet",
            "drop --fresh-process (repetitions still get a fresh session each)",
        )
    return select_shaper(request.link, request.shaper)


def _model_ref(spec: str, request: RunRequest) -> ModelRef:
    """A suite model or a model file; with a remote endpoint, a name neither of them knows is
    a model that exists only on the endpoint (its specs come from the server's metadata or
    ``--opt inputs=``)."""
    remote = request.endpoint is not None and request.endpoint != LOCAL_ENDPOINT
    try:
        return resolve_model(spec, request.variant)
    except UnknownModelError:
        if not remote or looks_like_path(spec):
            raise
        return remote_ref(spec)


def _cell_options(
    ref: ModelRef, options: Mapping[str, OptionValue], backend: str | None = None
) -> dict[str, OptionValue]:
    """A cell's backend options: a remote-only model is asked for by its name, and so is any
    model an OpenAI-compatible endpoint serves (``-m tiny-llm`` asks the endpoint for
    ``tiny-llm``, not for its local file's name)."""
    if (is_remote(ref) or backend == OPENAI_BACKEND) and "model_name" not in options:
        return {**options, "model_name": ref.name}
    return dict(options)


def check_run_limits(request: RunRequest) -> None:
    """The counts and durations of the request, checked before any rule is built from them:
    a negative, zero (counts), NaN or infinite value, a minimum duration above the cap, a
    negative seed or idle time is a one-line usage error naming the flag."""
    counts = {
        "--min-queries": (request.min_queries, 1),
        "--warmup-queries": (request.warmup_queries, 0),
    }
    for flag, (count, least) in counts.items():
        if count is not None and count < least:
            raise InvalidOptionError(
                f"{flag} must be at least {least}, got {count}", f"e.g. {flag} 100"
            )
    durations = {
        "--min-duration": (request.min_duration_s, False),
        "--max-duration": (request.max_duration_s, True),
        "--warmup-duration": (request.warmup_s, False),
        "--idle-s": (request.idle_s, False),
    }
    for flag, (value, positive) in durations.items():
        if value is None:
            continue
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            need = "a positive" if positive else "a non-negative"
            raise InvalidOptionError(
                f"{flag} must be {need} finite number of seconds, got {value:g}",
                f"e.g. {flag} 10",
            )
    low = request.min_duration_s
    cap = request.max_duration_s or (QUICK_STOP if request.quick else DEFAULT_STOP).max_duration_s
    if low is not None and low > cap:
        named = "--max-duration" if request.max_duration_s else "the default --max-duration"
        raise InvalidOptionError(
            f"--min-duration {low:g} s is above {named} {cap:g} s: the run would stop at the cap",
            "raise --max-duration or lower --min-duration",
        )
    if request.seed is not None and request.seed < 0:
        raise InvalidOptionError(
            f"--seed must be a non-negative integer, got {request.seed}", "e.g. --seed 0"
        )


def _check_installed(backends: Sequence[str]) -> None:
    """Unknown backend names and missing runtimes fail before anything runs."""
    for b in backends:
        avail = get_backend(b)().availability()
        if not avail.installed:
            raise RuntimeNotInstalledError(
                f"backend '{b}' needs {avail.runtime}, which is not installed", avail.install_hint
            )


def _check_network(network: NetworkRequest) -> None:
    rate = network.rate_qps
    if rate is not None and not (0 < rate <= MAX_RATE_QPS):
        raise InvalidOptionError(
            f"--rate must be positive and at most {MAX_RATE_QPS:,.0f} requests/s (what the load "
            f"generator can schedule from one event loop), got {rate:g}",
            "e.g. --rate 100; for more, run several generators",
        )
    if network.latency_bound_ms is not None and network.latency_bound_ms <= 0:
        raise InvalidOptionError(
            f"--latency-bound must be positive, got {network.latency_bound_ms}",
            "give the p99 bound in ms",
        )
    if not network.concurrency or any(n < 1 for n in network.concurrency):
        raise InvalidOptionError(
            f"invalid --concurrency '{','.join(map(str, network.concurrency))}'",
            "give positive integers, e.g. 1,2,4,8",
        )


def _network_settings(
    settings: ScenarioSettings, network: NetworkRequest, level: int | None
) -> ScenarioSettings:
    """The scenario settings with the network fields of its kind filled in."""
    if settings.kind is ScenarioKind.CONCURRENCY:
        return settings.model_copy(update={"concurrency": level})
    if network.rate_qps is None:
        raise InvalidOptionError(
            "the server scenario needs a target rate", "pass --rate QUERIES_PER_SECOND"
        )
    return settings.model_copy(
        update={"target_rate_qps": network.rate_qps, "arrival": network.arrival}
    )


def _rules(request: RunRequest) -> tuple[WarmupRule, StopRule]:
    """The warm-up and stop rules: the defaults (or the quick ones) with the request's values."""
    base_stop = QUICK_STOP if request.quick else DEFAULT_STOP
    base_warm = QUICK_WARMUP if request.quick else DEFAULT_WARMUP
    stop = StopRule(
        min_queries=request.min_queries or base_stop.min_queries,
        min_duration_s=(
            request.min_duration_s
            if request.min_duration_s is not None
            else base_stop.min_duration_s
        ),
        max_duration_s=request.max_duration_s or base_stop.max_duration_s,
    )
    stop = _with_mode(stop, request)
    warmup = WarmupRule(
        min_queries=(
            request.warmup_queries if request.warmup_queries is not None else base_warm.min_queries
        ),
        min_duration_s=request.warmup_s
        if request.warmup_s is not None
        else base_warm.min_duration_s,
        until_steady=_until_steady(request),
    )
    return warmup, stop


def _until_steady(request: RunRequest) -> bool | None:
    """Whether the warm-up runs until steady (None, left out of the report: it does not)."""
    steady = request.warmup_until_steady
    steady = DEFAULT_WARMUP_UNTIL_STEADY if steady is None else steady
    return True if steady else None


def _with_mode(stop: StopRule, request: RunRequest) -> StopRule:
    """``stop`` with the request's stop mode and, for the convergence stop, its knobs (each
    written into the report, defaults included); a knob without that stop is a usage error.
    A quick run stops at its minimums unless it asks to converge: a smoke test's length is
    the one asked for."""
    mode = request.stop or (StopMode.FIXED if request.quick else DEFAULT_STOP_MODE)
    knobs = {
        "--converge-windows": request.converge_windows,
        "--converge-threshold": request.converge_threshold,
        "--window": request.window_s,
    }
    if mode is StopMode.FIXED:
        given = [flag for flag, value in knobs.items() if value is not None]
        if given:
            raise InvalidOptionError(
                f"{given[0]} applies to the convergence stop, not to --stop fixed",
                f"drop {given[0]} or pass --stop converge",
            )
        return stop.model_copy(update={"mode": mode})
    k = request.converge_windows
    if k is not None and k < 2:
        raise InvalidOptionError(
            f"--converge-windows must be at least 2, got {k}", "e.g. --converge-windows 3"
        )
    threshold = request.converge_threshold
    if threshold is not None and not 0 < threshold < 1:
        raise InvalidOptionError(
            f"--converge-threshold is a fraction between 0 and 1, got {threshold:g}",
            "e.g. --converge-threshold 0.1 for 10%",
        )
    window = request.window_s
    if window is not None and not (0 < window < float("inf")):
        raise InvalidOptionError(
            f"--window must be a positive number of seconds, got {window:g}", "e.g. --window 2"
        )
    return stop.model_copy(
        update={
            "mode": mode,
            "window_s": window,
            "converge_windows": k or DEFAULT_CONVERGE_WINDOWS,
            "converge_threshold": threshold or STABILITY_THRESHOLD,
        }
    )


def _baseline_hooks(
    baseline: Path,
    backends: Sequence[str],
    backend_options: Mapping[str, Mapping[str, OptionValue]],
    seed: int,
    overrides: Mapping[str, tuple[int, ...]],
    feeds: Mapping[str, np.ndarray] | None,
    metric: AgreementMetric | None = None,
) -> dict[str, AccuracyHook]:
    """Per backend: compare with ``baseline``, loaded on that backend or one that loads it."""
    if not baseline.is_file():
        raise ModelFileError(f"baseline file not found: {baseline}", "check the --baseline path")
    local = ["onnxruntime", "litert", "torch"]  # a network backend would need an endpoint
    names = [n for n in local if n in backend_names()]
    loaders = [n for n in names if baseline.suffix in get_backend(n).formats]
    hooks: dict[str, AccuracyHook] = {}
    for b in backends:
        name = b if baseline.suffix in get_backend(b).formats else next(iter(loaders), None)
        if name is None:
            raise ModelFileError(
                f"no backend loads {baseline.suffix} files for --baseline",
                "pass an .onnx or .tflite baseline",
            )
        options = backend_options.get(name, {}) if name == b else {}
        hooks[b] = baseline_hook(
            baseline,
            get_backend(name)(),
            options,
            seed=seed,
            overrides=dict(overrides),
            feeds=feeds,
            metric=metric,
        )
    return hooks
