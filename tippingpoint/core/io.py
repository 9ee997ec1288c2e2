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

from tippingpoint.core.errors import OutputDirError, ReportError
from tippingpoint.core.schema import RawSamples, Report

SAMPLE_ARRAYS = {
    "latency_ns": "ns",
    "end_ns": "ns since the start of the measured window",
    # a hybrid run (issue 16): every request of the measured part, failures included, in send
    # order (so these arrays may be longer than latency_ns, which holds the successes)
    "hybrid_route": "local, cloud or cache per request ('' when none was recorded)",
    "hybrid_reason": "the routing policy's reason per request",
    "hybrid_fallback": "true when a failed cloud request was answered locally",
    "hybrid_policy_ns": "ns the router spent deciding per request",
    "hybrid_latency_ns": "ns end to end per request (from scheduled send in open loop)",
    "hybrid_error": "failure kind per request ('' for a success)",
    # a generative run (issue 18): every request of the measured part in schedule order,
    # failures included; its chunks flattened (request i: offsets[i]:offsets[i + 1])
    "gen_scheduled_ns": "ns since the window start: when each request was due",
    "gen_start_ns": "ns since the window start: when each request was sent",
    "gen_end_ns": "ns since the window start: when each stream ended",
    "gen_output_tokens": "output tokens per request (server's, else client's; -1 unknown)",
    "gen_output_tokens_server": "usage.completion_tokens per request (-1: not reported)",
    "gen_output_tokens_client": "the client's count per request (-1: not counted)",
    "gen_prompt_tokens": "prompt tokens per request (-1: unknown)",
    "gen_error": "failure kind per request ('' for a success)",
    "gen_chunk_ns": "ns since the window start: each chunk's arrival",
    "gen_chunk_tokens": "tokens each chunk carried (0: unknown)",
    "gen_chunk_offsets": "request i's chunks are [offsets[i], offsets[i + 1])",
}

READERS: dict[int, Callable[[dict[str, Any]], Report]] = {
    1: Report.model_validate,
}
"""One reader per supported schema version; add the previous one here when bumping."""

UNDIGESTED_VERSIONS: frozenset[int] = frozenset()
"""Schema versions written before reports carried a ``digest``; only these may lack one.

Every version so far (1, see tests/fixtures/report_v1.json) has one, so a report without a
digest has had it removed and is refused.
"""


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


def check_output_dir(out_dir: Path) -> None:
    """Check, without creating anything, that ``out_dir`` is (or can be made) a writable
    directory: an ``OutputDirError`` before a run starts, and nothing left behind by a run
    refused later for bad input."""
    target = out_dir.absolute()
    existing = next((p for p in (target, *target.parents) if p.exists()), None)
    problem = None
    if existing is None:
        problem = "no parent directory exists"
    elif not existing.is_dir():
        problem = "is a file" if existing == target else f"{existing} is not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = "permission denied" if existing == target else f"{existing} is not writable"
    if problem is not None:
        raise OutputDirError(
            f"cannot write to output directory {out_dir}: {problem}",
            "choose a writable directory with --out",
        )


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
        # allow_pickle is numpy's default, named so that the type checker reads **samples as arrays
        np.savez(buf, allow_pickle=True, **samples)
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
    except RecursionError:
        raise too_deep(source, "a report written by 'tippingpoint run'") from None
    if is_cost_data(data):
        raise ReportError(
            f"{source} is a cost result of 'tippingpoint cost', not a run report",
            "pass it with --cost, and the run reports (or their directory) as arguments",
        )
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
    if report.digest is None and version not in UNDIGESTED_VERSIONS:
        raise ReportError(
            f"{source} has no digest, so it cannot be checked for changes",
            "use the original file written by 'tippingpoint run', or re-run the benchmark",
        )
    if report.digest is not None and report.digest != digest_of_data(data):
        raise ReportError(
            f"{source} was modified after it was written (digest mismatch)",
            "use the original file, or re-run the benchmark",
        )
    return report


def too_deep(source: str, expected: str) -> ReportError:
    """The error of a JSON document nested deeper than the parser recurses (no report is)."""
    return ReportError(
        f"{source} is JSON nested too deeply to be read (no tippingpoint file is)",
        f"pass {expected}",
    )


def read_report(path: Path) -> Report:
    """Read and validate one report file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReportError(
            f"cannot read report {path}: {exc.strerror or exc}", "check the path"
        ) from None
    return parse_report(text, str(path))


class MissingSamplesError(ReportError):
    """A report names a raw-samples sidecar that is not beside it."""


def _sidecar_bytes(report: Report, report_path: Path) -> tuple[Path, bytes]:
    """The sidecar's path and bytes, its sha256 checked against the report's."""
    if report.results is None or report.results.raw is None:
        raise ReportError(f"{report_path} has no raw samples", "re-run to record them")
    raw = report.results.raw
    sidecar = report_path.parent / raw.path
    try:
        data = sidecar.read_bytes()
    except OSError:
        raise MissingSamplesError(
            f"raw samples {sidecar} are missing", "keep the .samples.npz file beside the report"
        ) from None
    if hashlib.sha256(data).hexdigest() != raw.sha256:
        raise ReportError(
            f"raw samples {sidecar} do not match the report's sha256", "restore the original file"
        )
    return sidecar, data


def verify_samples(report: Report, report_path: Path) -> bool:
    """Check the raw-samples sidecar's sha256; False when the report records no samples.

    Raises ``MissingSamplesError`` when the sidecar is missing and ``ReportError`` when its
    bytes do not match the sha256 in the report.
    """
    if report.results is None or report.results.raw is None:
        return False
    _sidecar_bytes(report, report_path)
    return True


def load_samples(report: Report, report_path: Path) -> dict[str, np.ndarray]:
    """Load a report's raw samples, checking the sidecar's sha256."""
    _, data = _sidecar_bytes(report, report_path)
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


def is_cost_data(data: object) -> bool:
    """Whether parsed JSON is a cost result of ``tippingpoint cost`` rather than a run report."""
    return isinstance(data, dict) and "analyses" in data and "recommendation" in data


def is_cost_result(path: Path) -> bool:
    """Whether a JSON file is a cost result (one may sit beside the reports it came from).

    An unreadable or invalid file is not: reading it as a report gives the clear error.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return is_cost_data(data)


def _json_in(folder: Path) -> list[Path]:
    return sorted(q for q in folder.glob("*.json") if not q.name.startswith("."))


def report_files(paths: list[Path]) -> list[Path]:
    """Expand directories into the report JSON files they hold, sorted.

    Cost results (``tippingpoint cost --out DIR/cost.json``) found in a directory are not run
    reports and are left out; a file named explicitly is kept, so reading it gives the error.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(q for q in _json_in(p) if not is_cost_result(q))
        else:
            out.append(p)
    return out


def cost_result_files(paths: list[Path]) -> list[Path]:
    """The cost results held by the directories among ``paths``, sorted."""
    return [q for p in paths if p.is_dir() for q in _json_in(p) if is_cost_result(q)]
