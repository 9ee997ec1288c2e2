"""One campaign cell, run where it is placed: the node's side of a campaign (no Ray here).

:func:`run_cell` turns a planned cell into the one-cell
:class:`~tippingpoint.harness.matrix.RunRequest` of ``tippingpoint run``, expands it with
:func:`~tippingpoint.harness.matrix.expand` and runs it with
:func:`~tippingpoint.harness.execute.execute` into a private folder, then hands back the
report and samples as bytes with the node's fingerprint, for the head to file. A Ray task
calls it on the cell's node; ``campaign run --local`` calls it in process. The same module
serves an endpoint (:class:`ServedEndpoint`) and checks a node before a campaign
(:func:`probe`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tippingpoint import __version__
from tippingpoint.campaign.plan import Expect, Plan, PlannedCell, planned_cells, run_request
from tippingpoint.campaign.tree import CellState, FiledFiles, now
from tippingpoint.core.errors import TippingPointError
from tippingpoint.core.schema import HostFingerprint, RunStatus
from tippingpoint.harness.execute import ExecuteOptions, execute
from tippingpoint.harness.fingerprint import host_fingerprint
from tippingpoint.harness.matrix import ENDPOINT_BACKEND, expand
from tippingpoint.harness.standin import LocalStandIn
from tippingpoint.models.registry import for_backend, resolve_model

TOKEN_ENV = "TIPPINGPOINT_CAMPAIGN_TOKEN"
"""The environment variable that holds a served endpoint's bearer token, on both sides."""
PROBE_URL = "http://probe.invalid:8000"
"""A placeholder endpoint for the pre-run check: expanding a cell never connects."""


@dataclass(frozen=True)
class CellTask:
    """What a node needs to run one cell."""

    plan: Plan
    cell: PlannedCell
    endpoint_url: str | None = None
    token: str | None = None
    """The bearer token of a served endpoint; set in the environment only while the cell runs."""


@dataclass(frozen=True)
class CellOutcome:
    """How a cell ended on its node, with its report's files as bytes."""

    cell_id: str
    state: CellState
    reason: str | None
    files: FiledFiles | None
    fingerprint: HostFingerprint
    tool_version: str
    started_at: datetime
    exec_s: float
    interrupted: bool = False
    """Ctrl-C stopped the run (``--local``): not filed, so ``--resume`` runs it again."""


def run_cell(task: CellTask) -> CellOutcome:
    """Run ``task``'s cell here through the harness, exactly as ``tippingpoint run`` would."""
    started = now()
    t0 = time.perf_counter()
    fingerprint = host_fingerprint()
    state, files = CellState.FAILED, None
    reason: str | None = "no report was written"
    interrupted = False
    previous = os.environ.get(TOKEN_ENV)
    try:
        request = run_request(task.plan, task.cell, task.endpoint_url)
        if task.token is not None:
            os.environ[TOKEN_ENV] = task.token
            options = {b: dict(o) for b, o in request.backend_options.items()}
            options.setdefault(ENDPOINT_BACKEND, {})["token_env"] = TOKEN_ENV
            request = dataclasses.replace(request, backend_options=options)
        matrix = expand(request)
        if len(matrix.cells) != 1:
            raise RuntimeError(f"the cell expanded to {len(matrix.cells)} runs, not one")
        with tempfile.TemporaryDirectory(prefix="tp-cell-") as tmp:
            result = execute(matrix, ExecuteOptions(out=Path(tmp), sigterm_as_interrupt=False))
            if result.written:
                done = result.written[0]
                files = FiledFiles(
                    report_name=done.path.name,
                    report_bytes=done.path.read_bytes(),
                    samples_name=done.samples_path.name if done.samples_path else None,
                    samples_bytes=done.samples_path.read_bytes() if done.samples_path else None,
                )
                status = done.report.status
                if status is RunStatus.COMPLETE:
                    state, reason = CellState.COMPLETE, None
                elif status is RunStatus.FAILED:
                    errs = done.report.errors
                    reason = f"run failed: {errs[0].message}" if errs else "run failed"
                else:
                    reason, interrupted = "the run was interrupted on its node", True
            elif result.skipped:
                state, reason = CellState.SKIPPED, result.skipped[0].reason
    except TippingPointError as exc:
        reason = exc.one_line()
    except Exception as exc:  # recorded as the cell's reason; the campaign goes on
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        if task.token is not None:
            if previous is None:
                os.environ.pop(TOKEN_ENV, None)
            else:
                os.environ[TOKEN_ENV] = previous
    return CellOutcome(
        cell_id=task.cell.cell_id,
        state=state,
        reason=reason,
        files=files,
        fingerprint=fingerprint,
        tool_version=__version__,
        started_at=started,
        exec_s=time.perf_counter() - t0,
        interrupted=interrupted,
    )


@dataclass(frozen=True)
class ProbeResult:
    """A node's answer to the pre-run check of a device's cells."""

    tool_version: str
    fingerprint: HostFingerprint
    problem: str | None
    """The first cell that cannot run here and why (one line), or None."""


def probe(plan: Plan, device: str) -> ProbeResult:
    """Check on this node that every cell of ``device`` expands (models, backends, runtimes,
    options) and that the node looks as the plan expects; nothing is measured."""
    fingerprint = host_fingerprint()
    problem = mismatch(plan.devices[device].expect, fingerprint)
    if problem is None:
        for cell in planned_cells(plan):
            if cell.device != device:
                continue
            url = PROBE_URL if cell.endpoint is not None else None
            try:
                expand(run_request(plan, cell, url))
            except TippingPointError as exc:
                problem = f"cell {cell.cell_id}: {exc.one_line()}"
                break
    return ProbeResult(tool_version=__version__, fingerprint=fingerprint, problem=problem)


def mismatch(expect: Expect | None, fingerprint: HostFingerprint) -> str | None:
    """How ``fingerprint`` differs from what the plan expects of the device, or None."""
    if expect is None:
        return None
    if expect.machine is not None and fingerprint.machine != expect.machine:
        return f"the node is {fingerprint.machine}, the plan expects {expect.machine}"
    if expect.board is not None and expect.board not in (fingerprint.board or ""):
        return (
            f"the node's board is {fingerprint.board or 'unknown'}, the plan expects {expect.board}"
        )
    if expect.cpu_model is not None and expect.cpu_model not in (fingerprint.cpu_model or ""):
        return (
            f"the node's CPU is {fingerprint.cpu_model or 'unknown'}, the plan expects "
            f"{expect.cpu_model}"
        )
    return None


class ServedEndpoint:
    """``tippingpoint serve`` on this node's address for a campaign's endpoint.

    Started by :meth:`start`, stopped by :meth:`stop`; a Ray actor holds one on the node of
    the endpoint's kind, for the campaign's duration.
    """

    def __init__(self) -> None:
        self._server: LocalStandIn | None = None
        self.url: str | None = None

    def start(
        self,
        models: list[tuple[str, str | None]],
        backend: str,
        threads: int,
        host: str,
        token: str | None,
    ) -> tuple[str, HostFingerprint, tuple[str, ...]]:
        """Serve ``models`` (as ``--endpoint local`` would serve them) on ``host``; returns the
        URL, this node's fingerprint and the files served."""
        paths = [for_backend(resolve_model(m, v), (".onnx",)).path for m, v in models]
        if token is not None:
            os.environ[TOKEN_ENV] = token
        server = LocalStandIn(
            paths, backend, threads, host=host, token_env=TOKEN_ENV if token else None
        )
        self.url = server.__enter__()
        self._server = server
        return self.url, host_fingerprint(), tuple(p.name for p in paths)

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._server is not None:
            self._server.__exit__()
            self._server = None
