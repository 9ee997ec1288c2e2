"""Real reports for the compare/render tests, produced by the real runner on real models.

A pytest plugin (registered in conftest.py): its fixtures reach every test module without an
import; its helpers are imported by name."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tippingpoint.core.io import load_samples, read_report, report_files, write_report
from tippingpoint.core.schema import AccuracyKind, AccuracyResult, Report, ScenarioKind
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import resolve_model

from .helpers import TP, tiny_scenario


def run_and_write(
    out: Path, model: str, kind: ScenarioKind = ScenarioKind.SINGLE_STREAM, batch: int = 1
) -> Path:
    """One real run of ``model`` on ONNX Runtime, written with its samples sidecar."""
    out.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(
        model=resolve_model(model),
        backend="onnxruntime",
        scenario=tiny_scenario(kind, batch),
        backend_options={"intra_op_threads": 1},
    )
    outcome = Runner().run(spec)
    samples = None
    if outcome.samples is not None:
        samples = {"latency_ns": outcome.samples.latency_ns, "end_ns": outcome.samples.end_ns}
    return write_report(outcome.report, out, samples)


def rewrite(path: Path, out: Path, change: Callable[[Report], Report]) -> Path:
    """A copy of the report at ``path`` with ``change`` applied, written like a real one."""
    report = read_report(path)
    samples = load_samples(report, path) if report.results and report.results.raw else None
    out.mkdir(parents=True, exist_ok=True)
    return write_report(change(report), out, samples)


def runs_named(results: Path, *needles: str) -> list[Path]:
    """The report files under ``results`` whose names hold every needle."""
    return [p for p in report_files([results]) if all(n in p.name for n in needles)]


def mlp_single_stream(results: Path) -> list[Path]:
    """The two single-stream mlp-tiny runs of ``real_results``."""
    return runs_named(results, "mlp-tiny", "single-stream")


def with_accuracy(variant: str, value: float) -> Callable[[Report], Report]:
    """A change for :func:`rewrite`: the run is of ``variant`` and scored ``value`` top-1 on
    the labelled digits set."""

    def change(r: Report) -> Report:
        acc = AccuracyResult(
            kind=AccuracyKind.LABELLED,
            dataset="digits",
            samples=360,
            metric="top1",
            value=value,
        )
        model = r.model.model_copy(update={"variant": variant})
        return r.model_copy(update={"accuracy": acc, "model": model})

    return change


@pytest.fixture(scope="session")
def real_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results directory: mlp-tiny twice (single-stream) and once offline b4, conv-small once."""
    out = tmp_path_factory.mktemp("results")
    run_and_write(out, "mlp-tiny")
    run_and_write(out, "mlp-tiny")
    run_and_write(out, "mlp-tiny", ScenarioKind.OFFLINE, 4)
    run_and_write(out, "conv-small")
    return out


SHORT = ("--min-queries", "40", "--min-duration", "0.3", "--warmup-duration", "0")
"""Flags of a short real run from the CLI."""


def run_cli(out: Path, *args: str) -> None:
    """``tippingpoint run ARGS --out OUT`` (single-stream unless ARGS name scenarios); fails
    the test on a non-zero exit."""
    scenarios = () if "-s" in args else ("-s", "single-stream")
    p = subprocess.run(
        [*TP, "run", *args, *scenarios, *SHORT, "--warmup-queries", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]


@pytest.fixture(scope="session")
def full_results(real_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``real_results`` plus the runs that draw the other charts, all real:

    * digits-cnn fp32 and int8 with ``--accuracy`` (accuracy deltas against fp32);
    * mlp-tiny with the estimate energy collector (joules per inference, estimated);
    * conv-small through the HTTP backend against the reference server on loopback, in the
      server scenario with a latency bound (latency vs offered load) and the concurrency
      scenario at 1, 2 and 4 (throughput vs concurrency).
    """
    from .http_helpers import serve_process

    out = tmp_path_factory.mktemp("full-results")
    for f in real_results.iterdir():
        shutil.copy2(f, out / f.name)
    for variant in ("fp32", "int8"):
        run_cli(out, "-m", "digits-cnn", "--variant", variant, "-b", "onnxruntime", "--accuracy")
    run_cli(
        out,
        "-m",
        "mlp-tiny",
        "-b",
        "onnxruntime",
        "-c",
        "estimate",
        "--idle-watts",
        "3",
        "--peak-watts",
        "12",
        "--idle-s",
        "0.5",
    )
    with serve_process("--model", "conv-small") as (url, _):
        run_cli(
            out,
            "-m",
            "conv-small",
            "--endpoint",
            url,
            "-s",
            "server",
            "-s",
            "concurrency",
            "--rate",
            "100",
            "--latency-bound",
            "50",
            "--concurrency",
            "1,2,4",
        )
    return out


CLOUD_PROFILE = """
[cloud.test-instance]
description = "an instance whose capacity is stated, so no HTTP report is needed"
kind = "instance"
price_per_hour = { value = 0.526, source = "test fixture", as_of = 2026-01-21 }
capacity_qps = 900
"""


@pytest.fixture(scope="session")
def cost_json(real_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cost result written by the real calculator ('tippingpoint cost') from the real runs."""
    import typer
    from typer.testing import CliRunner

    from tippingpoint.cli import cost as cost_cli

    tmp = tmp_path_factory.mktemp("cost")
    profile = tmp / "clouds.toml"
    profile.write_text(CLOUD_PROFILE)
    out = tmp / "cost.json"
    app = typer.Typer()
    app.command()(cost_cli.cost)
    result = CliRunner().invoke(
        app,
        [
            "--reports",
            str(real_results),
            "--model",
            "mlp-tiny",
            "--device",
            "rpi5",
            "--cloud",
            "test-instance",
            "--profiles",
            str(profile),
            "--workload",
            "camera-analytics",
            "--draws",
            "2000",
            # the runs are this machine's, costed as a Pi 5, quick (maybe flagged unstable)
            "--proxy-host",
            "--accept-flagged",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out
