"""Campaign trees without Ray: each device runs its share here (``campaign run --local``), the
trees are merged and checked; a changed report, samples file or record, a missing or
duplicated cell, a report filed as the wrong cell or under the wrong kind all fail the check,
each named. Real runs of mlp-tiny, and a real ``tippingpoint serve`` for the HTTP cell."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tippingpoint.campaign.check import check_tree, merge_trees
from tippingpoint.campaign.tree import (
    CELL_RECORD,
    CellState,
    FiledFiles,
    cell_dir,
    file_cell,
    read_cell,
    read_manifest,
    read_nodes,
    report_paths,
    reports_by_device,
    write_node,
)
from tippingpoint.harness.standin import LocalStandIn
from tippingpoint.models.registry import resolve_model

from .helpers import TP, assert_one_line, tp

PLAN = """
[campaign]
name = "tree"

[defaults]
quick = true
min_queries = 20
min_duration_s = 0.05
warmup_queries = 2
warmup_s = 0
idle_s = 0

[endpoints.cloud]
serve = "cloud:server"

[devices.edge-a]
kind = "device:edge-a"

[[devices.edge-a.runs]]
models = ["mlp-tiny"]
scenarios = ["offline"]
batch_sizes = [1, 4]

[[devices.edge-a.runs]]
models = ["mlp-tiny"]
endpoint = "cloud"
scenarios = ["single-stream"]

[devices.edge-b]
kind = "device:edge-b"

[[devices.edge-b.runs]]
models = ["mlp-tiny"]
scenarios = ["single-stream"]
"""
B1 = "edge-a/mlp-tiny/offline-b1/onnxruntime-fp32"
B4 = "edge-a/mlp-tiny/offline-b4/onnxruntime-fp32"
HTTP = "edge-a/mlp-tiny/single-stream/http@cloud-fp32"
EDGE_B = "edge-b/mlp-tiny/single-stream/onnxruntime-fp32"


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(plan, edge-a's tree, edge-b's tree), each made by ``campaign run --local``."""
    work = tmp_path_factory.mktemp("campaign")
    plan = work / "plan.toml"
    plan.write_text(PLAN)
    with LocalStandIn([resolve_model("mlp-tiny").path]) as url:
        a = tp(
            "campaign", "run", str(plan), "--local", "edge-a", "--endpoint", f"cloud={url}",
            "-o", str(work / "a"),
        )  # fmt: skip
    assert a.returncode == 0, a.stdout + a.stderr
    b = tp("campaign", "run", str(plan), "--local", "edge-b", "-o", str(work / "b"))
    assert b.returncode == 0, b.stdout + b.stderr
    yield plan, work / "a", work / "b"


@pytest.fixture
def merged(trees: tuple[Path, Path, Path], tmp_path: Path) -> Path:
    """The two device trees merged (in process; the CLI's merge is tested once below)."""
    _, a, b = trees
    out = tmp_path / "merged"
    merge_trees([a, b], out)
    return out


def problems(tree: Path) -> list[str]:
    return check_tree(tree).problems


def test_a_device_tree_files_its_cells_and_names_the_missing_ones(
    trees: tuple[Path, Path, Path],
) -> None:
    _, a, b = trees
    assert (a / "edge-a" / "nodes").is_dir() and not (a / "edge-b").exists()
    for cid in (B1, B4, HTTP):
        record = read_cell(a, cid)
        assert record is not None and record.state is CellState.COMPLETE
        assert (cell_dir(a, cid) / str(record.samples)).is_file()
    p = tp("campaign", "check", str(a))
    assert p.returncode == 1
    assert f"missing: {EDGE_B} (never filed" in p.stdout
    assert p.stdout.count("missing: ") == 1
    assert problems(b) == [f"missing: {c} (never filed; run with --resume)" for c in (B1, B4, HTTP)]


def test_merged_trees_pass_the_check_and_feed_cost_per_device(
    trees: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, a, b = trees
    merged = tmp_path / "merged"
    p = tp("campaign", "merge", str(a), str(b), "-o", str(merged))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "merged 4 cell(s) from 2 tree(s)" in p.stdout and "valid" in p.stdout
    p = tp("campaign", "check", str(merged), "--require-complete")
    assert p.returncode == 0, p.stdout
    by_device = reports_by_device(merged)
    a, b = by_device["edge-a"], by_device["edge-b"]
    assert a.kind == "device:edge-a" and b.kind == "device:edge-b"
    assert sorted(r.scenario.batch_size for _, r in a.local) == [1, 4]
    (http,) = a.by_endpoint["cloud"]
    assert http[1].http is not None and http[1].backend is not None
    assert http[1].backend.name == "http"
    assert [r.model.name for _, r in b.local] == ["mlp-tiny"] and not b.by_endpoint
    # each report was measured on the node recorded under its device
    for dev in (a, b):
        hosts = {n.fingerprint.hostname_hash for n in dev.nodes}
        assert all(r.host.hostname_hash in hosts for _, r in dev.local)
    assert len(read_manifest(merged).sessions) == 2
    assert len(report_paths(merged)) == 4


def test_resume_skips_what_is_done_and_a_second_run_is_refused(
    trees: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    plan, _, b = trees
    copy = tmp_path / "b"
    shutil.copytree(b, copy)
    p = tp("campaign", "run", str(plan), "--local", "edge-b", "-o", str(copy))
    assert_one_line(p, 2, "already holds this campaign", "--resume")
    p = tp("campaign", "run", str(plan), "--local", "edge-b", "-o", str(copy), "--resume")
    assert p.returncode == 0 and "1 already done" in p.stdout, p.stdout + p.stderr
    other = plan.read_text().replace('name = "tree"', 'name = "other"')
    (tmp_path / "other.toml").write_text(other)
    p = tp("campaign", "run", str(tmp_path / "other.toml"), "--local", "edge-b", "-o", str(copy))
    assert_one_line(p, 2, "campaign of another plan")


def test_a_changed_report_fails_the_check_and_names_the_cell(merged: Path) -> None:
    record = read_cell(merged, B1)
    assert record is not None and record.report is not None
    path = cell_dir(merged, B1) / record.report
    data = json.loads(path.read_text())
    data["results"]["latency"]["p50"] *= 0.5
    path.write_text(json.dumps(data, indent=2))
    p = tp("campaign", "check", str(merged))
    assert p.returncode == 1
    assert f"{B1}: {path} was modified after it was written" in " ".join(p.stdout.split())
    assert problems(merged) == [
        f"{B1}: {path} was modified after it was written (digest "
        "mismatch) (use the original file, or re-run the benchmark)"
    ]


def test_changed_samples_or_records_fail_the_check(merged: Path) -> None:
    record = read_cell(merged, B4)
    assert record is not None and record.samples is not None
    samples = cell_dir(merged, B4) / record.samples
    data = bytearray(samples.read_bytes())
    data[len(data) // 2] ^= 0xFF
    samples.write_bytes(bytes(data))
    rec_b = cell_dir(merged, EDGE_B) / CELL_RECORD
    rec_b.write_text(rec_b.read_text().replace('"attempts": 1', '"attempts": 2'))
    found = problems(merged)
    assert len(found) == 2
    assert found[0].startswith(f"{B4}: raw samples") and "do not match" in found[0]
    assert found[1].startswith(f"{EDGE_B}: ") and "modified after it was written" in found[1]


def test_missing_duplicated_and_unplanned_files_are_named(merged: Path) -> None:
    shutil.rmtree(cell_dir(merged, HTTP))
    record = read_cell(merged, B1)
    assert record is not None and record.report is not None
    shutil.copy(cell_dir(merged, B1) / record.report, cell_dir(merged, B4) / record.report)
    (merged / "edge-c").mkdir()
    found = problems(merged)
    assert f"duplicate: {B4} holds reports its record does not name: {record.report}" in found
    assert f"missing: {HTTP} (never filed; run with --resume)" in found
    assert "unplanned: edge-c is not a device of the plan" in found
    assert len(found) == 3


def test_a_report_filed_as_another_cell_fails(merged: Path) -> None:
    record = read_cell(merged, B1)
    assert record is not None and record.report is not None and record.samples is not None
    folder = cell_dir(merged, B1)
    files = FiledFiles(
        record.report,
        (folder / record.report).read_bytes(),
        record.samples,
        (folder / record.samples).read_bytes(),
    )
    file_cell(merged, record.model_copy(update={"cell_id": B4}), files)  # b1's report as b4
    found = problems(merged)
    assert found == [
        f"{B4}: its report is of batch size 1, the cell is 4",
        f"duplicate: {B4} holds the same run as {B1} (run {record.report.rsplit('_', 1)[1][:8]})",
    ]


def test_a_node_filed_under_a_device_of_another_kind_fails(merged: Path) -> None:
    (node,) = read_nodes(merged, "edge-b")
    write_node(merged, node.model_copy(update={"device": "edge-a", "kind": "device:edge-b"}))
    found = problems(merged)
    assert len(found) == 1
    assert (
        "is recorded under device edge-a (device:edge-a) but ran as edge-a (device:edge-b)"
        in (found[0])
    )


def test_merge_refuses_a_cell_measured_twice(
    trees: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    plan, _, b = trees
    again = tmp_path / "again"
    p = tp("campaign", "run", str(plan), "--local", "edge-b", "-o", str(again))
    assert p.returncode == 0
    p = tp("campaign", "merge", str(b), str(again), "-o", str(tmp_path / "m"))
    assert_one_line(p, 2, f"cell {EDGE_B} is complete in both", "keep one")
    assert not (tmp_path / "m").exists()


def test_ctrl_c_keeps_every_filed_cell_and_resume_completes(
    trees: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(trees[0].read_text().replace("min_duration_s = 0.05", "min_duration_s = 3"))
    out = tmp_path / "t"
    cmd = [*TP, "campaign", "run", str(plan), "--local", "edge-b", "-o", str(out)]
    # edge-b has one cell: interrupt it while it runs, once its node is checked
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("sent "):
            time.sleep(1.0)  # into the measured window
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stdout
    assert read_cell(out, EDGE_B) is None  # the cut run is not filed: resume runs it
    assert read_manifest(out).sessions[-1].status == "interrupted"
    p = tp("campaign", "run", str(plan), "--local", "edge-b", "-o", str(out), "--resume")
    assert p.returncode == 0, p.stdout + p.stderr
    assert [c.state for c in check_tree(out).cells if c.device == "edge-b"] == ["complete"]


def test_cost_and_report_read_a_campaign_folder_one_device_at_a_time(
    merged: Path, tmp_path: Path
) -> None:
    cost_args = ["--device", "rpi5", "--cloud", "gpu-t4-ondemand", "--workload", "camera-analytics"]
    cost_args += ["--proxy-host"]
    cost_args += ["--accept-flagged", "--draws", "0", "--json"]
    p = tp("cost", "--reports", str(merged), *cost_args)
    assert_one_line(p, 2, "is a campaign of devices edge-a, edge-b")
    p = tp("cost", "--reports", str(merged), "--campaign-device", "edge-c", *cost_args)
    assert_one_line(p, 2, "has no device 'edge-c'")
    p = tp("cost", "--reports", str(merged), "--campaign-device", "edge-a", *cost_args)
    assert p.returncode == 0, p.stdout + p.stderr
    used = json.dumps(json.loads(p.stdout))
    edge_a = {r.run_id for _, r in reports_by_device(merged)["edge-a"].local}
    edge_b = {r.run_id for _, r in reports_by_device(merged)["edge-b"].local}
    # every figure names its report by the run id's first 8 characters
    assert any(f"report {run_id[:8]}" in used for run_id in edge_a)
    assert not any(f"report {run_id[:8]}" in used for run_id in edge_b)
    out = tmp_path / "campaign.html"
    p = tp("report", str(merged), "--out", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert out.is_file() and out.stat().st_size > 0
