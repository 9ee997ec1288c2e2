"""The comparison of runs: align them by model, scenario and batch, set figures side by side.

One concept, the comparison and its result: the refusals, the alignment into groups, each
group's baseline, the ratios to it, the latency verdicts (see
:mod:`tippingpoint.reports.significance`), the accuracy check against fp32 (quantized variants
below 99% of the fp32 accuracy are flagged) and the placements of ``--cost`` results side by
side. Reading runs and their labels is :mod:`tippingpoint.reports.runs`; reading a cost result
is :mod:`tippingpoint.reports.cost_result`; rendering is :mod:`tippingpoint.reports.compare_table`.

Runs of different models, or different files under one model name, are refused unless forced;
runs of different schema versions are always refused (``--force`` does not cover them: convert
the older reports with their version's reader first). Every refusal says why. The result is a
typed :class:`ComparisonResult`; nothing here prints.

Within a group the baseline is the first fp32 run given when the group mixes variants,
otherwise the first run given; every ratio is ``run / baseline``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path

import numpy as np
from pydantic import Field

from tippingpoint.core.errors import ReportError
from tippingpoint.core.io import load_samples, parse_report
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import MeasurementMethod, Report, RunFlag, RunStatus
from tippingpoint.core.types import Frozen
from tippingpoint.reports.cost_result import read_cost_result
from tippingpoint.reports.runs import LoadedRun, declared_schema_version, loaded_run, run_label
from tippingpoint.reports.significance import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_EFFECT,
    Significance,
    SignificanceMethod,
    Verdict,
    compare_intervals,
    compare_samples,
)

ACCURACY_FLOOR = 0.99
REFERENCE_VARIANT = "fp32"


class ComparisonRefused(ReportError):
    """The runs cannot be compared as given (different schema versions or models)."""


class Metric(str, Enum):
    """A figure compared side by side."""

    P50 = "p50"
    P90 = "p90"
    P99 = "p99"
    P999 = "p99.9"
    THROUGHPUT = "throughput"
    JOULES = "joules/inference"
    ACCURACY = "accuracy"


class Better(str, Enum):
    """Which direction of a metric is an improvement."""

    LOWER = "lower"
    HIGHER = "higher"


METRIC_UNITS: dict[Metric, tuple[str, Better]] = {
    Metric.P50: ("ms", Better.LOWER),
    Metric.P90: ("ms", Better.LOWER),
    Metric.P99: ("ms", Better.LOWER),
    Metric.P999: ("ms", Better.LOWER),
    Metric.THROUGHPUT: ("samples/s", Better.HIGHER),
    Metric.JOULES: ("J", Better.LOWER),
    Metric.ACCURACY: ("", Better.HIGHER),
}


class RunRef(Frozen):
    """One compared run, identified for people and machines."""

    index: int
    path: str
    label: str
    model: str
    variant: str
    model_format: str
    backend: str | None
    device: str | None
    host: str = Field(description="cpu model and hostname hash")
    scenario: ScenarioKind
    batch_size: int
    schema_version: int
    status: RunStatus
    flags: tuple[RunFlag, ...] = ()


class MetricValue(Frozen):
    """One metric of a run next to the baseline's, with the ratio run / baseline."""

    metric: Metric
    unit: str
    better: Better
    baseline: float | None
    value: float | None
    ratio: float | None
    estimated: bool = Field(default=False, description="True for estimated energy")


class AccuracyCheck(Frozen):
    """Accuracy of a variant relative to the fp32 reference, against the 99% floor."""

    metric: str
    value: float
    reference_value: float | None
    relative: float | None
    floor: float = ACCURACY_FLOOR
    below_floor: bool
    source: str = Field(description="'report' or the path of the fp32 run used as reference")


class RunComparison(Frozen):
    """A run of a group set against the group's baseline."""

    run: int = Field(description="index into ComparisonResult.runs")
    is_baseline: bool
    metrics: tuple[MetricValue, ...]
    latency: Significance | None = Field(default=None, description="None for the baseline")
    accuracy: AccuracyCheck | None = None


class ComparisonGroup(Frozen):
    """Runs sharing model (unless forced across models), scenario, batch, concurrency, rate."""

    model: str | None
    scenario: ScenarioKind
    batch_size: int
    concurrency: int | None = None
    target_rate_qps: float | None = None
    baseline: int
    rows: tuple[RunComparison, ...]


class CostRow(Frozen):
    """One placement of a cost result, with ratios to the first placement compared."""

    source: str = Field(description="the cost result file")
    placement: str
    feasible: bool
    cost_per_million: float = Field(description="USD per million inferences, year one")
    annual_cost: float = Field(description="USD, year one")
    tco: float = Field(description="USD over the horizon, undiscounted")
    pv: float = Field(description="USD over the horizon, discounted")
    ratio_cost_per_million: float | None = None
    ratio_pv: float | None = None


class ComparisonResult(Frozen):
    """Everything ``tippingpoint compare`` found, ready to render as a table or JSON."""

    runs: tuple[RunRef, ...]
    groups: tuple[ComparisonGroup, ...]
    unpaired: tuple[int, ...] = Field(default=(), description="runs with nothing to compare to")
    accuracy_flags: tuple[int, ...] = Field(
        default=(), description="runs below 99% of the fp32 accuracy"
    )
    forced: tuple[str, ...] = Field(default=(), description="refusals overridden by --force")
    costs: tuple[CostRow, ...] = Field(default=(), description="placements of --cost results")
    alpha: float = DEFAULT_ALPHA
    min_effect: float = DEFAULT_MIN_EFFECT


SCHEMA_VERSION_HINT = (
    "--force covers different models or files only, not schema versions: convert the older "
    "reports with this tippingpoint's reader for their version first, or re-run all of them "
    "with one tippingpoint version"
)


def check_schema_versions(versions: Sequence[tuple[Path, object]]) -> None:
    """Refuse mixed schema versions, forced or not: figures of two versions may not agree."""
    distinct = sorted({repr(v) for _, v in versions})
    if len(distinct) <= 1:
        return None
    by_version: dict[str, str] = {}
    for path, v in versions:
        by_version.setdefault(repr(v), path.name)
    detail = ", ".join(f"{name} has schema_version {v}" for v, name in sorted(by_version.items()))
    reason = f"reports of different schema versions are not comparable: {detail}"
    raise ComparisonRefused(reason, SCHEMA_VERSION_HINT)


def load_runs(paths: Sequence[Path]) -> list[LoadedRun]:
    """Read reports for comparison, checking their declared schema versions first."""
    versions = [(p, declared_schema_version(p)) for p in paths]
    check_schema_versions(versions)
    return [loaded_run(p, parse_report(p.read_text(), str(p)), v) for p, v in versions]


def check_model_files(runs: Sequence[LoadedRun], force: bool) -> list[str]:
    """Refuse one model name, variant and format coming from different files, unless forced."""
    files: dict[tuple[str, str, str], set[str]] = {}
    for r in runs:
        m = r.report.model
        files.setdefault((m.name, m.variant, m.format), set()).add(m.sha256)
    reasons = [
        f"{name} {variant} {fmt} comes from different files "
        f"(sha256 {', '.join(sorted(s[:12] for s in shas))}), so these are different models"
        for (name, variant, fmt), shas in sorted(files.items())
        if len(shas) > 1
    ]
    if reasons and not force:
        raise ComparisonRefused(
            reasons[0], "pass reports of the same model file, or --force to compare anyway"
        )
    return reasons


GroupKey = tuple[str | None, ScenarioKind, int, int | None, float | None]
"""model (None across models), scenario, batch, concurrency, target rate."""


def align(runs: Sequence[LoadedRun], across_models: bool) -> dict[GroupKey, list[int]]:
    """Run indices keyed by model, scenario, batch, and the concurrency or rate of network runs.

    The model is left out of the key when aligning across models.
    """
    keyed: dict[GroupKey, list[int]] = {}
    for i, r in enumerate(runs):
        sc = r.report.scenario
        conc = sc.concurrency if sc.kind is ScenarioKind.CONCURRENCY else None
        rate = sc.target_rate_qps if sc.kind is ScenarioKind.SERVER else None
        model = None if across_models else r.report.model.name
        keyed.setdefault((model, sc.kind, sc.batch_size, conc, rate), []).append(i)
    return keyed


def _ref(i: int, run: LoadedRun) -> RunRef:
    r = run.report
    host = f"{r.host.cpu_model or r.host.machine} #{r.host.hostname_hash[:6]}"
    return RunRef(
        index=i,
        path=str(run.path),
        label=run_label(r),
        model=r.model.name,
        variant=r.model.variant,
        model_format=r.model.format,
        backend=r.backend.name if r.backend else None,
        device=r.backend.device.value if r.backend else None,
        host=host,
        scenario=r.scenario.kind,
        batch_size=r.scenario.batch_size,
        schema_version=run.schema_version,
        status=r.status,
        flags=r.flags,
    )


def _metric_values(report: Report) -> dict[Metric, tuple[float | None, bool]]:
    out: dict[Metric, tuple[float | None, bool]] = {m: (None, False) for m in Metric}
    res = report.results
    if res is not None:
        lat = res.latency
        out[Metric.P50] = (lat.p50, False)
        out[Metric.P90] = (lat.p90, False)
        out[Metric.P99] = (lat.p99, False)
        out[Metric.P999] = (lat.p999, False)
        out[Metric.THROUGHPUT] = (res.throughput.samples_per_s, False)
    e = report.collectors.energy
    if e is not None and e.valid and e.joules_per_inference is not None:
        out[Metric.JOULES] = (e.joules_per_inference, e.method is MeasurementMethod.ESTIMATED)
    if report.accuracy is not None:
        out[Metric.ACCURACY] = (report.accuracy.value, False)
    return out


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base


def accuracy_check(run: LoadedRun, runs: Sequence[LoadedRun]) -> AccuracyCheck | None:
    """Accuracy relative to fp32: from the report, or from an fp32 run of the same model given."""
    acc = run.report.accuracy
    if acc is None:
        return None
    if acc.relative_to_reference is not None:
        rel = acc.relative_to_reference
        return AccuracyCheck(
            metric=acc.metric,
            value=acc.value,
            reference_value=acc.reference_value,
            relative=rel,
            floor=acc.floor,
            below_floor=acc.below_floor or rel < acc.floor,
            source="report",
        )
    m = run.report.model
    if m.variant == REFERENCE_VARIANT:
        return None
    for other in runs:
        o = other.report
        if (
            o.model.name == m.name
            and o.model.variant == REFERENCE_VARIANT
            and o.accuracy is not None
            and o.accuracy.metric == acc.metric
            and o.accuracy.value != 0
        ):
            rel = acc.value / o.accuracy.value
            return AccuracyCheck(
                metric=acc.metric,
                value=acc.value,
                reference_value=o.accuracy.value,
                relative=rel,
                floor=ACCURACY_FLOOR,
                below_floor=rel < ACCURACY_FLOOR,
                source=str(other.path),
            )
    return AccuracyCheck(
        metric=acc.metric,
        value=acc.value,
        reference_value=None,
        relative=None,
        below_floor=acc.below_floor,
        source="report",
    )


def latency_significance(
    base: LoadedRun,
    run: LoadedRun,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
    seed: int = 0,
) -> Significance:
    """Verdict on ``run``'s latency against ``base``: raw samples when both have them."""
    a, b = base.report.results, run.report.results
    if a is None or b is None:
        return Significance(verdict=Verdict.UNKNOWN, method=SignificanceMethod.NONE)
    try:
        sa = load_samples(base.report, base.path)["latency_ns"]
        sb = load_samples(run.report, run.path)["latency_ns"]
    except (ReportError, KeyError):
        ca, cb = a.latency.ci.get("p50"), b.latency.ci.get("p50")
        return compare_intervals(
            a.latency.p50,
            (ca.low, ca.high) if ca else None,
            b.latency.p50,
            (cb.low, cb.high) if cb else None,
            n_a=a.latency.count,
            n_b=b.latency.count,
            min_effect=min_effect,
        )
    return compare_samples(
        np.asarray(sa), np.asarray(sb), alpha=alpha, min_effect=min_effect, seed=seed
    )


def _baseline(members: list[int], runs: Sequence[LoadedRun]) -> int:
    variants = {runs[i].report.model.variant for i in members}
    if len(variants) > 1:
        for i in members:
            if runs[i].report.model.variant == REFERENCE_VARIANT:
                return i
    return members[0]


def compare_runs(
    runs: Sequence[LoadedRun],
    *,
    force: bool = False,
    forced: Sequence[str] = (),
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> ComparisonResult:
    """Align runs into groups and compare each run with its group's baseline."""
    if len(runs) < 2:
        raise ComparisonRefused(
            f"comparison needs at least two reports, got {len(runs)}",
            "pass two or more report files, or a directory of them",
        )
    reasons = list(forced) + check_model_files(runs, force)
    keyed = align(runs, across_models=False)
    if all(len(m) < 2 for m in keyed.values()):
        names = sorted({r.report.model.name for r in runs})
        across = align(runs, across_models=True)
        if len(names) > 1 and any(len(m) > 1 for m in across.values()):
            reason = (
                f"the reports are of different models ({', '.join(names)}); "
                "runs are compared only within one model"
            )
            if not force:
                raise ComparisonRefused(
                    reason, "pass reports of the same model, or --force to compare across models"
                )
            reasons.append(reason)
            keyed = across
    groups: list[ComparisonGroup] = []
    unpaired: list[int] = []
    checks = {i: accuracy_check(r, runs) for i, r in enumerate(runs)}
    for (model, kind, batch, conc, rate), members in keyed.items():
        if len(members) < 2:
            unpaired.extend(members)
            continue
        base = _baseline(members, runs)
        base_values = _metric_values(runs[base].report)
        rows: list[RunComparison] = []
        for i in [base, *(m for m in members if m != base)]:
            values = _metric_values(runs[i].report)
            metrics = tuple(
                MetricValue(
                    metric=m,
                    unit=METRIC_UNITS[m][0],
                    better=METRIC_UNITS[m][1],
                    baseline=base_values[m][0],
                    value=values[m][0],
                    ratio=_ratio(values[m][0], base_values[m][0]),
                    estimated=values[m][1],
                )
                for m in Metric
            )
            sig = (
                None
                if i == base
                else latency_significance(runs[base], runs[i], alpha=alpha, min_effect=min_effect)
            )
            rows.append(
                RunComparison(
                    run=i, is_baseline=i == base, metrics=metrics, latency=sig, accuracy=checks[i]
                )
            )
        groups.append(
            ComparisonGroup(
                model=model,
                scenario=kind,
                batch_size=batch,
                concurrency=conc,
                target_rate_qps=rate,
                baseline=base,
                rows=tuple(rows),
            )
        )
    if not groups:
        raise ComparisonRefused(
            "no two reports share a model, scenario and batch size",
            "compare runs of the same model under the same scenario",
        )
    flags = tuple(i for i, c in checks.items() if c is not None and c.below_floor)
    return ComparisonResult(
        runs=tuple(_ref(i, r) for i, r in enumerate(runs)),
        groups=tuple(groups),
        unpaired=tuple(unpaired),
        accuracy_flags=flags,
        forced=tuple(reasons) if force else (),
        alpha=alpha,
        min_effect=min_effect,
    )


def cost_rows(cost_paths: Sequence[Path]) -> tuple[CostRow, ...]:
    """Every placement of the given cost results; ratios are to the first placement listed."""
    rows: list[CostRow] = []
    for path in cost_paths:
        cost = read_cost_result(path)
        for p in (cost.edge, *(q for a in cost.analyses for q in a.placements)):
            rows.append(
                CostRow(
                    source=path.name,
                    placement=p.label,
                    feasible=p.feasible,
                    cost_per_million=p.cost_per_million,
                    annual_cost=p.annual_cost,
                    tco=p.tco,
                    pv=p.pv,
                )
            )
    if not rows:
        return ()
    first = rows[0]
    return tuple(
        r.model_copy(
            update={
                "ratio_cost_per_million": _ratio(r.cost_per_million, first.cost_per_million),
                "ratio_pv": _ratio(r.pv, first.pv),
            }
        )
        for r in rows
    )


def compare_paths(
    paths: Sequence[Path], *, force: bool = False, cost_paths: Sequence[Path] = ()
) -> ComparisonResult:
    """Read the reports at ``paths`` (files, after expanding directories) and compare them.

    Placements of the cost results at ``cost_paths`` are set side by side as well.
    """
    skip = {p.resolve() for p in cost_paths}
    runs = load_runs([p for p in paths if p.resolve() not in skip])
    result = compare_runs(runs, force=force)
    if cost_paths:
        result = result.model_copy(update={"costs": cost_rows(cost_paths)})
    return result
