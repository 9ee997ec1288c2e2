"""The campaign tree: one folder holding every report of a campaign, and what each one is.

Layout (MLPerf's submission tree is the model)::

    CAMPAIGN/
      campaign.json                        the plan, its sha256 and every planned cell
      endpoints/NAME.json                  where each served endpoint ran, with its fingerprint
      DEVICE/nodes/NODE.json               each node that ran the device's cells: fingerprint
      DEVICE/MODEL/SCENARIO/BACKEND-VARIANT/
        cell.json                          the cell's outcome: complete, failed, skipped, lost
        <report>.json, <report>.samples.npz  as ``tippingpoint run`` writes them
        attempts/N/...                     files of an earlier attempt a rerun replaced

A cell's files are written report first and ``cell.json`` last, each atomically, so a cell
is filed exactly when its record is on disk. Records carry a digest like reports do.
:func:`reports_by_device` is what ``cost`` and ``report`` read from a campaign folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from tippingpoint.campaign.plan import PlannedCell
from tippingpoint.core import io as report_io
from tippingpoint.core.errors import ReportError, UsageError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import HostFingerprint, Report
from tippingpoint.core.types import Frozen

TREE_FORMAT: Literal[1] = 1
MANIFEST = "campaign.json"
CELL_RECORD = "cell.json"
NODES = "nodes"
ENDPOINTS = "endpoints"
ATTEMPTS = "attempts"


class CampaignTreeError(UsageError):
    """A campaign folder is missing, or its records cannot be read."""


class CellState(str, Enum):
    """How a planned cell ended."""

    COMPLETE = "complete"
    FAILED = "failed"
    """The run failed (its report, when it wrote one, says why) or could not start."""
    SKIPPED = "skipped"
    """The pre-run check found the model cannot run it (e.g. a fixed batch)."""
    LOST = "lost"
    """Its node was lost and no other node of its kind could take it."""


class CellKey(Frozen):
    """A planned cell as the manifest lists it."""

    cell_id: str
    device: str
    kind: str
    run_index: int
    model: str
    model_name: str
    variant: str
    backend: str
    endpoint: str | None = None
    scenario: ScenarioKind
    batch_size: int
    concurrency: int | None = None
    rate_qps: float | None = None

    @classmethod
    def of(cls, cell: PlannedCell) -> CellKey:
        """The manifest entry of a planned cell."""
        return cls(
            cell_id=cell.cell_id,
            device=cell.device,
            kind=cell.kind,
            run_index=cell.run_index,
            model=cell.model,
            model_name=cell.model_name,
            variant=cell.variant,
            backend=cell.backend,
            endpoint=cell.endpoint,
            scenario=cell.scenario,
            batch_size=cell.batch_size,
            concurrency=cell.concurrency,
            rate_qps=cell.rate_qps,
        )

    def planned(self) -> PlannedCell:
        """Back to the planner's value."""
        return PlannedCell(
            **self.model_dump(exclude={"cell_id"}),
        )


class Session(Frozen):
    """One ``campaign run`` (or ``--resume``, or ``--local``) over the tree."""

    mode: str = "ray"
    """'ray', or 'local:DEVICE' for a run without Ray."""
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"


class CampaignManifest(Frozen):
    """``campaign.json``: the plan and the cells it plans."""

    format: Literal[1] = TREE_FORMAT
    name: str
    plan_sha256: str
    plan: dict[str, Any]
    devices: dict[str, str]
    """Device id -> kind."""
    cells: tuple[CellKey, ...]
    created_at: datetime
    tool_version: str
    sessions: tuple[Session, ...] = ()


class NodeRecord(Frozen):
    """A node that ran cells of a device, and its fingerprint as it was then."""

    node_id: str
    kind: str
    device: str
    address: str | None = None
    tool_version: str
    fingerprint: HostFingerprint
    seen_at: datetime
    digest: str | None = None


class EndpointRecord(Frozen):
    """Where an endpoint of the plan was, for the campaign's cells."""

    name: str
    url: str
    """Without credentials."""
    kind: str | None = None
    """The kind of the node that served it (None: a URL the plan gave)."""
    node_id: str | None = None
    fingerprint: HostFingerprint | None = None
    backend: str | None = None
    models: tuple[str, ...] = ()
    started_at: datetime
    digest: str | None = None


class CellRecord(Frozen):
    """``cell.json``: how a planned cell ended, on which node, and its report's files."""

    cell_id: str
    state: CellState
    reason: str | None = None
    """Why it failed, was skipped or lost (one line)."""
    node_id: str | None = None
    attempts: int = 1
    history: tuple[str, ...] = ()
    """What happened to earlier attempts, e.g. 'attempt 1 on node 3f72…: node lost at …'."""
    report: str | None = None
    """The report's file name in the cell's folder."""
    report_digest: str | None = None
    samples: str | None = None
    endpoint_url: str | None = None
    started_at: datetime | None = None
    """On the node, when the cell started."""
    exec_s: float | None = None
    """Seconds the cell ran on its node (expand, execute, reading the files back)."""
    submitted_at: datetime | None = None
    """On the head, when the cell was handed to its node."""
    filed_at: datetime
    """On the head, when the record was written."""
    digest: str | None = None


_R = TypeVar("_R", bound=BaseModel)


def now() -> datetime:
    """The current time in UTC, as records hold it."""
    return datetime.now(timezone.utc)


def cell_dir(root: Path, cell_id: str) -> Path:
    """The folder of a cell."""
    return root.joinpath(*cell_id.split("/"))


def _write_json(path: Path, model: BaseModel) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if "digest" in type(model).model_fields:
        model = model.model_copy(update={"digest": None})
        model = model.model_copy(update={"digest": report_io.canonical_digest(model)})
    report_io.atomic_write_bytes(path, (model.model_dump_json(indent=2) + "\n").encode())


def _read_json(path: Path, kind: type[_R]) -> _R:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CampaignTreeError(
            f"cannot read {path}: {exc.strerror or exc}", "check the path"
        ) from None
    try:
        model = kind.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CampaignTreeError(
            f"{path} is not a valid {kind.__name__}: '{where}': {err['msg']}",
            "restore it from the original tree",
        ) from None
    digest = getattr(model, "digest", None)
    if "digest" in kind.model_fields and digest != report_io.canonical_digest(model):
        raise CampaignTreeError(
            f"{path} was modified after it was written (digest mismatch)",
            "restore it from the original tree, or rerun the cell with --resume",
        )
    return model


def write_manifest(root: Path, manifest: CampaignManifest) -> None:
    """Write ``campaign.json`` atomically."""
    _write_json(root / MANIFEST, manifest)


def read_manifest(root: Path) -> CampaignManifest:
    """Read ``campaign.json``; a folder without one is not a campaign."""
    if not (root / MANIFEST).is_file():
        raise CampaignTreeError(
            f"{root} is not a campaign folder (no {MANIFEST})",
            "pass the --out folder of 'tippingpoint campaign run'",
        )
    return _read_json(root / MANIFEST, CampaignManifest)


def is_campaign(path: Path) -> bool:
    """Whether ``path`` is a campaign folder."""
    return (path / MANIFEST).is_file()


def write_node(root: Path, record: NodeRecord) -> None:
    """Record a node under its device (once per node; a later record replaces it)."""
    _write_json(root / record.device / NODES / f"{record.node_id[:16]}.json", record)


def read_node_file(path: Path) -> NodeRecord:
    """One node record, its digest checked."""
    return _read_json(path, NodeRecord)


def read_nodes(root: Path, device: str) -> list[NodeRecord]:
    """The nodes recorded for ``device``."""
    folder = root / device / NODES
    return [read_node_file(p) for p in sorted(folder.glob("*.json"))]


def write_endpoint(root: Path, record: EndpointRecord) -> None:
    """Record an endpoint."""
    _write_json(root / ENDPOINTS / f"{record.name}.json", record)


def read_endpoints(root: Path) -> dict[str, EndpointRecord]:
    """The endpoints recorded, by name."""
    folder = root / ENDPOINTS
    return {p.stem: _read_json(p, EndpointRecord) for p in sorted(folder.glob("*.json"))}


def read_cell(root: Path, cell_id: str) -> CellRecord | None:
    """A cell's record, or None when the cell has not been filed."""
    path = cell_dir(root, cell_id) / CELL_RECORD
    return _read_json(path, CellRecord) if path.is_file() else None


def set_aside(root: Path, cell_id: str) -> None:
    """Move the files of a cell's earlier attempt to ``attempts/N`` before it runs again."""
    folder = cell_dir(root, cell_id)
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    if not files:
        return
    n = 1
    while (folder / ATTEMPTS / str(n)).exists():
        n += 1
    dest = folder / ATTEMPTS / str(n)
    dest.mkdir(parents=True)
    for p in files:
        p.rename(dest / p.name)


@dataclass(frozen=True)
class FiledFiles:
    """A report and its samples sidecar as bytes, to be filed under a cell."""

    report_name: str
    report_bytes: bytes
    samples_name: str | None = None
    samples_bytes: bytes | None = None


def file_cell(root: Path, record: CellRecord, files: FiledFiles | None) -> CellRecord:
    """Write a cell's report (samples first, then the report) and then its record.

    An earlier attempt's files are set aside first. Returns the record as written.
    """
    folder = cell_dir(root, record.cell_id)
    set_aside(root, record.cell_id)
    folder.mkdir(parents=True, exist_ok=True)
    if files is not None:
        if files.samples_name is not None and files.samples_bytes is not None:
            report_io.atomic_write_bytes(folder / files.samples_name, files.samples_bytes)
        report_io.atomic_write_bytes(folder / files.report_name, files.report_bytes)
    _write_json(folder / CELL_RECORD, record)
    written = read_cell(root, record.cell_id)
    assert written is not None
    return written


def cell_report(root: Path, record: CellRecord) -> tuple[Path, Report] | None:
    """The cell's report, its digest and samples verified; None when it has none.

    Raises ``ReportError`` when the report or its samples were changed, or do not match the
    record.
    """
    if record.report is None:
        return None
    path = cell_dir(root, record.cell_id) / record.report
    report = report_io.read_report(path)
    if record.report_digest is not None and report.digest != record.report_digest:
        raise ReportError(
            f"{path} is not the report its cell record names (digest differs)",
            "restore the original report, or rerun the cell with --resume",
        )
    report_io.verify_samples(report, path)
    return path, report


def cell_done(root: Path, cell_id: str) -> bool:
    """Whether a cell is filed for good: complete with its report verified, or skipped."""
    try:
        record = read_cell(root, cell_id)
        if record is None:
            return False
        if record.state is CellState.SKIPPED:
            return True
        return record.state is CellState.COMPLETE and cell_report(root, record) is not None
    except (CampaignTreeError, ReportError):
        return False


def copy_cell(src_root: Path, dest_root: Path, cell_id: str) -> None:
    """Copy a cell's folder (its files and earlier attempts) from one tree to another."""
    src = cell_dir(src_root, cell_id)
    dest = cell_dir(dest_root, cell_id)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)


@dataclass
class DeviceReports:
    """One device's complete, verified reports in a campaign: its own runs and, per endpoint,
    the runs it sent there (the cloud path measured from this device's position)."""

    device: str
    kind: str
    nodes: list[NodeRecord] = field(default_factory=list)
    local: list[tuple[Path, Report]] = field(default_factory=list)
    """Runs on the device itself: cost the device from these (measured on itself)."""
    by_endpoint: dict[str, list[tuple[Path, Report]]] = field(default_factory=dict)
    """Runs from the device against each endpoint: cost each cloud placement from these."""
    endpoints: dict[str, EndpointRecord] = field(default_factory=dict)


def report_paths(root: Path) -> list[Path]:
    """The complete, verified reports of a campaign folder, in plan order (for ``report``)."""
    return [
        path
        for dev in reports_by_device(root).values()
        for path, _ in [*dev.local, *(r for runs in dev.by_endpoint.values() for r in runs)]
    ]


def reports_by_device(root: Path) -> dict[str, DeviceReports]:
    """Every device's complete, verified reports in a campaign folder, by device id.

    A report that fails its digest or samples check raises ``ReportError`` (run ``campaign
    check`` for the full list); cells not complete are left out.
    """
    manifest = read_manifest(root)
    endpoints = read_endpoints(root)
    out = {
        dev: DeviceReports(device=dev, kind=kind, nodes=read_nodes(root, dev))
        for dev, kind in manifest.devices.items()
    }
    for key in manifest.cells:
        record = read_cell(root, key.cell_id)
        if record is None or record.state is not CellState.COMPLETE:
            continue
        found = cell_report(root, record)
        if found is None:
            continue
        entry = out[key.device]
        if key.endpoint is None:
            entry.local.append(found)
        else:
            entry.by_endpoint.setdefault(key.endpoint, []).append(found)
            if key.endpoint in endpoints:
                entry.endpoints[key.endpoint] = endpoints[key.endpoint]
    return out
