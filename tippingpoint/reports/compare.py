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

Repeated runs (``run --repeat``) of one cell are one side of a comparison: one measurement
with N values. Its figures are the geometric means of its runs' figures, each with the
between-run coefficient of variation; the verdict against the baseline comes from the spread
between runs (:func:`~tippingpoint.reports.significance.compare_groups`), paired when the two
groups were interleaved in one series. A single run against a single run gets no verdict: the
within-run ratio is shown as it is. A group whose runs disagree (between-run CV of the median
or the throughput above 10%) is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from pydantic import Field

from tippingpoint.core.errors import ReportError
from tippingpoint.core.io import parse_report
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.runstats import (
    GROUP_CV_THRESHOLD,
    RunFigure,
    RunGroup,
    disagreeing,
    geometric_mean,
    group_runs,
    group_spread,
)
from tippingpoint.core.schema import MeasurementMethod, Report, RunFlag, RunStatus
from tippingpoint.core.types import Frozen
from tippingpoint.reports.cost_result import read_cost_result
from tippingpoint.reports.runs import LoadedRun, declared_schema_version, loaded_run, run_label
from tippingpoint.reports.significance import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_EFFECT,
    Significance,
    compare_groups,
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


class FigureSpreadOut(Frozen):
    """One figure over the runs of a repeated side: each run's value and their spread."""

    figure: RunFigure
    values: tuple[float, ...] = Field(description="one per complete run, in repetition order")
    repetitions: tuple[int, ...] = Field(description="the repetition index of each value")
    geometric_mean: float
    cv: float | None = Field(description="between-run coefficient of variation (sd / mean)")


class RunComparison(Frozen):
    """A run, or a group of repeated runs, set against the group's baseline."""

    run: int = Field(description="index into ComparisonResult.runs (a group's first run)")
    is_baseline: bool
    metrics: tuple[MetricValue, ...]
    latency: Significance | None = Field(default=None, description="None for the baseline")
    accuracy: AccuracyCheck | None = None
    members: tuple[int, ...] = Field(
        default=(), description="every run of a repeated side (indices into runs); () single"
    )
    repetitions: int = Field(default=1, description="repetitions asked for (a single run: 1)")
    spread: tuple[FigureSpreadOut, ...] = Field(
        default=(), description="a repeated side: each figure per run, with its CV"
    )
    disagree: tuple[RunFigure, ...] = Field(
        default=(), description="figures whose between-run CV exceeds the threshold"
    )


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
    currency: str = Field(default="USD", description="ISO 4217 code of the cost result")
    cost_per_million: float = Field(description="per million inferences, year one")
    annual_cost: float = Field(description="year one")
    tco: float = Field(description="over the horizon, undiscounted")
    pv: float = Field(description="over the horizon, discounted")
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
    cv_threshold: float = GROUP_CV_THRESHOLD


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
            # a result with an interval is below only when its whole interval is (the run's
            # own verdict); older results without one are judged on the point value
            below_floor=acc.below_floor or (acc.interval is None and rel < acc.floor),
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


def _baseline(sides: list[RunGroup], runs: Sequence[LoadedRun]) -> int:
    """The baseline side: the first fp32 side when the sides mix variants, else the first."""
    variants = {runs[s.members[0]].report.model.variant for s in sides}
    if len(variants) > 1:
        for k, s in enumerate(sides):
            if runs[s.members[0]].report.model.variant == REFERENCE_VARIANT:
                return k
    return 0


def _sides(members: list[int], runs: Sequence[LoadedRun]) -> list[RunGroup]:
    """The runs of one aligned group as sides: repetitions of one cell together, each single
    run alone (member indices are into ``runs``)."""
    grouped = group_runs([runs[i].report for i in members])
    return [
        RunGroup(
            members=tuple(members[m] for m in g.members),
            group=g.group,
            series=g.series,
            count=g.count,
            indices=g.indices,
        )
        for g in grouped
    ]


def _side_values(
    side: RunGroup, runs: Sequence[LoadedRun]
) -> dict[Metric, tuple[float | None, bool]]:
    """A side's figures: a single run's own, or the geometric mean over a group's complete
    runs (accuracy: the mean; energy estimated if any run's is)."""
    per_run = [_metric_values(runs[i].report) for i in side.members]
    if len(per_run) == 1:
        return per_run[0]
    complete = [
        v
        for i, v in zip(side.members, per_run, strict=True)
        if runs[i].report.status is RunStatus.COMPLETE
    ] or per_run
    out: dict[Metric, tuple[float | None, bool]] = {}
    for m in Metric:
        values = [x for v in complete if (x := v[m][0]) is not None]
        estimated = any(v[m][1] for v in complete)
        if not values:
            out[m] = (None, estimated)
        elif m is Metric.ACCURACY or any(x <= 0 for x in values):
            out[m] = (sum(values) / len(values), estimated)
        else:
            out[m] = (geometric_mean(values), estimated)
    return out


def _spread_out(side: RunGroup, runs: Sequence[LoadedRun]) -> tuple[FigureSpreadOut, ...]:
    if not side.repeated:
        return ()
    spread = group_spread([r.report for r in runs], side)
    return tuple(
        FigureSpreadOut(
            figure=s.figure,
            values=s.values,
            repetitions=s.indices,
            geometric_mean=s.geometric_mean,
            cv=s.cv,
        )
        for s in spread.values()
    )


def side_significance(
    base: RunGroup,
    side: RunGroup,
    runs: Sequence[LoadedRun],
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> Significance:
    """The verdict of ``side`` against ``base`` from their run-level figures: paired when both
    are groups of one series; ``single-runs`` when a side has one complete run."""
    reports = [r.report for r in runs]
    a, b = group_spread(reports, base), group_spread(reports, side)
    paired = base.series is not None and base.series == side.series
    return compare_groups(a, b, paired=paired, alpha=alpha, min_effect=min_effect)


def compare_runs(
    runs: Sequence[LoadedRun],
    *,
    force: bool = False,
    forced: Sequence[str] = (),
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> ComparisonResult:
    """Align runs into groups, gather repetitions into sides, and compare each side with its
    group's baseline."""
    if len(runs) < 2:
        raise ComparisonRefused(
            f"comparison needs at least two reports, got {len(runs)}",
            "pass two or more report files, or a directory of them",
        )
    reasons = list(forced) + check_model_files(runs, force)
    keyed = align(runs, across_models=False)

    def comparable(k: dict[GroupKey, list[int]]) -> bool:
        return any(len(_sides(m, runs)) > 1 for m in k.values())

    if not comparable(keyed):
        names = sorted({r.report.model.name for r in runs})
        across = align(runs, across_models=True)
        if len(names) > 1 and comparable(across):
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
        sides = _sides(members, runs)
        if len(sides) < 2:
            unpaired.extend(members)
            continue
        base_k = _baseline(sides, runs)
        base = sides[base_k]
        base_values = _side_values(base, runs)
        rows: list[RunComparison] = []
        for k in [base_k, *(j for j in range(len(sides)) if j != base_k)]:
            side = sides[k]
            values = _side_values(side, runs)
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
                if k == base_k
                else side_significance(base, side, runs, alpha=alpha, min_effect=min_effect)
            )
            spread = _spread_out(side, runs)
            first = side.members[0]
            rows.append(
                RunComparison(
                    run=first,
                    is_baseline=k == base_k,
                    metrics=metrics,
                    latency=sig,
                    accuracy=checks[first],
                    members=side.members if side.repeated else (),
                    repetitions=side.count,
                    spread=spread,
                    disagree=disagreeing(group_spread([r.report for r in runs], side))
                    if side.repeated
                    else (),
                )
            )
        groups.append(
            ComparisonGroup(
                model=model,
                scenario=kind,
                batch_size=batch,
                concurrency=conc,
                target_rate_qps=rate,
                baseline=base.members[0],
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
                    currency=cost.currency,
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
        if r.currency == first.currency  # no ratio across currencies
        else r
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
