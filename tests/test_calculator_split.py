"""The calculator costs a split placement from a measured split run (issue 16): the head's
throughput sizes the edge units, the cloud's measured capacity scaled by the run's ratio of
server times sizes the tail's instances, the activation's bytes go over the link, and the run's
own p99 is the split's latency when it ran under the cost's network. A flagged split run keeps
the recommendation inconclusive; a loopback stand-in makes the result illustrative.

One real split run (digits-cnn cut at its last pooling layer, the tail on the loopback stand-in,
shaped by the built-in 'lan' profile) is measured once for the module; the other cases change
its recorded figures (a slower head, a measured energy, a flag) to check the sums by hand."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tippingpoint.calculator.capacity import INVALID_FLAGS
from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.model import Component, Placement
from tippingpoint.calculator.params import Basis, Param
from tippingpoint.calculator.result import CostResult, PlacementResult, RecommendationStatus
from tippingpoint.cli import main
from tippingpoint.core.io import read_report
from tippingpoint.core.schema import EnergySummary, MeasurementMethod, Report, RunFlag
from tippingpoint.profiles.loader import load_catalog
from tippingpoint.profiles.schema import CloudProfile, NetworkProfile
from tippingpoint.reports.placements import placements_table
from tippingpoint.reports.runs import LoadedRun, RunData

from .calculator_factory import (
    cloud_report,
    edge_report,
    hand_api,
    hand_cloud,
    hand_profiles,
    sourced,
)

TODAY = date(2026, 11, 29)
EDGE = edge_report(100, 20, joules=0.05)
CLOUD = cloud_report(peak_rate_qps=50, server_p99_ms=10)
POOL = "/features/features.4/MaxPool_output_0"
PEAK = 1_000_000 / 86400  # the hand-worked workload: 1M a day, a flat day (k = 1)
MONTH = 1_000_000 * 365 / 12  # inferences a month


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Report]:
    """A real split run shaped by 'lan', costed as the hand-worked model (mlp-tiny)."""
    out = tmp_path_factory.mktemp("split")
    code = main(
        [
            "run", "-m", "digits-cnn", "--split", POOL, "--network", "lan", "-o", str(out),
            "--quick", "--idle-s", "0", "--min-queries", "10", "--min-duration", "0.5",
            "--warmup-queries", "2", "--warmup-duration", "0", "--split-queries", "3",
        ]
    )  # fmt: skip
    assert code == 0
    (path,) = out.glob("*.json")
    report = read_report(path)
    assert report.split is not None and report.split.network_profile == "lan"
    return path, report.model_copy(update={"model": EDGE.model})


def lan() -> NetworkProfile:
    """The built-in 'lan' profile: the one the split run was shaped by."""
    return load_catalog().network("lan")


def _calc(
    reports: list[Report],
    network: NetworkProfile | None = None,
    workload: dict[str, object] | None = None,
    clouds: list[CloudProfile] | None = None,
    accept_flagged: bool = False,
) -> CostResult:
    profiles = hand_profiles(**(workload or {}))
    return calculate(
        reports,
        profiles=dataclasses.replace(profiles, network=network or lan()),
        clouds=clouds or [hand_cloud()],
        today=TODAY,
        tool_version="test",
        draws=0,
        accept_flagged=accept_flagged,
    )


def _split(result: CostResult) -> PlacementResult:
    (split,) = [p for p in result.analyses[0].placements if p.placement is Placement.SPLIT]
    return split


def _input(result: CostResult, param: Param) -> tuple[float, Basis, str]:
    row = next(r for r in result.analyses[0].inputs if r.param is param)
    return row.value, row.basis, row.origin


def _line(p: PlacementResult, comp: Component) -> float:
    return next(ln.annual for ln in p.lines if ln.component is comp)


def _with_head(report: Report, head_ms: float) -> Report:
    """The run with its cut's head time replaced (the rest as measured)."""
    assert report.split is not None
    cands = tuple(
        c.model_copy(update={"head_ms": head_ms}) if c.name == report.split.cut else c
        for c in report.split.candidates
    )
    return report.model_copy(
        update={"split": report.split.model_copy(update={"candidates": cands})}
    )


def _metered(report: Report, joules: float) -> Report:
    """The run as if RAPL had measured ``joules`` per inference over its window."""
    energy = EnergySummary(
        source="/sys/class/powercap/intel-rapl:0",
        method=MeasurementMethod.COUNTER,
        scope="cpu-package",
        joules_per_inference=joules,
    )
    return report.model_copy(
        update={"collectors": report.collectors.model_copy(update={"energy": energy})}
    )


def test_split_placement_is_sized_from_its_run(measured: tuple[Path, Report]) -> None:
    _, run = measured
    assert run.split is not None and run.results is not None
    cut = next(c for c in run.split.candidates if c.name == POOL)
    whole = next(c for c in run.split.candidates if c.name == "<all-cloud>")
    assert cut.tail_ms and whole.tail_ms and cut.sent_bytes
    result = _calc([EDGE, CLOUD, run])
    rid = run.run_id[:8]
    assert not any("not costed" in w for w in result.warnings)
    assert [p.placement for p in result.analyses[0].placements] == [
        Placement.CLOUD,
        Placement.SPLIT,
    ]
    split = _split(result)
    assert f"(run {rid})" in split.label and POOL in split.label
    # the head: 1000 / its median ms, measured, naming the run and the cut
    head, basis, origin = _input(result, Param.SPLIT_HEAD_THROUGHPUT)
    assert head == pytest.approx(1000 / cut.head_ms)
    assert basis is Basis.MEASURED and f"split run {rid}" in origin and POOL in origin
    assert split.edge_units_year1 == math.ceil(PEAK / (head * 1.0))
    # the tail: the cloud's 50/s SLO-bound capacity x all-cloud's server time / the tail's
    tail, basis, origin = _input(result, Param.SPLIT_TAIL_CAPACITY)
    assert tail == pytest.approx(50 * whole.tail_ms / cut.tail_ms)
    assert basis is Basis.ESTIMATED and origin.startswith("derived from measurements")
    assert f"report {CLOUD.run_id[:8]}" in origin and f"split run {rid}" in origin
    assert split.cloud_instances_year1 == max(1, math.ceil(PEAK / (tail * 0.5)))
    # the bytes: the activation as sent, over the link and against the uplink
    sent, basis, _ = _input(result, Param.SPLIT_REQUEST_BYTES)
    assert sent == cut.sent_bytes and basis is Basis.MEASURED
    assert split.link is not None
    assert split.link.peak_upload_mbps == pytest.approx(PEAK * cut.sent_bytes * 8 / 1e6)
    # the split's lines name its own inputs
    compute = next(ln for ln in split.lines if ln.component is Component.COMPUTE)
    assert (
        Param.SPLIT_TAIL_CAPACITY in compute.inputs and Param.CLOUD_CAPACITY not in compute.inputs
    )
    hardware = next(ln for ln in split.lines if ln.component is Component.HARDWARE)
    assert Param.SPLIT_HEAD_THROUGHPUT in hardware.inputs
    # measured under the cost's network: the run's client p99, measured
    assert split.latency.basis is Basis.MEASURED
    assert split.latency.p99_ms == run.results.latency.p99
    assert f"split run {rid}" in split.latency.method
    # the tails ran on a loopback stand-in: illustrative
    assert any(f"split run {rid}" in i and "stand-in" in i for i in result.illustrative)
    # the split run fed neither side
    plain = _calc([EDGE, CLOUD])
    assert result.edge.annual_cost == plain.edge.annual_cost
    assert (
        result.analyses[0].placements[0].annual_cost == plain.analyses[0].placements[0].annual_cost
    )
    assert split in [p for a in result.analyses for p in a.placements]  # a candidate


def test_hand_computed_units_energy_and_network(measured: tuple[Path, Report]) -> None:
    """A head of 250 ms: 4 inferences/s a unit, so ceil(11.57 / 4) = 3 units; its energy is
    estimated as 10 W x 0.25 s; the metered link carries the activation, not the input."""
    _, run = measured
    slow = _with_head(run, 250.0)
    assert slow.split is not None
    sent = next(c.sent_bytes for c in slow.split.candidates if c.name == POOL)
    assert sent is not None
    network = lan().model_copy(update={"cost_per_gb": sourced(0.5)})
    result = _calc([EDGE, CLOUD, slow], network=network)
    split = _split(result)
    assert split.edge_units_year1 == 3 == math.ceil(PEAK / 4.0)
    energy = next(ln for ln in split.lines if ln.component is Component.ENERGY)
    assert energy.basis is Basis.ESTIMATED
    # 365M inferences x 2.5 J / 3.6 MJ per kWh x 0.20 a kWh (idle 0 W, PUE 1)
    assert energy.annual == pytest.approx(12 * MONTH * 10 * 0.25 / 3.6e6 * 0.20)
    assert "active 10 W / 4 inferences/s" in energy.note
    # the metered link: (activation + response) bytes, against the cloud's (request + response)
    assert _line(split, Component.NETWORK) == pytest.approx(12 * MONTH * (sent + 1000) / 1e9 * 0.5)
    cloud = result.analyses[0].placements[0]
    assert _line(cloud, Component.NETWORK) == pytest.approx(12 * MONTH * 2000 / 1e9 * 0.5)


def test_the_runs_measured_energy_is_used(measured: tuple[Path, Report]) -> None:
    _, run = measured
    metered = _metered(run, 0.5)
    result = _calc([EDGE, CLOUD, metered])
    j, basis, origin = _input(result, Param.SPLIT_JOULES)
    assert (j, basis) == (0.5, Basis.MEASURED) and "over the run's window" in origin
    line = next(ln for ln in _split(result).lines if ln.component is Component.ENERGY)
    assert line.basis is Basis.SOURCED  # measured J, sourced price: the weakest
    assert line.annual == pytest.approx(12 * MONTH * 0.5 / 3.6e6 * 0.20)


def test_idle_power_is_added_only_outside_the_measured_window(
    measured: tuple[Path, Report],
) -> None:
    """A J/inference measured over the run's window covers the device while it waited for
    the tail: the idle watts are charged for the device-seconds beyond the window's seconds
    per inference, not beyond the head's time alone (which would count the wait twice)."""
    _, run = measured
    assert run.results is not None
    metered = _metered(run, 0.5)
    profiles = hand_profiles()
    device = profiles.device.model_copy(update={"idle_watts": sourced(2.0)})
    result = calculate(
        [EDGE, CLOUD, metered],
        profiles=dataclasses.replace(profiles, network=lan(), device=device),
        clouds=[hand_cloud()],
        today=TODAY,
        tool_version="test",
        draws=0,
    )
    window_s, basis, origin = _input(result, Param.SPLIT_BUSY_S)
    assert window_s == pytest.approx(1.0 / run.results.throughput.samples_per_s)
    assert basis is Basis.MEASURED and "window" in origin
    split = _split(result)
    units = split.edge_units_year1
    assert units is not None and units >= 1
    idle_s = max(units * 365 * 86400 - 12 * MONTH * window_s, 0.0)  # a flat year, fixed fleet
    line = next(ln for ln in split.lines if ln.component is Component.ENERGY)
    assert line.annual == pytest.approx((12 * MONTH * 0.5 + 2.0 * idle_s) / 3.6e6 * 0.20)


def test_a_flagged_split_run_keeps_the_recommendation_inconclusive(
    measured: tuple[Path, Report],
) -> None:
    _, run = measured
    # the quick run on a busy machine may itself be flagged: judge a clean copy and a flagged one
    clean = run.model_copy(update={"flags": tuple(f for f in run.flags if f not in INVALID_FLAGS)})
    unstable = clean.model_copy(update={"flags": (*clean.flags, RunFlag.UNSTABLE)})
    result = _calc([EDGE, CLOUD, unstable])
    rec = result.recommendation
    assert rec.status is RecommendationStatus.INCONCLUSIVE
    assert any(run.run_id[:8] in why and "unstable" in why for why in rec.invalid_inputs)
    accepted = _calc([EDGE, CLOUD, unstable], accept_flagged=True)
    assert accepted.recommendation.status is RecommendationStatus.DECIDED
    assert any("unstable" in c for c in accepted.caveats)
    assert _calc([EDGE, CLOUD, clean]).recommendation.status is RecommendationStatus.DECIDED


def test_a_run_under_another_network_is_not_comparable(measured: tuple[Path, Report]) -> None:
    """Costed under 'wan' the lan run's p99 is no figure (the SLO cannot be met by it); costed
    under a 'lan' that differs from the link it ran through, neither."""
    _, run = measured
    wan = _split(_calc([EDGE, CLOUD, run], network=load_catalog().network("wan")))
    assert wan.latency.p99_ms is None and not wan.feasible
    assert "not comparable" in (wan.latency.reason or "") and "--network wan" in wan.latency.method
    slower = lan().model_copy(update={"rtt_ms": sourced(50)})
    changed = _split(_calc([EDGE, CLOUD, run], network=slower))
    assert changed.latency.p99_ms is None and "changed since" in changed.latency.method


def test_the_splits_cost_of_delay_is_its_own_runs(measured: tuple[Path, Report]) -> None:
    """Under the run's network, the share of its requests over the SLO (from its percentiles:
    estimated) prices the split's late requests; under another, none is priced, with a
    warning."""
    _, run = measured
    assert run.results is not None
    slo = run.results.latency.p50  # half the run's requests or so are late
    workload = {"slo_p99_ms": slo, "delay_cost_per_late_request": sourced(0.001)}
    result = _calc([EDGE, CLOUD, run], workload=workload)
    share, basis, origin = _input(result, Param.SPLIT_LATE_SHARE)
    assert 0 < share < 1 and basis is Basis.ESTIMATED and f"split run {run.run_id[:8]}" in origin
    split = _split(result)
    assert _line(split, Component.DELAY) == pytest.approx(12 * MONTH * share * 0.001)
    note = next(ln.note for ln in split.lines if ln.component is Component.DELAY)
    assert f"split {share:.3%} of requests over the bound" in note and "cloud" not in note
    wan = _calc([EDGE, CLOUD, run], network=load_catalog().network("wan"), workload=workload)
    assert all(ln.component is not Component.DELAY for ln in _split(wan).lines)
    assert any("no cost of delay for the split placement" in w for w in wan.warnings)


def test_no_split_against_an_api_or_without_a_measured_capacity(
    measured: tuple[Path, Report],
) -> None:
    _, run = measured
    unstable = run.model_copy(update={"flags": (*run.flags, RunFlag.UNSTABLE)})
    api = _calc([EDGE, CLOUD, unstable], clouds=[hand_api()])
    assert all(p.placement is not Placement.SPLIT for p in api.analyses[0].placements)
    assert any("cannot be bought per request from an API" in w for w in api.warnings)
    # not priced, so its flag decides nothing, nor does its stand-in make the result illustrative
    rid = run.run_id[:8]
    assert not any(rid in why for why in api.recommendation.invalid_inputs)
    assert not any(rid in i for i in api.illustrative)
    sourced_only = _calc([EDGE, run], clouds=[hand_cloud(capacity_qps=sourced(50))])
    assert all(p.placement is not Placement.SPLIT for p in sourced_only.analyses[0].placements)
    assert any("no cloud capacity was measured" in w for w in sourced_only.warnings)


def test_the_latest_split_run_is_used_and_the_others_named(measured: tuple[Path, Report]) -> None:
    _, run = measured
    older = _with_head(run, 250.0).model_copy(
        update={"run_id": "oldsplit0000", "finished_at": run.finished_at - timedelta(hours=1)}
    )
    result = _calc([EDGE, CLOUD, older, run])
    assert _split(result).edge_units_year1 == 1  # the latest, fast head
    assert any("split run oldsplit not used" in w for w in result.warnings)
    # a split run whose profile lacks the all-cloud placement cannot scale the capacity
    assert run.split is not None
    cut_only = tuple(c for c in run.split.candidates if c.name != "<all-cloud>")
    partial = run.model_copy(
        update={"split": run.split.model_copy(update={"candidates": cut_only})}
    )
    lone = _calc([EDGE, CLOUD, partial])
    assert all(p.placement is not Placement.SPLIT for p in lone.analyses[0].placements)
    assert any(f"split run {run.run_id[:8]} not costed" in w for w in lone.warnings)


def test_table_1_split_row_shows_its_cost(measured: tuple[Path, Report]) -> None:
    path, run = measured
    result = _calc([EDGE, CLOUD, run])
    when = datetime(2026, 11, 29, tzinfo=timezone.utc)
    runs = [
        RunData(LoadedRun(path, run, 1), None),
        RunData(
            LoadedRun(
                path.with_name("edge.json"), EDGE.model_copy(update={"finished_at": when}), 1
            ),
            None,
        ),
    ]
    table = placements_table(runs, result)
    assert table is not None
    rows = {row[0].split(",")[0]: row for row in table.rows}
    cost = rows["split"][3]
    assert cost != "not costed" and f"(run {run.run_id[:8]})" in cost
    assert f"{_split(result).cost_per_million:,.2f} USD/M" in cost
    assert ", lan" in rows["split"][0]


def test_every_output_carries_the_split(measured: tuple[Path, Report], tmp_path: Path) -> None:
    """The JSON result reads back (version 2, the split added), and the terminal tables, the
    report's cost section and the CSV exports show the split placement with its p99's method."""
    import io
    import json

    from rich.console import Console

    from tippingpoint.calculator.export import write_csv
    from tippingpoint.calculator.result import read_cost_data
    from tippingpoint.calculator.table import cost_tables
    from tippingpoint.reports.document import cost_section

    _, run = measured
    result = _calc([EDGE, CLOUD, run])
    split = _split(result)
    back = read_cost_data(json.loads(result.model_dump_json()))
    assert _split(back) == split  # a version 2 result (its Literal), the split added
    console = Console(file=io.StringIO(), width=400, color_system=None)
    console.print(cost_tables(result))
    assert isinstance(console.file, io.StringIO)
    text = console.file.getvalue()
    assert split.label in text and f"p99 of {split.label}: measured under network" in text
    rows = [
        row
        for block in cost_section(result)
        for row in getattr(block, "rows", ())
        if row and row[0] == split.label
    ]
    assert rows
    written = write_csv(result, tmp_path)
    placements = next(p for p in written if p.stem == "placements").read_text()
    assert "split" in placements and split.label in placements
