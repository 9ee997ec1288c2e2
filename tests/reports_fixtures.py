"""Real reports for the compare/render tests, produced by the real runner on real models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import resolve_model
from tippingpoint.reports.io import write_report
from tippingpoint.reports.schema import Report, ScenarioKind

from .conftest import tiny_scenario


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
    from tippingpoint.reports.io import load_samples, read_report

    report = read_report(path)
    samples = load_samples(report, path) if report.results and report.results.raw else None
    out.mkdir(parents=True, exist_ok=True)
    return write_report(change(report), out, samples)


@pytest.fixture(scope="session")
def real_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results directory: mlp-tiny twice (single-stream) and once offline b4, conv-small once."""
    out = tmp_path_factory.mktemp("results")
    run_and_write(out, "mlp-tiny")
    run_and_write(out, "mlp-tiny")
    run_and_write(out, "mlp-tiny", ScenarioKind.OFFLINE, 4)
    run_and_write(out, "conv-small")
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
    cost_cli = pytest.importorskip("tippingpoint.cli.cost", reason="the calculator is not here")
    import typer
    from typer.testing import CliRunner

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
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    return out
