"""``tippingpoint compare``: runs side by side, with ratios and a significance verdict."""

from __future__ import annotations

from pathlib import Path

import typer


def compare(
    paths: list[Path] = typer.Argument(..., help="Report JSON files, or directories of them."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Compare despite different models, or different files under one model name. "
        "Does not cover different schema versions: convert older reports with their "
        "version's reader first.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    cost: list[Path] = typer.Option(
        [],
        "--cost",
        help="Cost result JSON of 'tippingpoint cost' to set side by side (repeatable).",
    ),
) -> int:
    """Compare runs of one model: percentiles, throughput, J/inference, accuracy, significance."""
    import sys

    from rich.console import Console
    from rich.markup import escape

    from tippingpoint.core.io import report_files
    from tippingpoint.reports.compare import compare_paths
    from tippingpoint.reports.compare_table import comparison_tables

    files = report_files(list(paths))
    _check_sidecars(files)
    result = compare_paths(files, force=force, cost_paths=list(cost))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return 0
    console = Console(width=None if sys.stdout.isatty() else 160)
    for reason in result.forced:
        console.print(f"[yellow]forced[/yellow]: {escape(reason)}")
    for table in comparison_tables(result):
        console.print(table)
    for i in result.accuracy_flags:
        console.print(
            f"[red]accuracy[/red]: {escape(result.runs[i].label)} is below 99% of fp32 accuracy"
        )
    if result.unpaired:
        names = "; ".join(result.runs[i].label for i in result.unpaired)
        console.print(
            f"[dim]not compared (no run shares model, scenario and batch): {escape(names)}[/dim]"
        )
    single = [
        r
        for g in result.groups
        for r in g.rows
        if r.latency is not None and r.latency.verdict.value == "single-runs"
    ]
    if single:
        console.print(
            "[yellow]single runs[/yellow]: significance cannot be judged from one run a side "
            "(queries inside a run are not independent draws of a shared machine's state); the "
            "within-run figures are shown as they are. Repeat each cell, e.g. "
            "'tippingpoint run ... --repeat 5', and compare the groups."
        )
    console.print(
        f"[dim]verdicts come from the spread between repeated runs: a {1 - result.alpha:.0%} "
        "t interval of the ratio of the runs' medians (paired when the groups were "
        f"interleaved) excluding 1, and a change of at least {result.min_effect:.0%}; "
        f"cv: between-run coefficient of variation, flagged above {result.cv_threshold:.0%}"
        "[/dim]"
    )
    return 0


def _check_sidecars(files: list[Path]) -> None:
    """A samples sidecar that does not match its report's sha256 is an error (exit 2), as in
    ``show``; a missing one is a warning on stderr (the comparison does not need it)."""
    from tippingpoint.core.errors import ReportError
    from tippingpoint.core.io import MissingSamplesError, read_report, verify_samples

    for path in files:
        try:
            report = read_report(path)
        except ReportError:  # an unreadable report: the comparison names it
            continue
        try:
            verify_samples(report, path)
        except MissingSamplesError as exc:
            typer.echo(f"warning: {exc.one_line()}", err=True)
