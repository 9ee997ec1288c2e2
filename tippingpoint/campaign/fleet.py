"""The Ray boundary: every call into Ray the campaign makes, typed, in one module.

Ray is an optional dependency (``pip install 'tippingpoint[fleet]'``) imported only here and
only when a campaign runs on a cluster: ``tippingpoint --help`` and ``campaign check`` never
import it. A device kind is a Ray custom resource a node offers (``ray start
--resources='{"device:rpi5": 1}'``). Each cell is a Ray task pinned to one node of its kind
(node affinity, hard), holding :data:`CELL_SHARE` of the kind so a node runs one cell at a
time; a served endpoint is a Ray actor holding :data:`SERVE_SHARE`, so a node can serve and
run a cell at once. Ray's own retries are off: the executor decides what a lost node means.

Ray's Python API is typed only in part (``ray.remote`` returns objects whose ``.options()``
and ``.remote()`` mypy cannot follow); those calls are confined to the functions below, each
``# type: ignore`` with its code and reason.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from tippingpoint.campaign.cell import (
    CellOutcome,
    CellTask,
    ProbeResult,
    ServedEndpoint,
    probe,
    run_cell,
)
from tippingpoint.campaign.plan import Plan
from tippingpoint.core.errors import TippingPointError, UsageError
from tippingpoint.core.schema import HostFingerprint

INSTALL_HINT = "install Ray on the head and every node: pip install 'tippingpoint[fleet]'"
CELL_SHARE = 0.9
"""The share of a node's kind resource a cell holds: one cell at a time on a node offering 1."""
SERVE_SHARE = 0.01
"""The share a served endpoint holds, so its node may also run a cell."""
ENDPOINT_START_S = 180.0
_T = TypeVar("_T")


class FleetError(UsageError):
    """Ray is missing, or the cluster cannot be reached."""


class TaskLost(Exception):
    """The task's node or worker went away before it finished."""

    def __init__(self, reason: str, node_died: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.node_died = node_died
        """True when Ray says the node itself is gone (not only the worker process)."""


class TaskFailed(Exception):
    """The task raised (not a cell failure: those come back as outcomes)."""


@dataclass(frozen=True)
class NodeInfo:
    """A node of the cluster as the head sees it."""

    node_id: str
    address: str
    alive: bool
    resources: dict[str, float]

    def offers(self, kind: str, share: float = CELL_SHARE) -> bool:
        """Whether the node offers ``kind`` (enough of it for ``share``)."""
        return self.alive and self.resources.get(kind, 0.0) >= share


@dataclass(frozen=True)
class TaskRef(Generic[_T]):
    """A submitted task whose result is a ``_T``."""

    ref: Any
    """Ray's ObjectRef."""


def _ray() -> ModuleType:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise FleetError("campaign run needs Ray, which is not installed", INSTALL_HINT) from None
    return ray


def connect(address: str | None) -> None:
    """Connect to the Ray cluster at ``address`` (None: the head running on this machine)."""
    ray = _ray()
    where = address or "auto"
    try:
        ray.init(
            address=where,
            logging_level=logging.ERROR,
            log_to_driver=False,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FleetError(
            f"cannot connect to a Ray cluster at {where}: {first}",
            "start a head with 'ray start --head' (see the README's campaign section), or pass "
            "--address HOST:6379",
        ) from None


def disconnect() -> None:
    """Disconnect from the cluster (the cluster keeps running)."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()


def nodes() -> list[NodeInfo]:
    """Every node the cluster knows, alive or dead."""
    ray = _ray()
    out = []
    for n in ray.nodes():
        out.append(
            NodeInfo(
                node_id=str(n["NodeID"]),
                address=str(n.get("NodeManagerAddress", "")),
                alive=bool(n.get("Alive", False)),
                resources={str(k): float(v) for k, v in dict(n.get("Resources", {})).items()},
            )
        )
    return out


def _pinned(node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)


_remote: dict[str, Any] = {}


def _remote_function(name: str) -> Any:
    """The Ray remote function of a module function, made once per process."""
    if name not in _remote:
        ray = _ray()
        fn = {"run_cell": run_cell, "probe": probe}[name]
        _remote[name] = ray.remote(num_cpus=0, max_retries=0)(fn)
    return _remote[name]


def submit_cell(task: CellTask, node_id: str) -> TaskRef[CellOutcome]:
    """Run ``task`` on node ``node_id`` (which must offer the cell's kind)."""
    fn = _remote_function("run_cell")
    ref = fn.options(
        resources={task.cell.kind: CELL_SHARE}, scheduling_strategy=_pinned(node_id)
    ).remote(task)
    return TaskRef(ref)


def submit_probe(plan: Plan, device: str, node_id: str) -> TaskRef[ProbeResult]:
    """Check node ``node_id`` for ``device``'s cells (holding no share of its kind)."""
    fn = _remote_function("probe")
    ref = fn.options(scheduling_strategy=_pinned(node_id)).remote(plan, device)
    return TaskRef(ref)


def wait(refs: Sequence[TaskRef[_T]], timeout_s: float) -> list[TaskRef[_T]]:
    """The tasks among ``refs`` that have finished (or failed) within ``timeout_s``."""
    if not refs:
        return []
    ray = _ray()
    by_ref = {r.ref: r for r in refs}
    ready, _ = ray.wait(list(by_ref), num_returns=1, timeout=timeout_s)
    if ready:  # take whatever else is ready too, without waiting
        more, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=0)
        ready = list(dict.fromkeys([*ready, *more]))
    return [by_ref[r] for r in ready]


def result(task: TaskRef[_T], timeout_s: float | None = None) -> _T:
    """The task's value; raises :class:`TaskLost` or :class:`TaskFailed`."""
    ray = _ray()
    from ray import exceptions as rex

    try:
        value: _T = ray.get(task.ref, timeout=timeout_s)
    except (rex.NodeDiedError, rex.TaskUnschedulableError, rex.LocalRayletDiedError) as exc:
        raise TaskLost(_first_line(exc), node_died=True) from None
    except (
        rex.WorkerCrashedError,
        rex.ObjectLostError,
        rex.TaskCancelledError,
        rex.ActorDiedError,
    ) as exc:
        raise TaskLost(_first_line(exc), node_died=False) from None
    except rex.GetTimeoutError:
        raise TaskLost(f"no answer within {timeout_s:g} s", node_died=False) from None
    except rex.RayTaskError as exc:  # the task raised: name the original error
        cause = exc.cause
        if isinstance(cause, TippingPointError):
            raise TaskFailed(cause.one_line()) from None
        raise TaskFailed(f"{type(cause).__name__}: {_first_line(cause)}") from None
    except rex.RayError as exc:
        raise TaskFailed(_first_line(exc)) from None
    return value


def cancel(task: TaskRef[Any]) -> None:
    """Stop a task (its worker is killed if it runs)."""
    ray = _ray()
    try:
        ray.cancel(task.ref, force=True)
    except Exception:  # already finished, or its node is gone: nothing to stop
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


class EndpointHandle:
    """A served endpoint: the Ray actor holding ``tippingpoint serve`` on its node."""

    def __init__(self, actor: Any, node: NodeInfo) -> None:
        self._actor = actor
        self.node = node

    def stop(self) -> None:
        """Stop the server, then the actor."""
        ray = _ray()
        try:
            ray.get(self._actor.stop.remote(), timeout=30)
        except Exception:  # the node is gone: its server went with it
            pass
        try:
            ray.kill(self._actor)
        except Exception:  # already dead
            pass


def start_endpoint(
    node: NodeInfo,
    kind: str,
    models: list[tuple[str, str | None]],
    backend: str,
    threads: int,
    token: str | None,
) -> tuple[EndpointHandle, str, HostFingerprint, tuple[str, ...]]:
    """Start ``tippingpoint serve`` on ``node``, bound to its address; returns the handle,
    the URL, the node's fingerprint and the files served. Raises :class:`TaskFailed`."""
    ray = _ray()
    actor_class = ray.remote(num_cpus=0, max_restarts=0)(ServedEndpoint)
    actor = actor_class.options(
        resources={kind: SERVE_SHARE}, scheduling_strategy=_pinned(node.node_id)
    ).remote()
    handle = EndpointHandle(actor, node)
    try:
        url, fingerprint, files = result(
            TaskRef[tuple[str, HostFingerprint, tuple[str, ...]]](
                actor.start.remote(models, backend, threads, node.address, token)
            ),
            timeout_s=ENDPOINT_START_S,
        )
    except (TaskLost, TaskFailed):
        handle.stop()
        raise
    return handle, url, fingerprint, files


class LocalCluster:
    """A Ray cluster of several nodes on this machine, for benchmarks (``make
    bench-campaign``): a head plus one node per :meth:`add`, each offering its kinds.

    Run it inside a network namespace (``unshare -n``): every address is then 127.0.0.1.
    """

    def __init__(self, temp_dir: str, head_resources: dict[str, float] | None = None) -> None:
        from ray.cluster_utils import Cluster

        self._cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "node_ip_address": "127.0.0.1",
                "num_cpus": 0,
                "resources": head_resources or {},
                "temp_dir": temp_dir,
            },
        )
        self._nodes: dict[str, Any] = {}

    @property
    def address(self) -> str:
        """The head's address, for :func:`connect`."""
        return str(self._cluster.address)

    def add(self, resources: dict[str, float]) -> str:
        """Start a node offering ``resources``; returns its node id once it has joined."""
        node = self._cluster.add_node(node_ip_address="127.0.0.1", num_cpus=0, resources=resources)
        self._cluster.wait_for_nodes()
        self._nodes[str(node.node_id)] = node
        return str(node.node_id)

    def remove(self, node_id: str) -> None:
        """Kill a node's processes at once (no graceful drain)."""
        self._cluster.remove_node(self._nodes.pop(node_id), allow_graceful=False)

    def shutdown(self) -> None:
        """Stop every node."""
        self._cluster.shutdown()  # type: ignore[no-untyped-call]  # Ray leaves it unannotated
