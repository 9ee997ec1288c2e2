"""Commands that inspect: show, backends, models, schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def show(
    reports: list[Path] = typer.Argument(..., help="Report JSON files or directories."),
    as_json: bool = typer.Option(False, "--json", help="Print the validated reports as JSON."),
) -> None:
    """Validate reports (digest and raw-samples sha256) and print their summary table.

    A samples sidecar that does not match its report's sha256 is an error; a missing one is a
    warning on stderr (the summary does not need it, compare's significance tests do).
    """
    from rich.console import Console

    from tippingpoint.core.io import (
        MissingSamplesError,
        read_report,
        report_files,
        verify_samples,
    )
    from tippingpoint.reports.table import summary_table

    files = report_files(reports)
    if not files:
        from tippingpoint.core.errors import ReportError

        raise ReportError(
            f"no report JSON files in {', '.join(str(r) for r in reports)}",
            "pass reports written by 'tippingpoint run', or their directory",
        )
    loaded = []
    for p in files:
        report = read_report(p)
        try:
            verify_samples(report, p)
        except MissingSamplesError as exc:
            typer.echo(f"warning: {exc.one_line()}", err=True)
        loaded.append(report)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in loaded], indent=2))
        return
    Console(width=None if sys.stdout.isatty() else 160).print(summary_table(loaded))


def backends(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List registered backends, whether their runtime is installed, and the install hint."""
    from tippingpoint.backends.registry import list_backends

    listings = list_backends()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"name": b.name, "target": b.target, "formats": list(b.formats)}
                    | b.availability.model_dump(mode="json")
                    for b in listings
                ],
                indent=2,
            )
        )
        return
    from rich.console import Console

    from tippingpoint.reports.table import backends_table

    Console().print(backends_table(listings))


def models(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the models of the suite and the built-in models."""
    from tippingpoint.models.registry import list_models

    refs = list_models()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "variant": m.variant,
                        "format": m.format,
                        "source": m.source.value,
                        "path": str(m.path),
                        "sha256": m.expected_sha256,
                        "parameters": m.parameters,
                        "macs": m.macs,
                    }
                    for m in refs
                ],
                indent=2,
            )
        )
        return
    from rich.console import Console

    from tippingpoint.reports.table import models_table

    Console().print(models_table(refs))


def schema() -> None:
    """Print the JSON Schema of the run report."""
    from tippingpoint.core.schema import Report

    typer.echo(json.dumps(Report.model_json_schema(), indent=2))
