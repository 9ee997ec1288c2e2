"""``tippingpoint report``: one self-contained HTML file (or Markdown with PNGs) from results."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


class ReportFormat(str, Enum):
    """Output format of ``tippingpoint report``."""

    HTML = "html"
    MD = "md"


def report(
    results: list[Path] = typer.Argument(
        ..., help="Report JSON files, directories of them, or a campaign folder."
    ),
    cost: Path | None = typer.Option(
        None,
        "--cost",
        help="Cost result JSON from 'tippingpoint cost' (default: the one cost result in a "
        "results directory given, if there is exactly one).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output file, e.g. report.html."),
    fmt: ReportFormat = typer.Option(ReportFormat.HTML, "--format", help="html or md."),
) -> int:
    """Render a decision report: summary, environment, latency, energy, accuracy, cost."""
    from tippingpoint.core.errors import OutputDirError
    from tippingpoint.core.io import cost_result_files
    from tippingpoint.reports.render_report import write_report_file

    if out.is_dir():
        raise OutputDirError(
            f"--out {out} is a directory, not a file",
            f"name the file to write, e.g. --out {out / ('report.' + fmt.value)}",
        )
    if cost is None:
        found = cost_result_files(list(results))
        if len(found) == 1:
            cost = found[0]
            typer.echo(f"using cost result {cost} (pass --cost to choose another)", err=True)
        elif found:
            names = ", ".join(str(p) for p in found)
            typer.echo(
                f"note: several cost results ({names}); none used (choose one with --cost)",
                err=True,
            )
    from tippingpoint.cli.campaign_inputs import all_report_paths

    path = write_report_file(all_report_paths(list(results)), out, fmt.value, cost)
    typer.echo(f"report written to {path}")
    return 0
