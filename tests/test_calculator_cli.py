"""``tippingpoint cost`` end to end on real report files, and its one-line errors."""

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest

from tippingpoint.calculator.params import Basis, Param
from tippingpoint.calculator.result import COST_SCHEMA_VERSION, CostResult, RecommendationStatus
from tippingpoint.cli import main
from tippingpoint.core.io import write_report
from tippingpoint.core.schema import RunFlag, SweepPoint

from .calculator_factory import cloud_report, edge_report, pi5_host
from .helpers import TP

BASE = ["--device", "rpi5", "--cloud", "gpu-t4-ondemand", "--network", "lte", "--draws", "2000"]


@pytest.fixture
def reports(tmp_path: Path) -> list[Path]:
    out = tmp_path / "results"
    out.mkdir()
    return [
        write_report(edge_report(40, 30, joules=0.2, host=pi5_host()), out),
        write_report(edge_report(60, 90, batch=8, host=pi5_host()), out),
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
    assert result.schema_version == COST_SCHEMA_VERSION == 2
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
    assert data["schema_version"] == 2 and data["workload"] == "my"
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
    assert json.loads(capsys.readouterr().out)["schema_version"] == 2


def test_variant_option_picks_the_reports_costed(
    reports: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    write_report(edge_report(120, 10, variant="int8", host=pi5_host()), reports[0].parent)
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


FAILED_SEARCH = (
    SweepPoint(
        offered_rate_qps=200.0,
        achieved_rate_qps=150.0,
        p50_ms=5.0,
        p99_ms=30.0,
        error_rate=0.0,
        meets_bound=False,
        send_lag_invalid=True,
    ),
    SweepPoint(
        offered_rate_qps=11.5,
        achieved_rate_qps=11.5,
        p50_ms=20.0,
        p99_ms=61.0,
        error_rate=0.0,
        meets_bound=False,
        send_lag_invalid=False,
    ),
)


def test_failed_search_is_not_measured_and_inconclusive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # make bench on a busy machine: no probe met the bound, the harness wrote no peak
    out = tmp_path / "results"
    out.mkdir()
    write_report(edge_report(40, 30, joules=0.2, host=pi5_host()), out)
    failed = cloud_report(
        peak_rate_qps=None,
        server_p99_ms=12,
        throughput=11.5,
        sweep=FAILED_SEARCH,
        flags=(RunFlag.SEND_LAG_INVALID,),
    )
    write_report(failed, out)
    args = ["cost", "-r", str(out), *BASE, "-w", "camera-analytics"]
    assert main([*args, "--brief"]) == 0
    printed = capsys.readouterr().out
    assert "not measured: report cloudfp3" in printed
    assert "found no rate meeting p99 <= 50 ms" in printed
    assert "recommendation: INCONCLUSIVE" in printed
    assert main([*args, "--json"]) == 0
    data = CostResult.model_validate_json(capsys.readouterr().out)
    a = data.analyses[0]
    assert a.not_measured is not None and a.placements == () and a.comparison is None
    rec = data.recommendation
    assert rec.status is RecommendationStatus.INCONCLUSIVE and rec.label is None
    assert any("send-lag-invalid" in why for why in rec.invalid_inputs)
    # accepted: the throughput prices the instance, and every line carries the flag
    assert main([*args, "--json", "--accept-flagged"]) == 0
    data = CostResult.model_validate_json(capsys.readouterr().out)
    assert data.recommendation.status is RecommendationStatus.DECIDED
    lines = [ln for p in (data.edge, *data.analyses[0].placements) for ln in p.lines]
    assert lines
    for ln in lines:
        accepted = " ".join(c for c in ln.caveats if c.startswith("accepted flagged run"))
        assert "send-lag-invalid" in accepted and "found no rate" in accepted
    assert any("found no rate" in c for c in data.caveats)


def test_x86_report_costed_as_rpi5_is_refused_then_labelled_with_proxy_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    out.mkdir()
    write_report(edge_report(40, 30, joules=0.2), out)  # the fixture's host: AMD EPYC, x86_64
    write_report(cloud_report(peak_rate_qps=400, server_p99_ms=12), out)
    args = ["cost", "-r", str(out), *BASE, "-w", "camera-analytics"]
    rc = main(args)
    _one_error(
        capsys,
        2,
        rc,
        "measured on AMD EPYC (x86_64), not on device profile 'rpi5'",
        "architecture x86_64",
        "--proxy-host",
    )
    assert main([*args, "--proxy-host"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("ILLUSTRATIVE, not a decision: the edge figures")
    label = "measured on AMD EPYC (x86_64), costed as rpi5"
    assert label in printed
    assert main([*args, "--proxy-host", "--json"]) == 0
    data = CostResult.model_validate_json(capsys.readouterr().out)
    assert data.proxy is not None and data.proxy.costed_as == "rpi5"
    assert label in data.caveats and data.illustrative
    placements = (data.edge, *data.analyses[0].placements)
    assert all(label in ln.caveats for p in placements for ln in p.lines)
    # the HTML executive summary opens with it
    from tippingpoint.reports.document import Para, build_document

    blocks = list(build_document([], data).blocks)
    summary = next(i for i, b in enumerate(blocks) if getattr(b, "anchor", None) == "summary")
    first = blocks[summary + 1]
    assert isinstance(first, Para)
    assert first.text.startswith("Illustrative, not a decision") and "costed as rpi5" in first.text


def test_everyday_knobs_and_another_currency(
    reports: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["cost", "-r", str(reports[0].parent), *BASE, "-w", "camera-analytics", "--json"]
    assert main(args) == 0
    usd = CostResult.model_validate_json(capsys.readouterr().out)
    knobs = [
        "--horizon-months",
        "18",
        "--discount-rate",
        "0.1",
        "--volume",
        "50000",
        "--start",
        "2027-01-01",
        "--currency",
        "EUR",
        "--fx",
        "0.9",
        "--fx-source",
        "ECB reference rate",
    ]
    assert main([*args, *knobs]) == 0
    eur = CostResult.model_validate_json(capsys.readouterr().out)
    assert eur.horizon_months == 18 and len(eur.edge.cumulative_cost) == 19
    assert eur.start == date(2027, 1, 1) and eur.currency == "EUR" and eur.fx_rate == 0.9
    rows = {r.param: r for r in eur.analyses[0].inputs}
    assert rows[Param.FX_RATE].source == "ECB reference rate"
    assert rows[Param.FX_RATE].basis is Basis.SOURCED
    assert rows[Param.VOLUME].value == 50000 and rows[Param.VOLUME].basis is Basis.ASSUMED
    assert rows[Param.DISCOUNT_RATE].value == 0.1
    # money is converted (80 USD -> 72 EUR), quantities are not
    assert rows[Param.DEVICE_PRICE].value == pytest.approx(72.0)
    assert rows[Param.DEVICE_PRICE].unit == "EUR/unit"
    assert rows[Param.EDGE_THROUGHPUT].value == next(
        r.value for r in usd.analyses[0].inputs if r.param is Param.EDGE_THROUGHPUT
    )
    a = eur.analyses[0]
    assert a.comparison is not None and a.comparison.payback_date is not None
    assert a.comparison.payback_date >= date(2027, 1, 1)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--currency", "EUR"], "--currency EUR needs an exchange rate"),
        (["--currency", "euro", "--fx", "1"], "is not an ISO 4217 code"),
        (["--currency", "EUR", "--fx", "0"], "--fx 0 is not positive"),
        (["--fx", "0.9"], "--fx 0.9 without --currency"),
        (["--start", "2027-13-01"], "--start '2027-13-01' is not a date"),
        (["--horizon-months", "0"], "--horizon-months"),
        (["--volume", "-5"], "--volume"),
    ],
)
def test_bad_knobs_are_one_line_errors(
    reports: list[Path], capsys: pytest.CaptureFixture[str], flags: list[str], needle: str
) -> None:
    rc = main(["cost", "-r", str(reports[0].parent), *BASE, "-w", "camera-analytics", *flags])
    _one_error(capsys, 2, rc, needle)
