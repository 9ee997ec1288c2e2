"""``tippingpoint cost``: reports plus profiles in, cost per million, TCO, tipping point out."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def cost(
    reports: list[Path] = typer.Option(
        [], "--reports", "-r", help="Report JSON files or folders (a shell glob may follow)."
    ),
    more_reports: list[Path] = typer.Argument(
        None, help="More report paths: what a glob after --reports expands to.", show_default=False
    ),
    device: str = typer.Option(..., "--device", "-d", help="Device profile, e.g. rpi5."),
    cloud: list[str] = typer.Option(
        [], "--cloud", "-c", help="Cloud profile, e.g. gpu-t4-ondemand (repeatable)."
    ),
    network: str = typer.Option("wan", "--network", "-n", help="Network profile, e.g. lte."),
    energy: str = typer.Option("us-average", "--energy", "-e", help="Electricity profile."),
    workload: str = typer.Option(
        ..., "--workload", "-w", help="Workload TOML file, or a built-in workload name."
    ),
    profiles: list[Path] = typer.Option(
        [], "--profiles", "-p", help="Profile TOML file or folder; overrides by name (repeatable)."
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model, if reports hold several."),
    variant: str | None = typer.Option(
        None,
        "--variant",
        help="Model variant to cost (default: fp32 when measured, else the only one).",
    ),
    draws: int = typer.Option(100_000, help="Monte Carlo draws (0 to skip)."),
    seed: int = typer.Option(0, help="Monte Carlo seed."),
    brief: bool = typer.Option(False, "--brief", help="Leave out cost lines and inputs tables."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON result instead of tables."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the JSON result here."),
) -> int:
    """Cost of the edge device against cloud placements, from measured reports and profiles."""
    from datetime import date

    from rich.console import Console

    from tippingpoint import __version__
    from tippingpoint.calculator.compute import calculate
    from tippingpoint.calculator.inputs import Profiles
    from tippingpoint.calculator.table import cost_tables
    from tippingpoint.core.errors import CostInputError, InvalidOptionError
    from tippingpoint.core.io import (
        atomic_write_bytes,
        is_cost_result,
        read_report,
        report_files,
    )
    from tippingpoint.profiles.loader import load_catalog, load_workload, user_dir

    if draws < 0:
        raise InvalidOptionError(f"--draws {draws} is negative", "give 0 or more draws")
    if not cloud:
        raise CostInputError(
            "no cloud profile given", "name one with --cloud, e.g. gpu-t4-ondemand"
        )
    paths = [p for p in report_files([*reports, *(more_reports or [])]) if not is_cost_result(p)]
    if not paths:
        raise CostInputError(
            "no reports given", "pass the device's (and endpoint's) reports with --reports"
        )
    extra = ([user_dir()] if user_dir().is_dir() else []) + list(profiles)
    catalog = load_catalog(extra)
    chosen = Profiles(
        device=catalog.device(device),
        network=catalog.network(network),
        energy=catalog.energy(energy),
        workload=load_workload(workload, catalog),
    )
    clouds = [catalog.cloud(name) for name in cloud]
    loaded = [read_report(p) for p in paths]
    result = calculate(
        loaded,
        profiles=chosen,
        clouds=clouds,
        today=date.today(),
        tool_version=__version__,
        model=model,
        variant=variant,
        draws=draws,
        seed=seed,
    )
    text = result.model_dump_json(indent=2) + "\n"
    if out is not None:
        from tippingpoint.core.errors import OutputDirError

        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out, text.encode())
        except OSError as exc:
            raise OutputDirError(
                f"cannot write {out}: {exc.strerror or exc}", "choose a writable --out path"
            ) from None
    if as_json:
        sys.stdout.write(text)
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(cost_tables(result, details=not brief))
        if out is not None:
            console.print(f"wrote {out}")
    return 0
