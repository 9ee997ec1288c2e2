"""Comparison of runs: significance on synthetic samples, refusals, alignment of real reports."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tippingpoint.core.errors import ReportError
from tippingpoint.core.io import cost_result_files, read_report, report_files
from tippingpoint.core.schema import AccuracyKind, AccuracyResult, Report
from tippingpoint.reports.compare import (
    ComparisonRefused,
    Metric,
    compare_paths,
)
from tippingpoint.reports.compare_table import comparison_tables, group_table
from tippingpoint.reports.cost_result import read_cost_result
from tippingpoint.reports.significance import (
    SignificanceMethod,
    Verdict,
    compare_samples,
    mann_whitney_u,
    ratio_of_medians_ci,
)
from tippingpoint.reports.table import summary_table

from .helpers import TP
from .reports_fixtures import mlp_single_stream, rewrite, with_accuracy

# Latency-like samples: lognormal around 1 ms, in ns.
N = 3000


def latencies(seed: int, scale: float = 1.0, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(1e6), 0.25, n) * scale


def test_a_10_percent_shift_is_detected_in_both_directions() -> None:
    for seed in range(10):
        a, b = latencies(seed), latencies(1000 + seed, 1.10)
        slower = compare_samples(a, b, seed=seed)
        assert slower.verdict is Verdict.SLOWER
        assert slower.interval is not None and slower.interval.low <= 1.10 <= slower.interval.high
        assert slower.mann_whitney is not None and slower.mann_whitney.p_value < 1e-6
        assert compare_samples(b, a, seed=seed).verdict is Verdict.FASTER


def test_identical_distributions_are_not_called_different() -> None:
    verdicts = [
        compare_samples(latencies(seed), latencies(5000 + seed), seed=seed).verdict
        for seed in range(30)
    ]
    # Both tests at alpha = 0.01 must agree: false calls should be about 1 in 100 or rarer.
    assert verdicts.count(Verdict.NOT_SIGNIFICANT) >= 29, verdicts


def test_a_tiny_but_significant_shift_is_negligible_not_a_win() -> None:
    rng = np.random.default_rng(7)
    a = rng.lognormal(0, 0.02, 200_000)
    b = rng.lognormal(0, 0.02, 200_000) * 1.005
    sig = compare_samples(a, b)
    assert sig.mann_whitney is not None and sig.mann_whitney.p_value < 1e-10
    assert sig.verdict is Verdict.NEGLIGIBLE


def test_mann_whitney_hand_worked_with_ties() -> None:
    # b = [2, 3] against a = [1, 2, 2]: 2 beats 1 and ties two 2s (0.5 each) -> 2; 3 beats all
    # three -> 3; U_b = 5 of 6 pairs.
    mw = mann_whitney_u(np.array([1.0, 2.0, 2.0]), np.array([2.0, 3.0]))
    assert mw.u == 5.0
    assert mw.prob_b_greater == pytest.approx(5 / 6)
    assert 0 < mw.p_value < 1


def test_mann_whitney_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy comes with scikit-learn (dev extra)")
    rng = np.random.default_rng(3)
    a = np.round(rng.lognormal(0, 0.3, 400), 1)  # rounded: many ties
    b = np.round(rng.lognormal(0.05, 0.3, 350), 1)
    ours = mann_whitney_u(a, b)
    ref = stats.mannwhitneyu(b, a, method="asymptotic", use_continuity=True)
    assert ours.u == pytest.approx(float(ref.statistic))
    assert ours.p_value == pytest.approx(float(ref.pvalue), rel=1e-9)


def test_ratio_interval_brackets_the_point_estimate() -> None:
    ci = ratio_of_medians_ci(latencies(1), latencies(2, 2.0), level=0.95, resamples=2000)
    assert ci.low <= ci.ratio <= ci.high
    assert 1.8 < ci.ratio < 2.2


def test_real_runs_align_by_model_scenario_and_batch(real_results: Path) -> None:
    result = compare_paths(report_files([real_results]))
    (group,) = result.groups
    assert group.model == "mlp-tiny" and group.scenario.value == "single-stream"
    base, other = group.rows
    assert base.is_baseline and base.latency is None
    assert other.latency is not None
    assert other.latency.method is SignificanceMethod.SINGLE_RUNS  # one run a side
    p50 = {m.metric: m for m in other.metrics}[Metric.P50]
    assert p50.ratio == pytest.approx(p50.value / p50.baseline)
    unpaired = {result.runs[i].model + " " + result.runs[i].scenario.value for i in result.unpaired}
    assert unpaired == {"mlp-tiny offline", "conv-small single-stream"}


def test_single_runs_without_samples_still_compare_as_single_runs(
    real_results: Path, tmp_path: Path
) -> None:
    for p in mlp_single_stream(real_results):
        shutil.copy(p, tmp_path / p.name)  # the JSON only, not the .samples.npz
    result = compare_paths(report_files([tmp_path]))
    sig = result.groups[0].rows[1].latency
    assert sig is not None and sig.method is SignificanceMethod.SINGLE_RUNS
    assert sig.verdict is Verdict.SINGLE_RUNS and sig.median_ratio is not None


def test_mismatched_schema_versions_are_refused(real_results: Path, tmp_path: Path) -> None:
    a, b = mlp_single_stream(real_results)
    data = json.loads(b.read_text())
    data["schema_version"] = 2
    future = tmp_path / "future.json"
    future.write_text(json.dumps(data))
    with pytest.raises(ComparisonRefused, match="different schema versions") as exc:
        compare_paths([a, future])
    assert "schema_version 1" in exc.value.message and "schema_version 2" in exc.value.message
    assert "--force covers different models or files only, not schema versions" in exc.value.hint
    assert "convert the older reports" in exc.value.hint
    # --force does not override a schema-version mismatch
    with pytest.raises(ComparisonRefused, match="different schema versions"):
        compare_paths([a, future], force=True)
    for extra in ([], ["--force"]):
        cli = subprocess.run(
            [*TP, "compare", str(a), str(future), *extra], capture_output=True, text=True
        )
        assert cli.returncode == 2
        assert cli.stderr.count("\n") == 1 and "different schema versions" in cli.stderr
        assert "not schema versions" in cli.stderr
    helped = subprocess.run([*TP, "compare", "--help"], capture_output=True, text=True)
    help_text = " ".join(helped.stdout.replace("│", " ").split())
    assert "Does not cover different schema versions" in help_text


def test_different_models_are_refused_unless_forced(real_results: Path) -> None:
    files = report_files([real_results])
    mlp = mlp_single_stream(real_results)[0]
    conv = next(p for p in files if "conv-small" in p.name)
    with pytest.raises(ComparisonRefused, match="different models") as exc:
        compare_paths([mlp, conv])
    assert "--force" in exc.value.hint
    forced = compare_paths([mlp, conv], force=True)
    assert forced.forced and "different models" in forced.forced[0]
    (group,) = forced.groups
    assert group.model is None and len(group.rows) == 2


def test_one_name_from_two_files_is_refused(real_results: Path, tmp_path: Path) -> None:
    a, b = mlp_single_stream(real_results)

    def other_file(r: Report) -> Report:
        return r.model_copy(update={"model": r.model.model_copy(update={"sha256": "0" * 64})})

    changed = rewrite(b, tmp_path, other_file)
    with pytest.raises(ComparisonRefused, match="different files"):
        compare_paths([a, changed])


def test_quantized_variant_below_99_percent_of_fp32_is_flagged(
    real_results: Path,
    tmp_path: Path,
) -> None:
    a, b = mlp_single_stream(real_results)

    fp32 = rewrite(a, tmp_path, with_accuracy("fp32", 0.97))
    int8 = rewrite(b, tmp_path, with_accuracy("int8", 0.95))
    result = compare_paths([int8, fp32])
    (group,) = result.groups
    base = result.runs[group.baseline]
    assert base.variant == "fp32"  # fp32 is the baseline even when given second
    int8_row = next(r for r in group.rows if not r.is_baseline)
    assert int8_row.accuracy is not None
    assert int8_row.accuracy.relative == pytest.approx(0.95 / 0.97)
    assert int8_row.accuracy.below_floor
    assert result.accuracy_flags == (int8_row.run,)
    console = Console(width=300, record=True)
    console.print(group_table(result, group))
    assert "Δ -0.0200" in console.export_text()  # accuracy change against the fp32 run


def test_summary_table_shows_the_accuracy_delta(real_results: Path, tmp_path: Path) -> None:
    a, _ = mlp_single_stream(real_results)
    acc = AccuracyResult(
        kind=AccuracyKind.LABELLED,
        dataset="digits",
        samples=360,
        metric="top1",
        value=0.95,
        reference_variant="fp32",
        reference_value=0.97,
        relative_to_reference=0.95 / 0.97,
        delta=0.95 - 0.97,
        below_floor=True,
    )
    changed = rewrite(a, tmp_path, lambda r: r.model_copy(update={"accuracy": acc}))
    report = read_report(changed)
    assert report.accuracy is not None and report.accuracy.delta == pytest.approx(-0.02)
    console = Console(width=300, record=True)
    console.print(summary_table([report]))
    text = console.export_text()
    assert "top1 0.9500" in text and "Δ -0.0200" in text and "< 99% fp32" in text


def test_cli_compare_json_and_table(real_results: Path) -> None:
    p = subprocess.run(
        [*TP, "compare", str(real_results), "--json"], capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert len(data["groups"]) == 1 and len(data["groups"][0]["rows"]) == 2
    table = subprocess.run([*TP, "compare", str(real_results)], capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "mlp-tiny" in table.stdout and "baseline" in table.stdout
    assert read_report(mlp_single_stream(real_results)[0]).model.name == "mlp-tiny"


def test_network_runs_pair_only_at_the_same_concurrency(
    real_results: Path,
    tmp_path: Path,
) -> None:
    from tippingpoint.core.schema import ScenarioKind

    a, b = mlp_single_stream(real_results)

    def at(level: int):
        def change(r: Report) -> Report:
            sc = r.scenario.model_copy(
                update={"kind": ScenarioKind.CONCURRENCY, "concurrency": level}
            )
            return r.model_copy(update={"scenario": sc})

        return change

    one, four = rewrite(a, tmp_path, at(1)), rewrite(b, tmp_path, at(4))
    with pytest.raises(ComparisonRefused, match="no two reports share"):
        compare_paths([one, four])
    again = rewrite(b, tmp_path / "again", at(4))
    result = compare_paths([one, four, again])
    (group,) = result.groups
    assert group.concurrency == 4 and len(group.rows) == 2
    assert "concurrency 4" in result.runs[group.baseline].label


def test_cost_results_are_set_side_by_side_with_ratios(
    real_results: Path,
    cost_json: Path,
) -> None:
    result = compare_paths(mlp_single_stream(real_results), cost_paths=[cost_json])
    edge, *others = result.costs
    assert edge.placement.startswith("edge") and edge.ratio_pv == 1.0
    assert any(r.placement.startswith("cloud") for r in others)
    for r in others:
        assert r.ratio_pv == pytest.approx(r.pv / edge.pv)
        assert r.ratio_cost_per_million == pytest.approx(r.cost_per_million / edge.cost_per_million)
    p = subprocess.run(
        [*TP, "compare", *map(str, mlp_single_stream(real_results)), "--cost", str(cost_json)],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    assert "cost (USD" in p.stdout and "edge: rpi5" in p.stdout


def test_a_cost_result_in_the_results_folder_is_not_read_as_a_run(
    real_results: Path,
    cost_json: Path,
    tmp_path: Path,
) -> None:
    folder = shutil.copytree(real_results, tmp_path / "bench")
    cost = Path(shutil.copy(cost_json, folder / "cost.json"))
    files = report_files([folder])
    assert cost not in files and len(files) == len(report_files([real_results]))
    assert cost_result_files([folder]) == [cost]

    compared = subprocess.run(
        [*TP, "compare", str(folder), "--json"], capture_output=True, text=True
    )
    assert compared.returncode == 0, compared.stderr
    assert len(json.loads(compared.stdout)["groups"][0]["rows"]) == 2

    html = tmp_path / "report.html"
    rendered = subprocess.run(
        [*TP, "report", str(folder), "--out", str(html)], capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    assert f"using cost result {cost}" in rendered.stderr  # picked up as --cost
    assert "edge: rpi5" in html.read_text()

    # named explicitly, a cost result is still refused as a run report, with the fix
    with pytest.raises(ReportError, match="is a cost result of 'tippingpoint cost'") as err:
        read_report(cost)
    assert "pass it with --cost" in err.value.one_line()
    explicit = subprocess.run([*TP, "compare", str(cost)], capture_output=True, text=True)
    assert explicit.returncode == 2 and "is a cost result" in explicit.stderr


def test_cost_results_in_another_currency_are_labelled_and_not_divided_across_currencies(
    real_results: Path, cost_json: Path, tmp_path: Path
) -> None:
    usd = read_cost_result(cost_json)
    eur_path = tmp_path / "eur.json"
    eur_path.write_text(usd.model_copy(update={"currency": "EUR"}).model_dump_json())
    result = compare_paths(mlp_single_stream(real_results), cost_paths=[eur_path, cost_json])
    eur_rows = [r for r in result.costs if r.source == "eur.json"]
    usd_rows = [r for r in result.costs if r.source != "eur.json"]
    assert all(r.currency == "EUR" and r.ratio_pv is not None for r in eur_rows)
    assert all(r.currency == "USD" and r.ratio_pv is None for r in usd_rows)
    text = "\n".join(str(t.title) for t in comparison_tables(result))
    assert "cost (EUR, USD" in text
