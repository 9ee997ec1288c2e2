"""``make bench-campaign``: what a campaign's scheduling costs on a local Ray cluster.

Starts a three-node Ray cluster on this machine (``device:edge-a``, ``device:edge-b`` and a
head) inside a network namespace of its own (``unshare -n``, loopback only, so Ray binds
127.0.0.1 and nothing leaves the machine; needs root), runs a campaign of short mlp-tiny
cells on both edge kinds, and prints, per node:

* the per-cell scheduling overhead: seconds from handing a cell to its node to filing its
  report on the head, less the seconds the cell ran on the node (target: under 1 s). The
  pre-run check has already started each node's Ray worker; the first cell is shown apart.
* the node's wall time against the sum of its cells' run times.

Figures only: nothing here asserts a time. Both edge nodes share this machine's cores, so
their cells slow each other down; the overhead is what matters, not the run times.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSIDE = "TIPPINGPOINT_BENCH_NETNS"
CELLS_PER_DEVICE = 8
TARGET_OVERHEAD_S = 1.0

PLAN = """
[campaign]
name = "bench"

[defaults]
quick = true
min_queries = 20
min_duration_s = 0.2
warmup_queries = 2
warmup_s = 0
idle_s = 0

[devices.edge-a]
kind = "device:edge-a"
[[devices.edge-a.runs]]
models = ["mlp-tiny"]
scenarios = ["offline"]
batch_sizes = {sizes}

[devices.edge-b]
kind = "device:edge-b"
[[devices.edge-b.runs]]
models = ["mlp-tiny"]
scenarios = ["offline"]
batch_sizes = {sizes}
"""


def _reexec_in_namespace() -> int:
    """Run this module again inside a new network namespace with loopback up."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        print("error: bench-campaign needs unshare and ip (util-linux, iproute2)", file=sys.stderr)
        return 2
    cmd = f"ip link set lo up && exec {sys.executable} -m tippingpoint.campaign.bench"
    env = {**os.environ, INSIDE: "1", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run(["unshare", "-n", "sh", "-c", cmd], env=env, check=False)
    if proc.returncode != 0 and os.geteuid() != 0:
        print("error: unshare -n needs root (run make bench-campaign as root)", file=sys.stderr)
    return proc.returncode


def _bench() -> int:
    from tippingpoint.campaign.executor import CampaignOptions, run_campaign
    from tippingpoint.campaign.fleet import LocalCluster
    from tippingpoint.campaign.plan import load_plan

    work = Path(tempfile.mkdtemp(prefix="tp-campaign-bench-"))
    out = work / "tree"
    (work / "plan.toml").write_text(PLAN.format(sizes=list(range(1, CELLS_PER_DEVICE + 1))))
    plan = load_plan(work / "plan.toml")
    ray_dir = Path(tempfile.mkdtemp(prefix="tpray"))
    t0 = time.monotonic()
    cluster = LocalCluster(str(ray_dir))
    try:
        names = {cluster.add({k: 1.0}): k for k in ("device:edge-a", "device:edge-b")}
        print(f"cluster of 3 nodes up in {time.monotonic() - t0:.1f} s")
        t1 = time.monotonic()
        result = run_campaign(plan, CampaignOptions(out=out, address=cluster.address))
        wall = time.monotonic() - t1
    finally:
        cluster.shutdown()
        shutil.rmtree(ray_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"campaign: {len(result.records)} cells, {result.status.value}, {wall:.1f} s wall "
        "(including the pre-run check on each node)"
    )
    later: list[float] = []
    for n in result.nodes:
        first, rest = n.overheads_s[0], list(n.overheads_s[1:])
        later.extend(rest)
        median = statistics.median(rest) if rest else float("nan")
        print(
            f"{names.get(n.node_id, n.node_id[:12])}: {n.cells} cells, sum of cell times "
            f"{n.exec_s:.2f} s, node wall {n.wall_s:.2f} s (wall / sum {n.wall_s / n.exec_s:.2f}); "
            f"overhead per cell: first {first:.3f} s, then median "
            f"{median:.3f} s, max {max(rest, default=float('nan')):.3f} s"
        )
    if later:
        median = statistics.median(later)
        verdict = "met" if median < TARGET_OVERHEAD_S else "NOT met"
        print(
            f"per-cell scheduling overhead (median over {len(later)} cells after each node's "
            f"first): {median:.3f} s; target < {TARGET_OVERHEAD_S:g} s: {verdict}"
        )
    return 0 if result.status.value == "complete" else 1


def main() -> int:
    """Run the benchmark (re-running itself inside a network namespace first)."""
    if os.environ.get(INSIDE) != "1":
        return _reexec_in_namespace()
    return _bench()


if __name__ == "__main__":
    sys.exit(main())
