"""One run in a process of its own (``run --fresh-process``), as pyperf runs its benchmarks.

A fresh session already reloads the model for each repetition; a fresh process also starts
the allocator, the runtime's thread pools, import-time state and address-space layout anew, so
repetitions sample those too. The child is started with the ``spawn`` method (nothing is
inherited from the parent but what is sent), expands the same
:class:`~tippingpoint.harness.matrix.RunRequest` again to rebuild its cell (a cell's accuracy
hook cannot be pickled), opens its own collectors, runs the cell and sends the outcome back
through a pipe. The parent writes the report, as for a run in its own process.

The child ignores SIGINT: an interrupt of the parent (Ctrl-C, or SIGTERM taken as one) is
passed on exactly once as SIGUSR1, which the child takes as Ctrl-C, so it ends its run as an
interrupted one and its partial report comes back (a terminal's Ctrl-C reaching both at once
could otherwise interrupt the child a second time while it writes that report). A child that
dies without answering gives a failed report that says how it ended.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection

from tippingpoint.core.schema import ErrorRecord, Report, RunStatus
from tippingpoint.harness.collectors.selection import close_collectors, open_collectors
from tippingpoint.harness.energy import EnergyAccounting, is_energy_collector
from tippingpoint.harness.fingerprint import host_fingerprint, tool_info
from tippingpoint.harness.interrupts import raise_interrupt
from tippingpoint.harness.matrix import RunRequest, expand, served_by_standin
from tippingpoint.harness.runner import Runner, RunOutcome, RunSpec
from tippingpoint.models.registry import unloaded_identity

INTERRUPT_GRACE_S = 30.0
"""How long an interrupted child may take to send its partial report before it is killed."""
POLL_S = 0.2
INTERRUPT_SIGNAL = signal.SIGUSR1
"""The signal the parent sends a child to interrupt its run (the child ignores SIGINT)."""


@dataclass(frozen=True)
class ChildJob:
    """What a child process needs to rebuild and run one cell."""

    request: RunRequest
    cell: int
    """The cell's index among the expanded request's cells."""
    standin_url: str | None = None
    """The local stand-in's URL, when the parent started one and it serves this cell."""


def _child_main(conn: Connection, job: ChildJob) -> None:
    """The child: expand, open collectors, run the one cell, send the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(INTERRUPT_SIGNAL, raise_interrupt)
    try:
        matrix = expand(job.request)
        cell = matrix.cells[job.cell]
        if job.standin_url is not None and served_by_standin(cell):
            options = {**cell.backend_options, "endpoint": job.standin_url}
            cell = dataclasses.replace(cell, backend_options=options)
        opened, skipped = open_collectors(matrix.collectors, matrix.collector_options)
        try:
            energy = (
                EnergyAccounting(opened, matrix.idle_s)
                if any(is_energy_collector(c) for c in opened)
                else None
            )
            runner = Runner(
                collectors=opened,
                collectors_skipped=skipped,
                collectors_requested=matrix.collectors,
                energy=energy,
            )
            outcome = runner.run(cell)
        finally:
            close_collectors(opened)
        signal.signal(INTERRUPT_SIGNAL, signal.SIG_IGN)  # the outcome is sent whole
        conn.send(outcome)
    except KeyboardInterrupt:  # before the run began: the parent reports it interrupted
        pass
    finally:
        conn.close()


def _lost(cell: RunSpec, status: RunStatus, message: str, started: datetime) -> RunOutcome:
    """The report of a run whose process ended without sending one."""
    errors = (ErrorRecord(phase="process", kind="ChildProcess", message=message),)
    report = Report(
        run_id=uuid.uuid4().hex,
        status=status,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        tool=tool_info(),
        host=host_fingerprint(),
        model=unloaded_identity(cell.model),
        scenario=cell.scenario,
        errors=errors if status is RunStatus.FAILED else (),
        warnings=() if status is RunStatus.FAILED else (message,),
    )
    return RunOutcome(report, None)


def _receive(
    conn: Connection, proc: multiprocessing.process.BaseProcess, deadline: float | None = None
) -> RunOutcome | None:
    """The child's outcome; None when it ended without sending one or ``deadline``
    (``time.monotonic``) passed."""
    while deadline is None or time.monotonic() < deadline:
        if conn.poll(POLL_S):
            try:
                outcome: RunOutcome = conn.recv()
            except EOFError:
                return None
            return outcome
        if not proc.is_alive() and not conn.poll(0):
            return None
    return None


def run_in_fresh_process(job: ChildJob, cell: RunSpec) -> RunOutcome:
    """Run ``job``'s cell (``cell`` is the parent's copy, for a report should the child die)
    in a spawned process and return its outcome. A KeyboardInterrupt here is passed on to the
    child, whose interrupted report is returned (the caller ends the series on it)."""
    started = datetime.now(timezone.utc)
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(sender, job), daemon=True)
    proc.start()
    sender.close()
    try:
        try:
            outcome = _receive(receiver, proc)
        except KeyboardInterrupt:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, INTERRUPT_SIGNAL)
            outcome = _receive(receiver, proc, time.monotonic() + INTERRUPT_GRACE_S)
            if outcome is None:
                return _lost(
                    cell, RunStatus.INTERRUPTED, "interrupted before the run began", started
                )
        if outcome is None:
            proc.join(5.0)
            return _lost(
                cell,
                RunStatus.FAILED,
                f"the run's process ended without a report (exit code {proc.exitcode})",
                started,
            )
        return outcome
    finally:
        receiver.close()
        proc.join(5.0)
        if proc.is_alive():
            proc.kill()
            proc.join()
