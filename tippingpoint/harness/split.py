"""Split runs (``run --split auto|TENSOR``): check the request, cut the model, profile each cut
for real, choose one, and turn the choice into a matrix cell of the ``split`` backend.

The profile is measured, not regressed: every placement runs through the same link as the run
(the tail on ``tippingpoint serve`` behind the shaper): the head on ONNX Runtime CPU (timed per
request), the tail request (its server-reported time), the transfer (the rest), bytes raw and
as sent. All-edge (the whole model here) and all-cloud (the model's input sent, the whole model
served) are profiled beside the cuts. With compression the head ends in an fp16 Cast or a uint8
QuantizeLinear and the tail starts with the inverse. The effect on the outputs (largest absolute
difference, top-1 agreement with the full model) is measured by running the same head and tail
files here on the profiling rows (the suite model's evaluation set where it has one), so it
costs no round trips; uncompressed, it shows head then tail equals the full model.

Objectives: ``latency`` (median end-to-end), ``energy`` (estimated: head time x the device's
active watts + the wait for the tail x its idle watts) and ``cost`` (the cloud's share:
server time x the instance's price per hour + the request's bytes x the network's price per
GB; the device's own cost is not in it).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from tippingpoint.backends.network import Completion, NetworkSession
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import InvalidOptionError, ModelFileError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.links import LinkSpec
from tippingpoint.core.schema import SplitCandidate, SplitRecord
from tippingpoint.core.types import OptionValue
from tippingpoint.harness.inputs import generate_feeds
from tippingpoint.harness.links.host import LinkThread
from tippingpoint.harness.links.select import select_shaper
from tippingpoint.harness.matrix import LOCAL_ENDPOINT, SPLIT_BACKEND, Matrix, RunRequest, expand
from tippingpoint.harness.standin import LocalStandIn
from tippingpoint.models.datasets import load_eval_set
from tippingpoint.models.registry import ModelRef, for_backend, resolve_model
from tippingpoint.models.split import (
    ALL_CLOUD,
    ALL_EDGE,
    Candidate,
    Compression,
    Cut,
    SplitPair,
    compress_pair,
    crossover_bandwidth,
    enumerate_cuts,
    extract_split,
)

AUTO = "auto"
DEFAULT_MAX_CUTS = 8
"""Cuts profiled by ``--split auto`` on a bigger graph: evenly spaced, smallest tensors first."""
DEFAULT_PROFILE_QUERIES = 10
WARM_QUERIES = 2
INFER = "infer"
"""The Server-Timing entry the profile takes as the tail's time (the server's queue and
inference; receiving and decoding the request count as transfer)."""
PROFILE_ROWS = 64
"""Evaluation rows the output error is measured on (and int8 is calibrated on)."""


class Objective(str, Enum):
    """What ``--split auto`` minimises."""

    LATENCY = "latency"
    ENERGY = "energy"
    COST = "cost"


@dataclass(frozen=True)
class SplitRequest:
    """What ``--split`` asks for; prices and watts come from profiles the CLI resolved."""

    split: str
    """``auto`` or a cut tensor's name."""
    work_dir: Path
    """Where the head and tail files are written."""
    compression: Compression = Compression.NONE
    objective: Objective = Objective.LATENCY
    active_watts: float | None = None
    idle_watts: float | None = None
    cloud_usd_per_hour: float | None = None
    usd_per_gb: float = 0.0
    max_cuts: int = DEFAULT_MAX_CUTS
    queries: int = DEFAULT_PROFILE_QUERIES


@dataclass(frozen=True)
class Placement:
    """One candidate to profile: a cut's head and tail files, or all-edge / all-cloud."""

    name: str
    pair: SplitPair | None
    raw_bytes: int | None


@dataclass(frozen=True)
class SplitPlan:
    """A checked split request: the model file, its cuts, and the placements to profile."""

    ref: ModelRef
    model: Path
    cuts: tuple[Cut, ...]
    request: SplitRequest


# ----------------------------------------------------------------------------- checks


def check_split(run: RunRequest, split: SplitRequest) -> SplitPlan:
    """Every usage error of a split request, before anything runs (exit 2): not one model, a
    model that is no ONNX file, no ONNX Runtime, a tensor that is no valid cut (the valid ones
    listed), compression of a non-float cut, an objective without its figures."""
    from tippingpoint.models.split import InvalidCutError

    if len(run.models) != 1:
        raise InvalidOptionError(
            f"--split cuts one model, got {len(run.models) or 'the default suite of'} models",
            "pass exactly one -m MODEL with --split",
        )
    if run.backends and tuple(run.backends) != (SPLIT_BACKEND,):
        raise InvalidOptionError(
            "--split runs the head on ONNX Runtime CPU and the tail on the endpoint; -b does "
            "not apply",
            "drop -b/--backend",
        )
    if run.fresh_process:
        raise InvalidOptionError(
            "--split and --fresh-process cannot be combined yet",
            "drop --fresh-process (repetitions still get a fresh session each)",
        )
    avail = get_backend(SPLIT_BACKEND)().availability()
    if not avail.installed:
        raise InvalidOptionError(
            f"--split needs {avail.runtime}, which is not installed", avail.install_hint
        )
    spec = run.models[0]
    ref = for_backend(resolve_model(spec, run.variant), (".onnx",))
    if ref.path.suffix != ".onnx":
        raise ModelFileError(
            f"--split cuts ONNX graphs and {ref.path.name} is no .onnx file",
            "pass an .onnx model (export it to ONNX) or a suite model name",
        )
    cuts = tuple(enumerate_cuts(ref.path))
    if split.split != AUTO and not any(c.name == split.split for c in cuts):
        names = [c.name for c in cuts]
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        raise InvalidCutError(
            f"--split '{split.split}' is no valid single-tensor cut of {ref.path.name}",
            f"valid cuts: {shown}; or --split auto" if names else "this model has no cut",
        )
    if split.compression is not Compression.NONE:
        chosen = [c for c in cuts if split.split in (AUTO, c.name)]
        if not any(c.dtype == "float32" for c in chosen):
            raise InvalidOptionError(
                f"--split-compression {split.compression.value} applies to float32 cuts only",
                "pick a float32 cut or --split-compression none",
            )
    if split.objective is Objective.ENERGY and split.active_watts is None:
        raise InvalidOptionError(
            "--split-objective energy needs the device's watts",
            "add --device PROFILE (e.g. rpi5) or --peak-watts W",
        )
    if split.objective is Objective.COST and split.cloud_usd_per_hour is None:
        raise InvalidOptionError(
            "--split-objective cost needs the cloud instance's price per hour",
            "add --split-cloud PROFILE (e.g. gpu-t4-ondemand)",
        )
    if split.queries < 3 or split.max_cuts < 1:
        raise InvalidOptionError(
            "--split-queries must be at least 3 and the cut bound at least 1",
            "e.g. --split-queries 10",
        )
    return SplitPlan(ref, ref.path, cuts, split)


def _bounded(cuts: Sequence[Cut], limit: int) -> list[Cut]:
    """At most ``limit`` cuts: the smallest tensors first, the rest evenly spaced, in order."""
    if len(cuts) <= limit:
        return list(cuts)
    by_size = sorted(cuts, key=lambda c: (c.bytes_per_sample or 1 << 62, c.index))
    keep = {c.name for c in by_size[: limit // 2]}
    step = len(cuts) / max(1, limit - len(keep))
    for i in range(limit - len(keep)):
        keep.add(cuts[min(len(cuts) - 1, int(i * step))].name)
    return [c for c in cuts if c.name in keep][:limit]


# ----------------------------------------------------------------------------- files


def _inputs(plan: SplitPlan, seed: int) -> list[np.ndarray]:
    """Profiling rows: the suite model's evaluation set (up to PROFILE_ROWS), else generated."""
    eval_path = plan.model.parent / f"{plan.ref.name}.eval.npz"
    if eval_path.is_file():
        rows = load_eval_set(eval_path)
        return [a[:PROFILE_ROWS] for a in rows.inputs]
    from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend

    with OnnxRuntimeCpuBackend().load(plan.model, {}) as session:
        return generate_feeds(session.inputs, 8, {}, seed, resizable=True)


def _run_rows(path: Path, rows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Outputs of ``path`` on every row, one row at a time (a fixed batch of 1 allowed)."""
    from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend

    outs: list[list[np.ndarray]] = []
    with OnnxRuntimeCpuBackend().load(path, {"intra_op_threads": 1}) as session:
        for i in range(len(rows[0])):
            got = session.bind([r[i : i + 1] for r in rows])()
            outs.append([np.asarray(o) for o in got])
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def placements(plan: SplitPlan, rows: Sequence[np.ndarray]) -> list[Placement]:
    """Write the head and tail files of every cut to profile (named ``<stem>.c<i>``), the
    compressed pair when asked, and list them between all-cloud and all-edge."""
    req = plan.request
    cuts = (
        _bounded(plan.cuts, req.max_cuts)
        if req.split == AUTO
        else [c for c in plan.cuts if c.name == req.split]
    )
    stem = plan.model.name.removesuffix(".onnx")
    work = req.work_dir
    out: list[Placement] = [Placement(ALL_CLOUD, None, int(sum(r[:1].nbytes for r in rows)))]
    for cut in cuts:
        if req.compression is not Compression.NONE and cut.dtype != "float32":
            continue
        tmp = work / f"c{cut.index}.tmp"
        pair = extract_split(plan.model, cut.name, tmp)
        head = work / f"{stem}.c{cut.index}.head.onnx"
        tail = work / f"{stem}.c{cut.index}.tail.onnx"
        pair.head.replace(head)
        pair.tail.replace(tail)
        tmp.rmdir()
        pair = SplitPair(cut.name, head, tail)
        activation = _run_rows(head, rows)[0]
        raw = int(activation[:1].nbytes)
        if req.compression is not Compression.NONE:
            rng = (float(activation.min()), float(activation.max()))
            pair = compress_pair(pair, req.compression, work, rng)
        out.append(Placement(cut.name, pair, raw))
    out.append(Placement(ALL_EDGE, None, None))
    return out


# ----------------------------------------------------------------------------- profiling


@contextmanager
def _shaped(url: str, link: LinkSpec | None, shaper: str) -> Iterator[str]:
    """``url`` behind the link of ``link`` (as a run is shaped), or as is without one."""
    if link is None:
        yield url
        return
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.hostname is not None
    thread = LinkThread(select_shaper(link, shaper), (parts.hostname, parts.port or 80))
    host, port = thread.start()
    try:
        yield f"{parts.scheme}://{host}:{port}"
    finally:
        thread.stop()


def _median_ms(values_ns: Sequence[int]) -> float:
    return statistics.median(values_ns) / 1e6


def _errors(out: np.ndarray, ref: np.ndarray) -> tuple[float, float | None]:
    """Largest absolute difference and, for class scores, the top-1 agreement."""
    err = float(np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64))))
    if ref.ndim == 2 and ref.shape[1] > 1:
        return err, float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1)))
    return err, None


def _network_profile(
    session: NetworkSession, feeds: Sequence[np.ndarray], queries: int
) -> tuple[list[int], list[int], list[int], list[int]]:
    """(latency, server, bytes sent, head) of ``queries`` single requests after a warm-up."""

    async def one() -> Completion:
        return await send()

    send = session.request_fn(ScenarioKind.SINGLE_STREAM, feeds)
    budget = session.limits.request_budget_s + 5
    lat: list[int] = []
    server: list[int] = []
    sent: list[int] = []
    for i in range(WARM_QUERIES + queries):
        c = session.run_async(one(), budget)
        if c.error is not None:
            raise InvalidOptionError(
                f"a profiling request failed ({c.error})",
                "check that the endpoint serves the split's tail files",
            )
        if i >= WARM_QUERIES:
            lat.append(c.end_ns - c.start_ns)
            server.append(max(c.server_ns, 0))
            sent.append(c.bytes_sent)
    heads = list(getattr(session, "head_ns", [])[WARM_QUERIES:])
    return lat, server, sent, heads


def profile(
    plan: SplitPlan,
    items: Sequence[Placement],
    rows: Sequence[np.ndarray],
    url: str,
    on_placement: Callable[[str], None] | None = None,
) -> list[SplitCandidate]:
    """Measure every placement against ``url`` (already shaped): medians of ``queries``
    single requests after a warm-up, and the output error of each split on ``rows``."""
    from tippingpoint.backends.http.backend import HttpBackend, HttpSession
    from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend
    from tippingpoint.backends.split import SplitBackend, SplitSession

    req = plan.request
    feeds = [r[:1] for r in rows]
    reference = _run_rows(plan.model, rows)[0]
    out: list[SplitCandidate] = []
    for item in items:
        if on_placement is not None:
            on_placement(item.name)
        if item.name == ALL_EDGE:
            with OnnxRuntimeCpuBackend().load(plan.model, {"intra_op_threads": 1}) as local:
                call = local.bind(feeds)
                times: list[int] = []
                for i in range(WARM_QUERIES + req.queries):
                    t0 = time.perf_counter_ns()
                    call()
                    if i >= WARM_QUERIES:
                        times.append(time.perf_counter_ns() - t0)
            ms = _median_ms(times)
            out.append(SplitCandidate(name=ALL_EDGE, head_ms=ms, e2e_ms=ms, energy_j=None))
            continue
        session: HttpSession | SplitSession
        if item.pair is None:  # all-cloud: the model's input to the whole model
            options = {
                "endpoint": url,
                "model_name": plan.model.stem,
                "server_timing_metric": INFER,
            }
            session = HttpBackend().load(plan.model, options)
        else:
            split_opts: dict[str, str | int | float | bool] = {
                "endpoint": url,
                "head": str(item.pair.head),
                "tail": str(item.pair.tail),
                "cut": item.name,
                "compression": req.compression.value,
                "server_timing_metric": INFER,
            }
            session = SplitBackend().load(plan.model, split_opts)
        with session:
            lat, server, sent, heads = _network_profile(session, feeds, req.queries)
        max_err: float | None = None
        top1: float | None = None
        if item.pair is not None:  # the same head and tail files, run here on every row
            got = _run_rows(item.pair.tail, _run_rows(item.pair.head, rows))[0]
            max_err, top1 = _errors(got, reference)
        e2e = _median_ms(lat)
        head = _median_ms(heads) if heads else 0.0
        tail = _median_ms(server)
        out.append(
            SplitCandidate(
                name=item.name,
                head_ms=head,
                tail_ms=tail,
                transfer_ms=max(0.0, e2e - head - tail),
                e2e_ms=e2e,
                raw_bytes=item.raw_bytes,
                sent_bytes=float(statistics.median(sent)),
                max_abs_error=max_err,
                top1_agreement=top1,
            )
        )
    return [_with_energy(c, req) for c in out]


def _with_energy(c: SplitCandidate, req: SplitRequest) -> SplitCandidate:
    """The estimated device energy: head x active watts + the wait x idle watts."""
    if req.active_watts is None:
        return c
    idle = req.idle_watts or 0.0
    joules = c.head_ms / 1e3 * req.active_watts + (c.e2e_ms - c.head_ms) / 1e3 * idle
    return c.model_copy(update={"energy_j": joules})


def objective_value(c: SplitCandidate, req: SplitRequest) -> float:
    """What the objective minimises for ``c``: ms, estimated J, or cloud USD per inference."""
    if req.objective is Objective.ENERGY:
        return c.energy_j if c.energy_j is not None else float("inf")
    if req.objective is Objective.COST:
        hourly = req.cloud_usd_per_hour or 0.0
        compute = (c.tail_ms or 0.0) / 1e3 * hourly / 3600.0
        return compute + (c.sent_bytes or 0.0) / 1e9 * req.usd_per_gb
    return c.e2e_ms


def choose(cands: Sequence[SplitCandidate], req: SplitRequest) -> SplitCandidate:
    """The cut to run: the given one, or with ``auto`` the cut minimising the objective (the
    first on a tie; all-edge and all-cloud are not splits and are only marked)."""
    cuts = [c for c in cands if c.name not in (ALL_EDGE, ALL_CLOUD)]
    if not cuts:
        raise InvalidOptionError("no cut could be profiled", "run the model whole")
    if req.split != AUTO:
        return next(c for c in cuts if c.name == req.split)
    return min(cuts, key=lambda c: objective_value(c, req))


def crossover(
    chosen: SplitCandidate, cands: Sequence[SplitCandidate], link: LinkSpec | None
) -> float | None:
    """The bandwidth (bit/s) at which the chosen split and all-edge are equally fast, from the
    profile's fixed costs (head, tail, the link's round trip) and the bytes sent."""
    edge = next((c for c in cands if c.name == ALL_EDGE), None)
    if edge is None or chosen.sent_bytes is None:
        return None
    rtt = (link.delay_up_ms + link.delay_down_ms) / 1e3 if link is not None else 0.0
    a = Candidate(
        chosen.name, chosen.head_ms / 1e3, (chosen.tail_ms or 0.0) / 1e3, chosen.sent_bytes
    )
    b = Candidate(ALL_EDGE, edge.head_ms / 1e3, 0.0, None)
    return crossover_bandwidth(a, b, rtt)


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class SplitRun:
    """The matrix to execute (one split cell per scenario) and the record its reports carry."""

    matrix: Matrix
    record: SplitRecord
    chosen: SplitCandidate
    standin: LocalStandIn | None = None
    """The local stand-in serving the tails, still running for the run; :meth:`close` it."""

    def close(self) -> None:
        """Stop the local stand-in, if one runs."""
        if self.standin is not None:
            self.standin.__exit__()


def plan_and_profile(
    run: RunRequest,
    split: SplitRequest,
    *,
    seed: int = 0,
    on_note: Callable[[str], None] | None = None,
) -> SplitRun:
    """Check (usage errors first), cut, profile through the link, choose, and build the
    matrix of the chosen split. With no endpoint (or ``local``) the tails are served by a local
    stand-in, kept running for the run (its reports are flagged local-standin); the caller
    closes it with :meth:`SplitRun.close` once the matrix ran."""
    plan = check_split(run, split)
    endpoint = run.endpoint
    local = endpoint is None or endpoint == LOCAL_ENDPOINT
    if not local and endpoint is not None and not endpoint.startswith("http://"):
        raise InvalidOptionError(
            f"--split sends the tail's requests over plain http://, not {endpoint}",
            "point --endpoint at the server's http:// port",
        )
    base = dataclasses.replace(
        run,
        backends=(SPLIT_BACKEND,),
        endpoint=None,
        link=None,
        shaper="auto",
        options=(),
        scenarios=run.scenarios or (ScenarioKind.SINGLE_STREAM,),
    )
    probe = expand(base)  # every other usage error of the run, before anything runs
    if run.link is not None:
        select_shaper(run.link, run.shaper)
    split.work_dir.mkdir(parents=True, exist_ok=True)
    rows = _inputs(plan, seed)
    items = placements(plan, rows)
    served = [plan.model, *(i.pair.tail for i in items if i.pair is not None)]
    note = on_note or (lambda _text: None)
    standin: LocalStandIn | None = None
    if local:
        standin = LocalStandIn(served)
        endpoint = standin.__enter__()
        note(f"local stand-in (a loopback stand-in, not a cloud endpoint) at {endpoint}")
    assert endpoint is not None
    if standin is None:
        _check_served(endpoint, served)
    try:
        with _shaped(endpoint, run.link, run.shaper) as shaped:
            cands = profile(plan, items, rows, shaped, lambda n: note(f"profiling {n}"))
        done = _split_run(run, split, plan, items, cands, probe, endpoint, standin)
    except BaseException:
        if standin is not None:
            standin.__exit__()
        raise
    return done


def _check_served(endpoint: str, files: Sequence[Path]) -> None:
    """A remote endpoint must serve the full model and every tail (KServe v2 model ready);
    one it lacks is a usage error naming the serve command, before anything is measured."""
    import urllib.error
    import urllib.request

    missing = []
    for path in files:
        url = f"{endpoint.rstrip('/')}/v2/models/{path.stem}/ready"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                ok = resp.status == 200
        except (urllib.error.URLError, OSError):
            ok = False
        if not ok:
            missing.append(path)
    if missing:
        folder = missing[0].parent
        raise InvalidOptionError(
            f"{endpoint} does not serve {len(missing)} of the split's models (e.g. "
            f"{missing[0].stem})",
            f"serve them there: tippingpoint serve -m {missing[0]} ... (this run wrote them to "
            f"{folder}/), or drop --endpoint to use a loopback stand-in",
        )


def _split_run(
    run: RunRequest,
    split: SplitRequest,
    plan: SplitPlan,
    items: Sequence[Placement],
    cands: Sequence[SplitCandidate],
    probe: Matrix,
    endpoint: str,
    standin: LocalStandIn | None,
) -> SplitRun:
    """The chosen split's record and matrix (its cells sent to ``endpoint``)."""
    chosen = choose(cands, split)
    item = next(i for i in items if i.name == chosen.name)
    assert item.pair is not None
    record = SplitRecord(
        cut=chosen.name,
        chosen_by="auto" if split.split == AUTO else "given",
        objective=split.objective.value,
        compression=split.compression.value,
        activation_bytes=item.raw_bytes,
        network_profile=run.link.name if run.link is not None else None,
        device_watts=split.active_watts,
        candidates=tuple(cands),
        crossover_bandwidth_bps=crossover(chosen, cands, run.link),
    )
    options: dict[str, OptionValue] = {
        "head": str(item.pair.head),
        "tail": str(item.pair.tail),
        "cut": chosen.name,
        "compression": split.compression.value,
        "endpoint": endpoint,
    }
    for opt in run.options:
        if opt.backend in (None, SPLIT_BACKEND):
            options[opt.key] = opt.value
    cells = tuple(
        dataclasses.replace(c, backend_options={**c.backend_options, **options})
        for c in probe.cells
    )
    link = select_shaper(run.link, run.shaper) if run.link is not None else None
    matrix = dataclasses.replace(
        probe,
        cells=cells,
        link=link,
        standin_models=None,
        standin_url=endpoint if standin is not None else None,
        split=record,
    )
    return SplitRun(matrix, record, chosen, standin)
