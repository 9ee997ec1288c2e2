"""End-to-end runs through the CLI: matrix, JSON output, suite file, Ctrl-C."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tippingpoint.core.io import read_report
from tippingpoint.core.schema import RunFlag, RunStatus

from .helpers import QUICK, TP, assert_one_line, one_report, tp


def test_matrix_writes_one_report_per_run(tmp_path: Path) -> None:
    p = tp(
        "run",
        "-m",
        "mlp-tiny",
        "-s",
        "single-stream",
        "-s",
        "offline",
        "--batch-sizes",
        "1,4",
        "-o",
        str(tmp_path),
        "--json",
        *QUICK,
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert [s["scenario"] for s in summary] == ["single-stream", "offline", "offline"]
    reports = [read_report(Path(s["path"])) for s in summary]
    for s, r in zip(summary, reports, strict=True):
        assert r.status is RunStatus.COMPLETE
        assert r.results is not None and r.results.latency.p50 == s["p50_ms"]
    # the pre-run check loaded the model first: its time is kept in the first run's cold start
    colds = [r.cold_start for r in reports]
    assert all(c is not None and c.load_s > 0 for c in colds)
    assert colds[0] is not None and (colds[0].first_load_in_process_s or 0) > 0
    assert [c.first_load_in_process_s for c in colds[1:] if c is not None] == [None, None]
    show = tp("show", str(tmp_path))
    assert show.returncode == 0 and "mlp-tiny" in show.stdout


def test_suite_file_with_backend_options(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        '[run]\nmodels = ["conv-small"]\nscenarios = ["offline"]\nbatch_sizes = [2]\n'
        "quick = true\nmin_queries = 20\nmin_duration_s = 0.05\nwarmup_s = 0\n"
        '[backend_options.onnxruntime]\nintra_op_threads = 1\nexecution_mode = "sequential"\n'
    )
    r = one_report(tp("run", "--suite", str(suite), "-o", str(tmp_path / "r"), "--json"))
    assert r.backend is not None and r.backend.options["intra_op_threads"] == 1
    assert r.scenario.batch_size == 2 and r.scenario.quick


def test_ctrl_c_keeps_finished_runs_and_marks_the_interrupted_one(tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = subprocess.Popen(
        [
            *TP,
            "run",
            "-m",
            "mlp-tiny",
            "-s",
            "single-stream",
            "-s",
            "offline",
            "--batch-sizes",
            "1,2,4",
            "--min-duration",
            "1.0",
            "--warmup-duration",
            "0",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.json"))) < 1:
        time.sleep(0.05)
    time.sleep(0.5)  # into the second run's measured window
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    reports = sorted((read_report(p) for p in out.glob("*.json")), key=lambda r: r.started_at)
    assert len(reports) >= 2
    assert all(r.status is RunStatus.COMPLETE for r in reports[:-1])
    last = reports[-1]
    assert last.status is RunStatus.INTERRUPTED and RunFlag.INTERRUPTED in last.flags
    assert len(reports) < 4  # the matrix stopped
    assert not list(out.glob(".*tmp*"))


def test_user_inputs_file(tmp_path: Path) -> None:
    import numpy as np

    def run_on(name: str, dtype: type, *flags: str) -> subprocess.CompletedProcess[str]:
        """mlp-tiny on ``NAME.npz``, one row of ``dtype``, its reports in ``NAME/``."""
        inputs = tmp_path / f"{name}.npz"
        np.savez(inputs, x=np.ones((1, 32), dtype=dtype))
        out = str(tmp_path / name)
        return tp("run", "-m", "mlp-tiny", "-s", "single-stream", "--inputs", str(inputs),
                  "-o", out, *flags, *QUICK)  # fmt: skip

    assert one_report(run_on("in", np.float32, "--json")).scenario.input_source == "in.npz"
    p = run_on("bad", np.complex128)
    assert_one_line(p, 2, "is complex128, the model expects float32", "save it as float32")
