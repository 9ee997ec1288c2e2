"""HTML and Markdown reports rendered from real runs: sections, figures, units, provenance."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tippingpoint.core.schema import (
    EnergySummary,
    HttpResults,
    MeasurementMethod,
    Report,
    RunFlag,
    SweepPoint,
)
from tippingpoint.reports.charts.spec import (
    Axis,
    Bar,
    BarFigure,
    BarGroup,
    HistogramFigure,
    LineFigure,
    Marker,
    Provenance,
    RefLine,
    Series,
    TornadoFigure,
    TornadoRow,
)
from tippingpoint.reports.charts.svg import figure_svg, log_ticks, nice_ticks
from tippingpoint.reports.document import build_document
from tippingpoint.reports.html import render_html
from tippingpoint.reports.render_report import load_results, write_report_file
from tippingpoint.reports.runs import load_run_data

from .helpers import TP
from .reports_fixtures import mlp_single_stream, rewrite, runs_named, with_accuracy

SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def _svgs(html: str) -> list[str]:
    return SVG.findall(html)


def test_html_report_from_real_runs_is_self_contained(real_results: Path, tmp_path: Path) -> None:
    out = write_report_file([real_results], tmp_path / "report.html")
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>")
    for section in ("Executive summary", "Runs", "Comparison", "Latency", "Environment"):
        assert f">{section}</h2>" in html
    # nothing to fetch: no scripts, no external stylesheets, images or fonts
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']https?:""", html)
    assert "No cost analysis was supplied" in html
    svgs = _svgs(html)
    # a CDF and a percentile chart for each of the two models
    assert len(svgs) == 4
    for svg in svgs:
        assert "<path" in svg or "<rect" in svg
        assert re.search(r"\((ms|0-1)\)", svg), "every chart names its units"
    cdf = next(s for s in svgs if "Latency CDF: mlp-tiny" in s)
    assert len(re.findall(r'<path d="M', cdf)) == 3  # three mlp-tiny runs
    assert "n = " in html and "Measured latency per query" in html
    assert "AMD" in html or "x86_64" in html or "aarch64" in html  # environment of every run


def test_markdown_report_writes_pngs_beside_it(real_results: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is the report extra")
    out = write_report_file([real_results], tmp_path / "md" / "report.md", "md")
    text = out.read_text()
    pngs = sorted((out.parent / "report_figures").glob("*.png"))
    assert len(pngs) == 4
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](report_figures/{png.name})" in text
    assert "## Executive summary" in text and "No cost analysis was supplied" in text
    assert "| # | model |" in text


def test_cli_report_html_and_md(real_results: Path, tmp_path: Path) -> None:
    p = subprocess.run(
        [*TP, "report", str(real_results), "--out", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "r.html").stat().st_size > 10_000
    (tmp_path / "empty").mkdir()
    bad = subprocess.run(
        [*TP, "report", str(tmp_path / "empty"), "--out", str(tmp_path / "x.html")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no report JSON files" in bad.stderr


def _with_energy(method: MeasurementMethod, joules: float):
    def change(r: Report) -> Report:
        energy = EnergySummary(
            source="/sys/class/powercap/intel-rapl:0"
            if method is MeasurementMethod.COUNTER
            else "cpu-tdp-estimate",
            method=method,
            scope="cpu-package",
            joules_per_inference=joules,
        )
        return r.model_copy(
            update={"collectors": r.collectors.model_copy(update={"energy": energy})}
        )

    return change


def test_measured_and_estimated_energy_are_drawn_differently(
    real_results: Path,
    tmp_path: Path,
) -> None:
    a, b = mlp_single_stream(real_results)
    rewrite(a, tmp_path, _with_energy(MeasurementMethod.COUNTER, 0.002))
    rewrite(b, tmp_path, _with_energy(MeasurementMethod.ESTIMATED, 0.005))
    html = render_html(build_document(load_run_data(load_results([tmp_path]))))
    energy = next(s for s in _svgs(html) if "Energy per inference" in s)
    solid = re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="#', energy)
    hatched = re.findall(r'fill="url\(#energy-hatch-\d\)"', energy)
    assert solid and hatched
    assert ">estimated<" in energy and ">measured<" in energy and "(J)" in energy
    assert "0.005 J (estimated)" in html and "0.002 J (measured)" in html


def test_http_sweeps_are_plotted_with_the_peak_marked(
    real_results: Path,
    tmp_path: Path,
) -> None:
    (src,) = runs_named(real_results, "conv-small")

    def with_http(r: Report) -> Report:
        sweep = tuple(
            SweepPoint(
                concurrency=c,
                offered_rate_qps=100.0 * c,
                achieved_rate_qps=95.0 * c,
                p50_ms=2.0 + c,
                p99_ms=5.0 + 3 * c,
                error_rate=0.0,
                meets_bound=5.0 + 3 * c <= 20,
            )
            for c in (1, 2, 4, 8)
        )
        http = HttpResults(
            protocol="kserve-v2-json",
            endpoint="http://127.0.0.1:8500/v2/models/conv-small/infer",
            requests=4000,
            successes=4000,
            error_rate=0.0,
            bytes_sent_per_request=3100,
            bytes_received_per_request=180,
            bytes_sent_total=12_400_000,
            bytes_received_total=720_000,
            peak_rate_qps=400.0,
            latency_bound_ms=20.0,
            sweep=sweep,
        )
        return r.model_copy(update={"http": http, "flags": (*r.flags, RunFlag.LOCAL_STANDIN)})

    rewrite(src, tmp_path, with_http)
    html = render_html(build_document(load_run_data(load_results([tmp_path]))))
    svgs = _svgs(html)
    conc = next(s for s in svgs if "Throughput vs concurrency" in s)
    load = next(s for s in svgs if "Latency vs offered load" in s)
    assert "(requests/s)" in conc and "(count)" in conc
    assert 'class="marker"' in load and "peak 400/s" in load and "p99 bound 20 ms" in load
    assert "local stand-in" in html


def test_svg_writer_draws_every_kind_with_units_and_provenance() -> None:
    figs = [
        LineFigure(
            id="tco",
            title="TCO",
            caption="c",
            x=Axis("month", "months"),
            y=Axis("cost", "USD"),
            series=(
                Series("edge", ((0, 100.0), (12, 160.0))),
                Series("cloud", ((0, 0.0), (12, 240.0)), Provenance.ESTIMATED),
            ),
            markers=(Marker("break-even, month 5", 5, 125.0),),
        ),
        BarFigure(
            id="b",
            title="bars",
            caption="c",
            value_axis=Axis("accuracy", "%"),
            groups=(BarGroup("int8", (Bar("int8", 98.2),)),),
            ref_lines=(RefLine("99% of fp32", 99.0),),
        ),
        TornadoFigure(
            id="t",
            title="tornado",
            caption="c",
            value_axis=Axis("NPV saving", "USD"),
            base=10.0,
            rows=(TornadoRow("volume", -5.0, 30.0), TornadoRow("price", 4.0, 12.0)),
        ),
        HistogramFigure(
            id="h",
            title="mc",
            caption="c",
            x=Axis("NPV saving", "USD"),
            edges=(0.0, 1.0, 2.0, 3.0),
            counts=(5.0, 10.0, 2.0),
            markers=(RefLine("P50", 1.2, vertical=True),),
        ),
    ]
    svgs = [figure_svg(f) for f in figs]
    assert 'stroke-dasharray="7 4"' in svgs[0] and "break-even, month 5" in svgs[0]
    assert "(USD)" in svgs[0] and "(months)" in svgs[0]
    assert "99% of fp32" in svgs[1] and "(%)" in svgs[1]
    assert svgs[2].count("<rect") >= 4 and "base 10" in svgs[2]
    assert "P50" in svgs[3] and "url(#h-hatch-0)" in svgs[3]  # Monte Carlo: estimated, hatched
    for s in svgs:
        assert s.startswith("<svg") and s.endswith("</svg>")
        assert "nan" not in s.lower().replace("nano", "")


def test_tick_helpers_cover_the_range() -> None:
    ticks = nice_ticks(0.0, 0.137)
    assert ticks[0] <= 0.0 and ticks[-1] >= 0.137 and len(ticks) <= 8
    lt = log_ticks(0.0045, 5.2)
    assert lt[0] >= 0.0045 and lt[-1] <= 5.2 and 0.01 in lt and 1.0 in lt


def test_cost_sections_come_from_the_calculators_result(
    real_results: Path,
    cost_json: Path,
    tmp_path: Path,
) -> None:
    from tippingpoint.reports.cost_result import read_cost_result

    cost = read_cost_result(cost_json)
    html = write_report_file([real_results], tmp_path / "r.html", "html", cost_json).read_text()
    assert "No cost analysis was supplied" not in html
    assert "Recommended placement" in html and "Tipping point" in html
    assert (cost.recommendation.label or "none: no placement is feasible") in html
    svgs = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<svg[^>]*data-figure="([^"]+)".*?</svg>', html, re.S)
    }
    tco = svgs["tco-test-instance"]
    assert "(USD)" in tco and "(months)" in tco
    if cost.analyses[0].comparison.break_even_month is not None:
        assert 'class="marker"' in tco and "break-even, month" in tco
    assert "tornado-test-instance" in svgs and "mc-test-instance" in svgs
    assert "P50" in svgs["mc-test-instance"] and "2,000 draws" in html
    assert "assumed: no source" in html  # every input's provenance is visible


def test_markdown_with_cost_writes_cost_pngs(
    real_results: Path,
    cost_json: Path,
    tmp_path: Path,
) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is the report extra")
    out = write_report_file([real_results], tmp_path / "r.md", "md", cost_json)
    names = {p.name for p in (tmp_path / "r_figures").glob("*.png")}
    assert {"tco-test-instance.png", "tornado-test-instance.png", "mc-test-instance.png"} <= names
    assert "**Recommended placement:**" in out.read_text()


def test_cost_result_of_another_schema_version_is_refused(
    real_results: Path,
    cost_json: Path,
    tmp_path: Path,
) -> None:
    import json

    data = json.loads(cost_json.read_text())
    data["schema_version"] = 99
    bad = tmp_path / "cost99.json"
    bad.write_text(json.dumps(data))
    p = subprocess.run(
        [*TP, "report", str(real_results), "--cost", str(bad), "--out", str(tmp_path / "x.html")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "cost schema_version 99" in p.stderr


def test_failed_and_unloaded_runs_render_without_figures(
    real_results: Path,
    tmp_path: Path,
) -> None:
    from tippingpoint.core.schema import ErrorRecord, RunStatus

    (src,) = runs_named(real_results, "conv-small")

    def failed(r: Report) -> Report:
        err = ErrorRecord(phase="load", kind="ModelLoadError", message="truncated model file")
        return r.model_copy(
            update={"status": RunStatus.FAILED, "results": None, "backend": None, "errors": (err,)}
        )

    rewrite(src, tmp_path, failed)
    rewrite(src, tmp_path, lambda r: r)
    html = render_html(build_document(load_run_data(load_results([tmp_path]))))
    assert "not loaded" in html and "failed" in html
    assert "1 of 2 runs did not complete" in html
    (cdf,) = [s for s in _svgs(html) if "Latency CDF" in s]
    assert len(re.findall(r'<path d="M', cdf)) == 1  # only the complete run is drawn


def test_accuracy_deltas_flag_the_variant_below_the_floor(
    real_results: Path,
    tmp_path: Path,
) -> None:
    a, b = mlp_single_stream(real_results)
    rewrite(a, tmp_path, with_accuracy("fp32", 0.97))
    rewrite(b, tmp_path, with_accuracy("int8", 0.955))
    html = render_html(build_document(load_run_data(load_results([tmp_path]))))
    (acc,) = [s for s in _svgs(html) if "Accuracy change against fp32" in s]
    assert "int8 .onnx (below floor)" in acc and "99% of fp32" in acc and "(%)" in acc
    assert "BELOW 99% of fp32" in html and "98.45%" in html


def _table(doc: object, first_header: str):
    from tippingpoint.reports.document import TableBlock

    return next(b for b in doc.blocks if isinstance(b, TableBlock) and b.headers[0] == first_header)  # type: ignore[attr-defined]


def test_deciding_factor_is_feasibility_when_a_cheaper_placement_was_ruled_out() -> None:
    from datetime import date

    from tippingpoint.calculator.compute import calculate
    from tippingpoint.reports.cost_figures import executive_summary

    from .calculator_factory import cloud_report, edge_report, hand_api, hand_profiles

    def calc(server_p99: float, **workload: object):
        reports = [
            edge_report(100, 20, joules=0.05),
            cloud_report(peak_rate_qps=None, server_p99_ms=server_p99),
        ]
        return calculate(
            reports,
            profiles=hand_profiles(**workload),
            clouds=[hand_api(0.01)],  # 0.01 USD per million requests: far cheaper than edge
            today=date(2026, 11, 23),
            tool_version="test",
            draws=0,
        )

    # data must stay on premises: the cheap API is ruled out by that rule, not by cost
    on_prem = calc(10, must_stay_on_premises=True)
    cloud = on_prem.analyses[0].placements[0]
    assert cloud.pv < on_prem.edge.pv and on_prem.recommendation.label == on_prem.edge.label
    factor = executive_summary(on_prem).deciding_factor
    assert factor.startswith("feasibility: cloud: api would cost less")
    assert "ruled out: the workload's data must stay on premises" in factor
    row = next(
        r for r in _table(build_document([], on_prem), "placement").rows if r[0] == cloud.label
    )
    assert row[1] == "NO (the workload's data must stay on premises)"

    # server p99 150 ms alone breaks the 100 ms SLO: the SLO decided, and the table says so
    slow = calc(150)
    factor = executive_summary(slow).deciding_factor
    assert "ruled out: p99" in factor and "exceeds the 100 ms SLO" in factor
    rows = _table(build_document([], slow), "placement").rows
    assert next(r for r in rows if r[0] == cloud.label)[1].startswith("NO (p99 ")

    # both feasible and the API cheapest: the cost difference decides
    fast = calc(10)
    assert fast.recommendation.label == cloud.label
    assert executive_summary(fast).deciding_factor.startswith("hardware cost:")


def test_cost_curves_are_drawn_as_derived_estimates(cost_json: Path) -> None:
    from tippingpoint.calculator.params import Basis
    from tippingpoint.reports.charts.svg import DASH
    from tippingpoint.reports.cost_figures import tco_figure, tipping_figure
    from tippingpoint.reports.cost_result import read_cost_result

    cost = read_cost_result(cost_json)
    a = cost.analyses[0]
    for fig in (tco_figure(cost, a), tipping_figure(cost, a)):
        assert fig.series and all(s.provenance is Provenance.ESTIMATED for s in fig.series)
        assert "Lines are dashed: derived estimates" in fig.caption
        svg = figure_svg(fig)
        assert svg.count(f'stroke-width="2" stroke-dasharray="{DASH}"') == len(fig.series)
        assert "(edge) (estimated)" in svg  # the legend says so
    # were every input measured, the lines would be solid
    measured = a.model_copy(
        update={"inputs": tuple(i.model_copy(update={"basis": Basis.MEASURED}) for i in a.inputs)}
    )
    fig = tco_figure(cost, measured)
    assert all(s.provenance is Provenance.MEASURED for s in fig.series)
