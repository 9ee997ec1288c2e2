"""``tippingpoint run``: a models x backends x scenarios matrix, one report per run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tippingpoint.core.kinds import ScenarioKind

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    from rich.console import Console

    from tippingpoint.core.schema import ArrivalProcess, ScenarioSettings
    from tippingpoint.core.types import OptionValue
    from tippingpoint.harness.collectors.base import Collector
    from tippingpoint.harness.runner import AccuracyHook, Progress, RunSpec
    from tippingpoint.models.registry import ModelRef


def _coerce(value: str) -> OptionValue:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            continue
    return value


def parse_backend_options(
    items: list[str], backends: list[str]
) -> dict[str, dict[str, OptionValue]]:
    """``--opt KEY=VALUE`` applies to every backend; ``--opt BACKEND.KEY=VALUE`` to one."""
    from tippingpoint.core.errors import InvalidOptionError

    out: dict[str, dict[str, OptionValue]] = {b: {} for b in backends}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidOptionError(
                f"cannot parse --opt '{item}'", "write it as KEY=VALUE or BACKEND.KEY=VALUE"
            )
        target, dot, name = key.rpartition(".")
        targets = [target] if dot else backends
        for b in targets:
            if b not in out:
                raise InvalidOptionError(
                    f"--opt '{item}' names backend '{b}', which is not in this run",
                    f"backends in this run: {', '.join(backends)}",
                )
            out[b][name if dot else key] = _coerce(value)
    return out


def load_input_file(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an ``--inputs`` .npz file, by name; problems are one-line usage errors."""
    import numpy as np

    from tippingpoint.core.errors import InvalidShapeError

    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise InvalidShapeError(
            f"cannot read --inputs {path}: {exc}", "pass an .npz written by numpy.savez"
        ) from None
    if not arrays:
        raise InvalidShapeError(f"--inputs {path} holds no arrays", "save one array per input")
    return arrays


def _accuracy_hooks(refs: list[ModelRef]) -> dict[str, AccuracyHook]:
    """One AccuracyOnly hook per model; a model without an evaluation set is a usage error."""
    from tippingpoint.harness.accuracy import accuracy_hook

    return {ref.name: accuracy_hook(ref.name) for ref in refs}


def _baseline_hooks(
    baseline: Path,
    backends: list[str],
    backend_options: dict[str, dict[str, OptionValue]],
    seed: int,
    overrides: dict[str, tuple[int, ...]],
    feeds: dict[str, np.ndarray] | None,
) -> dict[str, AccuracyHook]:
    """Per backend: compare with ``baseline``, loaded on that backend or one that loads it."""
    from tippingpoint.backends.registry import backend_names, get_backend
    from tippingpoint.core.errors import ModelFileError
    from tippingpoint.harness.baseline import baseline_hook

    if not baseline.is_file():
        raise ModelFileError(f"baseline file not found: {baseline}", "check the --baseline path")
    local = ["onnxruntime", "litert", "torch"]  # a network backend would need an endpoint
    names = [n for n in local if n in backend_names()]
    loaders = [n for n in names if baseline.suffix in get_backend(n).formats]
    hooks: dict[str, AccuracyHook] = {}
    for b in backends:
        name = b if baseline.suffix in get_backend(b).formats else (loaders or [None])[0]
        if name is None:
            raise ModelFileError(
                f"no backend loads {baseline.suffix} files for --baseline",
                "pass an .onnx or .tflite baseline",
            )
        options = backend_options.get(name, {}) if name == b else {}
        hooks[b] = baseline_hook(
            baseline, get_backend(name)(), options, seed=seed, overrides=overrides, feeds=feeds
        )
    return hooks


def _split_ints(text: str) -> tuple[int, ...]:
    from tippingpoint.core.errors import InvalidOptionError

    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise InvalidOptionError(
            f"invalid --batch-sizes '{text}'",
            "give positive integers separated by commas, e.g. 1,8,32",
        )
    return values


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
    accuracy: bool = typer.Option(
        False, "--accuracy", help="Also score each run on the suite model's evaluation set."
    ),
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="Also score each run's outputs against this file's (e.g. int8 vs fp32 agreement); "
        "not with --accuracy.",
    ),
    endpoint: str | None = typer.Option(
        None,
        help="URL of a remote inference endpoint (runs the http backend against it); 'local' "
        "starts the reference server on loopback as a stand-in (flagged local-standin).",
    ),
    rate: float | None = typer.Option(
        None, help="Server scenario: target queries per second (open loop)."
    ),
    arrival: str = typer.Option("poisson", help="Server scenario arrivals: poisson or constant."),
    concurrency: str = typer.Option(
        "1", help="Concurrency scenario: in-flight requests, e.g. 1,2,4,8 (one run each)."
    ),
    latency_bound: float | None = typer.Option(
        None, help="Server scenario: find the peak rate whose p99 (ms) meets this bound."
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
    from rich.markup import escape

    from tippingpoint.core.io import ensure_output_dir, write_report
    from tippingpoint.core.schema import RunFlag, RunStatus, StopRule, WarmupRule
    from tippingpoint.harness.config import (
        DEFAULT_BATCH_SIZES,
        load_suite_file,
        scenario_settings,
    )
    from tippingpoint.harness.inputs import parse_shape_overrides
    from tippingpoint.harness.runner import Runner, RunSpec
    from tippingpoint.models.registry import DEFAULT_SUITE, for_backend, resolve_model
    from tippingpoint.reports.table import summary_table

    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
    backend_options: dict[str, dict[str, OptionValue]] = {}
    if suite is not None:
        sf = load_suite_file(suite)
        models = list(model) or list(sf.run.models)
        backends = list(backend) or list(sf.run.backends)
        scenarios = list(scenario) or list(sf.run.scenarios)
        batches = _split_ints(batch_sizes) if batch_sizes is not None else sf.run.batch_sizes
        variant = variant or sf.run.variant
        quick = quick or sf.run.quick
        min_queries = min_queries or sf.run.min_queries
        min_duration = min_duration if min_duration is not None else sf.run.min_duration_s
        max_duration = max_duration or sf.run.max_duration_s
        warmup_queries = warmup_queries if warmup_queries is not None else sf.run.warmup_queries
        warmup_duration = warmup_duration if warmup_duration is not None else sf.run.warmup_s
        seed = seed if seed is not None else sf.run.seed
        accuracy = accuracy or (sf.run.accuracy and baseline is None)  # --baseline wins
        collect = list(collect) or list(sf.run.collectors)
        backend_options = {k: dict(v) for k, v in sf.backend_options.items()}
    else:
        models = list(model) or list(DEFAULT_SUITE)
        backends = list(backend) or ["onnxruntime"]
        scenarios = list(scenario) or [ScenarioKind.SINGLE_STREAM, ScenarioKind.OFFLINE]
        batches = _split_ints(batch_sizes) if batch_sizes is not None else DEFAULT_BATCH_SIZES
    seed = seed if seed is not None else 0
    if accuracy and baseline is not None:
        from tippingpoint.core.errors import InvalidOptionError

        raise InvalidOptionError(
            "--accuracy and --baseline both score the run's outputs, and a report holds one "
            "accuracy result",
            "pass one of them (run twice for both)",
        )
    from tippingpoint.backends.registry import get_backend

    local_standin = endpoint == "local"
    if endpoint is not None:
        if not backend:
            backends = ["http"]
        if not local_standin:
            backend_options.setdefault("http", {}).setdefault("endpoint", endpoint)
    network = _network_settings(rate, arrival, concurrency, latency_bound)
    if latency_bound is not None:
        backend_options.setdefault("http", {})["latency_bound_ms"] = latency_bound
    for b in backends:
        found = get_backend(b)()  # unknown names fail before anything runs
        avail = found.availability()
        if not avail.installed:
            from tippingpoint.core.errors import RuntimeNotInstalledError

            raise RuntimeNotInstalledError(
                f"backend '{b}' needs {avail.runtime}, which is not installed", avail.install_hint
            )
    for b, values in parse_backend_options(list(opt), backends).items():
        backend_options.setdefault(b, {}).update(values)
    overrides = parse_shape_overrides(list(shape))
    user_feeds = load_input_file(inputs) if inputs is not None else None
    refs = [resolve_model(m, variant) for m in models]
    hooks = _accuracy_hooks(refs) if accuracy else {}
    base_hooks = (
        _baseline_hooks(baseline, backends, backend_options, seed, overrides, user_feeds)
        if baseline is not None
        else {}
    )
    ensure_output_dir(out)

    from tippingpoint.harness.config import DEFAULT_STOP, DEFAULT_WARMUP, QUICK_STOP, QUICK_WARMUP

    base_stop = QUICK_STOP if quick else DEFAULT_STOP
    base_warm = QUICK_WARMUP if quick else DEFAULT_WARMUP
    stop = StopRule(
        min_queries=min_queries or base_stop.min_queries,
        min_duration_s=min_duration if min_duration is not None else base_stop.min_duration_s,
        max_duration_s=max_duration or base_stop.max_duration_s,
    )
    warm = WarmupRule(
        min_queries=warmup_queries if warmup_queries is not None else base_warm.min_queries,
        min_duration_s=warmup_duration if warmup_duration is not None else base_warm.min_duration_s,
    )

    cells: list[RunSpec] = []
    for ref in refs:
        for b in backends:
            for kind in scenarios:
                sizes = batches if kind is ScenarioKind.OFFLINE else (1,)
                levels = network.levels if kind is ScenarioKind.CONCURRENCY else (None,)
                for bs, level in ((b_, n_) for b_ in sizes for n_ in levels):
                    settings = scenario_settings(
                        kind,
                        bs,
                        quick=quick,
                        warmup=warm,
                        stop=stop,
                        seed=seed,
                        input_source=inputs.name if inputs is not None else "random",
                    )
                    if kind in (ScenarioKind.SERVER, ScenarioKind.CONCURRENCY):
                        settings = network.apply(settings, kind, level)
                    cells.append(
                        RunSpec(
                            model=for_backend(ref, get_backend(b).formats),
                            backend=b,
                            scenario=settings,
                            backend_options=backend_options.get(b, {}),
                            shape_overrides=overrides,
                            feeds=user_feeds,
                            accuracy=hooks.get(ref.name) or base_hooks.get(b),
                        )
                    )
    unsupported = [
        c
        for c in cells
        if c.scenario.kind in (ScenarioKind.SERVER, ScenarioKind.CONCURRENCY)
        and not getattr(get_backend(c.backend), "network", False)
    ]
    if unsupported:
        from tippingpoint.core.errors import InvalidOptionError

        raise InvalidOptionError(
            f"scenario '{unsupported[0].scenario.kind.value}' needs a network backend",
            "use single-stream or offline with local backends",
        )
    from tippingpoint.harness.preflight import preflight

    checked = preflight(cells)
    not_run = checked.skipped
    # the check loaded each model once: the first cell's report keeps that first load's time
    cells = [
        dataclasses.replace(c, first_load_in_process_s=checked.first_load_s.get(i))
        for i, c in enumerate(cells)
    ]
    for i in not_run:
        console.print(
            f"[yellow]skipped[/yellow] {escape(_cell_label(cells[i]))}: "
            + escape(not_run[i].one_line())
        )
    skipped_cells = [(cells[i], not_run[i]) for i in sorted(not_run)]
    cells = [c for i, c in enumerate(cells) if i not in not_run]

    from tippingpoint.harness.collectors.options import CollectorOptions
    from tippingpoint.harness.collectors.selection import close_collectors, open_collectors
    from tippingpoint.harness.energy import EnergyAccounting, is_energy_collector

    if device is not None:
        from tippingpoint.profiles.loader import load_catalog, user_dir

        prof = load_catalog([user_dir()] if user_dir().is_dir() else []).device(device)
        idle_watts = idle_watts if idle_watts is not None else prof.idle_watts.value
        peak_watts = peak_watts if peak_watts is not None else prof.active_watts.value
    opened, skipped = open_collectors(
        collect,
        CollectorOptions(
            idle_watts=idle_watts,
            peak_watts=peak_watts,
            profile=device,
            meter_command=meter_command,
            meter_rate_hz=meter_rate,
            meter_csv=meter_csv,
            hwmon_device=hwmon_device,
            gpu_index=gpu_index,
        ),
    )
    for s in skipped:
        console.print(f"[yellow]collector skipped[/yellow]: {escape(s.reason)}")
    energy = (
        EnergyAccounting(opened, idle_s) if any(is_energy_collector(c) for c in opened) else None
    )
    standin = contextlib.ExitStack()
    if local_standin:
        cells = _with_local_standin(cells, refs, standin, console, opened)
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    written: list[tuple[Path, object]] = []
    exit_code = 0
    try:
        with _progress(console, as_json) as (bar, update):
            runner = Runner(
                progress=update,
                collectors=opened,
                collectors_skipped=skipped,
                collectors_requested=tuple(collect),
                energy=energy,
            )
            for i, cell in enumerate(cells, 1):
                bar(f"[{i}/{len(cells)}] {_cell_label(cell)}")
                outcome = runner.run(cell)
                samples = None
                if outcome.samples is not None:
                    samples = {
                        "latency_ns": outcome.samples.latency_ns,
                        "end_ns": outcome.samples.end_ns,
                    }
                report = outcome.report
                if local_standin and cell.backend == "http":
                    report = report.model_copy(
                        update={"flags": (*report.flags, RunFlag.LOCAL_STANDIN)}
                    )
                try:
                    path = write_report(report, out, samples)
                except OSError as exc:
                    from tippingpoint.core.errors import OutputDirError

                    raise OutputDirError(
                        f"cannot write the report of {_cell_label(cell)} to {out}: "
                        f"{exc.strerror or exc}",
                        f"free space or choose another directory with --out; the {len(written)} "
                        "report(s) written before are kept",
                    ) from None
                written.append((path, report))
                status = report.status
                if status is RunStatus.FAILED:
                    exit_code = max(exit_code, 1)
                    err = outcome.report.errors[0] if outcome.report.errors else None
                    console.print(
                        "[red]run failed[/red]: " + escape(err.message if err else "unknown error")
                    )
                if status is RunStatus.INTERRUPTED:
                    exit_code = 130
                    break
    finally:
        signal.signal(signal.SIGTERM, previous)
        close_collectors(opened)
        standin.close()

    reports = [r for _, r in written]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "path": str(p),
                        "status": r.status.value,  # type: ignore[attr-defined]
                        "model": r.model.name,  # type: ignore[attr-defined]
                        "scenario": r.scenario.kind.value,  # type: ignore[attr-defined]
                        "p50_ms": r.results.latency.p50 if r.results else None,  # type: ignore[attr-defined]
                        "p99_ms": r.results.latency.p99 if r.results else None,  # type: ignore[attr-defined]
                    }
                    for p, r in written
                ]
                + [
                    {
                        "path": None,
                        "status": "skipped",
                        "model": c.model.name,
                        "scenario": c.scenario.kind.value,
                        "batch_size": c.scenario.batch_size,
                        "reason": exc.one_line(),
                    }
                    for c, exc in skipped_cells
                ],
                indent=2,
            )
        )
    else:
        console.print(summary_table(reports))  # type: ignore[arg-type]
        console.print(
            f"{len(written)} report(s) written to {out}/"
            + (f", {len(skipped_cells)} run(s) skipped (see above)" if skipped_cells else "")
        )
    if exit_code == 130:
        console.print(
            "[yellow]interrupted[/yellow]: finished runs and the interrupted one are on disk"
        )
    return exit_code


def _cell_label(cell: RunSpec) -> str:
    """'model · backend · scenario' (and the batch of an offline cell), for progress and notes."""
    batch = f" b{cell.scenario.batch_size}" if cell.scenario.kind is ScenarioKind.OFFLINE else ""
    return f"{cell.model.name} · {cell.backend} · {cell.scenario.kind.value}{batch}"


class _Network:
    """Validated network-scenario flags: rate, arrivals and concurrency levels."""

    def __init__(
        self, rate: float | None, arrival: ArrivalProcess, levels: tuple[int, ...]
    ) -> None:
        self.rate = rate
        self.arrival = arrival
        self.levels = levels

    def apply(
        self, settings: ScenarioSettings, kind: ScenarioKind, level: int | None
    ) -> ScenarioSettings:
        """The scenario settings with the network fields of ``kind`` filled in."""
        from tippingpoint.core.errors import InvalidOptionError

        if kind is ScenarioKind.CONCURRENCY:
            return settings.model_copy(update={"concurrency": level})
        if self.rate is None:
            raise InvalidOptionError(
                "the server scenario needs a target rate", "pass --rate QUERIES_PER_SECOND"
            )
        return settings.model_copy(update={"target_rate_qps": self.rate, "arrival": self.arrival})


def _network_settings(
    rate: float | None, arrival: str, concurrency: str, bound: float | None
) -> _Network:
    from tippingpoint.core.errors import InvalidOptionError
    from tippingpoint.core.schema import ArrivalProcess

    try:
        process = ArrivalProcess(arrival)
    except ValueError:
        raise InvalidOptionError(
            f"unknown --arrival '{arrival}'", "use --arrival poisson or --arrival constant"
        ) from None
    if rate is not None and rate <= 0:
        raise InvalidOptionError(f"--rate must be positive, got {rate}", "e.g. --rate 100")
    if bound is not None and bound <= 0:
        raise InvalidOptionError(
            f"--latency-bound must be positive, got {bound}", "give the p99 bound in ms"
        )
    try:
        levels = tuple(int(x) for x in concurrency.split(",") if x.strip())
    except ValueError:
        levels = ()
    if not levels or any(n < 1 for n in levels):
        raise InvalidOptionError(
            f"invalid --concurrency '{concurrency}'", "give positive integers, e.g. 1,2,4,8"
        )
    return _Network(rate, process, levels)


def _with_local_standin(
    cells: list[RunSpec],
    refs: list[ModelRef],
    stack: contextlib.ExitStack,
    console: Console,
    opened: Sequence[Collector],
) -> list[RunSpec]:
    """Start the reference server on loopback and point the http cells at it."""
    from dataclasses import replace

    from tippingpoint.cli.standin import LocalStandIn
    from tippingpoint.harness.collectors.selection import close_collectors
    from tippingpoint.models.registry import for_backend

    served = [for_backend(r, (".onnx",)).path for r in refs]
    try:
        url = stack.enter_context(LocalStandIn(served))
    except BaseException:
        close_collectors(opened)
        raise
    console.print(f"local stand-in server (a loopback stand-in, not a cloud endpoint) at {url}")
    return [
        replace(c, backend_options={**c.backend_options, "endpoint": url})
        if c.backend == "http"
        else c
        for c in cells
    ]


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _progress:
    """A rich progress bar whose update callback takes the runner's Progress snapshots."""

    def __init__(self, console: object, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet or (not sys.stderr.isatty() and not sys.stdout.isatty())

    def __enter__(self) -> tuple[object, object]:
        if self.quiet:
            return (lambda label: None), None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[phase]} {task.fields[queries]} q · p50 {task.fields[p50]}"),
            console=self.console,  # type: ignore[arg-type]
            transient=True,
        )
        self._bar.__enter__()
        self._task = None

        def label(text: str) -> None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(text, total=1.0, phase="load", queries=0, p50="-")

        def update(p: Progress) -> None:
            if self._task is None:
                return
            frac = min(p.elapsed_s / p.target_s, 1.0) if p.target_s > 0 else 1.0
            p50 = f"{p.live_p50_ms:.3f} ms" if p.live_p50_ms is not None else "-"
            self._bar.update(self._task, completed=frac, phase=p.phase, queries=p.queries, p50=p50)

        return label, update

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self._bar.__exit__(None, None, None)
