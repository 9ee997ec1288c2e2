"""``tippingpoint campaign run|check|merge``: a plan across machines, and its checked tree.

``run`` runs a plan on a Ray cluster (or one device's cells here with ``--local``, no Ray),
showing cells per device as they go; ``check`` is the tree's submission checker; ``merge``
gathers trees copied from devices and checks the result. Exit codes: 0 done (or valid), 1
cells failed or lost (or problems found), 2 usage errors (the plan, a missing kind), 130
interrupted. Ray is imported only by ``run`` without ``--local``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from tippingpoint.campaign.check import CheckResult
    from tippingpoint.campaign.executor import CampaignEvent, CampaignResult
    from tippingpoint.campaign.plan import PlannedCell

app = typer.Typer(
    help="Run a plan's cells on the machines it names (Ray), and check or merge the tree.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("run")
def run(
    plan: Path = typer.Argument(..., help="The campaign plan (TOML)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="The campaign folder (default: campaigns/NAME)."
    ),
    address: str | None = typer.Option(
        None, help="Ray cluster address HOST:PORT (default: the plan's, else the local head)."
    ),
    wait: float = typer.Option(
        0.0, "--wait", min=0, help="Seconds to wait for nodes of every kind the plan needs."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the campaign in --out: run the cells not yet done."
    ),
    local: str | None = typer.Option(
        None,
        "--local",
        help="Run only this device's cells, here, without Ray (then 'campaign merge' the trees).",
    ),
    endpoint: list[str] = typer.Option(
        [], "--endpoint", help="NAME=URL: use this URL for the plan's endpoint NAME."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of tables."),
) -> int:
    """Run every cell of the plan on a node of its kind and file its report in one tree."""
    from rich.console import Console

    from tippingpoint.campaign.executor import CampaignOptions, run_campaign, run_local
    from tippingpoint.campaign.plan import load_plan
    from tippingpoint.core.errors import InvalidOptionError

    parsed = load_plan(plan)
    urls: dict[str, str] = {}
    for item in endpoint:
        name, sep, url = item.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise InvalidOptionError(
                f"invalid --endpoint '{item}'", "give NAME=URL, e.g. cloud=http://10.0.0.5:8000"
            )
        urls[name] = url
    folder = out if out is not None else Path("campaigns") / parsed.campaign.name
    options = CampaignOptions(
        out=folder, address=address, wait_s=wait, resume=resume, endpoints=urls
    )
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
    view = _CampaignView(console, live=not as_json and sys.stdout.isatty())
    try:
        if local is not None:
            result = run_local(parsed, local, options, on_event=view)
        else:
            result = run_campaign(parsed, options, on_event=view)
    finally:
        view.close()
    _summary(console, result, folder, view, as_json)
    codes = {"complete": 0, "incomplete": 1, "interrupted": 130}
    return codes[result.status.value]


@app.command("check")
def check(
    folder: Path = typer.Argument(..., help="A campaign folder."),
    require_complete: bool = typer.Option(
        False, "--require-complete", help="Also fail when any cell failed, was skipped or lost."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> int:
    """Check a campaign tree: every planned cell filed, reports verified, on the right device."""
    from rich.console import Console

    from tippingpoint.campaign.check import check_tree

    result = check_tree(folder)
    _print_check(Console(width=None if sys.stdout.isatty() else 160), result, as_json)
    if not result.ok:
        return 1
    return 1 if require_complete and not all(c.state == "complete" for c in result.cells) else 0


@app.command("merge")
def merge(
    folders: list[Path] = typer.Argument(..., help="Campaign trees of one plan."),
    out: Path = typer.Option(..., "--out", "-o", help="The merged campaign folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the check's findings as JSON."),
) -> int:
    """Merge campaign trees copied from devices (scp, a USB stick) into one, then check it."""
    from rich.console import Console

    from tippingpoint.campaign.check import check_tree, merge_trees

    merged = merge_trees(list(folders), out)
    console = Console(width=None if sys.stdout.isatty() else 160)
    if not as_json:
        console.print(
            f"merged {len(merged.copied)} cell(s) from {len(folders)} tree(s) into {out}/"
        )
    result = check_tree(out)
    _print_check(console, result, as_json)
    return 0 if result.ok else 1


def _print_check(console: Console, result: CheckResult, as_json: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": result.ok,
                    "cells": [
                        {"cell": c.cell_id, "state": c.state, "reason": c.reason}
                        for c in result.cells
                    ],
                    "problems": result.problems,
                    "notes": result.notes,
                },
                indent=2,
            )
        )
        return
    table = Table(title=f"campaign {result.root}")
    states = ("complete", "failed", "skipped", "lost", "missing")
    table.add_column("device")
    for s in states:
        table.add_column(s, justify="right")
    for dev, counts in result.counts().items():
        table.add_row(dev, *(str(counts.get(s, 0)) for s in states))
    console.print(table)
    for c in result.cells:
        if c.state not in ("complete", "missing"):
            line = f"{c.state}: {escape(c.cell_id)}: {escape(c.reason or '')}"
            console.print(line, soft_wrap=True)
    for note in result.notes:  # soft_wrap: one line each, whatever the width (grep, tests)
        console.print(f"[yellow]note[/yellow]: {escape(note)}", soft_wrap=True)
    for p in result.problems:
        console.print(f"[red]problem[/red]: {escape(p)}", soft_wrap=True)
    console.print(
        "[green]valid[/green]: every planned cell is filed and every report verifies"
        if result.ok
        else f"[red]invalid[/red]: {len(result.problems)} problem(s)"
    )


def _summary(
    console: Console, result: CampaignResult, folder: Path, view: _CampaignView, as_json: bool
) -> None:
    from rich.markup import escape

    if as_json:
        typer.echo(
            json.dumps(
                {
                    "status": result.status.value,
                    "folder": str(folder),
                    "filed": {
                        cid: {"state": r.state.value, "reason": r.reason, "node": r.node_id}
                        for cid, r in result.records.items()
                    },
                    "already_done": result.skipped_done,
                },
                indent=2,
            )
        )
        return
    console.print(view.table())
    for cid, r in result.records.items():
        if r.state.value != "complete":
            console.print(
                f"{r.state.value}: {escape(cid)}: {escape(r.reason or '')}", soft_wrap=True
            )
    console.print(
        f"{len(result.records)} cell(s) filed in {folder}/"
        + (f", {result.skipped_done} already done" if result.skipped_done else "")
        + f"; check it with 'tippingpoint campaign check {folder}'"
    )
    if result.status.value == "interrupted":
        console.print(
            "[yellow]interrupted[/yellow]: every cell filed is kept; --resume runs the rest"
        )


class _CampaignView:
    """Cells per device as the campaign goes: a live table on a terminal, else one line per
    event (the lines name the device, the cell and the node)."""

    def __init__(self, console: Console, live: bool) -> None:
        self.console = console
        self.use_live = live
        self._live: Live | None = None
        self.total: dict[str, int] = {}
        self.done: dict[str, dict[str, int]] = {}
        self.running: dict[str, set[str]] = {}
        self.kind: dict[str, str] = {}

    def __call__(self, event: CampaignEvent) -> None:
        from tippingpoint.campaign import executor as ex

        line: str | None = None
        if isinstance(event, ex.CampaignPlanned):
            for c in event.cells:
                self.total[c.device] = self.total.get(c.device, 0) + 1
                self.kind[c.device] = c.kind
                self.done.setdefault(c.device, {})
                self.running.setdefault(c.device, set())
                if c.cell_id in event.done:
                    self._count(c, "done before")
            line = f"planned {len(event.cells)} cell(s), {len(event.done)} already done"
        elif isinstance(event, ex.WaitingForNodes):
            line = f"waiting for nodes offering {', '.join(event.missing)} ({event.waited_s:.0f} s)"
        elif isinstance(event, ex.NodeChecked):
            line = f"checked  {event.device}  node {event.node_id[:12]} at {event.address}"
        elif isinstance(event, ex.EndpointStarted):
            where = f" on node {event.node_id[:12]}" if event.node_id else ""
            line = f"endpoint {event.name}  {event.url}{where}"
        elif isinstance(event, ex.CellSent):
            self.running[event.cell.device].add(event.cell.cell_id)
            line = (
                f"sent     {event.cell.device}  {_short(event.cell)}  node {event.node_id[:12]} "
                f"attempt {event.attempt}"
            )
        elif isinstance(event, ex.CellRequeued):
            self.running[event.cell.device].discard(event.cell.cell_id)
            line = f"requeued {event.cell.device}  {_short(event.cell)}  {event.reason}"
        elif isinstance(event, ex.CellFiled):
            self.running[event.cell.device].discard(event.cell.cell_id)
            r = event.record
            self._count(event.cell, r.state.value)
            took = f" ({r.exec_s:.1f} s)" if r.exec_s is not None else ""
            why = f": {r.reason}" if r.reason else ""
            node = f"  node {r.node_id[:12]}" if r.node_id else ""
            line = f"{r.state.value:<8} {event.cell.device}  {_short(event.cell)}{node}{took}{why}"
        self._show(line)

    def _count(self, cell: PlannedCell, state: str) -> None:
        d = self.done[cell.device]
        d[state] = d.get(state, 0) + 1

    def _show(self, line: str | None) -> None:
        from rich.markup import escape

        if not self.use_live:
            if line is not None:
                self.console.print(escape(line), highlight=False, soft_wrap=True)
                self.console.file.flush()  # a pipe (tee, a test) sees each line as it happens
            return
        if self._live is None:
            from rich.live import Live

            self._live = Live(self.table(), console=self.console, refresh_per_second=4)
            self._live.start()
        self._live.update(self.table())

    def table(self) -> Table:
        """Cells per device: done by state, running, and still to run."""
        from rich.table import Table

        states = ("complete", "failed", "skipped", "lost", "done before")
        table = Table(title="campaign")
        for col in ("device", "kind", *states, "running", "to run"):
            table.add_column(col, justify="left" if col in ("device", "kind") else "right")
        for dev, total in self.total.items():
            done = self.done.get(dev, {})
            running = len(self.running.get(dev, ()))
            left = total - sum(done.values()) - running
            table.add_row(
                dev,
                self.kind.get(dev, ""),
                *(str(done.get(s, 0)) for s in states),
                str(running),
                str(left),
            )
        return table

    def close(self) -> None:
        """Take the live table down."""
        if self._live is not None:
            self._live.stop()
            self._live = None


def _short(cell: PlannedCell) -> str:
    return cell.cell_id.split("/", 1)[1]
