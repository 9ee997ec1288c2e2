"""Models that exist only on the endpoint (``-m NAME --endpoint URL``), servers whose metadata
lists no inputs, ``--opt inputs=`` with the protocol's datatype names, and the report's model
section for each: the name, version and platform as the server states them, and no local file
to hash where there is none. The probe's interop items 1-4, replayed against real servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.http_helpers import write_add_model
from tippingpoint.cli import main
from tippingpoint.core.io import read_report
from tippingpoint.core.schema import ModelSource, Report, SpecSource
from tippingpoint.server.background import BackgroundServer

pytestmark = pytest.mark.probe("endpoint-faults")

SHORT = ["-s", "single-stream", "--min-queries", "20", "--min-duration", "0.05"]
SHORT += ["--warmup-duration", "0", "--idle-s", "0"]


def run_one(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> Report:
    """``tippingpoint run ARGS --json`` in this process; its one complete report."""
    import json

    code = main(["run", *args, *SHORT, "--out", str(out), "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err + printed.out
    (entry,) = json.loads(printed.out)
    report = read_report(Path(entry["path"]))
    assert report.status.value == "complete", report.errors
    return report


def test_a_model_only_the_endpoint_has(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, add_server: BackgroundServer
) -> None:
    """The probe's 1: ``-m add`` is no suite model and no file, only the server's."""
    report = run_one(capsys, tmp_path, "-m", "add", "--endpoint", add_server.url)
    model = report.model
    assert (model.name, model.variant, model.source) == ("add", "remote", ModelSource.REMOTE)
    assert model.sha256 == "" and model.path == "" and model.size_bytes == 0
    remote = model.remote
    assert remote is not None
    assert (remote.name, remote.local_file, remote.specs_from) == (
        "add",
        False,
        SpecSource.METADATA,
    )
    assert remote.version == "1" and remote.platform  # as the reference server states them
    assert [s.name for s in model.inputs] == ["a", "b", "i"]
    assert report.http is not None and report.http.error_rate == 0


def test_metadata_without_inputs_and_no_other_source_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, faults: str
) -> None:
    code = main(["run", "-m", "blank", "--endpoint", faults, *SHORT, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    for way in ("lists no inputs", "--opt model_name=blank", "--opt inputs=", "metadata"):
        assert way in line
    assert not list(tmp_path.glob("*.json"))  # nothing ran


def test_inputs_option_takes_protocol_datatypes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, faults: str
) -> None:
    """The probe's 3: ``--opt inputs=frames:FP32:1x640`` was refused (numpy names only)."""
    report = run_one(
        capsys, tmp_path, "-m", "blank", "--endpoint", faults, "--opt", "inputs=frames:FP32:1x640"
    )
    assert report.model.remote is not None
    assert report.model.remote.specs_from is SpecSource.OPTION
    assert report.model.remote.version == "3" and report.model.remote.platform == "custom"
    assert [(s.name, s.dtype, s.shape) for s in report.model.inputs] == [
        ("frames", "float32", (1, 640))
    ]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("x:FP33:1", "unknown datatype"),
        ("x:FP32:1xA", "DIMxDIM"),
        ("x:FP32", "NAME:DTYPE"),
    ],
)
def test_bad_inputs_option_is_a_usage_error_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, faults: str, spec: str, needle: str
) -> None:
    code = main(
        ["run", "-m", "blank", "--endpoint", faults, "--opt", f"inputs={spec}", *SHORT,
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was created


def test_a_local_file_gives_the_specs_the_metadata_lacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, faults: str
) -> None:
    """The probe's 2 and 4: the server answered ``{"inputs": []}`` with a 500 though the local
    file had the specs, and the report named the local file, not the served model."""
    local = write_add_model(tmp_path / "add.onnx")
    report = run_one(
        capsys, tmp_path / "out", "-m", str(local), "--endpoint", faults, "--opt",
        "model_name=blank",
    )  # fmt: skip
    model = report.model
    assert model.name == "blank" and model.path == str(local) and model.sha256
    assert model.remote is not None and model.remote.local_file
    assert model.remote.specs_from is SpecSource.FILE
    assert report.http is not None and report.http.error_rate == 0


def test_metadata_and_local_file_disagreeing_is_a_warning_naming_both(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, add_server: BackgroundServer
) -> None:
    report = run_one(
        capsys, tmp_path, "-m", "mlp-tiny", "--endpoint", add_server.url, "--opt",
        "model_name=add",
    )  # fmt: skip
    (warning,) = [w for w in report.warnings if "does not match" in w]
    assert "'add'" in warning and "mlp-tiny" in warning
    assert report.model.remote is not None and report.model.remote.warning == warning
    assert report.model.name == "add"  # the served model, not the local file's


@pytest.mark.parametrize("how", ["remote-only", "local file"])
def test_a_model_the_endpoint_does_not_serve_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, add_server: BackgroundServer, how: str
) -> None:
    """The probe's 'endpoint lacks the model': exit 1 and a failed report after the run
    started; now one line naming what the server serves, exit 2, and no --out created."""
    out = tmp_path / "out"
    model = ["-m", "nosuch"] if how == "remote-only" else ["-m", "mlp-tiny", "-b", "http"]
    code = main(
        ["run", *model, "--endpoint", add_server.url, "--opt", "model_name=nosuch", *SHORT,
         "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "does not serve the model" in line and "/v2/models/nosuch" in line
    assert "served: add" in line and "--opt model_name=NAME" in line
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_a_bytes_input_runs_against_a_model_taking_strings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, faults: str, binary: bool
) -> None:
    """The probe's ``--opt inputs=x:BYTES:1``, refused before: a remote model whose input is
    BYTES gets seeded ASCII strings, as JSON strings or the binary extension's length-prefixed
    elements; the fault server's ``text`` model reads both by hand and answers 400 otherwise."""
    report = run_one(
        capsys, tmp_path, "-m", "text", "--endpoint", faults, "--opt", "inputs=words:BYTES:3",
        "--opt", f"binary={str(binary).lower()}",
    )  # fmt: skip
    assert report.http is not None and report.http.error_rate == 0
    assert report.results is not None and report.results.latency.count >= 20
    assert [(s.name, s.dtype, s.shape) for s in report.model.inputs] == [("words", "object", (3,))]
    assert report.model.remote is not None
    assert report.model.remote.specs_from is SpecSource.OPTION
