"""A real three-kind Ray cluster on this machine (a head offering ``cloud:server``, two nodes
offering ``device:edge-a``, one ``device:edge-b``), inside a network namespace the test makes
(``unshare -n``, loopback only: every Ray address is 127.0.0.1). tests/campaign_cluster.py
drives the real CLI against it once for the module; the tests judge what it recorded.

Slow (a cluster start and three campaigns, about two minutes on 2 cores): run by ``make
test-campaign``, which CI calls; skipped elsewhere unless TIPPINGPOINT_CLUSTER_TESTS=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tippingpoint.campaign.tree import (
    CellState,
    cell_report,
    read_cell,
    read_endpoints,
    read_manifest,
    read_nodes,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("TIPPINGPOINT_CLUSTER_TESTS") != "1",
        reason="a multi-node Ray cluster: run by 'make test-campaign' (or set "
        "TIPPINGPOINT_CLUSTER_TESTS=1)",
    ),
]
SCRIPT = Path(__file__).with_name("campaign_cluster.py")
TIMEOUT_S = 900


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Run the scenarios once; (work folder, what happened)."""
    if importlib.util.find_spec("ray") is None:  # not imported here: Ray runs in the script
        pytest.skip("Ray is not installed: pip install -e '.[fleet]'")
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare (util-linux) for a network namespace")
    work = tmp_path_factory.mktemp("cluster")
    cmd = f"ip link set lo up && exec {sys.executable} {SCRIPT} {work}"
    with (work / "script.log").open("w") as out:
        proc = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).parent.parent,
        )
        try:
            rc = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, and only it
            proc.wait()
            pytest.fail(f"the cluster scenarios ran past {TIMEOUT_S} s; see {work / 'script.log'}")
    log = (work / "script.log").read_text()
    assert rc == 0, log[-5000:]
    result: dict[str, Any] = json.loads((work / "result.json").read_text())
    print(f"cluster start {result['cluster_start_s']} s; run {result['run']['s']} s; kill "
          f"{result['kill']['s']} s; resume {result['resume']['s']} s")  # fmt: skip
    return work, result


def test_cells_land_under_their_devices_with_their_fingerprints(
    cluster_run: tuple[Path, dict[str, Any]],
) -> None:
    work, r = cluster_run
    assert r["run"]["rc"] == 0, r["run"]["out"] + r["run"]["err"]
    assert r["run_check"]["rc"] == 0, r["run_check"]["out"]
    tree = work / "run-tree"
    nodes = r["nodes"]
    manifest = read_manifest(tree)
    assert {c.cell_id for c in manifest.cells} == {
        "edge-a/mlp-tiny/single-stream/onnxruntime-fp32",
        "edge-a/mlp-tiny/offline-b4/onnxruntime-fp32",
        "edge-a/mlp-tiny/single-stream/http@cloud-fp32",
        "edge-b/mlp-tiny/single-stream/onnxruntime-fp32",
    }
    for key in manifest.cells:
        record = read_cell(tree, key.cell_id)
        assert record is not None and record.state is CellState.COMPLETE
        # the cell ran on a node of its device's kind, and its report says so
        assert record.node_id in nodes[key.device]
        found = cell_report(tree, record)
        assert found is not None
        recorded = {n.node_id: n for n in read_nodes(tree, key.device)}
        assert recorded[record.node_id].kind == f"device:{key.device}"
        assert found[1].host.hostname_hash == recorded[record.node_id].fingerprint.hostname_hash


def test_the_http_cell_ran_from_the_edge_node_against_the_cloud_node(
    cluster_run: tuple[Path, dict[str, Any]],
) -> None:
    work, r = cluster_run
    tree = work / "run-tree"
    endpoint = read_endpoints(tree)["cloud"]
    assert endpoint.node_id in r["nodes"]["cloud"] and endpoint.kind == "cloud:server"
    assert endpoint.url.startswith("http://127.0.0.1:")
    record = read_cell(tree, "edge-a/mlp-tiny/single-stream/http@cloud-fp32")
    assert record is not None and record.node_id in r["nodes"]["edge-a"]
    found = cell_report(tree, record)
    assert found is not None
    report = found[1]
    assert report.http is not None and report.http.endpoint == endpoint.url
    assert report.http.successes == report.http.requests > 0
    assert "same machine" in r["run_check"]["out"]  # said, since all nodes share this host


def test_a_kind_no_node_offers_is_one_line_exit_2(cluster_run: tuple[Path, dict[str, Any]]) -> None:
    work, r = cluster_run
    bad = r["missing_kind"]
    assert bad["rc"] == 2
    (line,) = [x for x in bad["err"].splitlines() if x.startswith("error:")]
    assert "no node of the cluster offers 'device:edge-c'" in line
    assert "ray start --address=HEAD:6379 --resources='{\"device:edge-c\": 1}'" in line
    assert not (work / "bad").exists()  # refused before the folder was touched


def test_wait_holds_the_campaign_until_a_node_of_the_kind_joins(
    cluster_run: tuple[Path, dict[str, Any]],
) -> None:
    work, r = cluster_run
    waited = r["wait"]
    assert waited["rc"] == 0, waited["out"] + waited["err"]
    assert "waiting for nodes offering device:edge-c" in waited["out"]
    record = read_cell(work / "waited", "edge-b/mlp-tiny/single-stream/onnxruntime-fp32")
    assert record is not None and record.state is CellState.COMPLETE
    assert record.node_id == r["edge_c"]  # the device edge-b of this plan is of kind edge-c


def test_a_killed_node_loses_nothing_finished_and_resume_completes(
    cluster_run: tuple[Path, dict[str, Any]],
) -> None:
    work, r = cluster_run
    tree = work / "kill-tree-before-resume"
    kill = r["kill"]
    assert kill["killed"], kill["out"]
    assert kill["rc"] == 1, kill["out"] + kill["err"]
    lines = kill["out"].splitlines()
    killed_b = r["nodes"]["edge-b"][0]
    # edge-a's second node was running a cell: it went to the other edge-a node
    requeued = [x.split()[2] for x in lines if x.startswith("requeued edge-a")]
    assert requeued, kill["out"]
    for short in requeued:
        record = read_cell(tree, f"edge-a/{short}")
        assert record is not None and record.state is CellState.COMPLETE
        assert record.attempts == 2 and "node lost at" in record.history[0]
        assert record.node_id == r["nodes"]["edge-a"][0]
    # edge-b had one node: what it finished is intact, the rest is lost with the time
    filed_b = [
        x.split()[2] for x in lines[: r["killed_at_line"]] if x.startswith("complete edge-b")
    ]
    assert filed_b
    lost: list[str] = []
    for key in read_manifest(tree).cells:
        if key.device != "edge-b":
            continue
        record = read_cell(tree, key.cell_id)
        assert record is not None
        short = key.cell_id.split("/", 1)[1]
        if short in filed_b:
            assert record.state is CellState.COMPLETE and record.node_id == killed_b
            assert cell_report(tree, record) is not None
        else:
            assert record.state is CellState.LOST, record
            assert record.reason is not None and "at 20" in record.reason  # with the time
            lost.append(key.cell_id)
    assert lost
    # check: valid, and it names exactly the lost cells; --require-complete fails
    check = r["kill_check"]
    assert check["rc"] == 0, check["out"]
    named = sorted(
        x.split()[1].rstrip(":") for x in check["out"].splitlines() if x.startswith("lost:")
    )
    assert named == sorted(lost)
    assert r["kill_check_complete"]["rc"] == 1
    # a new edge-b node joins; --resume runs exactly the lost cells, and the tree is complete
    resume = r["resume"]
    assert resume["rc"] == 0, resume["out"] + resume["err"]
    rerun = sorted(
        "edge-b/" + x.split()[2] for x in resume["out"].splitlines() if x.startswith("complete ")
    )
    assert rerun == sorted(lost)
    assert r["resume_check"]["rc"] == 0, r["resume_check"]["out"]
    for cid in lost:
        record = read_cell(work / "kill-tree", cid)
        assert record is not None and record.node_id == r["replacement"]
