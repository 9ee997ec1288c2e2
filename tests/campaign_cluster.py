"""A real multi-node Ray cluster on this machine, driving ``tippingpoint campaign`` against it.

Run inside a network namespace the caller made (``unshare -n``, loopback up), where every Ray
address is 127.0.0.1: ``python tests/campaign_cluster.py WORKDIR``. It starts a head offering
``cloud:server`` and nodes offering ``device:edge-a`` (two of them) and ``device:edge-b``,
then runs the scenarios below with the real CLI in subprocesses and writes what happened to
``WORKDIR/result.json`` for tests/test_campaign_cluster.py to judge:

* ``run``: local runs on both edge kinds and an HTTP run from edge-a against ``tippingpoint
  serve`` started on the cloud node; then ``campaign check``.
* ``kill``: a longer plan; once edge-b has filed a cell and edge-a has a cell on its second
  node, both of those nodes are killed. Then ``check``, a new edge-b node joins, ``--resume``
  and ``check --require-complete``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULTS = """
[defaults]
quick = true
min_queries = 20
min_duration_s = {duration}
warmup_queries = 2
warmup_s = 0
idle_s = 0
"""

RUN_PLAN = """
[campaign]
name = "cluster-run"
{defaults}
[endpoints.cloud]
serve = "cloud:server"

[devices.edge-a]
kind = "device:edge-a"

[[devices.edge-a.runs]]
models = ["mlp-tiny"]
scenarios = ["single-stream", "offline"]
batch_sizes = [4]

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

KILL_PLAN = """
[campaign]
name = "cluster-kill"
{defaults}
[devices.edge-a]
kind = "device:edge-a"

[[devices.edge-a.runs]]
models = ["mlp-tiny"]
scenarios = ["offline"]
batch_sizes = [1, 2, 3, 4, 5, 6, 7, 8]

[devices.edge-b]
kind = "device:edge-b"

[[devices.edge-b.runs]]
models = ["mlp-tiny"]
scenarios = ["offline"]
batch_sizes = [1, 2, 3]
"""

HEALTH = {
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 4,
    "health_check_initial_delay_ms": 0,
}


def cli(*args: str, timeout: float = 300) -> dict[str, Any]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tippingpoint", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return {
        "rc": proc.returncode,
        "out": proc.stdout,
        "err": proc.stderr,
        "s": round(time.monotonic() - t0, 2),
    }


def main(work: Path) -> None:
    from ray.cluster_utils import Cluster

    result: dict[str, Any] = {}
    ray_dir = Path(tempfile.mkdtemp(prefix="tpray"))  # short: Ray's socket paths are bounded
    t0 = time.monotonic()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "node_ip_address": "127.0.0.1",
            "num_cpus": 0,
            "resources": {"cloud:server": 1},
            "temp_dir": str(ray_dir),
            "_system_config": HEALTH,
        },
    )
    try:

        def add(kind: str) -> Any:
            return cluster.add_node(node_ip_address="127.0.0.1", num_cpus=0, resources={kind: 1})

        edge_a = add("device:edge-a")
        edge_a2 = add("device:edge-a")
        edge_b = add("device:edge-b")
        cluster.wait_for_nodes()
        result["cluster_start_s"] = round(time.monotonic() - t0, 2)
        result["address"] = cluster.address
        result["nodes"] = {
            "edge-a": [edge_a.node_id, edge_a2.node_id],
            "edge-b": [edge_b.node_id],
            "cloud": [cluster.head_node.node_id],
        }
        addr = ["--address", cluster.address]

        plan = work / "run.toml"
        plan.write_text(RUN_PLAN.format(defaults=DEFAULTS.format(duration=0.2)))
        tree = work / "run-tree"
        result["run"] = cli("campaign", "run", str(plan), "-o", str(tree), *addr)
        result["run_check"] = cli("campaign", "check", str(tree), "--require-complete")

        # a missing kind: one line, exit 2, before anything runs
        bad = work / "bad.toml"
        bad.write_text(
            RUN_PLAN.format(defaults=DEFAULTS.format(duration=0.2)).replace(
                'kind = "device:edge-b"', 'kind = "device:edge-c"'
            )
        )
        result["missing_kind"] = cli("campaign", "run", str(bad), "-o", str(work / "bad"), *addr)

        # --wait: the campaign waits for the missing kind; a node offering it joins meanwhile
        argv = [sys.executable, "-m", "tippingpoint", "campaign", "run", str(bad), *addr]
        argv += ["-o", str(work / "waited"), "--wait", "300"]
        t1 = time.monotonic()
        with (work / "wait.out").open("w") as out, (work / "wait.err").open("w") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if line.startswith("waiting for nodes offering device:edge-c"):
                    result["edge_c"] = add("device:edge-c").node_id
                    break
            for line in proc.stdout:
                out.write(line)
            proc.wait(timeout=300)
        result["wait"] = {
            "rc": proc.returncode,
            "out": (work / "wait.out").read_text(),
            "err": (work / "wait.err").read_text(),
            "s": round(time.monotonic() - t1, 2),
        }

        plan = work / "kill.toml"
        plan.write_text(KILL_PLAN.format(defaults=DEFAULTS.format(duration=1.5)))
        tree = work / "kill-tree"
        t1 = time.monotonic()
        err = (work / "kill.err").open("w")
        argv = [sys.executable, "-m", "tippingpoint", "campaign", "run", str(plan), *addr]
        argv += ["-o", str(tree)]
        proc = subprocess.Popen(  # unbuffered: each event line arrives as it happens
            argv,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        lines: list[str] = []
        b_filed = a2_busy = killed = False
        a2 = edge_a2.node_id[:12]
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            words = line.split()
            if words[:2] == ["complete", "edge-b"]:
                b_filed = True
            if words[1:2] == ["edge-a"] and a2 in words:  # handed a cell, or filed one
                a2_busy = words[0] == "sent"
            # edge-b has filed a cell while edge-a's second node runs one: kill both nodes
            if b_filed and a2_busy and not killed:
                cluster.remove_node(edge_a2, allow_graceful=False)
                cluster.remove_node(edge_b, allow_graceful=False)
                killed = True
                result["killed_at_line"] = len(lines)
        proc.wait(timeout=300)
        err.close()
        result["kill"] = {
            "rc": proc.returncode,
            "out": "\n".join(lines),
            "err": (work / "kill.err").read_text(),
            "s": round(time.monotonic() - t1, 2),
            "killed": killed,
        }
        result["kill_check"] = cli("campaign", "check", str(tree))
        result["kill_check_complete"] = cli("campaign", "check", str(tree), "--require-complete")
        shutil.copytree(tree, work / "kill-tree-before-resume")  # as the kill left it
        result["replacement"] = add("device:edge-b").node_id
        cluster.wait_for_nodes()
        result["resume"] = cli("campaign", "run", str(plan), "-o", str(tree), "--resume", *addr)
        result["resume_check"] = cli("campaign", "check", str(tree), "--require-complete")
    finally:
        cluster.shutdown()
        shutil.rmtree(ray_dir, ignore_errors=True)
        (work / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    main(Path(sys.argv[1]))
