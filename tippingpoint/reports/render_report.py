"""Read results (and a cost result), build the document, write it as HTML or Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tippingpoint.core.errors import ReportError
from tippingpoint.core.io import atomic_write_bytes, ensure_output_dir, read_report, report_files
from tippingpoint.reports.cost_result import read_cost_result
from tippingpoint.reports.document import Document, build_document
from tippingpoint.reports.runs import LoadedRun, declared_schema_version, load_run_data, loaded_run


def load_results(paths: Sequence[Path], exclude: Sequence[Path] = ()) -> list[LoadedRun]:
    """Every report under ``paths`` (directories expanded), validated; ``exclude`` is skipped.

    ``exclude`` holds the cost result, which may sit in the results directory.
    """
    skip = {p.resolve() for p in exclude}
    files = [f for f in report_files(list(paths)) if f.resolve() not in skip]
    if not files:
        raise ReportError(
            f"no report JSON files in {', '.join(str(p) for p in paths)}",
            "pass reports written by 'tippingpoint run', or their directory",
        )
    runs = []
    for f in files:
        report = read_report(f)
        runs.append(loaded_run(f, report, declared_schema_version(f)))
    return runs


def build_from_paths(paths: Sequence[Path], cost_path: Path | None = None) -> Document:
    """The report document for the results at ``paths`` and an optional cost result file."""
    runs = load_run_data(load_results(paths, [cost_path] if cost_path else []))
    cost = None
    if cost_path is not None:
        cost = read_cost_result(cost_path)
    return build_document(runs, cost)


def write_report_file(
    paths: Sequence[Path], out: Path, fmt: str = "html", cost_path: Path | None = None
) -> Path:
    """Write the report as ``fmt`` ('html' or 'md') to ``out``; return the path written."""
    doc = build_from_paths(paths, cost_path)
    ensure_output_dir(out.parent if str(out.parent) else Path("."))
    if fmt == "md":
        from tippingpoint.reports.markdown import write_markdown

        return write_markdown(doc, out)
    from tippingpoint.reports.html import render_html

    atomic_write_bytes(out, render_html(doc).encode())
    return out
