"""What :func:`~tippingpoint.harness.execute.execute` tells its caller while a matrix runs.

Small frozen values handed to an ``on_event`` callback, in order; the caller renders them (a
progress bar and notes in the CLI, a progress view in a campaign). Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from tippingpoint.core.schema import Report
from tippingpoint.harness.runner import Progress, RunSpec


@dataclass(frozen=True)
class SkippedCell:
    """A cell the pre-run check found the model cannot run (a fixed batch), and why."""

    cell: RunSpec
    reason: str
    """One line: the problem and the fix."""


@dataclass(frozen=True)
class WrittenReport:
    """A finished run's report, as written, and where."""

    cell: RunSpec
    report: Report
    path: Path
    samples_path: Path | None
    """The raw samples sidecar; None when the run has no samples (it failed early)."""


@dataclass(frozen=True)
class CellSkipped:
    """A cell will not run (found before anything is measured)."""

    skipped: SkippedCell


@dataclass(frozen=True)
class CollectorSkipped:
    """A requested collector could not be opened on this machine; runs go on without it."""

    name: str
    reason: str


@dataclass(frozen=True)
class StandInStarted:
    """The local stand-in server is up at ``url`` (a loopback stand-in, not a cloud endpoint)."""

    url: str


@dataclass(frozen=True)
class CellStarted:
    """Run ``index`` of ``total`` (from 1) starts: a cell, or one repetition of it."""

    index: int
    total: int
    cell: RunSpec
    repetition: int | None = None
    """The repetition (from 1) when the cells repeat (``--repeat``); None: a single run."""
    repeat: int = 1
    """Repetitions of each cell."""


@dataclass(frozen=True)
class CellProgress:
    """A snapshot of the running cell (only when progress is asked for)."""

    index: int
    progress: Progress


@dataclass(frozen=True)
class CellFinished:
    """Cell ``index`` finished (complete, failed or interrupted) and its report is on disk."""

    index: int
    total: int
    written: WrittenReport


Event: TypeAlias = (
    CellSkipped | CollectorSkipped | StandInStarted | CellStarted | CellProgress | CellFinished
)
EventCallback: TypeAlias = Callable[[Event], None]
