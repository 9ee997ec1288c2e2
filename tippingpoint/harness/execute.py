"""Running a matrix: its cells in order, each report written as soon as its run ends.

:func:`execute` checks the cells once (the pre-run check: usage errors before anything is
measured, cells the model cannot run skipped with the reason), opens the collectors, starts the
local stand-in server when the matrix asks for one, treats SIGTERM like Ctrl-C, and runs each
cell. Each report and its samples sidecar are written atomically as the run finishes, so the
runs finished before an interruption, a failure or a full disk stay on disk. It tells its
caller what happens through typed events and returns the outcome with an :class:`ExitStatus`;
it prints nothing.

With repetitions (``Matrix.repeat`` above 1) each cell runs that many times as separate runs,
each loading a fresh session (and, with ``fresh_process``, in a process of its own: see
:mod:`tippingpoint.harness.isolated`), in rounds (:func:`~tippingpoint.harness.matrix.schedule`:
A B A B, or each round shuffled), so that a slow phase of a shared machine falls on every cell
alike. Each report records its group, index and place in the series.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from tippingpoint.core import io as report_io
from tippingpoint.core.errors import OutputDirError
from tippingpoint.core.schema import (
    WITHIN_RUN_FLAGS,
    InterleaveOrder,
    Repetition,
    RunFlag,
    RunStatus,
)
from tippingpoint.harness.collectors.selection import close_collectors, open_collectors
from tippingpoint.harness.energy import EnergyAccounting, is_energy_collector
from tippingpoint.harness.events import (
    CellFinished,
    CellProgress,
    CellSkipped,
    CellStarted,
    CollectorSkipped,
    Event,
    EventCallback,
    SkippedCell,
    StandInStarted,
    WrittenReport,
)
from tippingpoint.harness.interrupts import raise_interrupt
from tippingpoint.harness.isolated import ChildJob, run_in_fresh_process
from tippingpoint.harness.links.cell import run_shaped
from tippingpoint.harness.matrix import (
    SPLIT_BACKEND,
    Matrix,
    cell_label,
    schedule,
    served_by_standin,
)
from tippingpoint.harness.preflight import preflight
from tippingpoint.harness.runner import Progress, Runner, RunOutcome, RunSpec
from tippingpoint.harness.standin import LocalStandIn


class ExitStatus(Enum):
    """How a matrix ended (usage errors are raised instead)."""

    COMPLETE = "complete"
    """Every run that ran completed (cells skipped before the runs do not count)."""
    FAILED = "failed"
    """At least one run failed; its report records why and the rest of the matrix ran."""
    INTERRUPTED = "interrupted"
    """Ctrl-C or SIGTERM stopped the matrix; the interrupted run's report is on disk."""


@dataclass(frozen=True)
class ExecuteOptions:
    """Where and how to execute a matrix."""

    out: Path
    """The directory the reports are written to (created if needed)."""
    progress: bool = False
    """Send :class:`~tippingpoint.harness.events.CellProgress` snapshots during runs; off, the
    loops skip their progress bookkeeping."""
    sigterm_as_interrupt: bool = True
    """Treat SIGTERM like Ctrl-C while the cells run (only possible on the main thread)."""


@dataclass(frozen=True)
class ExecutionResult:
    """The reports written, in run order, the cells skipped, and how the matrix ended."""

    written: tuple[WrittenReport, ...]
    skipped: tuple[SkippedCell, ...]
    status: ExitStatus


def execute(
    matrix: Matrix, options: ExecuteOptions, on_event: EventCallback | None = None
) -> ExecutionResult:
    """Run ``matrix`` and write a report per run under ``options.out``.

    Raises a ``UsageError`` found by the pre-run check, or ``OutputDirError`` when a report
    cannot be written (the reports written before are kept). Ctrl-C or SIGTERM during a run
    ends the matrix with :attr:`ExitStatus.INTERRUPTED`; outside a run it propagates.
    """
    emit: EventCallback = on_event if on_event is not None else _ignore
    report_io.check_output_dir(options.out)  # created once the pre-run check passed
    fresh = matrix.fresh_process
    if fresh and matrix.request is None:
        raise ValueError("a fresh process per run needs the matrix expanded from a RunRequest")
    cells, skipped = _checked(matrix.cells, emit)
    report_io.ensure_output_dir(options.out)
    slots = [
        s
        for s in schedule(len(matrix.cells), matrix.repeat, matrix.order, matrix.order_seed)
        if s.cell in cells
    ]
    repeated = matrix.repeat > 1
    series = uuid.uuid4().hex
    groups = {i: uuid.uuid4().hex for i in cells}
    written: list[WrittenReport] = []
    status = ExitStatus.COMPLETE
    with contextlib.ExitStack() as stack:
        opened, collectors_skipped = open_collectors(matrix.collectors, matrix.collector_options)
        if fresh:  # each child opens its own; this only tells the caller what is missing
            close_collectors(opened)
            opened = []
        else:
            stack.callback(close_collectors, opened)
        for s in collectors_skipped:
            emit(CollectorSkipped(s.name, s.reason))
        url: str | None = None
        if matrix.standin_models is not None:
            url = stack.enter_context(LocalStandIn(matrix.standin_models))
            emit(StandInStarted(url))
            cells = {i: _pointed_at(c, url) for i, c in cells.items()}
        if options.sigterm_as_interrupt:
            stack.enter_context(_sigterm_as_interrupt())
        current = 0

        def progress(p: Progress) -> None:
            emit(CellProgress(current, p))

        energy = (
            EnergyAccounting(opened, matrix.idle_s)
            if any(is_energy_collector(c) for c in opened)
            else None
        )
        runner = Runner(
            progress=progress if options.progress else None,
            collectors=opened,
            collectors_skipped=collectors_skipped,
            collectors_requested=matrix.collectors,
            energy=energy,
        )
        for current, slot in enumerate(slots, 1):  # progress() reads current
            cell = cells[slot.cell]
            emit(
                CellStarted(
                    current,
                    len(slots),
                    cell,
                    repetition=slot.index if repeated else None,
                    repeat=matrix.repeat,
                )
            )
            if fresh:
                assert matrix.request is not None
                job = ChildJob(matrix.request, slot.cell, url)
                outcome = run_in_fresh_process(job, cell)
            elif matrix.link is not None:
                outcome = run_shaped(cell, matrix.link, runner.run)
            else:
                outcome = runner.run(cell)
            repetition = (
                Repetition(
                    group=groups[slot.cell],
                    index=slot.index,
                    count=matrix.repeat,
                    series=series,
                    position=current,
                    order=matrix.order,
                    seed=matrix.order_seed if matrix.order is InterleaveOrder.SHUFFLE else None,
                    fresh_process=fresh,
                )
                if repeated
                else None
            )
            done = _write(cell, outcome, options.out, len(written), matrix, repetition)
            written.append(done)
            emit(CellFinished(current, len(slots), done))
            if done.report.status is RunStatus.FAILED:
                status = ExitStatus.FAILED
            if done.report.status is RunStatus.INTERRUPTED:
                status = ExitStatus.INTERRUPTED
                break
    return ExecutionResult(written=tuple(written), skipped=skipped, status=status)


def _ignore(event: Event) -> None:
    pass


def _checked(
    cells: tuple[RunSpec, ...], emit: EventCallback
) -> tuple[dict[int, RunSpec], tuple[SkippedCell, ...]]:
    """The pre-run check: the cells to run by their index in the matrix (the first of each
    model keeps the check's load time) and the cells skipped, each announced as found."""
    checked = preflight(cells)
    timed = [
        dataclasses.replace(c, first_load_in_process_s=checked.first_load_s.get(i))
        for i, c in enumerate(cells)
    ]
    found = {i: SkippedCell(timed[i], exc.one_line()) for i, exc in checked.skipped.items()}
    for s in found.values():
        emit(CellSkipped(s))
    return {i: c for i, c in enumerate(timed) if i not in found}, tuple(
        found[i] for i in sorted(found)
    )


def _pointed_at(cell: RunSpec, url: str) -> RunSpec:
    """``cell`` aimed at the local stand-in at ``url`` when the stand-in serves it."""
    if not served_by_standin(cell):
        return cell
    return dataclasses.replace(cell, backend_options={**cell.backend_options, "endpoint": url})


def _write(
    cell: RunSpec,
    outcome: RunOutcome,
    out: Path,
    before: int,
    matrix: Matrix,
    repetition: Repetition | None = None,
) -> WrittenReport:
    """Write ``outcome``'s report (with its place in a repetition group) and samples
    atomically; a failure keeps the earlier ones."""
    report = outcome.report
    standin = matrix.standin_models is not None or matrix.standin_url is not None
    if standin and served_by_standin(cell):
        report = report.model_copy(update={"flags": (*report.flags, RunFlag.LOCAL_STANDIN)})
    if matrix.split is not None and cell.backend == SPLIT_BACKEND:
        report = report.model_copy(update={"split": matrix.split})
    if repetition is not None:
        # one of a group: the group's between-run spread judges it (README: "Repeated runs"),
        # not the scatter of a short run's own windows; its stability and drift stay recorded
        flags = tuple(f for f in report.flags if f not in WITHIN_RUN_FLAGS)
        report = report.model_copy(update={"repetition": repetition, "flags": flags})
    samples = None
    if outcome.samples is not None:
        samples = {
            "latency_ns": outcome.samples.latency_ns,
            "end_ns": outcome.samples.end_ns,
            **outcome.samples.extra,
        }
    try:
        path = report_io.write_report(report, out, samples)
    except OSError as exc:
        raise OutputDirError(
            f"cannot write the report of {cell_label(cell)} to {out}: {exc.strerror or exc}",
            f"free space or choose another directory with --out; the {before} report(s) "
            "written before are kept",
        ) from None
    sidecar = path.with_suffix(".samples.npz") if samples else None
    return WrittenReport(cell=cell, report=report, path=path, samples_path=sidecar)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does) inside the block, on the main thread;
    both go through the harness's handler, which notes that an interrupt fired (see
    ``harness.interrupts``). A SIGINT that the process ignores stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_term = signal.signal(signal.SIGTERM, raise_interrupt)
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:
        signal.signal(signal.SIGINT, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
