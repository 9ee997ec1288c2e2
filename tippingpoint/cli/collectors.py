"""``tippingpoint collectors``: which collectors can run on this machine, and why not."""

from __future__ import annotations

import json

import typer


def collectors(
    idle_watts: float | None = typer.Option(
        None, help="Device idle watts, so the estimate can be probed."
    ),
    peak_watts: float | None = typer.Option(
        None, help="Device peak watts, so the estimate can be probed."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List registered collectors, whether each can run here, and the fix when it cannot."""
    from tippingpoint.harness.collectors.options import CollectorOptions
    from tippingpoint.harness.collectors.registry import collector_names
    from tippingpoint.harness.collectors.selection import close_collectors, open_collectors

    options = CollectorOptions(idle_watts=idle_watts, peak_watts=peak_watts, background=False)
    opened, skipped = open_collectors(collector_names(), options)
    energy = {c.name for c in opened if c.is_energy}
    close_collectors(opened)
    rows = [
        {"name": c.name, "available": True, "energy": c.name in energy, "reason": None}
        for c in opened
    ] + [{"name": s.name, "available": False, "energy": None, "reason": s.reason} for s in skipped]
    rows.sort(key=lambda r: str(r["name"]))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="collectors on this machine")
    for col in ("collector", "available", "why not / fix"):
        table.add_column(col, overflow="fold")
    for r in rows:
        ok = "[green]yes[/green]" if r["available"] else "[red]no[/red]"
        table.add_row(str(r["name"]), ok, str(r["reason"] or ""))
    Console().print(table)
