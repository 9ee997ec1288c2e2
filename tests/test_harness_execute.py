"""The run matrix and its execution without the CLI: typed request, cells, events, reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tippingpoint.core.errors import InvalidOptionError, SuiteFileError
from tippingpoint.core.io import read_report, verify_samples
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import RunStatus, StopMode
from tippingpoint.harness import events as ev
from tippingpoint.harness.config import SuiteFile, SuiteRun, load_suite_file
from tippingpoint.harness.execute import ExecuteOptions, ExitStatus, execute
from tippingpoint.harness.matrix import (
    BackendOption,
    NetworkRequest,
    RunRequest,
    expand,
    options_by_backend,
    with_suite,
)

QUICK = RunRequest(quick=True, min_queries=20, min_duration_s=0.05, warmup_s=0.0)


def test_flags_win_over_the_suite_file_and_the_rest_comes_from_it() -> None:
    suite = SuiteFile(
        run=SuiteRun(models=("digits-cnn",), batch_sizes=(2,), seed=5, accuracy=True),
        backend_options={"onnxruntime": {"intra_op_threads": 1}},
    )
    merged = with_suite(RunRequest(batch_sizes=(1, 4), seed=0), suite)
    assert merged.models == ("digits-cnn",) and merged.batch_sizes == (1, 4)
    assert merged.seed == 0 and merged.accuracy
    assert merged.backend_options == {"onnxruntime": {"intra_op_threads": 1}}
    # a baseline given with the request drops the suite's accuracy; an endpoint picks http
    baseline = with_suite(RunRequest(baseline=Path("x.onnx"), endpoint="local"), suite)
    assert not baseline.accuracy and baseline.backends == ()


def test_the_suite_file_sets_the_stop_rule_and_flags_win_over_it(tmp_path: Path) -> None:
    toml = tmp_path / "suite.toml"
    toml.write_text(
        '[run]\nmodels = ["mlp-tiny"]\nstop = "converge"\nconverge_windows = 4\n'
        "converge_threshold = 0.05\nwindow_s = 0.5\nwarmup_until_steady = true\n"
    )
    suite = load_suite_file(toml)
    cell = expand(with_suite(RunRequest(), suite)).cells[0]
    stop = cell.scenario.stop
    assert stop.mode is StopMode.CONVERGE
    assert (stop.converge_windows, stop.converge_threshold, stop.window_s) == (4, 0.05, 0.5)
    assert cell.scenario.warmup.until_steady is True
    fixed = expand(with_suite(RunRequest(stop=StopMode.FIXED, converge_windows=None), suite))
    assert fixed.cells[0].scenario.stop.mode is StopMode.FIXED
    toml.write_text('[run]\nmodels = ["mlp-tiny"]\nstop = "sometimes"\n')
    with pytest.raises(SuiteFileError, match=r"'run\.stop'"):
        load_suite_file(toml)


def test_expand_makes_one_cell_per_batch_and_level_with_the_request_options() -> None:
    request = RunRequest(
        models=("mlp-tiny",),
        scenarios=(ScenarioKind.SINGLE_STREAM, ScenarioKind.OFFLINE),
        batch_sizes=(1, 4),
        options=(BackendOption("intra_op_threads", 1, backend="onnxruntime"),),
        seed=3,
    )
    matrix = expand(request)
    assert [(c.scenario.kind, c.scenario.batch_size) for c in matrix.cells] == [
        (ScenarioKind.SINGLE_STREAM, 1),
        (ScenarioKind.OFFLINE, 1),
        (ScenarioKind.OFFLINE, 4),
    ]
    assert all(c.backend_options == {"intra_op_threads": 1} for c in matrix.cells)
    assert all(c.scenario.seed == 3 for c in matrix.cells)
    assert matrix.standin_models is None


def test_expand_refuses_what_cannot_run_before_anything_runs() -> None:
    with pytest.raises(InvalidOptionError, match="needs a network backend"):
        expand(RunRequest(models=("mlp-tiny",), scenarios=(ScenarioKind.CONCURRENCY,)))
    with pytest.raises(InvalidOptionError, match="--rate must be positive"):
        expand(RunRequest(models=("mlp-tiny",), network=NetworkRequest(rate_qps=0)))
    with pytest.raises(InvalidOptionError, match="names backend 'litert'"):
        options_by_backend([BackendOption("threads", 1, backend="litert")], ["onnxruntime"])


def test_execute_writes_each_report_as_it_finishes_and_tells_the_caller(tmp_path: Path) -> None:
    from dataclasses import replace

    request = replace(
        QUICK, models=("mlp-tiny",), scenarios=(ScenarioKind.OFFLINE,), batch_sizes=(1, 2)
    )
    seen: list[ev.Event] = []
    on_disk: list[bool] = []

    def on_event(event: ev.Event) -> None:
        seen.append(event)
        if isinstance(event, ev.CellFinished):  # written before the caller hears of it
            on_disk.append(event.written.path.is_file())

    result = execute(
        expand(request), ExecuteOptions(out=tmp_path, progress=True), on_event=on_event
    )
    assert result.status is ExitStatus.COMPLETE and result.skipped == ()
    kinds = [type(e).__name__ for e in seen if not isinstance(e, ev.CellProgress)]
    assert kinds == ["CellStarted", "CellFinished", "CellStarted", "CellFinished"]
    assert on_disk == [True, True]
    for written in result.written:
        report = read_report(written.path)
        assert report.status is RunStatus.COMPLETE
        assert written.samples_path is not None and written.samples_path.is_file()
        assert verify_samples(report, written.path)
        assert report.results is not None and report.results.raw is not None
        assert written.samples_path.name == report.results.raw.path
    assert [w.report.scenario.batch_size for w in result.written] == [1, 2]
