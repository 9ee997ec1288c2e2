"""``tippingpoint cost --xlsx/--csv``: the workbook and the CSV files read back with the same
figures as the JSON result."""

import csv
import math
from datetime import date
from pathlib import Path

import pytest

from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.export import SHEETS, tables
from tippingpoint.calculator.result import CostResult
from tippingpoint.cli import main
from tippingpoint.core.io import write_report

from .calculator_factory import (
    cloud_report,
    edge_report,
    hand_cloud,
    hand_profiles,
    pi5_host,
    sourced,
)

BASE = ["--device", "rpi5", "--cloud", "gpu-t4-ondemand", "--network", "lte", "--draws", "2000"]


def hand_result(draws: int = 2000) -> CostResult:
    """The hand-worked example with a 50 % hybrid and a Monte Carlo: tests/fixtures/cost_v2.json
    was written from it (``hand_result().model_dump_json(indent=2)``)."""
    return calculate(
        [edge_report(100, 20, joules=0.05), cloud_report(peak_rate_qps=50, server_p99_ms=10)],
        profiles=hand_profiles(hybrid_edge_share=sourced(0.5)),
        clouds=[hand_cloud()],
        today=date(2026, 11, 23),
        tool_version="test",
        draws=draws,
    )


@pytest.fixture
def exported(tmp_path: Path) -> tuple[CostResult, Path, Path]:
    out = tmp_path / "results"
    out.mkdir()
    write_report(edge_report(40, 30, joules=0.2, host=pi5_host()), out)
    write_report(cloud_report(peak_rate_qps=400, server_p99_ms=12), out)
    folder = tmp_path / "export"
    args = ["cost", "-r", str(out), *BASE, "-w", "camera-analytics", "--brief"]
    files = ["--out", str(folder / "cost.json"), "--xlsx", str(folder / "cost.xlsx")]
    assert main([*args, *files, "--csv", str(folder / "csv")]) == 0
    result = CostResult.model_validate_json((folder / "cost.json").read_text())
    return result, folder / "cost.xlsx", folder / "csv"


def _same(a: object, b: object) -> bool:
    if a in ("", None) and b in ("", None):  # a workbook keeps no empty string
        return True
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        # a workbook keeps 15 significant digits (1000.0000000000001 reads back as 1000)
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def test_workbook_reads_back_with_the_json_figures(
    exported: tuple[CostResult, Path, Path],
) -> None:
    from openpyxl import load_workbook

    result, xlsx, _ = exported
    wb = load_workbook(xlsx, read_only=True)
    assert wb.sheetnames == list(SHEETS)
    expected = tables(result)
    for name in SHEETS:
        head, rows = expected[name]
        got = [tuple(r) for r in wb[name].iter_rows(values_only=True)]
        assert got[0] == head, name
        assert len(got) - 1 == len(rows), name
        for want, have in zip(rows, got[1:], strict=True):
            assert all(_same(w, h) for w, h in zip(want, have, strict=True)), (name, want, have)
    # spot checks against the JSON itself: numbers are numbers, units in the headers
    placements = wb["placements"]
    header = [c.value for c in next(placements.iter_rows(max_row=1))]
    edge = next(r for r in placements.iter_rows(min_row=2, values_only=True) if r[1] == "edge")
    assert edge[header.index("PV [USD]")] == pytest.approx(result.edge.pv)
    assert edge[header.index("capex TCO [USD]")] == pytest.approx(result.edge.capex_tco)
    basis = result.edge.latency.basis
    assert basis is not None  # the edge's p99 is measured on the device
    assert edge[header.index("p99 basis")] == basis.value == "measured"
    flows = list(wb["cash_flows"].iter_rows(values_only=True))
    col = flows[0].index("edge: rpi5 | hardware [USD]")
    hardware = next(cf for cf in result.edge.cash_flows if cf.component.value == "hardware")
    assert [r[col] for r in flows[1:]] == pytest.approx(list(hardware.values))
    assert len(flows) - 1 == result.horizon_months + 1
    mc = result.analyses[0].monte_carlo
    assert mc is not None
    npv = next(
        r for r in wb["monte_carlo"].iter_rows(values_only=True) if r[1] == "NPV of choosing edge"
    )
    assert npv[7] == pytest.approx(mc.savings.var95) and npv[9] == "low"
    wb.close()


def test_csv_files_read_back_with_the_json_figures(
    exported: tuple[CostResult, Path, Path],
) -> None:
    result, _, folder = exported
    expected = tables(result)
    assert sorted(p.stem for p in folder.glob("*.csv")) == sorted(SHEETS)
    for name in SHEETS:
        head, rows = expected[name]
        with (folder / f"{name}.csv").open(newline="") as f:
            got = list(csv.reader(f))
        assert tuple(got[0]) == head
        for want, have in zip(rows, got[1:], strict=True):
            for w, h in zip(want, have, strict=True):
                if w is None:
                    assert h == ""
                elif isinstance(w, bool):
                    assert h == str(w)
                elif isinstance(w, int | float):
                    assert float(h) == pytest.approx(float(w), rel=1e-12, abs=1e-12)
                else:
                    assert h == w

    def rows_of(name: str) -> list[dict[str, str]]:
        with (folder / f"{name}.csv").open(newline="") as f:
            return list(csv.DictReader(f))

    inputs = rows_of("inputs")
    price = next(r for r in inputs if r["input"] == "cloud_price_per_hour")
    assert float(price["value"]) == 0.526 and price["basis"] == "sourced"
    assert price["as of"] == "2026-01-21" and "vantage" in price["source"]
    switching = rows_of("switching")
    assert {r["input"] for r in switching} == {s.param.value for s in result.analyses[0].switching}


def test_the_exports_hold_every_table_of_the_hand_result() -> None:
    result = hand_result(draws=500)
    t = tables(result)
    summary = dict((row[0], row[1]) for row in t["summary"][1])
    assert summary["recommendation status"] == "decided"
    assert summary["vs gpu: NPV of choosing edge"] == pytest.approx(
        result.analyses[0].comparison.npv_savings  # type: ignore[union-attr]
    )
    lines = t["cost_lines"][1]
    assert len(lines) == sum(len(p.lines) for p in (result.edge, *result.analyses[0].placements))
