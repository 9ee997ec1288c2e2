import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.core.errors import ReportError
from tippingpoint.core.io import load_samples, read_report, write_report
from tippingpoint.core.schema import Report, RunStatus
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import ModelRef

from .helpers import TP, tiny_scenario


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    from tippingpoint.models.registry import resolve_model

    out = tmp_path_factory.mktemp("reports")
    outcome = Runner().run(RunSpec(resolve_model("mlp-tiny"), "onnxruntime", tiny_scenario()))
    assert outcome.samples is not None
    path = write_report(
        outcome.report,
        out,
        {"latency_ns": outcome.samples.latency_ns, "end_ns": outcome.samples.end_ns},
    )
    return path, outcome.report


def test_round_trip_and_samples_recompute_statistics(written: tuple[Path, Report]) -> None:
    path, original = written
    report = read_report(path)
    assert report.status is RunStatus.COMPLETE
    assert report.run_id == original.run_id
    assert report.digest is not None
    samples = load_samples(report, path)
    assert report.results is not None and report.results.raw is not None
    assert len(samples["latency_ns"]) == report.results.raw.count == report.results.latency.count
    # any statistic can be recomputed from the sidecar
    lat_ms = np.sort(samples["latency_ns"]) / 1e6
    assert report.results.latency.max == pytest.approx(lat_ms[-1])
    assert not list(path.parent.glob(".*tmp*"))


def test_json_schema_validates_written_report(written: tuple[Path, Report]) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")
    path, _ = written
    printed = subprocess.run([*TP, "schema"], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    schema = json.loads(printed.stdout)
    assert schema["properties"]["schema_version"]["const"] == 1
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    data = json.loads(path.read_text())
    assert data["results"]["raw"] is not None  # the sidecar reference is part of what is checked
    validator.validate(data)
    fixture = json.loads((Path(__file__).parent / "fixtures" / "report_v1.json").read_text())
    validator.validate(fixture)
    # the schema is strict enough to catch a wrong type, an unknown field and a missing one
    wrong_type = json.loads(path.read_text())
    wrong_type["results"]["latency"]["p99"] = "fast"
    unknown = json.loads(path.read_text())
    unknown["results"]["latency"]["p42"] = 1.0
    missing = json.loads(path.read_text())
    del missing["run_id"]
    for bad in (wrong_type, unknown, missing):
        assert not validator.is_valid(bad)


def test_tampered_report_is_rejected(written: tuple[Path, Report], tmp_path: Path) -> None:
    path, _ = written
    data = json.loads(path.read_text())
    data["results"]["latency"]["p99"] = data["results"]["latency"]["p99"] / 2
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="modified after it was written"):
        read_report(bad)


@pytest.mark.parametrize("how", ["deleted", "null"])
def test_report_without_digest_is_rejected(
    written: tuple[Path, Report], tmp_path: Path, how: str
) -> None:
    path, _ = written
    data = json.loads(path.read_text())
    data["results"]["latency"]["p99"] = data["results"]["latency"]["p99"] / 2
    if how == "deleted":
        del data["digest"]
    else:
        data["digest"] = None
    bad = tmp_path / "undigested.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="has no digest") as err:
        read_report(bad)
    assert "re-run the benchmark" in err.value.one_line()


def test_tampered_samples_are_rejected(written: tuple[Path, Report], tmp_path: Path) -> None:
    path, _ = written
    report = read_report(path)
    assert report.results is not None and report.results.raw is not None
    copy = tmp_path / path.name
    copy.write_text(path.read_text())
    sidecar = tmp_path / report.results.raw.path
    sidecar.write_bytes((path.parent / report.results.raw.path).read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ReportError, match="do not match"):
        load_samples(report, copy)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "no schema_version"),
        ('{"schema_version": 99}', "schema_version 99; this tippingpoint reads 1"),
        ('{"schema_version": 1, "run_id": "x"}', "not a valid report"),
    ],
)
def test_invalid_reports(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "r.json"
    p.write_text(text)
    with pytest.raises(ReportError, match=match):
        read_report(p)


def test_previous_version_fixture_reads(tmp_path: Path, mlp: ModelRef) -> None:
    # the committed v1 fixture stays readable by every later version of the reader
    fixture = Path(__file__).parent / "fixtures" / "report_v1.json"
    report = read_report(fixture)
    assert report.schema_version == 1
    assert report.results is not None and report.results.latency.count > 0


def test_adding_an_optional_field_keeps_old_files_readable(written: tuple[Path, Report]) -> None:
    # an older writer did not know a field this reader has: the file lacks it entirely
    path, _ = written
    data = json.loads(path.read_text())
    del data["collectors"]["energy"]
    from tippingpoint.core.io import digest_of_data, parse_report

    data["digest"] = digest_of_data(data)
    report = parse_report(json.dumps(data))
    assert report.collectors.energy is None


def _copy_with_sidecar(path: Path, report: Report, to: Path) -> tuple[Path, Path]:
    assert report.results is not None and report.results.raw is not None
    to.mkdir(parents=True, exist_ok=True)
    copy = Path(shutil.copy(path, to / path.name))
    sidecar = Path(shutil.copy(path.parent / report.results.raw.path, to))
    return copy, sidecar


def test_show_checks_the_samples_sidecar(written: tuple[Path, Report], tmp_path: Path) -> None:
    path, _ = written
    report = read_report(path)
    copy, sidecar = _copy_with_sidecar(path, report, tmp_path / "ok")
    ok = subprocess.run([*TP, "show", str(copy)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr

    data = sidecar.read_bytes()
    sidecar.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))
    bad = subprocess.run([*TP, "show", str(copy)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert "do not match the report's sha256" in line and "restore the original file" in line

    sidecar.unlink()
    gone = subprocess.run(
        [*TP, "show", str(copy), "--json"], capture_output=True, text=True, timeout=60
    )
    assert gone.returncode == 0, gone.stderr
    (warning,) = gone.stderr.strip().splitlines()
    assert warning.startswith("warning: raw samples") and "are missing" in warning
    assert json.loads(gone.stdout)[0]["run_id"] == report.run_id
