"""``tippingpoint cost`` end to end on real report files, and its one-line errors."""

import json
import subprocess
from pathlib import Path

import pytest

from tippingpoint.calculator.result import COST_SCHEMA_VERSION, CostResult
from tippingpoint.cli import main
from tippingpoint.core.io import write_report

from .calculator_factory import cloud_report, edge_report
from .helpers import TP

BASE = ["--device", "rpi5", "--cloud", "gpu-t4-ondemand", "--network", "lte", "--draws", "2000"]


@pytest.fixture
def reports(tmp_path: Path) -> list[Path]:
    out = tmp_path / "results"
    out.mkdir()
    return [
        write_report(edge_report(40, 30, joules=0.2), out),
        write_report(edge_report(60, 90, batch=8), out),
        write_report(cloud_report(peak_rate_qps=400, server_p99_ms=12), out),
    ]


def _one_error(capsys: pytest.CaptureFixture[str], code: int, rc: int, *needles: str) -> None:
    err = capsys.readouterr().err
    assert rc == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0]


def test_cost_writes_a_versioned_result_and_prints_tables(
    reports: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cost" / "cost.json"
    args = ["cost", "--reports", *map(str, reports), *BASE, "--workload", "camera-analytics"]
    rc = main([*args, "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    result = CostResult.model_validate_json(out.read_text())
    assert result.schema_version == COST_SCHEMA_VERSION == 1
    assert result.device == "rpi5" and result.analyses[0].cloud == "gpu-t4-ondemand"
    assert result.analyses[0].monte_carlo is not None
    assert result.analyses[0].monte_carlo.draws == 2000
    for needle in ("placements", "tornado", "Monte Carlo", "scenarios", "recommendation"):
        assert needle in printed
    # what the renderer plots is in the file: curves, tornado rows, histogram
    assert len(result.edge.cumulative_cost) == result.horizon_months + 1
    assert result.analyses[0].comparison.tipping.curve_volume_per_day
    assert result.analyses[0].tornado.rows


def test_cost_json_to_stdout_with_a_workload_file(
    reports: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = tmp_path / "my.toml"
    wl.write_text("inferences_per_day = 50000\nslo_p99_ms = 200\nhorizon_years = 2\n")
    rc = main(["cost", "-r", str(reports[0].parent), *BASE, "--workload", str(wl), "--json"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == 1 and data["workload"] == "my"
    assert data["horizon_months"] == 24


def test_shell_glob_after_reports(reports: list[Path]) -> None:
    # what `--reports results/*.json` becomes once the shell expands it
    proc = subprocess.run(
        [*TP, "cost", "--reports", *map(str, reports), *BASE, "-w", "fraud-scoring", "--brief"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "edge: rpi5" in proc.stdout and "Traceback" not in proc.stderr


def test_unknown_profile_name(reports: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["cost", "-r", str(reports[0]), *BASE, "--device", "rpi9", "-w", "fraud-scoring"])
    _one_error(capsys, 2, rc, "no device profile named 'rpi9'", "known device profiles")


def test_negative_price_in_a_user_profile(
    reports: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[cloud.gpu-t4-ondemand]\nkind = "instance"\nprice_per_hour = -0.5\n')
    args = ["cost", "-r", str(reports[0]), *BASE, "-w", "fraud-scoring", "--profiles", str(bad)]
    rc = main(args)
    _one_error(capsys, 2, rc, "price_per_hour", "must be >= 0", "fix the value")


def test_missing_field_in_the_workload(
    reports: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wl = tmp_path / "w.toml"
    wl.write_text("slo_p99_ms = 20\n")
    rc = main(["cost", "-r", str(reports[0]), *BASE, "--workload", str(wl)])
    _one_error(capsys, 2, rc, "inferences_per_day", "Field required")


def test_report_of_another_schema_version(
    reports: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(reports[0].read_text())
    data["schema_version"] = 99
    future = tmp_path / "future.json"
    future.write_text(json.dumps(data))
    rc = main(["cost", "-r", str(future), *BASE, "-w", "fraud-scoring"])
    _one_error(capsys, 2, rc, "schema_version 99")


def test_no_cloud_and_no_reports(reports: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["cost", "-r", str(reports[0]), "--device", "rpi5", "-w", "fraud-scoring"])
    _one_error(capsys, 2, rc, "no cloud profile given", "--cloud")
    rc = main(["cost", *BASE, "-w", "fraud-scoring"])
    _one_error(capsys, 2, rc, "no reports given")


def test_a_cost_result_beside_the_reports_is_skipped(
    reports: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = reports[0].parent
    args = ["cost", "-r", str(folder), *BASE, "-w", "fraud-scoring", "--json"]
    assert main([*args, "--out", str(folder / "cost.json")]) == 0
    capsys.readouterr()
    assert main(args) == 0  # the folder now holds cost.json too
    assert json.loads(capsys.readouterr().out)["schema_version"] == 1


def test_variant_option_picks_the_reports_costed(
    reports: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write_report(edge_report(120, 10, variant="int8"), reports[0].parent)
    args = ["cost", "-r", str(reports[0].parent), *BASE, "-w", "fraud-scoring", "--json"]
    assert main(args) == 0
    default = json.loads(capsys.readouterr().out)
    assert default["variant"] == "fp32"  # fp32 is measured: the default
    assert main([*args, "--variant", "int8"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert chosen["variant"] == "int8" and chosen["cloud_variant"] == "fp32"
    assert any("mixes variants" in w for w in chosen["warnings"])
    rc = main([*args, "--variant", "fp16"])
    _one_error(capsys, 2, rc, "no report of variant 'fp16'", "variants in these reports")
