"""The runs a presentation reads: a report with its file, declared schema version and label.

Shared by the comparison (:mod:`tippingpoint.reports.compare`), the figures and the decision
report; reading a run validates it through the report contract and computes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tippingpoint.core.errors import ReportError
from tippingpoint.core.io import MissingSamplesError, load_samples, too_deep
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import Report


@dataclass(frozen=True)
class LoadedRun:
    """A report with the path it was read from and the schema version its file declared."""

    path: Path
    report: Report
    schema_version: int


def declared_schema_version(path: Path) -> object:
    """The ``schema_version`` a report file declares, read before validating anything else."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"cannot read report {path}: {exc}", "pass a report JSON file") from None
    except RecursionError:
        raise too_deep(str(path), "a report JSON file") from None
    return data.get("schema_version") if isinstance(data, dict) else None


def loaded_run(path: Path, report: Report, declared: object) -> LoadedRun:
    """``report``, validated from ``path``, with the schema version its file ``declared``.

    A report that validated declared an integer version the reader knows; the declared one is
    kept rather than the model's (a reader may bring an older version up to the current model).
    """
    version = int(declared) if isinstance(declared, int) else report.schema_version
    return LoadedRun(path=path, report=report, schema_version=version)


def scenario_label(kind: ScenarioKind, batch: int, conc: int | None, rate: float | None) -> str:
    """``single-stream``, ``offline b8``, ``concurrency 4``, ``server 200/s``."""
    if kind is ScenarioKind.CONCURRENCY and conc is not None:
        return f"concurrency {conc}" + (f" b{batch}" if batch > 1 else "")
    if kind is ScenarioKind.SERVER and rate is not None:
        return f"server {rate:g}/s" + (f" b{batch}" if batch > 1 else "")
    return kind.value + (f" b{batch}" if kind is not ScenarioKind.SINGLE_STREAM else "")


def run_label(report: Report) -> str:
    """A short human label: model variant · backend/device · host · scenario."""
    b = report.backend
    where = f"{b.name}/{b.device.value}" if b else "unloaded"
    sc = report.scenario
    scenario = scenario_label(sc.kind, sc.batch_size, sc.concurrency, sc.target_rate_qps)
    return f"{report.model.name} {report.model.variant} · {where} · {scenario}"


@dataclass(frozen=True)
class RunData:
    """A loaded run and, when its sidecar is present and intact, its latencies in ms."""

    run: LoadedRun
    latency_ms: np.ndarray | None
    suffix: str = ""
    """Set to `` (run N)`` when another run would otherwise carry the same label."""

    @property
    def report(self) -> Report:
        """The run's report."""
        return self.run.report

    @property
    def label(self) -> str:
        """A short label of the run, unique among the runs of one report."""
        return run_label(self.run.report) + self.suffix


def load_run_data(runs: Sequence[LoadedRun]) -> list[RunData]:
    """Attach raw latencies (ms) to each run that has an intact samples sidecar."""
    out = []
    for r in runs:
        lat = None
        if r.report.results is not None and r.report.results.raw is not None:
            try:
                lat = np.asarray(load_samples(r.report, r.path)["latency_ns"], dtype=float) / 1e6
            except (MissingSamplesError, KeyError):  # no sidecar: the summary figures only
                lat = None
            # a sidecar that does not match its sha256 is an error (ReportError), not "missing"
        out.append(RunData(run=r, latency_ms=lat))
    labels = [run_label(r.report) for r in runs]
    return [
        RunData(d.run, d.latency_ms, f" (run {i})" if labels.count(labels[i - 1]) > 1 else "")
        for i, d in enumerate(out, 1)
    ]
