"""``tippingpoint cost``: reports plus profiles in, cost per million, TCO, tipping point out."""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from tippingpoint.calculator.inputs import Profiles
    from tippingpoint.calculator.tokens import TokenCostResult
    from tippingpoint.core.schema import Report
    from tippingpoint.profiles.schema import CloudProfile, WorkloadProfile

CURRENCY = re.compile(r"^[A-Z]{3}$")


def _workload(
    w: WorkloadProfile,
    horizon_months: int | None,
    discount_rate: float | None,
    volume: float | None,
) -> WorkloadProfile:
    """The workload with the command line's knobs applied (validated like a profile)."""
    from pydantic import ValidationError

    from tippingpoint.core.errors import InvalidOptionError
    from tippingpoint.profiles.schema import WorkloadProfile

    changes: dict[str, object] = {}
    if horizon_months is not None:
        changes["horizon_months"] = horizon_months
    if discount_rate is not None:
        changes["discount_rate"] = {"value": discount_rate}
    if volume is not None:
        changes["inferences_per_day"] = {"value": volume}
    if not changes:
        return w
    try:
        return WorkloadProfile.model_validate({**w.model_dump(), **changes})
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = {
            "horizon_months": "--horizon-months",
            "discount_rate": "--discount-rate",
            "inferences_per_day": "--volume",
        }.get(str(err["loc"][0]), "an option")
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InvalidOptionError(f"{flag}: {msg}", "give a value in range") from None


def _samples(reports: list[Report], paths: list[Path]) -> dict[str, NDArray[np.float64]]:
    """Raw latencies (ms) by run id, of the reports that keep them (others are skipped)."""
    from tippingpoint.core.errors import TippingPointError
    from tippingpoint.core.io import load_samples

    out: dict[str, NDArray[np.float64]] = {}
    for report, path in zip(reports, paths, strict=True):
        if report.results is None or report.results.raw is None:
            continue
        try:
            arrays = load_samples(report, path)
        except (TippingPointError, OSError, ValueError):
            continue  # the calculator then estimates from the percentiles, labelled so
        if "latency_ns" in arrays:
            out[report.run_id] = arrays["latency_ns"].astype(float) / 1e6
    return out


def _token_costs(
    loaded: list[Report],
    chosen: Profiles,
    clouds: list[CloudProfile],
    *,
    model: str | None,
    variant: str | None,
    tokens_per_day: float | None,
) -> TokenCostResult:
    """Generative reports: USD and J per million output tokens and the tipping point in tokens
    per day (:mod:`tippingpoint.calculator.tokens`). The edge run is the one generative report
    measured on a local backend, the cloud instance's capacity the one measured against an
    endpoint."""
    from tippingpoint.calculator.tokens import token_costs
    from tippingpoint.core.errors import CostInputError
    from tippingpoint.core.types import Device

    gen = [r for r in loaded if r.generation is not None]
    remote = [r for r in gen if r.backend is not None and r.backend.device is Device.REMOTE]
    edge = [
        r
        for r in gen
        if r not in remote
        and (model is None or r.model.name == model)
        and (variant is None or r.model.variant == variant)
    ]
    if len(edge) != 1:
        found = ", ".join(f"{r.model.name} {r.model.variant} {r.run_id[:8]}" for r in edge)
        raise CostInputError(
            f"{len(edge)} generative edge reports given ({found or 'none'}): the token "
            "calculator prices one",
            "pass one edge run (-b onnxruntime-genai), or pick it with --model and --variant",
        )
    if len(remote) > 1:
        raise CostInputError(
            f"{len(remote)} generative endpoint reports given: the instance's capacity comes "
            "from one",
            "pass one report measured with --endpoint openai+http://...",
        )
    report = edge[0]
    assert report.generation is not None
    per_request = report.generation.metrics.output_tokens / max(
        report.generation.metrics.succeeded, 1
    )
    if tokens_per_day is not None:
        volume, source = tokens_per_day, "--tokens-per-day"
    else:
        w = chosen.workload
        out_per = w.tokens_out_per_request.value if w.tokens_out_per_request else per_request
        volume = w.inferences_per_day.value * out_per
        source = (
            f"workload {w.name}: {w.inferences_per_day.value:,.0f} requests/day x "
            f"{out_per:,.1f} output tokens"
        )
    return token_costs(
        report,
        chosen.device,
        chosen.energy,
        clouds,
        output_tokens_per_day=volume,
        volume_source=source,
        cloud_report=remote[0] if remote else None,
    )


def _emit_tokens(result: TokenCostResult, *, as_json: bool, out: Path | None) -> None:
    """The token result as JSON (stdout, --out) or a table."""
    from rich.console import Console
    from rich.table import Table

    from tippingpoint.core.errors import OutputDirError
    from tippingpoint.core.io import atomic_write_bytes

    text = result.model_dump_json(indent=2) + "\n"
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out, text.encode())
        except OSError as exc:
            raise OutputDirError(
                f"cannot write {out}: {exc.strerror or exc}", "choose a writable --out"
            ) from None
    if as_json:
        sys.stdout.write(text)
        return
    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(
        title=f"Per million output tokens at {result.output_tokens_per_day:,.0f} tokens/day "
        f"({result.volume_source})"
    )
    for col in ("placement", "kind", "USD / M tokens", "J / M tokens", "units", "tipping point"):
        table.add_column(col)
    for p in result.placements:
        usd = p.usd_per_million_output_tokens
        joules = p.joules_per_million_output_tokens
        tip = p.tipping_tokens_per_day
        table.add_row(
            p.name,
            p.kind.value,
            f"{usd:,.4g}" if usd is not None else "-",
            f"{joules:,.4g}" + (" (est.)" if "estimated" in (p.energy_method or "") else "")
            if joules is not None
            else "-",
            str(p.units) if p.units is not None else "-",
            (f"edge from {tip:,.3g} tokens/day" if tip is not None else "edge never cheaper")
            if p.kind.value != "edge" and usd is not None
            else "-",
        )
    console.print(table)
    for p in result.placements:
        for note in p.notes:
            console.print(f"{p.name}: {note}")
    for note in result.notes:
        console.print(note)
    if out is not None:
        console.print(f"wrote {out}")


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
    horizon_months: int | None = typer.Option(
        None, "--horizon-months", help="Horizon in months (overrides the workload's years)."
    ),
    discount_rate: float | None = typer.Option(
        None, "--discount-rate", help="Yearly discount rate, e.g. 0.08 (overrides the workload)."
    ),
    volume: float | None = typer.Option(
        None, "--volume", help="Inferences per day (overrides the workload; assumed, ±50 %)."
    ),
    start: str | None = typer.Option(
        None, "--start", help="Month 0 of the cash flows, YYYY-MM-DD (default: today)."
    ),
    currency: str = typer.Option(
        "USD", "--currency", help="Currency of every amount (ISO code); needs --fx unless USD."
    ),
    fx: float | None = typer.Option(
        None, "--fx", help="Units of --currency per USD; recorded as an input."
    ),
    fx_source: str | None = typer.Option(
        None, "--fx-source", help="Where the --fx rate comes from (else it is assumed)."
    ),
    campaign_device: str | None = typer.Option(
        None,
        "--campaign-device",
        help="With a campaign folder in --reports: the device id to cost (its own runs and the "
        "endpoints measured from it).",
    ),
    proxy_host: bool = typer.Option(
        False,
        "--proxy-host",
        help="Cost edge reports measured on another machine as --device; every figure says so.",
    ),
    accept_flagged: bool = typer.Option(
        False,
        "--accept-flagged",
        help="Let flagged runs and failed SLO searches decide; every figure carries the flag.",
    ),
    tokens_per_day: float | None = typer.Option(
        None,
        "--tokens-per-day",
        help="Generative reports: output tokens per day to price (default: the workload's "
        "inferences per day x the edge run's output tokens per request).",
    ),
    draws: int = typer.Option(100_000, help="Monte Carlo draws (0 to skip)."),
    seed: int = typer.Option(0, help="Monte Carlo seed."),
    brief: bool = typer.Option(False, "--brief", help="Leave out cost lines and inputs tables."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON result instead of tables."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the JSON result here."),
    xlsx: Path | None = typer.Option(
        None, "--xlsx", help="Write the result as a workbook (needs openpyxl: the report extra)."
    ),
    csv_dir: Path | None = typer.Option(
        None, "--csv", help="Write the result's tables as CSV files into this folder."
    ),
) -> int:
    """Cost of the edge device against cloud placements, from measured reports and profiles."""
    from rich.console import Console

    from tippingpoint import __version__
    from tippingpoint.calculator.compute import calculate
    from tippingpoint.calculator.inputs import Profiles
    from tippingpoint.calculator.table import cost_tables
    from tippingpoint.core.errors import CostInputError, InvalidOptionError, OutputDirError
    from tippingpoint.core.io import (
        atomic_write_bytes,
        is_cost_result,
        read_report,
        report_files,
    )
    from tippingpoint.profiles.loader import load_catalog, load_workload, user_dir
    from tippingpoint.profiles.schema import Sourced

    if draws < 0:
        raise InvalidOptionError(f"--draws {draws} is negative", "give 0 or more draws")
    if not CURRENCY.match(currency):
        raise InvalidOptionError(
            f"--currency {currency!r} is not an ISO 4217 code", "give three capitals, e.g. EUR"
        )
    if fx is not None and not fx > 0:
        raise InvalidOptionError(f"--fx {fx:g} is not positive", f"give {currency} per USD")
    if currency != "USD" and fx is None:
        raise InvalidOptionError(
            f"--currency {currency} needs an exchange rate",
            f"give --fx RATE ({currency} per USD) and --fx-source where it comes from",
        )
    if currency == "USD" and fx is not None and fx != 1.0:
        raise InvalidOptionError(
            f"--fx {fx:g} without --currency", "name the currency the rate converts to"
        )
    begin = None
    if start is not None:
        try:
            begin = date.fromisoformat(start)
        except ValueError:
            raise InvalidOptionError(
                f"--start {start!r} is not a date", "give it as YYYY-MM-DD"
            ) from None
    if not cloud:
        raise CostInputError(
            "no cloud profile given", "name one with --cloud, e.g. gpu-t4-ondemand"
        )
    from tippingpoint.cli.campaign_inputs import device_report_paths

    given = device_report_paths([*reports, *(more_reports or [])], campaign_device)
    paths = [p for p in report_files(given) if not is_cost_result(p)]
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
        workload=_workload(load_workload(workload, catalog), horizon_months, discount_rate, volume),
    )
    clouds = [catalog.cloud(name) for name in cloud]
    loaded = [read_report(p) for p in paths]
    if any(r.generation is not None for r in loaded):
        result_tokens = _token_costs(
            loaded, chosen, clouds, model=model, variant=variant, tokens_per_day=tokens_per_day
        )
        _emit_tokens(result_tokens, as_json=as_json, out=out)
        return 0
    samples = _samples(loaded, paths) if chosen.workload.delay_cost_per_late_request else {}
    rate = None
    if fx is not None:
        rate = Sourced(value=fx, source=fx_source, as_of=date.today() if fx_source else None)
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
        start=begin,
        currency=currency,
        fx=rate,
        proxy_host=proxy_host,
        accept_flagged=accept_flagged,
        samples=samples,
    )
    text = result.model_dump_json(indent=2) + "\n"
    written: list[Path] = []
    try:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out, text.encode())
            written.append(out)
        if csv_dir is not None:
            from tippingpoint.calculator.export import write_csv

            written.append(csv_dir)
            write_csv(result, csv_dir)
        if xlsx is not None:
            try:
                from tippingpoint.calculator.export import write_xlsx

                write_xlsx(result, xlsx)
            except ImportError:
                raise InvalidOptionError(
                    "--xlsx needs openpyxl, which is not installed",
                    "pip install 'tippingpoint[report]' (or openpyxl), or use --csv DIR",
                ) from None
            written.append(xlsx)
    except OSError as exc:
        where = exc.filename or "the output"
        raise OutputDirError(
            f"cannot write {where}: {exc.strerror or exc}",
            "choose a writable --out, --csv or --xlsx path",
        ) from None
    if as_json:
        sys.stdout.write(text)
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)
        console.print(cost_tables(result, details=not brief))
        for path in written:
            console.print(f"wrote {path}")
    return 0
