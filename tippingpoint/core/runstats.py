"""Statistics over runs: the run, not the query, is the unit of comparison.

Queries inside one run are not independent draws of the machine's state: a run that falls
wholly inside a slow phase of a shared machine looks steady and differs from a run in a fast
phase by far more than its queries' spread suggests. So a group of repeated runs is summarised
by one value per run (its median, p99, throughput), and two groups are compared through the
spread *between* runs:

* :func:`paired_ratio` when the two groups were interleaved in one series (A B A B ...): the
  ratio of each round's B run to its A run, a Student t interval on their logarithms. A slow
  phase that covers a round slows both of its runs, and drops out of the ratio.
* :func:`welch_ratio` otherwise (groups run at different times): Welch's t interval on the
  difference of mean logarithms.

Both give an interval on the ratio of geometric means B / A. The t distribution accounts for
having only a handful of runs, which a bootstrap over 3 to 10 runs does not (it cannot draw
more than n^n resamples and understates the spread by (n - 1) / n). Pure functions; Student's
t quantiles come from the regularized incomplete beta function (no scipy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from tippingpoint.core.schema import Report, RunStatus

GROUP_CV_THRESHOLD = 0.10
"""A group whose runs' median latency or throughput has a between-run coefficient of variation
above this disagrees: its runs did not measure the same state of the machine (the same 10% as
the within-run stability threshold of a window)."""

PAIRED_METHOD = "paired t interval of log(B/A) over interleaved rounds"
WELCH_METHOD = "Welch t interval of the difference of mean log values"


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0 < p < 1) of Student's t with ``df`` degrees of freedom, to 1e-10."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability {p} outside (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean (NaN when empty)."""
    return sum(values) / len(values) if values else math.nan


def sample_sd(values: Sequence[float]) -> float:
    """The sample standard deviation (n - 1); 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def between_run_cv(values: Sequence[float]) -> float | None:
    """The between-run coefficient of variation: sample sd / mean; None for fewer than two
    runs or a mean that is not positive."""
    if len(values) < 2:
        return None
    m = mean(values)
    return sample_sd(values) / m if m > 0 else None


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(log v)) of positive values; NaN when any value is not positive or none."""
    if not values or any(not v > 0 for v in values):
        return math.nan
    return math.exp(mean([math.log(v) for v in values]))


@dataclass(frozen=True)
class RatioEstimate:
    """The ratio of geometric means B / A over runs, with its interval."""

    ratio: float
    low: float
    high: float
    level: float
    df: float
    """Degrees of freedom of the t interval (Welch's are not whole)."""
    paired: bool
    runs_a: int
    runs_b: int
    method: str

    @property
    def excludes_one(self) -> bool:
        """Whether the interval lies wholly above or below 1."""
        return self.low > 1.0 or self.high < 1.0


def _logs(values: Sequence[float], side: str) -> list[float]:
    if any(not (v > 0 and math.isfinite(v)) for v in values):
        raise ValueError(f"run values of {side} must be positive and finite")
    return [math.log(v) for v in values]


def paired_ratio(a: Sequence[float], b: Sequence[float], *, level: float) -> RatioEstimate:
    """Interval on B / A from rounds of interleaved runs: ``a[i]`` and ``b[i]`` ran side by
    side, so a phase of the machine that covers both cancels in ``b[i] / a[i]``. A t interval
    on the mean log ratio with n - 1 degrees of freedom; needs at least two rounds."""
    if len(a) != len(b):
        raise ValueError("paired runs need one B run per A run")
    n = len(a)
    if n < 2:
        raise ValueError("an interval needs at least two rounds")
    d = [lb - la for la, lb in zip(_logs(a, "A"), _logs(b, "B"), strict=True)]
    m = mean(d)
    half = t_quantile(0.5 + level / 2.0, n - 1) * sample_sd(d) / math.sqrt(n)
    return RatioEstimate(
        ratio=math.exp(m),
        low=math.exp(m - half),
        high=math.exp(m + half),
        level=level,
        df=float(n - 1),
        paired=True,
        runs_a=n,
        runs_b=n,
        method=PAIRED_METHOD,
    )


def welch_ratio(a: Sequence[float], b: Sequence[float], *, level: float) -> RatioEstimate:
    """Interval on B / A from runs that were not interleaved: Welch's t interval on the
    difference of mean logarithms (Welch-Satterthwaite degrees of freedom); needs at least two
    runs a side."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("an interval needs at least two runs a side")
    la, lb = _logs(a, "A"), _logs(b, "B")
    va, vb = sample_sd(la) ** 2 / len(la), sample_sd(lb) ** 2 / len(lb)
    diff = mean(lb) - mean(la)
    se = math.sqrt(va + vb)
    if se > 0:
        df = (va + vb) ** 2 / (va**2 / (len(la) - 1) + vb**2 / (len(lb) - 1))
    else:
        df = float(len(la) + len(lb) - 2)
    half = t_quantile(0.5 + level / 2.0, df) * se
    return RatioEstimate(
        ratio=math.exp(diff),
        low=math.exp(diff - half),
        high=math.exp(diff + half),
        level=level,
        df=df,
        paired=False,
        runs_a=len(la),
        runs_b=len(lb),
        method=WELCH_METHOD,
    )


@dataclass(frozen=True)
class MeanInterval:
    """The mean of a figure over a group's runs and the t interval of that mean."""

    mean: float
    low: float
    high: float
    level: float
    runs: int
    cv: float | None


def mean_interval(values: Sequence[float], *, level: float = 0.95) -> MeanInterval:
    """The mean of ``values`` (one per run) with its Student t interval; with one run the
    interval is the value itself (no spread can be judged from one run)."""
    n = len(values)
    if n == 0:
        raise ValueError("no runs")
    m = mean(values)
    if n < 2:
        return MeanInterval(mean=m, low=m, high=m, level=level, runs=1, cv=None)
    half = t_quantile(0.5 + level / 2.0, n - 1) * sample_sd(values) / math.sqrt(n)
    return MeanInterval(
        mean=m, low=m - half, high=m + half, level=level, runs=n, cv=between_run_cv(values)
    )


class RunFigure(str, Enum):
    """A per-run figure that groups of runs are summarised and compared by."""

    P50 = "p50"
    P99 = "p99"
    THROUGHPUT = "throughput"
    JOULES = "joules/inference"

    @property
    def lower_is_better(self) -> bool:
        """Whether a smaller value is the improvement (latency, energy) or not (throughput)."""
        return self is not RunFigure.THROUGHPUT


DISAGREEMENT_FIGURES = (RunFigure.P50, RunFigure.THROUGHPUT)
"""The figures whose between-run spread flags a group as disagreeing."""


def run_figures(report: Report) -> dict[RunFigure, float]:
    """The run-level figures of a complete run (median and p99 latency in ms, samples/s,
    J/inference when valid); empty for a run that failed or has no results."""
    res = report.results
    if report.status is not RunStatus.COMPLETE or res is None:
        return {}
    out = {
        RunFigure.P50: res.latency.p50,
        RunFigure.P99: res.latency.p99,
        RunFigure.THROUGHPUT: res.throughput.samples_per_s,
    }
    e = report.collectors.energy
    if e is not None and e.valid and e.joules_per_inference is not None:
        out[RunFigure.JOULES] = e.joules_per_inference
    return {k: v for k, v in out.items() if v > 0 and math.isfinite(v)}


@dataclass(frozen=True)
class RunGroup:
    """Runs that are one measurement: the repetitions of one cell, or a single run."""

    members: tuple[int, ...]
    """Indices of the runs (into the sequence grouped), in repetition order."""
    group: str | None
    """The repetition group's id; None for a single run."""
    series: str | None = None
    """The series the group was interleaved in."""
    count: int = 1
    """Repetitions asked for (more than the members when some are missing)."""
    indices: tuple[int, ...] = (1,)
    """Each member's repetition index."""

    @property
    def repeated(self) -> bool:
        """Whether the runs are repetitions (a report with a repetition section), even when
        only one of them is at hand."""
        return self.group is not None


def group_runs(reports: Sequence[Report]) -> list[RunGroup]:
    """The reports as groups, in order of first appearance: the repetitions sharing a group id
    together (ordered by index; a duplicate index, i.e. the same report given twice, counts
    once), every report without a repetition section alone."""
    groups: list[RunGroup] = []
    by_id: dict[str, int] = {}
    for i, r in enumerate(reports):
        rep = r.repetition
        if rep is None:
            groups.append(RunGroup(members=(i,), group=None))
            continue
        if rep.group not in by_id:
            by_id[rep.group] = len(groups)
            groups.append(
                RunGroup(
                    members=(), group=rep.group, series=rep.series, count=rep.count, indices=()
                )
            )
        g = groups[by_id[rep.group]]
        if rep.index in g.indices:
            continue
        pairs = sorted([*zip(g.indices, g.members, strict=True), (rep.index, i)])
        groups[by_id[rep.group]] = RunGroup(
            members=tuple(m for _, m in pairs),
            group=g.group,
            series=g.series,
            count=g.count,
            indices=tuple(x for x, _ in pairs),
        )
    return groups


@dataclass(frozen=True)
class FigureSpread:
    """One figure over a group's complete runs."""

    figure: RunFigure
    values: tuple[float, ...]
    """One per complete run, in repetition order."""
    indices: tuple[int, ...]
    """The repetition index of each value."""
    geometric_mean: float
    cv: float | None
    """Between-run coefficient of variation; None with one run."""


def group_spread(reports: Sequence[Report], group: RunGroup) -> dict[RunFigure, FigureSpread]:
    """Each figure of ``group``'s complete runs: values, geometric mean, between-run CV."""
    out: dict[RunFigure, FigureSpread] = {}
    for fig in RunFigure:
        pairs = [
            (idx, v)
            for idx, m in zip(group.indices, group.members, strict=True)
            if (v := run_figures(reports[m]).get(fig)) is not None
        ]
        if not pairs:
            continue
        values = tuple(v for _, v in pairs)
        out[fig] = FigureSpread(
            figure=fig,
            values=values,
            indices=tuple(idx for idx, _ in pairs),
            geometric_mean=geometric_mean(values),
            cv=between_run_cv(values),
        )
    return out


def disagreeing(
    spread: dict[RunFigure, FigureSpread], threshold: float = GROUP_CV_THRESHOLD
) -> tuple[RunFigure, ...]:
    """The figures (median latency, throughput) whose between-run CV exceeds ``threshold``."""
    return tuple(
        f
        for f in DISAGREEMENT_FIGURES
        if (s := spread.get(f)) is not None and s.cv is not None and s.cv > threshold
    )


def compare_figure(
    a: FigureSpread, b: FigureSpread, *, paired: bool, level: float
) -> RatioEstimate | None:
    """The interval on B / A of one figure: paired over the repetition indices both groups
    completed when ``paired`` (two groups of one series) and at least two are shared, Welch's
    otherwise; None when a side has fewer than two runs."""
    if paired:
        shared = sorted(set(a.indices) & set(b.indices))
        if len(shared) >= 2:
            va = dict(zip(a.indices, a.values, strict=True))
            vb = dict(zip(b.indices, b.values, strict=True))
            return paired_ratio([va[i] for i in shared], [vb[i] for i in shared], level=level)
    if len(a.values) < 2 or len(b.values) < 2:
        return None
    return welch_ratio(a.values, b.values, level=level)
