"""Repetitions (``run --repeat N``): interleaved separate runs, their group in every report, and
the group read back as one measurement by ``compare`` and ``show``. Real runs of the built-in
models on ONNX Runtime; no verdict is asserted from them (they are timings)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.io import parse_report, read_report, report_files, verify_samples
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import InterleaveOrder, RunStatus
from tippingpoint.harness import events as ev
from tippingpoint.harness.execute import ExecuteOptions, ExitStatus, execute
from tippingpoint.harness.isolated import ChildJob, run_in_fresh_process
from tippingpoint.harness.matrix import RunRequest, Slot, expand, schedule
from tippingpoint.reports.compare import compare_paths
from tippingpoint.reports.render_report import write_report_file
from tippingpoint.reports.significance import SignificanceMethod, Verdict

from .helpers import TP, assert_one_line, tp

QUICK = RunRequest(quick=True, min_queries=20, min_duration_s=0.05, warmup_s=0.0, warmup_queries=2)
FIXTURE = Path(__file__).parent / "fixtures" / "report_v1.json"


def test_rounds_alternate_or_shuffle_each_round_with_the_seed() -> None:
    assert schedule(2, 3, InterleaveOrder.ALTERNATE) == tuple(
        Slot(c, i) for i in (1, 2, 3) for c in (0, 1)
    )
    shuffled = schedule(4, 6, InterleaveOrder.SHUFFLE, seed=7)
    rounds = [[s.cell for s in shuffled if s.index == i] for i in range(1, 7)]
    assert all(sorted(r) == [0, 1, 2, 3] for r in rounds)  # every cell once per round
    assert len({tuple(r) for r in rounds}) > 1  # and not the same order every round
    assert schedule(4, 6, InterleaveOrder.SHUFFLE, seed=7) == shuffled
    assert schedule(4, 6, InterleaveOrder.SHUFFLE, seed=8) != shuffled
    assert schedule(3, 1, InterleaveOrder.ALTERNATE) == (Slot(0, 1), Slot(1, 1), Slot(2, 1))


def test_repeated_cells_run_interleaved_as_separate_runs_of_one_group(tmp_path: Path) -> None:
    request = dataclasses.replace(
        QUICK,
        models=("mlp-tiny", "conv-small"),
        scenarios=(ScenarioKind.SINGLE_STREAM,),
        repeat=2,
    )
    started: list[ev.CellStarted] = []
    result = execute(
        expand(request),
        ExecuteOptions(out=tmp_path),
        on_event=lambda e: started.append(e) if isinstance(e, ev.CellStarted) else None,
    )
    assert result.status is ExitStatus.COMPLETE
    assert [(e.index, e.total, e.cell.model.name, e.repetition) for e in started] == [
        (1, 4, "mlp-tiny", 1),
        (2, 4, "conv-small", 1),
        (3, 4, "mlp-tiny", 2),
        (4, 4, "conv-small", 2),
    ]
    reports = [read_report(w.path) for w in result.written]
    reps = [r.repetition for r in reports]
    assert all(rep is not None for rep in reps)
    assert [
        (r.model.name, r.repetition.index, r.repetition.position) for r in reports if r.repetition
    ] == [
        ("mlp-tiny", 1, 1),
        ("conv-small", 1, 2),
        ("mlp-tiny", 2, 3),
        ("conv-small", 2, 4),
    ]
    groups = {r.model.name: r.repetition.group for r in reports if r.repetition}
    assert len(set(groups.values())) == 2  # one group per cell
    assert len({r.repetition.series for r in reports if r.repetition}) == 1  # one series
    assert len({r.run_id for r in reports}) == 4  # separate runs
    assert all(r.repetition and r.repetition.count == 2 for r in reports)
    assert all(r.cold_start is not None and r.cold_start.load_s > 0 for r in reports)  # fresh
    for w in result.written:
        assert verify_samples(read_report(w.path), w.path)


def test_a_single_run_has_no_repetition_section_and_old_reports_still_verify(
    tmp_path: Path,
) -> None:
    old = parse_report(FIXTURE.read_text())  # the committed v1 report: digest verifies
    assert old.repetition is None
    assert "repetition" not in json.loads(FIXTURE.read_text())
    assert "repetition" not in old.model_dump(mode="json")
    request = dataclasses.replace(QUICK, models=("mlp-tiny",), scenarios=(ScenarioKind.OFFLINE,))
    result = execute(
        expand(dataclasses.replace(request, batch_sizes=(1,))), ExecuteOptions(out=tmp_path)
    )
    (written,) = result.written
    assert "repetition" not in json.loads(written.path.read_text())


def test_an_a_a_pair_of_groups_compares_run_level_and_paired(tmp_path: Path) -> None:
    # the same backend twice: two groups of one cell, interleaved A A' A A' A A'
    request = dataclasses.replace(
        QUICK,
        models=("mlp-tiny",),
        backends=("onnxruntime", "onnxruntime"),
        scenarios=(ScenarioKind.SINGLE_STREAM,),
        repeat=3,
        order=InterleaveOrder.SHUFFLE,
        seed=3,
    )
    result = execute(expand(request), ExecuteOptions(out=tmp_path))
    assert len(result.written) == 6
    comparison = compare_paths(report_files([tmp_path]))
    (group,) = comparison.groups
    base, other = group.rows
    assert len(base.members) == 3 and len(other.members) == 3
    assert other.latency is not None
    assert other.latency.method is SignificanceMethod.RUN_LEVEL_PAIRED
    assert (other.latency.runs_a, other.latency.runs_b) == (3, 3)
    assert other.latency.mann_whitney is None  # no query-level test
    figures = {f.figure.value for f in other.latency.figures}
    assert figures == {"p50", "p99", "throughput"}
    for row in (base, other):
        spread = {s.figure.value: s for s in row.spread}
        assert len(spread["p50"].values) == 3 and spread["p50"].cv is not None
    # the HTML report: the groups' table and each repetition as a point beside the mean
    html = write_report_file([tmp_path], tmp_path / "report.html", "html", None).read_text()
    assert 'id="repetitions"' in html and "3 of 3" in html and "CV " in html
    for figure in ("reps-p50-mlp-tiny", "reps-throughput-mlp-tiny"):
        svg = html.split(f'data-figure="{figure}"')[1].split("</svg>")[0]
        assert svg.count("<circle") == 6  # a point per run of both groups
        assert "(1) fp32" in svg and "(2) fp32" in svg


def test_single_runs_are_labelled_and_not_judged(real_results: Path) -> None:
    comparison = compare_paths(report_files([real_results]))
    (group,) = comparison.groups
    sig = group.rows[1].latency
    assert sig is not None and sig.verdict is Verdict.SINGLE_RUNS
    assert sig.interval is None and sig.mann_whitney is None and sig.median_ratio is not None
    p = subprocess.run([*TP, "compare", str(real_results)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "significance cannot be judged" in p.stdout and "MW p" not in p.stdout


def test_show_and_run_print_a_group_as_one_row(tmp_path: Path) -> None:
    p = tp(
        "run", "-m", "mlp-tiny", "-s", "single-stream", "--repeat", "2", "--quick",
        "--min-queries", "20", "--min-duration", "0.05", "--warmup-duration", "0",
        "--out", str(tmp_path),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "2 runs" in p.stdout and "cv" in p.stdout
    shown = tp("show", str(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert "2 runs" in shown.stdout


def test_repeat_and_order_usage_errors_are_one_line() -> None:
    assert_one_line(tp("run", "-m", "mlp-tiny", "--repeat", "0"), 2, "--repeat", "at least 1")
    assert_one_line(tp("run", "-m", "mlp-tiny", "--order", "random"), 2, "--order", "shuffle")
    with pytest.raises(InvalidOptionError, match="--repeat"):
        expand(dataclasses.replace(QUICK, models=("mlp-tiny",), repeat=-1))


def test_fresh_processes_run_each_repetition_apart(tmp_path: Path) -> None:
    request = dataclasses.replace(
        QUICK,
        models=("mlp-tiny",),
        scenarios=(ScenarioKind.SINGLE_STREAM,),
        repeat=2,
        fresh_process=True,
    )
    result = execute(expand(request), ExecuteOptions(out=tmp_path))
    assert result.status is ExitStatus.COMPLETE and len(result.written) == 2
    for w in result.written:
        report = read_report(w.path)
        assert report.status is RunStatus.COMPLETE
        assert report.repetition is not None and report.repetition.fresh_process
        assert report.cold_start is not None
        assert report.cold_start.first_load_in_process_s is None  # its own first load
        assert verify_samples(report, w.path)


def test_a_child_that_dies_gives_a_failed_report_saying_so() -> None:
    request = dataclasses.replace(QUICK, models=("mlp-tiny",), scenarios=(ScenarioKind.OFFLINE,))
    matrix = expand(dataclasses.replace(request, batch_sizes=(1,)))
    outcome = run_in_fresh_process(ChildJob(matrix.request or request, cell=99), matrix.cells[0])
    assert outcome.report.status is RunStatus.FAILED and outcome.samples is None
    (err,) = outcome.report.errors
    assert "ended without a report" in err.message and "exit code 1" in err.message


def test_sigterm_during_a_fresh_process_run_keeps_its_interrupted_report(tmp_path: Path) -> None:
    import os
    import signal
    import time

    proc = subprocess.Popen(
        [
            *TP, "run", "-m", "mlp-tiny", "-s", "single-stream", "--repeat", "2",
            "--fresh-process", "--stop", "fixed", "--min-duration", "60",
            "--max-duration", "90", "--warmup-duration", "0", "--out", str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not children.read_text().split():
        time.sleep(0.2)  # wait for the first repetition's process
    assert children.read_text().split(), "no child process started"
    time.sleep(3)  # let it reach its measured part (either way its report is interrupted)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    (path,) = report_files([tmp_path])  # the second repetition never started
    report = read_report(path)
    assert report.status is RunStatus.INTERRUPTED
    assert report.repetition is not None and report.repetition.index == 1
