"""Reading and writing reports: atomic writes, sidecar samples, versioned, tamper-evident reads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from tippingpoint.errors import OutputDirError, ReportError
from tippingpoint.reports.schema import RawSamples, Report

SAMPLE_ARRAYS = {"latency_ns": "ns", "end_ns": "ns since the start of the measured window"}

READERS: dict[int, Callable[[dict[str, Any]], Report]] = {
    1: Report.model_validate,
}
"""One reader per supported schema version; add the previous one here when bumping."""


def canonical_digest(model: BaseModel) -> str:
    """sha256 of the canonical JSON of ``model`` without its ``digest`` field."""
    return digest_of_data(model.model_dump(mode="json"))


def digest_of_data(data: dict[str, Any]) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces) of ``data`` without ``digest``.

    Computed on the document as written, not on a re-validated model: a reader that knows
    newer optional fields must still accept older files unchanged.
    """
    body = {k: v for k, v in data.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_output_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` if needed and check it is writable."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probe.", delete=True)
        probe.close()
    except OSError as exc:
        raise OutputDirError(
            f"cannot write to output directory {out_dir}: {exc.strerror or exc}",
            "choose a writable directory with --out",
        ) from None
    return out_dir


def report_stem(report: Report) -> str:
    """A sortable, descriptive file stem for a report."""
    ts = report.started_at.strftime("%Y%m%dT%H%M%SZ")
    sc = report.scenario
    batch = f"-b{sc.batch_size}" if sc.kind.value != "single-stream" else ""
    backend = report.backend.name if report.backend else "unloaded"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in report.model.name)
    return (
        f"{ts}_{safe}-{report.model.variant}_{backend}_{sc.kind.value}{batch}_{report.run_id[:8]}"
    )


def write_report(
    report: Report, out_dir: Path, samples: dict[str, np.ndarray] | None = None
) -> Path:
    """Write the samples sidecar (if any), then the report, each atomically; return the path."""
    stem = report_stem(report)
    if samples:
        sidecar = out_dir / f"{stem}.samples.npz"
        buf = io.BytesIO()
        np.savez(buf, **samples)
        data = buf.getvalue()
        atomic_write_bytes(sidecar, data)
        count = len(next(iter(samples.values())))
        raw = RawSamples(
            path=sidecar.name,
            sha256=hashlib.sha256(data).hexdigest(),
            count=count,
            arrays={k: SAMPLE_ARRAYS.get(k, "") for k in samples},
        )
        if report.results is not None:
            report = report.model_copy(
                update={"results": report.results.model_copy(update={"raw": raw})}
            )
    report = report.model_copy(update={"digest": None})
    report = report.model_copy(update={"digest": canonical_digest(report)})
    path = out_dir / f"{stem}.json"
    atomic_write_bytes(path, (report.model_dump_json(indent=2) + "\n").encode())
    return path


def parse_report(text: str, source: str = "<report>") -> Report:
    """Validate report JSON text of any supported schema version."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno})",
            "pass a report written by 'tippingpoint run'",
        ) from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(
            f"{source} has no schema_version", "pass a report written by 'tippingpoint run'"
        )
    version = data["schema_version"]
    reader = READERS.get(version) if isinstance(version, int) else None
    if reader is None:
        supported = ", ".join(str(v) for v in sorted(READERS))
        raise ReportError(
            f"{source} has schema_version {version!r}; this tippingpoint reads {supported}",
            "upgrade tippingpoint to read newer reports",
        )
    try:
        report = reader(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ReportError(
            f"{source} is not a valid report: '{where}': {err['msg']}", "regenerate it"
        ) from None
    if report.digest is not None and report.digest != digest_of_data(data):
        raise ReportError(
            f"{source} was modified after it was written (digest mismatch)",
            "use the original file, or re-run the benchmark",
        )
    return report


def read_report(path: Path) -> Report:
    """Read and validate one report file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReportError(
            f"cannot read report {path}: {exc.strerror or exc}", "check the path"
        ) from None
    return parse_report(text, str(path))


def load_samples(report: Report, report_path: Path) -> dict[str, np.ndarray]:
    """Load a report's raw samples, checking the sidecar's sha256."""
    if report.results is None or report.results.raw is None:
        raise ReportError(f"{report_path} has no raw samples", "re-run to record them")
    raw = report.results.raw
    sidecar = report_path.parent / raw.path
    try:
        data = sidecar.read_bytes()
    except OSError:
        raise ReportError(
            f"raw samples {sidecar} are missing", "keep the .samples.npz file beside the report"
        ) from None
    if hashlib.sha256(data).hexdigest() != raw.sha256:
        raise ReportError(
            f"raw samples {sidecar} do not match the report's sha256", "restore the original file"
        )
    with np.load(sidecar) as npz:
        return {k: npz[k] for k in npz.files}


def report_files(paths: list[Path]) -> list[Path]:
    """Expand directories into the report JSON files they hold, sorted."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(q for q in p.glob("*.json") if not q.name.startswith(".")))
        else:
            out.append(p)
    return out
