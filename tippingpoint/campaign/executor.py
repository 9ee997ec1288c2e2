"""Running a campaign: every cell on a node of its kind, each report filed as it arrives.

:func:`run_campaign` (on a Ray cluster) and :func:`run_local` (one device's cells in this
process, without Ray) share the tree handling: the plan is checked before anything runs
(every kind needed is offered by a live node, or ``--wait`` waits for one; each node checks
that its cells expand and that it looks as the plan expects), served endpoints are started on
their nodes, and each cell's report is verified and filed the moment it comes back.

Faults: a failed cell is filed with its reason; a cell whose node is lost is given to another
node of its kind when one is alive (up to ``max_attempts``), else filed as lost with the time;
Ctrl-C stops the cells in flight and keeps everything filed; ``resume`` skips the cells
already complete and verified. Nothing here prints: callers get typed events.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TypeAlias

from tippingpoint import __version__
from tippingpoint.campaign import fleet
from tippingpoint.campaign.cell import CellOutcome, CellTask, probe, run_cell
from tippingpoint.campaign.plan import Plan, PlanError, PlannedCell, kinds_needed, planned_cells
from tippingpoint.campaign.tree import (
    CampaignManifest,
    CellKey,
    CellRecord,
    CellState,
    EndpointRecord,
    FiledFiles,
    NodeRecord,
    Session,
    cell_done,
    file_cell,
    is_campaign,
    now,
    read_manifest,
    write_endpoint,
    write_manifest,
    write_node,
)
from tippingpoint.core import io as report_io
from tippingpoint.core.errors import ReportError

JOIN_HINT = "join one: ray start --address=HEAD:6379 --resources='{{\"{kind}\": 1}}'"


class CampaignStatus(Enum):
    """How a campaign session ended."""

    COMPLETE = "complete"
    """Every planned cell is complete (or skipped with its reason)."""
    INCOMPLETE = "incomplete"
    """Some cells failed or were lost; each is filed with its reason."""
    INTERRUPTED = "interrupted"
    """Ctrl-C (or SIGTERM) stopped it; everything filed is kept, --resume continues."""


@dataclass(frozen=True)
class CampaignOptions:
    """Where and how a campaign runs."""

    out: Path
    address: str | None = None
    """The Ray cluster; None: the plan's, else the head running on this machine."""
    wait_s: float = 0.0
    """How long to wait for nodes of every kind the plan needs (0: fail at once)."""
    resume: bool = False
    endpoints: Mapping[str, str] = field(default_factory=dict)
    """Endpoint URLs given on the command line (NAME=URL), instead of the plan's."""
    max_attempts: int = 3
    """Attempts per cell when nodes are lost (a failed run is not retried)."""
    tick_s: float = 0.5


# events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignPlanned:
    """The cells of the campaign; ``done`` were filed before (``--resume``) and are skipped."""

    cells: tuple[PlannedCell, ...]
    done: frozenset[str]


@dataclass(frozen=True)
class WaitingForNodes:
    """Kinds the plan needs that no live node offers yet (``--wait``)."""

    missing: tuple[str, ...]
    waited_s: float


@dataclass(frozen=True)
class NodeChecked:
    """A node passed the pre-run check for a device."""

    device: str
    node_id: str
    address: str


@dataclass(frozen=True)
class EndpointStarted:
    """An endpoint is up (served on a node, or a URL given)."""

    name: str
    url: str
    node_id: str | None


@dataclass(frozen=True)
class CellSent:
    """A cell was handed to a node."""

    cell: PlannedCell
    node_id: str
    attempt: int


@dataclass(frozen=True)
class CellRequeued:
    """A cell's node was lost; the cell goes to another node of its kind."""

    cell: PlannedCell
    reason: str


@dataclass(frozen=True)
class CellFiled:
    """A cell's outcome (and report, if any) is in the tree."""

    cell: PlannedCell
    record: CellRecord


CampaignEvent: TypeAlias = (
    CampaignPlanned
    | WaitingForNodes
    | NodeChecked
    | EndpointStarted
    | CellSent
    | CellRequeued
    | CellFiled
)
CampaignCallback: TypeAlias = Callable[[CampaignEvent], None]


@dataclass(frozen=True)
class NodeTiming:
    """What one node did in a session: cells, the sum of their run times, and the wall time
    from its first cell's hand-over to its last cell's filing."""

    node_id: str
    cells: int
    exec_s: float
    wall_s: float
    overheads_s: tuple[float, ...]
    """Per cell, in order: seconds from hand-over to filing, less the cell's run time."""


@dataclass(frozen=True)
class CampaignResult:
    """The records filed in this session, how it ended, and each node's timing."""

    records: dict[str, CellRecord]
    status: CampaignStatus
    nodes: tuple[NodeTiming, ...] = ()
    skipped_done: int = 0


# the tree ------------------------------------------------------------------------------------


def _check_target(plan: Plan, out: Path, resume: bool) -> frozenset[str]:
    """Whether the campaign can be filed in ``out`` (nothing is written); returns the cells
    already done there when resuming."""
    if is_campaign(out):
        manifest = read_manifest(out)
        if manifest.plan_sha256 != plan.digest():
            raise PlanError(
                f"{out} holds a campaign of another plan (its plan's sha256 differs)",
                "pass the plan it was started with, or another --out",
            )
        if not resume:
            raise PlanError(
                f"{out} already holds this campaign",
                "pass --resume to run the cells not yet done, or choose another --out",
            )
        return frozenset(k.cell_id for k in manifest.cells if cell_done(out, k.cell_id))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PlanError(f"{out} is not empty and holds no campaign", "choose an empty or new --out")
    return frozenset()


def _open_tree(plan: Plan, out: Path, mode: str) -> None:
    """Create (or reopen) the campaign folder, once the plan has passed every check."""
    cells = planned_cells(plan)
    started = Session(mode=mode, started_at=now())
    if is_campaign(out):
        manifest = read_manifest(out)
        write_manifest(out, manifest.model_copy(update={"sessions": (*manifest.sessions, started)}))
        return
    report_io.ensure_output_dir(out)
    write_manifest(
        out,
        CampaignManifest(
            name=plan.campaign.name,
            plan_sha256=plan.digest(),
            plan=plan.model_dump(mode="json"),
            devices={d: dev.kind for d, dev in plan.devices.items()},
            cells=tuple(CellKey.of(c) for c in cells),
            created_at=started.started_at,
            tool_version=__version__,
            sessions=(started,),
        ),
    )


def _close_tree(out: Path, status: CampaignStatus) -> None:
    manifest = read_manifest(out)
    sessions = list(manifest.sessions)
    if sessions:
        sessions[-1] = sessions[-1].model_copy(
            update={"finished_at": now(), "status": status.value}
        )
    write_manifest(out, manifest.model_copy(update={"sessions": tuple(sessions)}))


def _checked_files(files: FiledFiles) -> str | None:
    """The problem with a report as it arrived (digest, samples hash), or None."""
    try:
        report = report_io.parse_report(files.report_bytes.decode(), files.report_name)
    except (ReportError, UnicodeDecodeError) as exc:
        return f"the report arrived damaged: {exc}"
    raw = report.results.raw if report.results is not None else None
    if raw is not None:
        if files.samples_bytes is None or raw.path != files.samples_name:
            return "the report's raw samples did not arrive"
        if hashlib.sha256(files.samples_bytes).hexdigest() != raw.sha256:
            return "the raw samples arrived damaged (sha256 differs)"
    return None


def _file(
    out: Path,
    outcome: CellOutcome,
    *,
    node_id: str,
    attempts: int,
    history: tuple[str, ...],
    endpoint_url: str | None,
    submitted_at: datetime | None,
) -> CellRecord:
    state, reason, files = outcome.state, outcome.reason, outcome.files
    digest = None
    if files is not None:
        problem = _checked_files(files)
        if problem is not None:
            state, reason = CellState.FAILED, problem
        else:
            digest = report_io.parse_report(files.report_bytes.decode()).digest
    record = CellRecord(
        cell_id=outcome.cell_id,
        state=state,
        reason=reason,
        node_id=node_id,
        attempts=attempts,
        history=history,
        report=files.report_name if files is not None else None,
        report_digest=digest,
        samples=files.samples_name if files is not None else None,
        endpoint_url=endpoint_url,
        started_at=outcome.started_at,
        exec_s=outcome.exec_s,
        submitted_at=submitted_at,
        filed_at=now(),
    )
    return file_cell(out, record, files)


def _file_without_run(
    out: Path,
    cell: PlannedCell,
    state: CellState,
    reason: str,
    attempts: int,
    history: tuple[str, ...],
) -> CellRecord:
    record = CellRecord(
        cell_id=cell.cell_id,
        state=state,
        reason=reason,
        attempts=attempts,
        history=history,
        filed_at=now(),
    )
    return file_cell(out, record, None)


def _status(records: Mapping[str, CellRecord]) -> CampaignStatus:
    ok = (CellState.COMPLETE, CellState.SKIPPED)
    return (
        CampaignStatus.COMPLETE
        if all(r.state in ok for r in records.values())
        else CampaignStatus.INCOMPLETE
    )


def _ignore(event: CampaignEvent) -> None:
    pass


# without Ray ---------------------------------------------------------------------------------


def run_local(
    plan: Plan, device: str, options: CampaignOptions, on_event: CampaignCallback | None = None
) -> CampaignResult:
    """Run ``device``'s cells in this process into the campaign tree (no Ray needed).

    The tree is laid out as a Ray campaign's, so ``campaign merge`` can gather it with the
    trees of other devices. Endpoints must be URLs (``options.endpoints`` or the plan's).
    """
    emit = on_event or _ignore
    if device not in plan.devices:
        known = ", ".join(plan.devices)
        raise PlanError(f"the plan has no device '{device}'", f"devices in the plan: {known}")
    urls = _endpoint_urls(plan, options, device, served=False)
    mine = [c for c in planned_cells(plan) if c.device == device]
    done = _check_target(plan, options.out, options.resume)
    emit(CampaignPlanned(tuple(mine), done & {c.cell_id for c in mine}))
    checked = probe(plan, device)
    if checked.problem is not None:
        raise PlanError(
            f"device {device} (this machine): {checked.problem}", "fix the plan or this machine"
        )
    _open_tree(plan, options.out, f"local:{device}")
    status = CampaignStatus.COMPLETE
    records: dict[str, CellRecord] = {}
    try:
        node_id = f"local-{checked.fingerprint.hostname_hash}"
        write_node(
            options.out,
            NodeRecord(
                node_id=node_id,
                kind=plan.devices[device].kind,
                device=device,
                tool_version=checked.tool_version,
                fingerprint=checked.fingerprint,
                seen_at=now(),
            ),
        )
        emit(NodeChecked(device, node_id, "local"))
        for name, given in urls.items():
            write_endpoint(options.out, EndpointRecord(name=name, url=given, started_at=now()))
            emit(EndpointStarted(name, given, None))
        for cell in mine:
            if cell.cell_id in done:
                continue
            url = urls.get(cell.endpoint) if cell.endpoint else None
            emit(CellSent(cell, node_id, 1))
            submitted = now()
            outcome = run_cell(CellTask(plan=plan, cell=cell, endpoint_url=url))
            if outcome.interrupted:
                raise KeyboardInterrupt
            record = _file(
                options.out,
                outcome,
                node_id=node_id,
                attempts=1,
                history=(),
                endpoint_url=url,
                submitted_at=submitted,
            )
            records[cell.cell_id] = record
            emit(CellFiled(cell, record))
        status = _status(records)
        return CampaignResult(
            records=records, status=status, skipped_done=len(done & {c.cell_id for c in mine})
        )
    except KeyboardInterrupt:
        status = CampaignStatus.INTERRUPTED
        return CampaignResult(records=records, status=status)
    finally:
        _close_tree(options.out, status)


def _endpoint_urls(
    plan: Plan, options: CampaignOptions, device: str | None, served: bool
) -> dict[str, str]:
    """URLs of the endpoints the cells use that need no serving (given, or the plan's)."""
    for name in options.endpoints:
        if name not in plan.endpoints:
            raise PlanError(
                f"--endpoint names '{name}', which the plan does not define",
                f"endpoints in the plan: {', '.join(plan.endpoints) or 'none'}",
            )
    used = {
        r.endpoint
        for d, dev in plan.devices.items()
        if device is None or d == device
        for r in dev.runs
        if r.endpoint is not None
    }
    urls: dict[str, str] = {}
    for name in sorted(used):
        ep = plan.endpoints[name]
        if name in options.endpoints:
            urls[name] = options.endpoints[name]
        elif ep.url is not None:
            urls[name] = ep.url
        elif not served:
            raise PlanError(
                f"endpoint '{name}' is served on a node of kind {ep.serve}, which a run without "
                "Ray cannot start",
                f"pass --endpoint {name}=URL of a running 'tippingpoint serve'",
            )
    return urls


# on a Ray cluster ----------------------------------------------------------------------------


@dataclass
class _InFlight:
    cell: PlannedCell
    node_id: str
    attempt: int
    submitted_at: datetime
    t_submit: float
    endpoint_url: str | None


@dataclass
class _NodeClock:
    first_submit: float
    last_filed: float = 0.0
    cells: int = 0
    exec_s: float = 0.0
    overheads: list[float] = field(default_factory=list)


def run_campaign(
    plan: Plan, options: CampaignOptions, on_event: CampaignCallback | None = None
) -> CampaignResult:
    """Run the plan on the Ray cluster: each cell on a node of its kind, filed as it ends.

    Raises ``PlanError`` (exit 2) when a kind is offered by no node (after ``wait_s``), a node
    cannot run its cells or an endpoint cannot be served, and ``FleetError`` when Ray or the
    cluster is missing; in each case before the campaign folder is touched.
    """
    emit = on_event or _ignore
    urls = _endpoint_urls(plan, options, None, served=True)
    cells = planned_cells(plan)
    done = _check_target(plan, options.out, options.resume)
    todo = [c for c in cells if c.cell_id not in done]
    emit(CampaignPlanned(tuple(cells), done))
    records: dict[str, CellRecord] = {}
    endpoints: list[fleet.EndpointHandle] = []
    clocks: dict[str, _NodeClock] = {}
    status = CampaignStatus.INTERRUPTED
    fleet.connect(options.address or plan.campaign.address)
    try:
        try:
            _wait_for_kinds(plan, todo, urls, options, emit)
            nodes = _check_nodes(plan, todo, emit)
            served, tokens = _start_endpoints(plan, todo, urls, endpoints, emit)
        except KeyboardInterrupt:  # nothing was filed: the folder stays as it was
            return CampaignResult(records=records, status=status, skipped_done=len(done))
        _open_tree(plan, options.out, "ray")
        try:
            for node in nodes:
                write_node(options.out, node)
            for endpoint in served:
                write_endpoint(options.out, endpoint)
            _schedule(plan, todo, urls, tokens, options, records, clocks, emit)
            status = _status(records)
        except KeyboardInterrupt:
            status = CampaignStatus.INTERRUPTED
        finally:
            _close_tree(options.out, status)
    finally:
        for handle in endpoints:
            handle.stop()
        fleet.disconnect()
    return CampaignResult(
        records=records,
        status=status,
        nodes=tuple(
            NodeTiming(
                node_id=n,
                cells=c.cells,
                exec_s=c.exec_s,
                wall_s=c.last_filed - c.first_submit,
                overheads_s=tuple(c.overheads),
            )
            for n, c in clocks.items()
        ),
        skipped_done=len(done),
    )


def _needed(plan: Plan, todo: list[PlannedCell], urls: Mapping[str, str]) -> dict[str, list[str]]:
    devices = {c.device for c in todo}
    served = {c.endpoint for c in todo if c.endpoint is not None and c.endpoint not in urls}
    return {
        kind: who
        for kind, who in (
            (
                k,
                [
                    w
                    for w in ws
                    if (w.startswith("device ") and w[7:] in devices)
                    or (w.startswith("endpoint ") and w[9:] in served)
                ],
            )
            for k, ws in kinds_needed(plan).items()
        )
        if who
    }


def _wait_for_kinds(
    plan: Plan,
    todo: list[PlannedCell],
    urls: Mapping[str, str],
    options: CampaignOptions,
    emit: CampaignCallback,
) -> None:
    needed = _needed(plan, todo, urls)
    t0 = time.monotonic()
    while True:
        alive = [n for n in fleet.nodes() if n.alive]
        missing = [
            k
            for k, who in needed.items()
            if not any(
                n.offers(
                    k,
                    fleet.SERVE_SHARE
                    if all(w.startswith("endpoint ") for w in who)
                    else fleet.CELL_SHARE,
                )
                for n in alive
            )
        ]
        if not missing:
            return
        waited = time.monotonic() - t0
        if waited >= options.wait_s:
            kind = missing[0]
            offered = sorted(
                {k for n in alive for k in n.resources if ":" in k and not k.startswith("node:")}
            )
            raise PlanError(
                f"no node of the cluster offers '{kind}' (needed by {', '.join(needed[kind])}"
                + (f"; offered: {', '.join(offered)}" if offered else "; no node offers a kind")
                + ")",
                JOIN_HINT.format(kind=kind)
                + (
                    ", or pass --wait SECONDS"
                    if options.wait_s <= 0
                    else f" within --wait {options.wait_s:g} s"
                ),
            )
        emit(WaitingForNodes(tuple(missing), waited))
        time.sleep(min(2.0, max(0.1, options.wait_s - waited)))


def _check_nodes(plan: Plan, todo: list[PlannedCell], emit: CampaignCallback) -> list[NodeRecord]:
    """The pre-run check on every live node of each device's kind; their records."""
    checked: list[NodeRecord] = []
    devices = list(dict.fromkeys(c.device for c in todo))
    alive = [n for n in fleet.nodes() if n.alive]
    probes = [
        (dev, node, fleet.submit_probe(plan, dev, node.node_id))
        for dev in devices
        for node in alive
        if node.offers(plan.devices[dev].kind)
    ]
    for dev, node, ref in probes:
        where = f"device {dev} (node {node.node_id[:12]} at {node.address})"
        try:
            answer = fleet.result(ref)
        except fleet.TaskLost as exc:
            raise PlanError(
                f"{where} did not answer the pre-run check: {exc.reason}",
                "check the node, then run again",
            ) from None
        except fleet.TaskFailed as exc:
            raise PlanError(
                f"{where} could not run the pre-run check: {exc}",
                "install the same tippingpoint (with [fleet]) on every node",
            ) from None
        if answer.tool_version != __version__:
            raise PlanError(
                f"{where} runs tippingpoint {answer.tool_version}, the head {__version__}",
                "install the same version on every node",
            )
        if answer.problem is not None:
            raise PlanError(f"{where}: {answer.problem}", "fix the plan or the node")
        checked.append(
            NodeRecord(
                node_id=node.node_id,
                kind=plan.devices[dev].kind,
                device=dev,
                address=node.address,
                tool_version=answer.tool_version,
                fingerprint=answer.fingerprint,
                seen_at=now(),
            )
        )
        emit(NodeChecked(dev, node.node_id, node.address))
    return checked


def _start_endpoints(
    plan: Plan,
    todo: list[PlannedCell],
    urls: dict[str, str],
    handles: list[fleet.EndpointHandle],
    emit: CampaignCallback,
) -> tuple[list[EndpointRecord], dict[str, str]]:
    """Start the served endpoints the cells use; fills ``urls``; returns their records and
    their tokens."""
    from tippingpoint.campaign.plan import served_models

    records: list[EndpointRecord] = []
    tokens: dict[str, str] = {}
    used = list(dict.fromkeys(c.endpoint for c in todo if c.endpoint is not None))
    for name in used:
        ep = plan.endpoints[name]
        if name in urls:
            records.append(EndpointRecord(name=name, url=urls[name], started_at=now()))
            emit(EndpointStarted(name, urls[name], None))
            continue
        assert ep.serve is not None
        node = next(n for n in fleet.nodes() if n.offers(ep.serve, fleet.SERVE_SHARE))
        token = secrets.token_urlsafe(24)
        try:
            handle, url, fingerprint, files = fleet.start_endpoint(
                node, ep.serve, served_models(plan, name), ep.backend, ep.threads, token
            )
        except (fleet.TaskLost, fleet.TaskFailed) as exc:
            raise PlanError(
                f"endpoint '{name}' could not be served on node {node.node_id[:12]} "
                f"({ep.serve}): {exc}",
                "check the endpoint's models and backend on that node",
            ) from None
        handles.append(handle)
        urls[name], tokens[name] = url, token
        records.append(
            EndpointRecord(
                name=name,
                url=url,
                kind=ep.serve,
                node_id=node.node_id,
                fingerprint=fingerprint,
                backend=ep.backend,
                models=files,
                started_at=now(),
            )
        )
        emit(EndpointStarted(name, url, node.node_id))
    return records, tokens


def _schedule(
    plan: Plan,
    todo: list[PlannedCell],
    urls: Mapping[str, str],
    tokens: Mapping[str, str],
    options: CampaignOptions,
    records: dict[str, CellRecord],
    clocks: dict[str, _NodeClock],
    emit: CampaignCallback,
) -> None:
    """Hand cells to idle nodes of their kind, one per node, and file each as it ends."""
    queues: dict[str, deque[PlannedCell]] = {}
    for c in todo:
        queues.setdefault(c.device, deque()).append(c)
    attempts: dict[str, int] = {}
    history: dict[str, tuple[str, ...]] = {}
    busy: dict[str, tuple[_InFlight, fleet.TaskRef[CellOutcome]]] = {}
    dead: set[str] = set()
    """Nodes a task found gone, before the cluster's own list says so."""
    out = options.out

    def file_record(cell: PlannedCell, record: CellRecord) -> None:
        records[cell.cell_id] = record
        emit(CellFiled(cell, record))

    try:
        while busy or any(queues.values()):
            alive = {n.node_id: n for n in fleet.nodes() if n.alive and n.node_id not in dead}
            for dev, queue in queues.items():
                kind = plan.devices[dev].kind
                if queue and not any(n.offers(kind) for n in alive.values()):
                    if any(f.cell.device == dev for f, _ in busy.values()):
                        continue  # a retry may still find a node once those end
                    at = now().isoformat(timespec="seconds")
                    while queue:
                        cell = queue.popleft()
                        n = attempts.get(cell.cell_id, 0)
                        file_record(
                            cell,
                            _file_without_run(
                                out,
                                cell,
                                CellState.LOST,
                                f"not started: no live node offers {kind} any more (at {at})",
                                n,
                                history.get(cell.cell_id, ()),
                            ),
                        )
            for node in alive.values():
                if node.node_id in busy:
                    continue
                for dev, queue in queues.items():
                    if queue and node.offers(plan.devices[dev].kind):
                        cell = queue.popleft()
                        attempt = attempts.get(cell.cell_id, 0) + 1
                        attempts[cell.cell_id] = attempt
                        url = urls.get(cell.endpoint) if cell.endpoint else None
                        token = tokens.get(cell.endpoint) if cell.endpoint else None
                        task = CellTask(plan=plan, cell=cell, endpoint_url=url, token=token)
                        ref = fleet.submit_cell(task, node.node_id)
                        t = time.perf_counter()
                        flight = _InFlight(cell, node.node_id, attempt, now(), t, url)
                        busy[node.node_id] = (flight, ref)
                        clocks.setdefault(node.node_id, _NodeClock(first_submit=t))
                        emit(CellSent(cell, node.node_id, attempt))
                        break
            refs = [ref for _, ref in busy.values()]
            for ready in fleet.wait(refs, options.tick_s):
                node_id = next(n for n, (_, r) in busy.items() if r is ready)
                flight, _ = busy.pop(node_id)
                _finish(
                    plan,
                    flight,
                    ready,
                    options,
                    queues,
                    history,
                    dead,
                    clocks,
                    file_record,
                    emit,
                )
    except BaseException:
        for _, ref in busy.values():
            fleet.cancel(ref)
        raise


def _finish(
    plan: Plan,
    flight: _InFlight,
    ref: fleet.TaskRef[CellOutcome],
    options: CampaignOptions,
    queues: dict[str, deque[PlannedCell]],
    history: dict[str, tuple[str, ...]],
    dead: set[str],
    clocks: dict[str, _NodeClock],
    file_record: Callable[[PlannedCell, CellRecord], None],
    emit: CampaignCallback,
) -> None:
    """File a cell that came back, or decide what its lost node means for it."""
    cell = flight.cell
    try:
        outcome: CellOutcome = fleet.result(ref)
    except fleet.TaskLost as exc:
        lost = exc.node_died or _node_goes_away(flight.node_id)
        at = now().isoformat(timespec="seconds")
        if not lost:
            record = _file_without_run(
                options.out,
                cell,
                CellState.FAILED,
                f"the process running it on node {flight.node_id[:12]} died: {exc.reason}",
                flight.attempt,
                history.get(cell.cell_id, ()),
            )
            file_record(cell, record)
            return
        dead.add(flight.node_id)
        note = f"attempt {flight.attempt} on node {flight.node_id[:12]}: node lost at {at}"
        history[cell.cell_id] = (*history.get(cell.cell_id, ()), note)
        kind = plan.devices[cell.device].kind
        others = [n for n in fleet.nodes() if n.offers(kind) and n.node_id not in dead]
        if others and flight.attempt < options.max_attempts:
            queues[cell.device].appendleft(cell)
            emit(CellRequeued(cell, note))
            return
        reason = f"node {flight.node_id[:12]} was lost at {at}" + (
            " and no other live node offers " + kind
            if not others
            else f" ({flight.attempt} attempts)"
        )
        file_record(
            cell,
            _file_without_run(
                options.out, cell, CellState.LOST, reason, flight.attempt, history[cell.cell_id]
            ),
        )
        return
    except fleet.TaskFailed as exc:
        record = _file_without_run(
            options.out,
            cell,
            CellState.FAILED,
            str(exc),
            flight.attempt,
            history.get(cell.cell_id, ()),
        )
        file_record(cell, record)
        return
    record = _file(
        options.out,
        outcome,
        node_id=flight.node_id,
        attempts=flight.attempt,
        history=history.get(cell.cell_id, ()),
        endpoint_url=flight.endpoint_url,
        submitted_at=flight.submitted_at,
    )
    t = time.perf_counter()
    clock = clocks[flight.node_id]
    clock.last_filed = t
    clock.cells += 1
    clock.exec_s += outcome.exec_s
    clock.overheads.append((t - flight.t_submit) - outcome.exec_s)
    file_record(cell, record)


def _node_goes_away(node_id: str, within_s: float = 30.0) -> bool:
    """Whether Ray marks ``node_id`` dead within ``within_s`` (a worker died: was it the node?)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not any(n.node_id == node_id and n.alive for n in fleet.nodes()):
            return True
        time.sleep(0.5)
    return False
