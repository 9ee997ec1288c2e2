import json
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.errors import ReportError
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import ModelRef
from tippingpoint.reports.io import load_samples, read_report, write_report
from tippingpoint.reports.schema import Report, RunStatus

from .conftest import tiny_scenario


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
    path, _ = written
    schema = Report.model_json_schema()
    assert schema["properties"]["schema_version"]["const"] == 1
    data = json.loads(path.read_text())
    assert set(data) <= set(schema["properties"])


def test_tampered_report_is_rejected(written: tuple[Path, Report], tmp_path: Path) -> None:
    path, _ = written
    data = json.loads(path.read_text())
    data["results"]["latency"]["p99"] = data["results"]["latency"]["p99"] / 2
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="modified after it was written"):
        read_report(bad)


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
    from tippingpoint.reports.io import digest_of_data, parse_report

    data["digest"] = digest_of_data(data)
    report = parse_report(json.dumps(data))
    assert report.collectors.energy is None
