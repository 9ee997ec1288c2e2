"""The ``tippingpoint`` command line: a thin layer over harness, reports and calculator.

Exceptions map to exit codes in one place, :func:`main`: a ``TippingPointError`` prints one
line and exits with its ``exit_code`` (2 usage, 1 runtime); Ctrl-C exits 130. ``--debug``
shows tracebacks. Command modules import heavy packages only inside their functions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from tippingpoint.cli import campaign, collectors, compare, cost, info, report, run, serve

app = typer.Typer(
    name="tippingpoint",
    help="Benchmark on-device versus cloud AI inference, and find where it tips.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
) -> None:
    """Benchmark on-device versus cloud AI inference, and find where it tips."""


app.command("run")(run.run)
app.command("show")(info.show)
app.command("backends")(info.backends)
app.command("models")(info.models)
app.command("schema")(info.schema)
app.command("serve")(serve.serve)
app.command("compare")(compare.compare)
app.command("report")(report.report)
app.command("cost")(cost.cost)
app.command("collectors")(collectors.collectors)
app.add_typer(campaign.app, name="campaign")


def _debug_logging() -> Callable[[], None]:
    """``--debug``: tippingpoint's own debug log (a failed run's traceback, the server's
    unexpected errors) on stderr while the command runs; other libraries stay at their levels.
    Returns what undoes it."""
    import logging

    log = logging.getLogger("tippingpoint")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)

    def undo() -> None:
        log.removeHandler(handler)
        log.setLevel(level)

    return undo


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    from typer.exceptions import TyperException

    from tippingpoint.core.errors import TippingPointError

    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    undo = _debug_logging() if debug else None
    try:
        result = app(args=args, prog_name="tippingpoint", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except TippingPointError as exc:
        if debug:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        code = exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        code = 130
    except TyperException as exc:  # usage errors of the command line itself
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc.format_message()}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    finally:
        if undo is not None:
            undo()
    if argv is None:
        sys.exit(code)
    return code
