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
