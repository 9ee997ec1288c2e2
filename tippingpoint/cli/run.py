"""``tippingpoint run``: the flags, and the rendering of a run as it goes and when it ends.

The flags become a typed :class:`~tippingpoint.harness.matrix.RunRequest`; the harness expands
it into cells (:func:`~tippingpoint.harness.matrix.expand`) and runs them
(:func:`~tippingpoint.harness.execute.execute`); this module renders the events and the
summary, and maps the harness's exit status to the exit code.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tippingpoint.core.kinds import ScenarioKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console
    from rich.progress import Progress as ProgressBar
    from rich.progress import TaskID

    from tippingpoint.core.links import LinkSpec
    from tippingpoint.core.schema import InterleaveOrder, Report, StopMode
    from tippingpoint.harness.collectors.options import CollectorOptions
    from tippingpoint.harness.events import Event
    from tippingpoint.harness.execute import ExecutionResult, ExitStatus
    from tippingpoint.harness.generative import GenerationSettings
    from tippingpoint.harness.matrix import Matrix, RunRequest
    from tippingpoint.harness.runner import Progress as RunProgress
    from tippingpoint.models.accuracy import AgreementMetric


def run(
    model: list[str] = typer.Option(
        [], "--model", "-m", help="Suite model name or path to an .onnx/.tflite file (repeatable)."
    ),
    backend: list[str] = typer.Option([], "--backend", "-b", help="Backend name (repeatable)."),
    scenario: list[ScenarioKind] = typer.Option(
        [], "--scenario", "-s", help="Scenario (repeatable); default single-stream and offline."
    ),
    batch_sizes: str | None = typer.Option(
        None, help="Batch sizes of the offline scenario (default 1,8,32)."
    ),
    variant: str | None = typer.Option(None, help="Suite variant, e.g. fp32, fp16, int8."),
    suite: Path | None = typer.Option(
        None,
        help="TOML suite file with a \\[run] table; flags given on the command line override it.",
    ),
    out: Path = typer.Option(Path("results"), "--out", "-o", help="Directory for the reports."),
    quick: bool = typer.Option(False, help="Short smoke-test run (recorded as quick)."),
    min_queries: int | None = typer.Option(None, help="Minimum measured queries (default 662)."),
    min_duration: float | None = typer.Option(None, help="Minimum measured seconds (default 10)."),
    max_duration: float | None = typer.Option(None, help="Cap on measured seconds (default 120)."),
    warmup_queries: int | None = typer.Option(None, help="Minimum warm-up queries (default 10)."),
    warmup_duration: float | None = typer.Option(None, help="Minimum warm-up seconds (default 2)."),
    stop: str | None = typer.Option(
        None,
        "--stop",
        help="What ends the measured part once its minimums are met: converge (default; whole "
        "windows until the last 3 agree within 10% of their mean, or --max-duration) or fixed "
        "(LoadGen's rule: stop at the minimums; the default with --quick).",
    ),
    converge_windows: int | None = typer.Option(
        None, help="--stop converge: windows that must agree (default 3)."
    ),
    converge_threshold: float | None = typer.Option(
        None, help="--stop converge: their largest deviation from their mean (default 0.10)."
    ),
    window: float | None = typer.Option(
        None,
        help="--stop converge: window seconds (default: the minimum duration over 5, longer "
        "when the minimums took longer or a window would hold under 50 queries).",
    ),
    warmup_until_steady: bool | None = typer.Option(
        None,
        "--warmup-until-steady/--no-warmup-until-steady",
        help="Warm up on until the last windows' rates agree (the convergence rule), up to "
        "--max-duration, so ramps stay out of the measurement (default off).",
    ),
    opt: list[str] = typer.Option(
        [], "--opt", help="Backend option KEY=VALUE or BACKEND.KEY=VALUE."
    ),
    shape: list[str] = typer.Option(
        [],
        "--shape",
        help="Input shape NAME=1x3x224x224 for dynamic dimensions; a dynamic first dimension is "
        "the batch and always takes the scenario's batch size.",
    ),
    inputs: Path | None = typer.Option(
        None,
        "--inputs",
        help="An .npz of input arrays (by input name) instead of random data; rows are samples, "
        "a query takes batch-size rows (cycled), floats are quantised for int8/uint8 inputs.",
    ),
    seed: int | None = typer.Option(
        None, help="Seed of generated inputs and bootstrap (default 0)."
    ),
    repeat: int = typer.Option(
        1,
        "--repeat",
        help="Run each cell N times as separate runs (a fresh session each), interleaved with "
        "the other cells (A B A B): a group that compare, show, report and cost treat as one "
        "measurement with N values. Verdicts between groups come from the spread between runs.",
    ),
    order: str = typer.Option(
        "alternate",
        "--order",
        help="Order of repeated runs: alternate (A B A B ...) or shuffle (each round in a "
        "random order drawn from --seed).",
    ),
    fresh_process: bool = typer.Option(
        False,
        "--fresh-process",
        help="Run each repetition in a process of its own (as pyperf does), not only a fresh "
        "session; no progress bar then.",
    ),
    accuracy: bool = typer.Option(
        False, "--accuracy", help="Also score each run on the suite model's evaluation set."
    ),
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="Also score each run's outputs against this file's (e.g. int8 vs fp32 agreement); "
        "not with --accuracy.",
    ),
    agreement_metric: str | None = typer.Option(
        None,
        "--agreement-metric",
        help="--baseline metric: top1, cosine or relative-error (default: top1 for class "
        "scores, cosine and relative-error for reconstructions, regressions, embeddings).",
    ),
    endpoint: str | None = typer.Option(
        None,
        help="URL of a remote inference endpoint (runs the http backend against it); 'local' "
        "starts the reference server on loopback as a stand-in (flagged local-standin).",
    ),
    network: str | None = typer.Option(
        None,
        "--network",
        help="Network profile (e.g. lighthouse-mobile-slow-4g) shaped between the client and "
        "--endpoint; the report records the link (tippingpoint profiles list).",
    ),
    shaper: str = typer.Option(
        "auto",
        "--shaper",
        help="How --network is applied: auto (the user-space proxy), proxy, tc (netem, else "
        "tbf for a rate-only profile, else the proxy), netem or tbf.",
    ),
    split: str | None = typer.Option(
        None,
        "--split",
        help="Split inference: auto (profile the cuts through --network, run the best) or a "
        "cut tensor's name; the head runs here (ONNX Runtime CPU), the tail on --endpoint "
        "(without one, on a loopback stand-in, flagged local-standin).",
    ),
    split_compression: str = typer.Option(
        "none", "--split-compression", help="--split: the cut tensor sent as none, fp16 or int8."
    ),
    split_objective: str = typer.Option(
        "latency",
        "--split-objective",
        help="--split auto minimises latency, energy (estimated, needs --device or "
        "--peak-watts) or cost (the cloud's share, needs --split-cloud).",
    ),
    split_cloud: str | None = typer.Option(
        None, "--split-cloud", help="--split-objective cost: the cloud profile's hourly price."
    ),
    split_queries: int = typer.Option(
        10, "--split-queries", help="--split: profiled requests per placement (after 2 warm)."
    ),
    rate: float | None = typer.Option(
        None, help="Server scenario: target queries per second (open loop)."
    ),
    arrival: str = typer.Option(
        "poisson", help="Server scenario arrivals: poisson, constant or gamma (see --burstiness)."
    ),
    concurrency: str = typer.Option(
        "1", help="Concurrency scenario: in-flight requests, e.g. 1,2,4,8 (one run each)."
    ),
    latency_bound: float | None = typer.Option(
        None, help="Server scenario: find the peak rate whose p99 (ms) meets this bound."
    ),
    slo: str | None = typer.Option(
        None,
        "--slo",
        help="Generative runs: the SLO a good request meets, ttft=MS,tpot=MS,e2el=MS (any "
        "subset); goodput and the good fraction are reported against it.",
    ),
    prompts: Path | None = typer.Option(
        None,
        "--prompts",
        help='Generative runs: a JSONL file of {"prompt": TEXT, "max_tokens": N} lines '
        "(default: a seeded synthetic set).",
    ),
    prompt_words: int = typer.Option(
        32, "--prompt-words", help="Generative runs: words per synthetic prompt."
    ),
    output_tokens: int = typer.Option(
        64, "--output-tokens", help="Generative runs: max_tokens per request (ignore_eos)."
    ),
    burstiness: float = typer.Option(
        1.0,
        "--burstiness",
        help="--arrival gamma: the gamma shape (1 Poisson, below 1 burstier, above 1 steadier).",
    ),
    find_peak: bool = typer.Option(
        False,
        "--find-peak",
        help="Generative server scenario: search the peak rate (from --rate) whose good fraction "
        "against --slo is at least 90%.",
    ),
    collect: list[str] = typer.Option(
        [],
        "--collect",
        "-c",
        help="Collector (repeatable): auto (best energy source), all, rapl, nvml, jetson, rpi5, "
        "hwmon, meter-command, meter-csv, estimate, cpu, memory, thermal.",
    ),
    idle_s: float = typer.Option(
        5.0, help="Idle power measured before and after each run, seconds (0: skip)."
    ),
    idle_watts: float | None = typer.Option(
        None, help="Device idle watts, for --collect estimate."
    ),
    peak_watts: float | None = typer.Option(
        None, help="Device peak watts, for --collect estimate."
    ),
    meter_command: str | None = typer.Option(
        None, help="Command printing an external meter's watts (--collect meter-command)."
    ),
    meter_csv: Path | None = typer.Option(
        None, help="An external meter's timestamped CSV log (--collect meter-csv)."
    ),
    meter_rate: float = typer.Option(
        5.0, "--meter-rate", min=0.1, help="Polls per second of --meter-command."
    ),
    device: str | None = typer.Option(
        None,
        "--device",
        help="Device profile (e.g. rpi5) whose idle/active watts feed --collect estimate.",
    ),
    hwmon_device: str | None = typer.Option(
        None, "--hwmon-device", help="hwmon device name to read (--collect hwmon; auto tries it)."
    ),
    gpu_index: int = typer.Option(0, "--gpu-index", min=0, help="GPU to measure (nvml)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of tables."),
) -> int:
    """Run the benchmark matrix and write one JSON report per run under --out."""
    from rich.console import Console

    from tippingpoint.cli.flags import parse_arrival, parse_option, positive_ints
    from tippingpoint.harness.config import load_suite_file
    from tippingpoint.harness.execute import ExecuteOptions, execute
    from tippingpoint.harness.inputs import parse_shape_overrides
    from tippingpoint.harness.matrix import NetworkRequest, RunRequest, expand, with_suite

    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
    suite_file = load_suite_file(suite) if suite is not None else None
    sizes = "give positive integers separated by commas, e.g. 1,8,32"
    request = RunRequest(
        models=tuple(model),
        backends=tuple(backend),
        scenarios=tuple(scenario),
        batch_sizes=(
            positive_ints(batch_sizes, "--batch-sizes", sizes) if batch_sizes is not None else None
        ),
        variant=variant,
        quick=quick,
        min_queries=min_queries,
        min_duration_s=min_duration,
        max_duration_s=max_duration,
        warmup_queries=warmup_queries,
        warmup_s=warmup_duration,
        stop=_stop_mode(stop),
        converge_windows=converge_windows,
        converge_threshold=converge_threshold,
        window_s=window,
        warmup_until_steady=warmup_until_steady,
        seed=seed,
        repeat=repeat,
        order=_order(order),
        fresh_process=fresh_process,
        accuracy=accuracy,
        baseline=baseline,
        agreement_metric=_agreement_metric(agreement_metric),
        endpoint=endpoint,
        network=NetworkRequest(
            rate_qps=rate,
            arrival=parse_arrival(arrival),
            concurrency=positive_ints(
                concurrency, "--concurrency", "give positive integers, e.g. 1,2,4,8"
            ),
            latency_bound_ms=latency_bound,
        ),
        generation=_generation(slo, prompts, prompt_words, output_tokens, burstiness, find_peak),
        options=tuple(parse_option(o) for o in opt),
        shape_overrides=parse_shape_overrides(list(shape)),
        inputs=inputs,
        collectors=tuple(collect),
        collector_options=_collector_options(
            device,
            idle_watts=idle_watts,
            peak_watts=peak_watts,
            meter_command=meter_command,
            meter_rate=meter_rate,
            meter_csv=meter_csv,
            hwmon_device=hwmon_device,
            gpu_index=gpu_index,
        ),
        idle_s=idle_s,
    )
    if suite_file is not None:
        request = with_suite(request, suite_file)
    if suite_file is not None and network is None:
        network = suite_file.run.network
    if suite_file is not None and shaper == "auto" and suite_file.run.shaper is not None:
        shaper = suite_file.run.shaper
    if network is not None or shaper != "auto":
        request = dataclasses.replace(
            request, link=_network_link(network) if network is not None else None, shaper=shaper
        )
    close_split: Callable[[], None] | None = None
    if split is not None:
        matrix, close_split = _split_matrix(
            request,
            split,
            split_compression,
            split_objective,
            split_cloud,
            split_queries,
            network,
            out,
            device=device,
            idle_watts=idle_watts,
            peak_watts=peak_watts,
            console=console,
        )
    else:
        matrix = expand(request)
    if matrix.link is not None:
        console.print(_escape_markup(matrix.link.reason))
    bar = not as_json and (sys.stderr.isatty() or sys.stdout.isatty())
    view = _RunView(console, bar)
    try:
        result = execute(matrix, ExecuteOptions(out=out, progress=bar), on_event=view)
    finally:
        view.close()
        if close_split is not None:
            close_split()
    _print_summary(console, result, out, as_json)
    return exit_code(result.status)


def _split_matrix(
    request: RunRequest,
    split: str,
    compression: str,
    objective: str,
    cloud: str | None,
    queries: int,
    network: str | None,
    out: Path,
    *,
    device: str | None,
    idle_watts: float | None,
    peak_watts: float | None,
    console: Console,
) -> tuple[Matrix, Callable[[], None]]:
    """``--split``: the usage checks, the profile of the cuts, the chosen split's matrix, and
    what stops the local stand-in serving its tail once the matrix ran."""
    from tippingpoint.core.errors import InvalidOptionError
    from tippingpoint.harness.split import Objective, SplitRequest, plan_and_profile
    from tippingpoint.models.split import Compression
    from tippingpoint.profiles.loader import load_catalog, user_dir

    def choice(enum: type[Compression] | type[Objective], text: str, flag: str) -> str:
        names = [m.value for m in enum]
        if text.lower() not in names:
            raise InvalidOptionError(
                f"{flag} must be {', '.join(names)}, got '{text}'", f"e.g. {flag} {names[0]}"
            )
        return text.lower()

    comp = Compression(choice(Compression, compression, "--split-compression"))
    goal = Objective(choice(Objective, objective, "--split-objective"))
    catalog = load_catalog([user_dir()] if user_dir().is_dir() else [])
    active, idle = peak_watts, idle_watts
    if device is not None:
        prof = catalog.device(device)
        active = active if active is not None else prof.active_watts.value
        idle = idle if idle is not None else prof.idle_watts.value
    hourly = None
    if cloud is not None:
        price = catalog.cloud(cloud).price_per_hour
        if price is None:
            raise InvalidOptionError(
                f"cloud profile '{cloud}' has no price per hour", "pick an instance profile"
            )
        hourly = price.value
    per_gb = catalog.network(network).cost_per_gb.value if network is not None else 0.0
    plan = plan_and_profile(
        request,
        SplitRequest(
            split=split,
            work_dir=out / "split",
            compression=comp,
            objective=goal,
            active_watts=active,
            idle_watts=idle,
            cloud_usd_per_hour=hourly,
            usd_per_gb=per_gb,
            queries=queries,
        ),
        seed=request.seed or 0,
        on_note=lambda text: console.print(_escape_markup(text)),
    )
    console.print(
        _escape_markup(
            f"split: cut {plan.record.cut} ({plan.record.chosen_by}, {goal.value}), "
            f"{comp.value}, profiled e2e p50 {plan.chosen.e2e_ms:.2f} ms"
        )
    )
    return plan.matrix, plan.close


def _generation(
    slo: str | None,
    prompts: Path | None,
    prompt_words: int,
    output_tokens: int,
    burstiness: float,
    find_peak: bool,
) -> GenerationSettings:
    """The generative flags as settings (``--slo`` parsed: a bad one is a usage error)."""
    from tippingpoint.core.token_metrics import parse_slo
    from tippingpoint.harness.generative import GenerationSettings

    return GenerationSettings(
        slo=parse_slo(slo) if slo is not None else None,
        prompts_file=prompts,
        prompt_words=prompt_words,
        output_tokens=output_tokens,
        burstiness=burstiness,
        find_peak=find_peak,
    )


def _network_link(name: str) -> LinkSpec:
    """The link of network profile ``name`` (an unknown one is a usage error naming the fix)."""
    from tippingpoint.profiles.loader import load_catalog, user_dir

    return load_catalog([user_dir()] if user_dir().is_dir() else []).network(name).link()


def _escape_markup(text: str) -> str:
    """``text`` printed as is by rich."""
    from rich.markup import escape

    return escape(text)


def _stop_mode(text: str | None) -> StopMode | None:
    """``--stop fixed|converge`` (None when not given)."""
    from tippingpoint.core.errors import InvalidOptionError
    from tippingpoint.core.schema import StopMode

    if text is None:
        return None
    try:
        return StopMode(text.lower())
    except ValueError:
        raise InvalidOptionError(
            f"--stop must be fixed or converge, got '{text}'", "e.g. --stop fixed"
        ) from None


def _agreement_metric(text: str | None) -> AgreementMetric | None:
    """``--agreement-metric top1|cosine|relative-error``."""
    from tippingpoint.core.errors import InvalidOptionError
    from tippingpoint.models.accuracy import AgreementMetric

    if text is None:
        return None
    try:
        return AgreementMetric(text.lower())
    except ValueError:
        raise InvalidOptionError(
            f"--agreement-metric must be top1, cosine or relative-error, got '{text}'",
            "e.g. --agreement-metric cosine",
        ) from None


def _order(text: str) -> InterleaveOrder:
    """``--order alternate|shuffle``."""
    from tippingpoint.core.errors import InvalidOptionError
    from tippingpoint.core.schema import InterleaveOrder

    try:
        return InterleaveOrder(text.lower())
    except ValueError:
        raise InvalidOptionError(
            f"--order must be alternate or shuffle, got '{text}'", "e.g. --order shuffle"
        ) from None


def exit_code(status: ExitStatus) -> int:
    """The exit code of a matrix's end: 0, 1 when a run failed, 130 when interrupted (a usage
    error, raised before or while it runs, exits 2)."""
    from tippingpoint.harness.execute import ExitStatus

    codes = {ExitStatus.COMPLETE: 0, ExitStatus.FAILED: 1, ExitStatus.INTERRUPTED: 130}
    return codes[status]


def _collector_options(
    device: str | None,
    *,
    idle_watts: float | None,
    peak_watts: float | None,
    meter_command: str | None,
    meter_rate: float,
    meter_csv: Path | None,
    hwmon_device: str | None,
    gpu_index: int,
) -> CollectorOptions:
    """The collectors' settings; a ``--device`` profile supplies the watts not given."""
    from tippingpoint.harness.collectors.options import CollectorOptions

    if device is not None:
        from tippingpoint.profiles.loader import load_catalog, user_dir

        prof = load_catalog([user_dir()] if user_dir().is_dir() else []).device(device)
        idle_watts = idle_watts if idle_watts is not None else prof.idle_watts.value
        peak_watts = peak_watts if peak_watts is not None else prof.active_watts.value
    return CollectorOptions(
        idle_watts=idle_watts,
        peak_watts=peak_watts,
        profile=device,
        meter_command=meter_command,
        meter_rate_hz=meter_rate,
        meter_csv=meter_csv,
        hwmon_device=hwmon_device,
        gpu_index=gpu_index,
    )


def _generation_summary(report: Report) -> dict[str, object]:
    """A generative run's headline figures for ``--json`` (nothing for other runs)."""
    gen = report.generation
    if gen is None:
        return {}
    m = gen.metrics
    return {
        "ttft_p50_ms": m.ttft.p50 if m.ttft else None,
        "tpot_p50_ms": m.tpot.p50 if m.tpot else None,
        "output_tokens_per_s": m.output_tokens_per_s,
        "good_fraction": m.goodput.good_fraction if m.goodput else None,
        "peak_rate_rps": gen.peak_rate_rps,
    }


def _print_summary(console: Console, result: ExecutionResult, out: Path, as_json: bool) -> None:
    """The runs' table (or JSON on stdout), the count written, and a note when interrupted."""
    from tippingpoint.harness.execute import ExitStatus
    from tippingpoint.reports.table import summary_table

    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "path": str(w.path),
                        "status": w.report.status.value,
                        "model": w.report.model.name,
                        "scenario": w.report.scenario.kind.value,
                        "p50_ms": w.report.results.latency.p50 if w.report.results else None,
                        "p99_ms": w.report.results.latency.p99 if w.report.results else None,
                        **_generation_summary(w.report),
                    }
                    for w in result.written
                ]
                + [
                    {
                        "path": None,
                        "status": "skipped",
                        "model": s.cell.model.name,
                        "scenario": s.cell.scenario.kind.value,
                        "batch_size": s.cell.scenario.batch_size,
                        "reason": s.reason,
                    }
                    for s in result.skipped
                ],
                indent=2,
            )
        )
    else:
        console.print(summary_table([w.report for w in result.written]))
        console.print(
            f"{len(result.written)} report(s) written to {out}/"
            + (f", {len(result.skipped)} run(s) skipped (see above)" if result.skipped else "")
        )
    if result.status is ExitStatus.INTERRUPTED:
        console.print(
            "[yellow]interrupted[/yellow]: finished runs and the interrupted one are on disk"
        )


class _RunView:
    """Renders the events of a run: notes on the console and, on a terminal, a progress bar."""

    def __init__(self, console: Console, bar: bool) -> None:
        self.console = console
        self.show_bar = bar
        self._bar: ProgressBar | None = None
        self._task: TaskID | None = None

    def __call__(self, event: Event) -> None:
        from rich.markup import escape

        from tippingpoint.core.schema import RunStatus
        from tippingpoint.harness import events as ev
        from tippingpoint.harness.matrix import cell_label

        if isinstance(event, ev.CellSkipped):
            label = cell_label(event.skipped.cell)
            self.console.print(
                f"[yellow]skipped[/yellow] {escape(label)}: " + escape(event.skipped.reason)
            )
        elif isinstance(event, ev.CollectorSkipped):
            self.console.print(f"[yellow]collector skipped[/yellow]: {escape(event.reason)}")
        elif isinstance(event, ev.StandInStarted):
            self.console.print(
                "local stand-in server (a loopback stand-in, not a cloud endpoint) at " + event.url
            )
        elif isinstance(event, ev.CellStarted):
            rep = f" (rep {event.repetition}/{event.repeat})" if event.repetition else ""
            self._label(f"[{event.index}/{event.total}] {cell_label(event.cell)}{rep}")
        elif isinstance(event, ev.CellProgress):
            self._update(event.progress)
        elif isinstance(event, ev.CellFinished):
            report = event.written.report
            if report.status is RunStatus.FAILED:
                from rich.console import Console

                err = report.errors[0] if report.errors else None
                what = f"{err.kind}: {err.message}" if err and err.message else None
                # on stderr, as every error line: stdout keeps the table (or the --json)
                Console(stderr=True, width=self.console.width).print(
                    f"[red]run failed[/red] ({escape(cell_label(event.written.cell))}): "
                    + escape(what or (err.kind if err else "unknown error"))
                )

    def _label(self, text: str) -> None:
        if not self.show_bar:
            return
        if self._bar is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                TextColumn(
                    "{task.fields[phase]} {task.fields[queries]} q · p50 {task.fields[p50]}"
                ),
                console=self.console,
                transient=True,
            )
            self._bar.start()
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(text, total=1.0, phase="load", queries=0, p50="-")

    def _update(self, p: RunProgress) -> None:
        if self._bar is None or self._task is None:
            return
        frac = min(p.elapsed_s / p.target_s, 1.0) if p.target_s > 0 else 1.0
        p50 = f"{p.live_p50_ms:.3f} ms" if p.live_p50_ms is not None else "-"
        self._bar.update(self._task, completed=frac, phase=p.phase, queries=p.queries, p50=p50)

    def close(self) -> None:
        """Take the progress bar down (it is transient)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
