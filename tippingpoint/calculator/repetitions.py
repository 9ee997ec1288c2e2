"""Measured inputs from a group of repeated runs (``run --repeat``): one measurement, N values.

A figure measured once is a point; measured by N interleaved runs it is the geometric mean of
the runs with the Student t interval of that mean (on the log scale, as the comparison's
intervals are, so a rate's or an energy's range stays positive and a slow run weighs as much as
a fast one), which is the uncertainty the cost model should carry:
the tornado swings the input across the interval and the Monte Carlo draws within it, labelled
measured. :func:`group_input` gives that for any run-level figure of a report's group;
:func:`one_per_group` and :func:`group_value` let a caller choose among configurations by their
groups' means rather than by their luckiest repetition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tippingpoint.core.runstats import (
    RunFigure,
    between_run_cv,
    group_runs,
    mean_interval,
    run_figures,
)
from tippingpoint.core.schema import Report, RunStatus

GROUP_LEVEL = 0.95
"""The level of a group's interval as an input range (the calculator's ranges are central
estimates' plausible spans, not the compare verdicts' 99%)."""


@dataclass(frozen=True)
class GroupInput:
    """A figure of a group of repeated runs as a measured input: geometric mean and interval."""

    figure: RunFigure
    value: float
    low: float
    high: float
    runs: int
    """Complete runs that measured the figure."""
    count: int
    """Repetitions asked for."""
    cv: float | None

    @property
    def note(self) -> str:
        """Where the value and its range come from, for an input's origin."""
        cv = f", between-run CV {self.cv:.1%}" if self.cv is not None else ""
        return (
            f"geometric mean of {self.runs} repeated runs (of {self.count}){cv}; range: "
            f"its {GROUP_LEVEL:.0%} t interval"
        )


def group_members(reports: Sequence[Report], member: Report) -> list[Report]:
    """The complete runs of ``member``'s repetition group among ``reports`` (``[member]`` for
    a single run), in repetition order."""
    if member.repetition is None:
        return [member]
    rep = member.repetition
    found = {
        r.repetition.index: r
        for r in reports
        if r.repetition is not None
        and r.repetition.group == rep.group
        and r.status is RunStatus.COMPLETE
    }
    return [found[i] for i in sorted(found)] or [member]


def group_input(
    reports: Sequence[Report], member: Report, figure: RunFigure, *, level: float = GROUP_LEVEL
) -> GroupInput | None:
    """``figure`` of ``member``'s group as a measured input; None for a single run or a group
    with fewer than two complete runs that measured it."""
    values = [v for r in group_members(reports, member) if (v := run_figures(r).get(figure))]
    if len(values) < 2 or member.repetition is None:
        return None
    logs = mean_interval([math.log(v) for v in values], level=level)
    return GroupInput(
        figure=figure,
        value=math.exp(logs.mean),
        low=math.exp(logs.low),
        high=math.exp(logs.high),
        runs=len(values),
        count=member.repetition.count,
        cv=between_run_cv(values),
    )


def group_value(reports: Sequence[Report], member: Report, figure: RunFigure) -> float | None:
    """``figure`` of ``member``: its group's geometric mean when it is one of repeated runs,
    else its own value; None when not measured."""
    grouped = group_input(reports, member, figure)
    if grouped is not None:
        return grouped.value
    return run_figures(member).get(figure)


def one_per_group(reports: Sequence[Report]) -> list[Report]:
    """``reports`` with each repetition group stood for by its first complete run (single runs
    kept), in order: a choice among configurations sees each group once."""
    out: list[Report] = []
    for g in group_runs(reports):
        members = [reports[m] for m in g.members]
        out.append(next((r for r in members if r.status is RunStatus.COMPLETE), members[0]))
    return out
