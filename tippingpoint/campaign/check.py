"""Checking a campaign tree, and merging trees copied from devices (no Ray needed).

:func:`check_tree` is the campaign's submission checker (MLPerf's is the model): every
planned cell is filed, complete or with the reason it is not; each report verifies (digest,
raw samples sha256), is the cell it is filed as, and was measured on a node recorded under
its device, of the device's kind and looking as the plan expects; nothing is filed twice or
outside the plan. It says exactly what is wrong, one line each.

:func:`merge_trees` gathers trees of one plan (``campaign run --local`` on each device, copied
by any means) into one tree; the caller then checks it.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tippingpoint.campaign.cell import mismatch
from tippingpoint.campaign.plan import Plan
from tippingpoint.campaign.tree import (
    ATTEMPTS,
    CELL_RECORD,
    ENDPOINTS,
    MANIFEST,
    NODES,
    CampaignManifest,
    CampaignTreeError,
    CellKey,
    CellRecord,
    CellState,
    NodeRecord,
    cell_dir,
    cell_report,
    copy_cell,
    read_cell,
    read_endpoints,
    read_manifest,
    read_node_file,
    write_manifest,
)
from tippingpoint.core.errors import ReportError
from tippingpoint.core.schema import HostFingerprint, Report, RunStatus

MISSING = "missing"


@dataclass(frozen=True)
class CellStatus:
    """A planned cell as the tree holds it."""

    cell_id: str
    device: str
    state: str
    """complete, failed, skipped, lost, or missing."""
    reason: str | None = None


@dataclass
class CheckResult:
    """What :func:`check_tree` found."""

    root: Path
    cells: list[CellStatus] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Everything that makes the tree invalid, one line each."""
    notes: list[str] = field(default_factory=list)
    """What a reader must know but is not an error (e.g. an endpoint on the device's host)."""

    @property
    def ok(self) -> bool:
        """Whether the tree is valid (cells may still be failed, skipped or lost)."""
        return not self.problems

    @property
    def complete(self) -> bool:
        """Whether every planned cell is complete or skipped."""
        return all(c.state in ("complete", "skipped") for c in self.cells)

    def counts(self) -> dict[str, Counter[str]]:
        """Per device: cells by state."""
        out: dict[str, Counter[str]] = {}
        for c in self.cells:
            out.setdefault(c.device, Counter())[c.state] += 1
        return out


def _same_host(a: HostFingerprint, b: HostFingerprint) -> bool:
    return (a.hostname_hash, a.machine, a.cpu_model, a.board) == (
        b.hostname_hash,
        b.machine,
        b.cpu_model,
        b.board,
    )


def _key_mismatch(key: CellKey, report: Report) -> str | None:
    """How a report differs from the cell it is filed as, or None."""
    sc = report.scenario
    backend = report.backend.name if report.backend is not None else None
    pairs: list[tuple[str, object, object]] = [
        ("model", report.model.name, key.model_name),
        ("variant", report.model.variant, key.variant),
        ("backend", backend, key.backend),
        ("scenario", sc.kind, key.scenario),
        ("batch size", sc.batch_size, key.batch_size),
    ]
    if key.concurrency is not None:
        pairs.append(("concurrency", sc.concurrency, key.concurrency))
    if key.rate_qps is not None:
        pairs.append(("target rate", sc.target_rate_qps, key.rate_qps))
    for what, got, want in pairs:
        if got != want:
            return f"its report is of {what} {_show(got)}, the cell is {_show(want)}"
    return None


def _show(value: object) -> str:
    return str(getattr(value, "value", value))


def check_tree(root: Path) -> CheckResult:
    """Check the campaign tree at ``root``; raises ``CampaignTreeError`` if it is none."""
    manifest = read_manifest(root)
    result = CheckResult(root=root)
    plan = Plan.model_validate(manifest.plan)
    nodes = _nodes(root, manifest, result)
    run_ids: dict[str, str] = {}
    planned_dirs = {cell_dir(root, k.cell_id) for k in manifest.cells}
    for key in manifest.cells:
        status, report = _check_cell(root, key, plan, nodes, result)
        result.cells.append(status)
        if report is not None:
            if report.run_id in run_ids:
                result.problems.append(
                    f"duplicate: {key.cell_id} holds the same run as {run_ids[report.run_id]} "
                    f"(run {report.run_id[:8]})"
                )
            run_ids.setdefault(report.run_id, key.cell_id)
    _strays(root, manifest, planned_dirs, result)
    _endpoint_notes(root, nodes, result)
    return result


def _nodes(root: Path, manifest: CampaignManifest, result: CheckResult) -> dict[str, NodeRecord]:
    """Node records by (device, node id) key ``DEVICE/NODE``; problems for bad ones."""
    out: dict[str, NodeRecord] = {}
    for dev, kind in manifest.devices.items():
        folder = root / dev / NODES
        for path in sorted(folder.glob("*.json")):
            try:
                rec = read_node_file(path)
            except CampaignTreeError as exc:
                result.problems.append(exc.one_line())
                continue
            if rec.device != dev or rec.kind != kind:
                result.problems.append(
                    f"node {rec.node_id[:12]} is recorded under device {dev} ({kind}) but ran "
                    f"as {rec.device} ({rec.kind})"
                )
            out[f"{dev}/{rec.node_id}"] = rec
    return out


def _check_cell(
    root: Path, key: CellKey, plan: Plan, nodes: dict[str, NodeRecord], result: CheckResult
) -> tuple[CellStatus, Report | None]:
    cid = key.cell_id
    folder = cell_dir(root, cid)
    try:
        record = read_cell(root, cid)
    except CampaignTreeError as exc:
        result.problems.append(f"{cid}: {exc.one_line()}")
        return CellStatus(cid, key.device, MISSING, "unreadable record"), None
    reports = sorted(p for p in folder.glob("*.json") if p.name != CELL_RECORD)
    if record is None:
        if reports:
            result.problems.append(
                f"missing: {cid} has a report but no {CELL_RECORD} (filing was cut short; "
                "rerun with --resume)"
            )
        else:
            result.problems.append(f"missing: {cid} (never filed; run with --resume)")
        return CellStatus(cid, key.device, MISSING), None
    if record.cell_id != cid:
        result.problems.append(f"{cid}: its record is of cell {record.cell_id}")
    extra = [p.name for p in reports if p.name != record.report]
    if extra:
        result.problems.append(
            f"duplicate: {cid} holds reports its record does not name: {', '.join(extra)}"
        )
    status = CellStatus(cid, key.device, record.state.value, record.reason)
    if record.state is not CellState.COMPLETE and not (record.reason or "").strip():
        result.problems.append(f"{cid}: {record.state.value} without a reason")
    report = _verified_report(root, record, result)
    if record.state is CellState.COMPLETE:
        if report is None:
            if record.report is None:
                result.problems.append(f"{cid}: complete but names no report")
            return status, None
        if report.status is not RunStatus.COMPLETE:
            result.problems.append(f"{cid}: filed complete, its report says {report.status.value}")
    if report is not None:
        _check_report(key, record, report, plan, nodes, result)
    return status, report


def _verified_report(root: Path, record: CellRecord, result: CheckResult) -> Report | None:
    try:
        found = cell_report(root, record)
    except ReportError as exc:
        result.problems.append(f"{record.cell_id}: {exc.one_line()}")
        return None
    return found[1] if found is not None else None


def _check_report(
    key: CellKey,
    record: CellRecord,
    report: Report,
    plan: Plan,
    nodes: dict[str, NodeRecord],
    result: CheckResult,
) -> None:
    cid = key.cell_id
    wrong = _key_mismatch(key, report)
    if wrong is not None:
        result.problems.append(f"{cid}: {wrong}")
    node = nodes.get(f"{key.device}/{record.node_id}")
    if node is None:
        result.problems.append(
            f"{cid}: ran on node {(record.node_id or 'unknown')[:12]}, which is not recorded "
            f"under device {key.device}"
        )
    elif not _same_host(node.fingerprint, report.host):
        result.problems.append(
            f"{cid}: its report's host ({report.host.machine}, {report.host.cpu_model}, "
            f"host {report.host.hostname_hash[:8]}) is not node {node.node_id[:12]} of "
            f"{key.device} ({node.fingerprint.machine}, host {node.fingerprint.hostname_hash[:8]})"
        )
    expected = mismatch(plan.devices[key.device].expect, report.host)
    if expected is not None:
        result.problems.append(f"{cid}: {expected} ({key.device} is {key.kind})")


def _strays(
    root: Path, manifest: CampaignManifest, planned: set[Path], result: CheckResult
) -> None:
    """Cell records or reports outside the planned cells' folders."""
    for dev in manifest.devices:
        base = root / dev
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.json")):
            rel = path.relative_to(base).parts
            if rel[0] == NODES or ATTEMPTS in rel:
                continue
            if path.parent not in planned:
                result.problems.append(
                    f"unplanned: {path.relative_to(root)} is not in a planned cell's folder"
                )
    known = set(manifest.devices) | {ENDPOINTS, MANIFEST}
    for entry in sorted(root.iterdir()):
        if entry.name not in known and not entry.name.startswith("."):
            result.problems.append(f"unplanned: {entry.name} is not a device of the plan")


def _endpoint_notes(root: Path, nodes: dict[str, NodeRecord], result: CheckResult) -> None:
    try:
        endpoints = read_endpoints(root)
    except CampaignTreeError as exc:
        result.problems.append(exc.one_line())
        return
    for name, ep in endpoints.items():
        if ep.fingerprint is None:
            continue
        shared = sorted(
            {n.device for n in nodes.values() if _same_host(n.fingerprint, ep.fingerprint)}
        )
        if shared:
            result.notes.append(
                f"endpoint {name} ran on the same machine as device(s) {', '.join(shared)}: "
                "runs against it measure no real network path"
            )


# merging -------------------------------------------------------------------------------------


_RANK = {
    CellState.COMPLETE: 0,
    CellState.SKIPPED: 1,
    CellState.FAILED: 2,
    CellState.LOST: 3,
}


@dataclass(frozen=True)
class MergeResult:
    """Where each cell of the merged tree came from."""

    dest: Path
    copied: dict[str, Path]
    """Cell id -> the source tree it was copied from."""


def merge_trees(sources: list[Path], dest: Path) -> MergeResult:
    """Merge campaign trees of one plan into ``dest`` (created, or an existing tree of it).

    For each planned cell the best filing wins (complete > skipped > failed > lost); a cell
    complete in two trees with different reports is refused (one line naming both). Node and
    endpoint records are gathered from every tree. Nothing is verified here: check the result.
    """
    manifests = [(src, read_manifest(src)) for src in sources]
    first = manifests[0][1]
    for src, m in manifests[1:]:
        if m.plan_sha256 != first.plan_sha256:
            raise CampaignTreeError(
                f"{src} is a campaign of another plan than {manifests[0][0]}",
                "merge trees made from the same plan file",
            )
    if dest.exists() and (dest / MANIFEST).is_file():
        if read_manifest(dest).plan_sha256 != first.plan_sha256:
            raise CampaignTreeError(f"{dest} is a campaign of another plan", "choose another --out")
        manifests.insert(0, (dest, read_manifest(dest)))
    elif dest.exists() and any(dest.iterdir()):
        raise CampaignTreeError(
            f"{dest} is not empty and holds no campaign", "choose an empty or new --out"
        )
    chosen = _choose(manifests, first, dest)
    dest.mkdir(parents=True, exist_ok=True)
    sessions = tuple(s for _, m in manifests for s in m.sessions)
    write_manifest(dest, first.model_copy(update={"sessions": sessions}))
    for src, m in manifests:
        if src == dest:
            continue
        for dev in m.devices:
            for path in sorted((src / dev / NODES).glob("*.json")):
                (dest / dev / NODES).mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest / dev / NODES / path.name)
        for path in sorted((src / ENDPOINTS).glob("*.json")):
            (dest / ENDPOINTS).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / ENDPOINTS / path.name)
    for cid, src in chosen.items():
        if src != dest:
            copy_cell(src, dest, cid)
    return MergeResult(dest=dest, copied={c: s for c, s in chosen.items() if s != dest})


def _choose(
    manifests: list[tuple[Path, CampaignManifest]], first: CampaignManifest, dest: Path
) -> dict[str, Path]:
    chosen: dict[str, Path] = {}
    for key in first.cells:
        best: tuple[int, Path, str | None] | None = None
        for src, _ in manifests:
            if not (cell_dir(src, key.cell_id) / CELL_RECORD).is_file():
                continue
            try:
                record = read_cell(src, key.cell_id)
            except CampaignTreeError:
                rank, digest = 9, None  # copied so that check names it
            else:
                assert record is not None
                rank, digest = _RANK[record.state], record.report_digest
            if best is not None and rank == 0 and best[0] == 0 and digest != best[2]:
                raise CampaignTreeError(
                    f"cell {key.cell_id} is complete in both {best[1]} and {src}, with different "
                    "reports",
                    "keep one: delete the cell's folder from the other tree, then merge again",
                )
            if best is None or rank < best[0]:
                best = (rank, src, digest)
        if best is not None:
            chosen[key.cell_id] = best[1]
    return chosen
