"""--endpoint local: the reference server in a child process, and flagged reports."""

import json
from pathlib import Path

from tippingpoint.core.io import read_report
from tippingpoint.core.schema import RunFlag, RunStatus

from .helpers import QUICK, tp


def test_local_standin_runs_http_and_flags_reports(tmp_path: Path) -> None:
    p = tp(
        "run",
        "-m",
        "digits-cnn",
        "--endpoint",
        "local",
        "-b",
        "http",
        "-b",
        "onnxruntime",
        "-s",
        "single-stream",
        "-o",
        str(tmp_path),
        "--json",
        *QUICK,
    )
    assert p.returncode == 0, p.stderr
    assert "not a cloud endpoint" in p.stderr + p.stdout
    by_backend = {}
    for entry in json.loads(p.stdout):
        r = read_report(Path(entry["path"]))
        assert r.status is RunStatus.COMPLETE
        assert r.backend is not None
        by_backend[r.backend.name] = r
    http = by_backend["http"]
    assert RunFlag.LOCAL_STANDIN in http.flags
    assert http.http is not None and http.http.endpoint.startswith("http://127.0.0.1:")
    assert http.http.bytes_sent_per_request > 0
    assert RunFlag.LOCAL_STANDIN not in by_backend["onnxruntime"].flags
