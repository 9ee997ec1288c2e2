"""The http backend through the core runner and the CLI: reports carry the HTTP section, the
server and concurrency scenarios run, and their misuse is a one-line usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.http_helpers import serve_process, short_scenario
from tippingpoint.core.io import read_report, write_report
from tippingpoint.core.schema import ArrivalProcess, RunStatus, ScenarioKind, StopRule
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import resolve_model

TP = [sys.executable, "-m", "tippingpoint"]


def test_runner_report_has_http_section(tmp_path: Path) -> None:
    ref = resolve_model("mlp-tiny")
    sc = short_scenario(
        ScenarioKind.SERVER,
        target_rate_qps=100.0,
        arrival=ArrivalProcess.CONSTANT,
        stop=StopRule(min_queries=30, min_duration_s=0.3, max_duration_s=5),
    )
    with serve_process("--model", "mlp-tiny") as (url, _):
        outcome = Runner().run(
            RunSpec(model=ref, backend="http", scenario=sc, backend_options={"endpoint": url})
        )
    report = outcome.report
    assert report.status is RunStatus.COMPLETE, report.errors
    assert report.backend is not None and report.backend.device.value == "remote"
    assert report.http is not None and report.results is not None
    assert report.http.successes == report.results.latency.count >= 30
    assert report.http.offered_rate_qps == 100.0 and report.http.send_lag is not None
    assert report.cold_start is not None and report.warmup is not None
    # network load is judged by perf_analyzer's rule, in the report as in the HTTP figures
    stability = report.results.stability
    assert stability is not None and stability.rule is not None
    assert stability.rule.startswith("3 consecutive windows")
    assert outcome.samples is not None
    path = write_report(
        report,
        tmp_path,
        {"latency_ns": outcome.samples.latency_ns, "end_ns": outcome.samples.end_ns},
    )
    assert read_report(path).http == report.http


def test_runner_fails_cleanly_when_endpoint_is_down(tmp_path: Path) -> None:
    outcome = Runner().run(
        RunSpec(
            model=resolve_model("mlp-tiny"),
            backend="http",
            scenario=short_scenario(),
            backend_options={"endpoint": "http://127.0.0.1:9"},
        )
    )
    assert outcome.report.status is RunStatus.FAILED
    assert outcome.report.errors[0].kind == "EndpointError"


def test_cli_network_scenarios(tmp_path: Path) -> None:
    with serve_process("--model", "mlp-tiny") as (url, _):
        proc = subprocess.run(
            [
                *TP, "run", "-m", "mlp-tiny", "--endpoint", url, "-s", "server", "-s",
                "concurrency", "--rate", "50", "--concurrency", "1,2", "--min-queries", "20",
                "--min-duration", "0.2", "--warmup-duration", "0", "--out", str(tmp_path),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = json.loads(proc.stdout)
    assert [r["scenario"] for r in runs] == ["server", "concurrency", "concurrency"]
    reports = [read_report(Path(r["path"])) for r in runs]
    assert [r.scenario.concurrency for r in reports] == [None, 1, 2]
    assert reports[0].scenario.target_rate_qps == 50.0
    assert all(r.http is not None and r.http.error_rate == 0 for r in reports)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "server", "--endpoint", "http://127.0.0.1:9"], "needs a target rate"),
        (["-s", "server", "--rate", "5"], "needs a network backend"),
        (["-s", "server", "--rate", "-5", "--endpoint", "http://x"], "--rate must be positive"),
        (["-s", "concurrency", "--concurrency", "0", "--endpoint", "http://x"], "--concurrency"),
        (["--arrival", "bursty", "--endpoint", "http://x"], "unknown --arrival"),
    ],
)
def test_cli_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from tippingpoint.cli import main

    code = main(["run", "-m", "mlp-tiny", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no model to serve"),
        (["-m", "mlp-tiny", "--timeout", "0"], "invalid server limits"),
        (["-m", "mlp-tiny", "--token-env", "TIPPINGPOINT_UNSET_VAR"], "TIPPINGPOINT_UNSET_VAR"),
        (["-m", "no-such-model"], "unknown model"),
    ],
)
def test_serve_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from tippingpoint.cli import main

    code = main(["serve", "--port", "0", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
