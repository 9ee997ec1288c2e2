"""The content of a decision report as format-neutral blocks, rendered by html.py and markdown.py.

Sections: executive summary, runs, comparison, latency, HTTP, energy, accuracy, cost,
environment, method. Reads reports, raw samples and an optional cost result; measures nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING

from tippingpoint.core.runstats import RunFigure, disagreeing, group_spread
from tippingpoint.core.schema import (
    LatencyStats,
    MeasurementMethod,
    PerformanceResults,
    RunFlag,
    RunStatus,
    StopMode,
)
from tippingpoint.reports.charts.spec import Figure
from tippingpoint.reports.compare import ComparisonRefused, accuracy_check, compare_runs
from tippingpoint.reports.compare_table import SHOWN, fmt_value
from tippingpoint.reports.cost_figures import cost_figures, executive_summary, money
from tippingpoint.reports.figures import (
    accuracy_figure,
    energy_figure,
    group_label,
    http_figures,
    latency_figures,
    repeated_groups,
    repetition_figures,
)
from tippingpoint.reports.generation_figures import generation_figures
from tippingpoint.reports.placements import placements_table
from tippingpoint.reports.runs import RunData, scenario_label
from tippingpoint.reports.significance import describe, describe_others
from tippingpoint.reports.split_figures import short_cut, split_figures

if TYPE_CHECKING:
    from tippingpoint.calculator.result import CloudAnalysis, CostResult


class Tone(str, Enum):
    """How a paragraph is shown."""

    NORMAL = "normal"
    NOTE = "note"
    WARNING = "warning"


@dataclass(frozen=True)
class Heading:
    """A section heading."""

    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text."""

    text: str
    tone: Tone = Tone.NORMAL


@dataclass(frozen=True)
class KeyValues:
    """A definition list: label, value."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Bullets:
    """A list of short items, e.g. warnings."""

    items: tuple[str, ...]
    tone: Tone = Tone.NORMAL


@dataclass(frozen=True)
class TableBlock:
    """A table with a caption."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class FigureBlock:
    """A figure, drawn by the format's chart writer."""

    figure: Figure


Block = Heading | Para | KeyValues | Bullets | TableBlock | FigureBlock


@dataclass(frozen=True)
class Document:
    """A whole report: a title, a one-line subtitle and the blocks in order."""

    title: str
    subtitle: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    def figures(self) -> list[Figure]:
        """Every figure in document order."""
        return [b.figure for b in self.blocks if isinstance(b, FigureBlock)]


def _scenario(r: RunData) -> str:
    sc = r.report.scenario
    return scenario_label(sc.kind, sc.batch_size, sc.concurrency, sc.target_rate_qps)


def _energy_text(r: RunData) -> str:
    e = r.report.collectors.energy
    if e is None:
        return "-"
    if not e.valid or e.joules_per_inference is None:
        return "invalid"
    tag = "estimated" if e.method is MeasurementMethod.ESTIMATED else "measured"
    return f"{e.joules_per_inference:.3g} J ({tag})"


def _flags(r: RunData) -> str:
    flags = [f.value for f in r.report.flags]
    drift = r.report.results.drift if r.report.results else None
    if drift is not None and RunFlag.DRIFTING.value in flags:
        i = flags.index(RunFlag.DRIFTING.value)
        flags[i] += f" ({drift.slope_pct_per_s:+.2g}%/s)"
    if r.report.status is not RunStatus.COMPLETE:
        flags.insert(0, r.report.status.value)
    return ", ".join(flags) or "-"


def _queries(res: PerformanceResults) -> str:
    """Queries measured, how long, and what stopped them (when the report says)."""
    text = f"{res.latency.count:,}"
    stop = res.stop
    if stop is None:
        return text
    if stop.mode is StopMode.FIXED:
        end = "fixed stop"
    elif stop.converged:
        end = "converged"
    else:
        end = "cap, not converged"
    return f"{text} in {stop.duration_s:.3g} s ({end})"


def runs_section(runs: Sequence[RunData]) -> list[Block]:
    """A table of every run with its headline figures and flags."""
    rows = []
    for i, r in enumerate(runs, 1):
        res = r.report.results
        b = r.report.backend
        rows.append(
            (
                str(i),
                f"{r.report.model.name} {r.report.model.variant} ({r.report.model.format})",
                f"{b.name} on {b.device.value}" if b else "not loaded",
                _scenario(r),
                _queries(res) if res else "-",
                fmt_value(res.latency.p50, "ms") if res else "-",
                fmt_value(res.latency.p99, "ms") if res else "-",
                fmt_value(res.throughput.samples_per_s, "samples/s") if res else "-",
                _energy_text(r),
                (
                    f"{r.report.accuracy.metric} {r.report.accuracy.value:.4f}"
                    if r.report.accuracy
                    else "-"
                ),
                _flags(r),
            )
        )
    return [
        Heading(2, "Runs", "runs"),
        TableBlock(
            caption=f"{len(runs)} runs. Measured latency per query; throughput in samples/s.",
            headers=(
                "#",
                "model",
                "backend",
                "scenario",
                "queries",
                "p50",
                "p99",
                "throughput",
                "energy/inference",
                "accuracy",
                "flags",
            ),
            rows=tuple(rows),
        ),
    ]


def comparison_section(runs: Sequence[RunData]) -> list[Block]:
    """Side-by-side groups with ratios and significance verdicts, when any runs align."""
    loaded = [r.run for r in runs]
    if len(loaded) < 2:
        return []
    try:
        result = compare_runs(loaded)
    except ComparisonRefused as exc:
        return [
            Heading(2, "Comparison", "comparison"),
            Para(f"No side-by-side comparison: {exc.message}.", Tone.NOTE),
        ]
    blocks: list[Block] = [Heading(2, "Comparison", "comparison")]
    for g in result.groups:
        rows = []
        for row in g.rows:
            ref = result.runs[row.run]
            by = {mv.metric: mv for mv in row.metrics}
            cells = []
            spread = {s.figure.value: s for s in row.spread}
            for m in SHOWN:
                mv = by[m]
                text = fmt_value(mv.value, mv.unit)
                if not row.is_baseline and mv.ratio is not None:
                    text += f" (x{mv.ratio:.3f})"
                if mv.estimated and mv.value is not None:
                    text += " est."
                s = spread.get(m.value)
                if s is not None and s.cv is not None:
                    text += f", CV {s.cv:.1%}"
                cells.append(text)
            sig = row.latency
            verdict = describe(sig)
            others = describe_others(sig)
            if others:
                verdict += f"; {others}"
            label = ref.label
            if row.members:
                label += f", {len(row.members)} of {row.repetitions} runs"
            if row.disagree:
                label += f" (runs disagree: {', '.join(f.value for f in row.disagree)})"
            acc = "-"
            if row.accuracy is not None and row.accuracy.relative is not None:
                acc = f"{row.accuracy.relative:.2%} of fp32"
                if row.accuracy.below_floor:
                    acc += " BELOW 99%"
            rows.append((label, *cells, acc, verdict))
        blocks.append(
            TableBlock(
                caption=(
                    f"{g.model or 'across models'}, "
                    f"{scenario_label(g.scenario, g.batch_size, g.concurrency, g.target_rate_qps)}"
                    ": ratios are run / baseline."
                ),
                headers=("run", *(m.value for m in SHOWN), "accuracy", "latency vs baseline"),
                rows=tuple(rows),
            )
        )
    blocks.append(
        Para(
            "The unit of comparison is the run. A latency difference is called only between "
            f"groups of repeated runs, when the {1 - result.alpha:.0%} t interval of the ratio "
            "of the runs' medians (paired over interleaved rounds, else Welch's) excludes 1 "
            f"and the change is at least {result.min_effect:.0%} (smaller ones are negligible). "
            "Single runs are not judged: queries inside one run are not independent draws of "
            "a shared machine's state. CV: the between-run coefficient of variation; runs "
            f"disagree above {result.cv_threshold:.0%}.",
            Tone.NOTE,
        )
    )
    if any(r.latency is not None and r.latency.runs_a < 2 for g in result.groups for r in g.rows):
        blocks.append(
            Para(
                "Some comparisons are of single runs: their significance cannot be judged, "
                "and their ratios are the within-run figures as measured. Repeat each cell "
                "(tippingpoint run --repeat 5) to compare groups.",
                Tone.WARNING,
            )
        )
    for i in result.accuracy_flags:
        blocks.append(
            Para(f"{result.runs[i].label} is below 99% of the fp32 accuracy.", Tone.WARNING)
        )
    return blocks


def repetitions_section(runs: Sequence[RunData]) -> list[Block]:
    """Groups of repeated runs: how many ran and in which order, each figure's mean and
    between-run CV, and each run as a point beside the group's mean (median latency and
    throughput); groups whose runs disagree are named."""
    groups = repeated_groups(runs)
    if not groups:
        return []
    reports = [r.report for r in runs]
    rows = []
    for g in groups:
        first = reports[g.members[0]]
        rep = first.repetition
        order = rep.order.value if rep is not None else "-"
        if rep is not None and rep.fresh_process:
            order += ", a process per run"
        spread = group_spread(reports, g)
        bad = disagreeing(spread)
        cells = []
        for fig, unit in (
            (RunFigure.P50, "ms"),
            (RunFigure.P99, "ms"),
            (RunFigure.THROUGHPUT, "samples/s"),
        ):
            s = spread.get(fig)
            cv = f", CV {s.cv:.1%}" if s is not None and s.cv is not None else ""
            cells.append(fmt_value(s.geometric_mean, unit) + cv if s is not None else "-")
        model = first.model.name
        rows.append(
            (
                f"{model} {group_label(model, runs, groups, g)}",
                f"{len(g.members)} of {g.count}",
                order,
                *cells,
                ("runs disagree: " + ", ".join(f.value for f in bad)) if bad else "-",
            )
        )
    blocks: list[Block] = [
        Heading(2, "Repetitions", "repetitions"),
        TableBlock(
            caption=(
                "Groups of repeated runs (tippingpoint run --repeat): each figure is the "
                "geometric mean of the runs' figures with their between-run coefficient of "
                "variation; a group whose median latency or throughput varies by more than 10% "
                "between runs disagrees."
            ),
            headers=("group", "runs", "order", "p50", "p99", "throughput", "flag"),
            rows=tuple(rows),
        ),
    ]
    for model in sorted({reports[g.members[0]].model.name for g in groups}):
        blocks.extend(FigureBlock(f) for f in repetition_figures(model, runs))
    return blocks


def summary_section(runs: Sequence[RunData], cost: CostResult | None) -> list[Block]:
    """Recommendation, deciding factor and tipping point; the measured highlights."""
    blocks: list[Block] = [Heading(2, "Executive summary", "summary")]
    if cost is None:
        blocks.append(
            Para(
                "No cost analysis was supplied, so this report recommends no placement and "
                "states no tipping point. Run 'tippingpoint cost' on these reports and pass its "
                "JSON with --cost to add them.",
                Tone.NOTE,
            )
        )
    else:
        s = executive_summary(cost)
        if s.illustrative:  # the first line whenever a proxy host or a stand-in is involved
            blocks.append(Para(s.illustrative, Tone.WARNING))
        costed = f"{cost.model or '-'} {cost.variant or ''}".strip()
        if cost.cloud_variant and cost.cloud_variant != cost.variant:
            costed += f" (endpoint measured on {cost.cloud_variant}: the comparison mixes variants)"
        blocks.append(
            KeyValues(
                (
                    ("Model costed", costed),
                    ("Recommended placement", s.recommended),
                    ("Why", s.reason),
                    ("Deciding factor", s.deciding_factor),
                    ("Tipping point", s.tipping_point),
                    ("Break-even", s.break_even),
                    ("Payback", s.payback),
                    ("Most sensitive input", s.most_sensitive),
                    ("Where the decision flips", s.switching),
                    ("Probability edge is cheaper", s.p_edge_cheaper),
                    ("Risk of choosing edge", s.risk),
                    *(("Caveat", c) for c in s.caveats),
                )
            )
        )
        if cost.warnings:
            blocks.append(Bullets(tuple(cost.warnings), Tone.WARNING))
    measured = [r for r in runs if r.report.results is not None]
    by_model: dict[str, list[RunData]] = {}
    for r in measured:
        by_model.setdefault(r.report.model.name, []).append(r)
    items = []
    for model, members in by_model.items():
        best_p99 = min(members, key=lambda r: r.report.results.latency.p99)  # type: ignore[union-attr]
        best_tp = max(members, key=lambda r: r.report.results.throughput.samples_per_s)  # type: ignore[union-attr]
        items.append(
            (
                f"{model}: lowest p99",
                f"{fmt_value(best_p99.report.results.latency.p99, 'ms')} ({best_p99.label})",  # type: ignore[union-attr]
            )
        )
        items.append(
            (
                f"{model}: highest throughput",
                f"{fmt_value(best_tp.report.results.throughput.samples_per_s, 'samples/s')} "  # type: ignore[union-attr]
                f"({best_tp.label})",
            )
        )
    if items:
        blocks.append(KeyValues(tuple(items)))
    caveats = []
    for flag, text in (
        (RunFlag.QUICK, "quick smoke-test runs (too short for decisions)"),
        (
            RunFlag.UNSTABLE,
            "unstable runs (throughput windows disagreed by more than the threshold, or "
            "never converged before the cap)",
        ),
        (
            RunFlag.DRIFTING,
            "drifting runs (throughput trended over the measured part by more than the threshold)",
        ),
        (RunFlag.EMULATED, "runs under an emulator (not representative of the hardware)"),
        (RunFlag.LOCAL_STANDIN, "HTTP runs against a local stand-in, not a real cloud endpoint"),
        (RunFlag.THROTTLED, "runs during which clocks throttled"),
        (RunFlag.BELOW_ACCURACY_FLOOR, "runs below 99% of the fp32 accuracy"),
        (
            RunFlag.SEND_LAG_INVALID,
            "open-loop HTTP runs whose sender fell behind schedule (the offered load was "
            "not achieved, so latency under load is understated)",
        ),
    ):
        n = sum(flag in r.report.flags for r in runs)
        if n:
            caveats.append(f"{n} of {len(runs)} are {text}")
    failed = sum(r.report.status is not RunStatus.COMPLETE for r in runs)
    if failed:
        caveats.append(f"{failed} of {len(runs)} runs did not complete")
    if caveats:
        blocks.append(Para("Caveats: " + "; ".join(caveats) + ".", Tone.WARNING))
    return blocks


def latency_section(runs: Sequence[RunData]) -> list[Block]:
    """CDFs and percentile bars per model."""
    blocks: list[Block] = [Heading(2, "Latency", "latency")]
    by_model: dict[str, list[RunData]] = {}
    for r in runs:
        by_model.setdefault(r.report.model.name, []).append(r)
    for model, members in by_model.items():
        figs = latency_figures(model, members)
        if figs:
            blocks.append(Heading(3, model, f"latency-{model}"))
            blocks.extend(FigureBlock(f) for f in figs)
    if len(blocks) == 1:
        blocks.append(Para("No run produced latency figures.", Tone.NOTE))
    return blocks


def http_section(runs: Sequence[RunData]) -> list[Block]:
    """Network figures of HTTP runs: sweeps and a table of bytes and errors."""
    http_runs = [r for r in runs if r.report.http is not None]
    if not http_runs:
        return []
    blocks: list[Block] = [Heading(2, "Remote endpoint (HTTP)", "http")]
    rows = []
    for r in http_runs:
        h = r.report.http
        assert h is not None
        rows.append(
            (
                r.label,
                h.endpoint
                + (" (local stand-in)" if RunFlag.LOCAL_STANDIN in r.report.flags else ""),
                f"{h.requests:,}",
                f"{h.error_rate:.2%}",
                f"{h.bytes_sent_per_request:,.0f} / {h.bytes_received_per_request:,.0f}",
                fmt_value(h.network_time.p50, "ms") if h.network_time else "-",
                fmt_value(h.server_time.p50, "ms") if h.server_time else "-",
                f"{h.peak_rate_qps:,.0f}/s" if h.peak_rate_qps is not None else "-",
            )
        )
    blocks.append(
        TableBlock(
            caption="Measured network figures per HTTP run.",
            headers=(
                "run",
                "endpoint",
                "requests",
                "errors",
                "bytes out / in per request",
                "network p50",
                "server p50",
                "peak rate within p99 bound",
            ),
            rows=tuple(rows),
        )
    )
    blocks.extend(FigureBlock(f) for f in http_figures(http_runs))
    return blocks


def split_section(runs: Sequence[RunData]) -> list[Block]:
    """Split runs: each one's profiled placements (measured), its chosen cut, the charts."""
    split_runs = [r for r in runs if r.report.split is not None]
    if not split_runs:
        return []
    blocks: list[Block] = [Heading(2, "Split inference", "split")]
    for r in split_runs:
        rec = r.report.split
        assert rec is not None
        rows = tuple(
            (
                short_cut(c.name) + (" (chosen)" if c.name == rec.cut else ""),
                f"{c.head_ms:.3g}",
                f"{c.transfer_ms:.3g}" if c.transfer_ms is not None else "-",
                f"{c.tail_ms:.3g}" if c.tail_ms is not None else "-",
                f"{c.e2e_ms:.3g}",
                f"{c.raw_bytes:,}" if c.raw_bytes is not None else "-",
                f"{c.sent_bytes:,.0f}" if c.sent_bytes is not None else "-",
                f"{c.energy_j:.3g} (est.)" if c.energy_j is not None else "-",
                f"{c.max_abs_error:.3g}" if c.max_abs_error is not None else "-",
                f"{c.top1_agreement:.1%}" if c.top1_agreement is not None else "-",
            )
            for c in rec.candidates
        )
        blocks.append(
            TableBlock(
                caption=(
                    f"{r.label}: profiled placements (medians, ms), cut {rec.cut} "
                    f"({rec.chosen_by}, objective {rec.objective}, {rec.compression}), "
                    f"network {rec.network_profile or 'none (loopback)'}. Energy is estimated: "
                    "head time x the device's active watts + the wait x its idle watts."
                ),
                headers=(
                    "placement",
                    "head",
                    "transfer",
                    "tail",
                    "end to end",
                    "bytes raw",
                    "bytes sent",
                    "J/inf",
                    "max abs error",
                    "top-1 vs full",
                ),
                rows=rows,
            )
        )
        blocks.extend(FigureBlock(f) for f in split_figures(r.report))
    return blocks


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms_pair(stats: LatencyStats | None) -> str:
    if stats is None:
        return "-"
    return f"{fmt_value(stats.p50, 'ms')} / {fmt_value(stats.p99, 'ms')}"


def generation_section(runs: Sequence[RunData]) -> list[Block]:
    """Generative runs: token-level latencies, token counts on both sides, tokens/s, goodput
    against the SLO, cold load and energy per output token (README: "Generative metrics")."""
    gen_runs = [r for r in runs if r.report.generation is not None]
    if not gen_runs:
        return []
    rows = []
    notes: list[str] = []
    for r in gen_runs:
        gen = r.report.generation
        assert gen is not None
        m = gen.metrics
        tc = m.token_counts
        counts = (
            f"{tc.server_total if tc.server_total is not None else '-'} / "
            f"{tc.client_total if tc.client_total is not None else '-'}"
            + (f" (diff {tc.difference:+d} in {tc.differing})" if tc.compared else "")
        )
        good = m.goodput
        goodput = (
            f"{good.requests_per_s:,.2f}/s, {good.good_fraction:.0%} ({good.slo.describe()})"
            if good is not None
            else "-"
        )
        if gen.peak_rate_rps is not None or gen.peak_target_fraction is not None:
            peak = gen.peak_rate_rps
            goodput += f"; peak {peak:,.2f}/s" if peak is not None else "; no probe met it"
        cold = r.report.cold_start
        cold_text = "-"
        if cold is not None:
            cold_text = f"{cold.load_s:.2f} s"
            if cold.first_inference_ms is not None:
                cold_text += f" + {fmt_value(cold.first_inference_ms, 'ms')}"
        joules = "-"
        if gen.joules_per_output_token is not None:
            est = " (est.)" if gen.energy_method is MeasurementMethod.ESTIMATED else ""
            joules = f"{gen.joules_per_output_token:.3g} J{est}"
        rows.append(
            (
                r.label,
                f"{m.succeeded:,}/{m.requests:,}",
                _ms_pair(m.ttft),
                _ms_pair(m.tpot),
                _ms_pair(m.e2el),
                _ms_pair(m.chunk_gap) + (" (multi-token chunks)" if m.multi_token_chunks else ""),
                f"{m.output_tokens_per_s:,.1f}"
                + (f" / {m.total_tokens_per_s:,.1f}" if m.total_tokens_per_s is not None else ""),
                f"{m.requests_per_s:,.2f}",
                goodput,
                counts,
                cold_text,
                joules,
            )
        )
        if m.failed:
            notes.append(
                f"{r.label}: failed requests by kind: "
                + ", ".join(f"{k} {v}" for k, v in m.failed.items())
            )
    blocks: list[Block] = [
        Heading(2, "Generation", "generation"),
        TableBlock(
            caption=(
                "Measured per generative run (p50 / p99, ms, from each request's scheduled send). "
                "TPOT = (E2EL - TTFT) / (output tokens - 1); chunk gap = time between chunks "
                "(vLLM's ITL; a chunk may carry several tokens). Tokens/s: output / output + "
                "prompt. Output tokens: server-reported / client-counted. Cold: model load + "
                "first generation. J per output token: energy over the measured window / output "
                "tokens in it."
            ),
            headers=(
                "run",
                "ok/requests",
                "TTFT",
                "TPOT",
                "E2EL",
                "chunk gap",
                "tokens/s",
                "requests/s",
                "goodput",
                "output tokens server / client",
                "cold",
                "J / output token",
            ),
            rows=tuple(rows),
        ),
    ]
    if notes:
        blocks.append(Bullets(tuple(notes), Tone.WARNING))
    blocks.extend(FigureBlock(f) for f in generation_figures(gen_runs))
    return blocks


def hybrid_section(runs: Sequence[RunData]) -> list[Block]:
    """Hybrid runs: how each routed its requests (all measured; the policy's overhead is the
    router's own time per request, never the inference)."""
    hybrid_runs = [r for r in runs if r.report.hybrid is not None]
    if not hybrid_runs:
        return []
    rows = []
    for r in hybrid_runs:
        h = r.report.hybrid
        assert h is not None
        answered = ", ".join(f"{k} {v:,}" for k, v in h.answered_by.items())
        reasons = ", ".join(f"{k} {v:,}" for k, v in h.reasons.items())
        errors = ", ".join(f"{k} {v:,}" for k, v in h.cloud_errors.items()) or "-"
        slo = f" (SLO {h.slo_ms:g} ms)" if h.slo_ms is not None else ""
        acc = r.report.accuracy
        rows.append(
            (
                r.label,
                h.policy + (" + fallback" if h.fallback else ""),
                f"{h.requests:,}",
                _rate(h.offload_rate),
                _rate(h.fallback_rate),
                _rate(h.deadline_miss_rate) + slo,
                _rate(h.cache_hit_rate),
                answered,
                reasons,
                errors,
                f"{h.policy_overhead_us_mean:.3g} / {h.policy_overhead_us_p99:.3g}",
                f"{acc.metric} {acc.value:.4g}" if acc is not None else "-",
            )
        )
    return [
        Heading(2, "Hybrid routing", "hybrid"),
        TableBlock(
            caption=(
                "Hybrid runs: share of requests the policy sent to the endpoint (offload), "
                "failed cloud requests answered locally (fallback), requests over the SLO "
                "(failures count as misses), cache hits; the policy's own time per request "
                "(mean / p99, microseconds, measured); accuracy of the routed answers when "
                "--accuracy ran (run always-local and always-cloud for the references)."
            ),
            headers=(
                "run",
                "policy",
                "requests",
                "offload",
                "fallback",
                "deadline miss",
                "cache hit",
                "answered by",
                "reasons",
                "cloud errors",
                "policy us",
                "accuracy",
            ),
            rows=tuple(rows),
        ),
    ]


def placements_section(runs: Sequence[RunData], cost: CostResult | None) -> list[Block]:
    """Seed 003's Table 1 from the runs: cloud, edge, hybrid, split side by side."""
    table = placements_table(runs, cost)
    if table is None:
        return []
    return [
        Heading(2, "Placements compared", "placements"),
        Para(table.note, Tone.NOTE),
        TableBlock(caption=table.caption, headers=table.headers, rows=table.rows),
    ]


def energy_section(runs: Sequence[RunData]) -> list[Block]:
    """Joules per inference, measured and estimated apart."""
    blocks: list[Block] = [Heading(2, "Energy", "energy")]
    fig = energy_figure(runs)
    if fig is None:
        blocks.append(
            Para(
                "No energy figures: no energy collector ran in these runs (or none was valid).",
                Tone.NOTE,
            )
        )
        return blocks
    rows = []
    for r in runs:
        e = r.report.collectors.energy
        if e is None:
            continue
        rows.append(
            (
                r.label,
                f"{e.joules_per_inference:.4g}" if e.joules_per_inference is not None else "-",
                "estimated" if e.method is MeasurementMethod.ESTIMATED else "measured",
                e.source,
                e.scope,
                f"{e.average_watts:.3g}" if e.average_watts is not None else "-",
                f"{e.idle_watts_before:.3g}" if e.idle_watts_before is not None else "-",
                "yes" if e.valid else f"no: {e.note or ''}",
            )
        )
    blocks.append(
        TableBlock(
            caption="Energy per inference (J) with its source and method.",
            headers=("run", "J/inference", "basis", "source", "scope", "avg W", "idle W", "valid"),
            rows=tuple(rows),
        )
    )
    blocks.append(FigureBlock(fig))
    return blocks


def accuracy_section(runs: Sequence[RunData]) -> list[Block]:
    """Accuracy of quantized variants against fp32 and the 99% floor."""
    blocks: list[Block] = [Heading(2, "Accuracy", "accuracy")]
    with_acc = [r for r in runs if r.report.accuracy is not None]
    if not with_acc:
        blocks.append(Para("No accuracy pass ran in these runs.", Tone.NOTE))
        return blocks
    rows = []
    all_runs = [r.run for r in runs]
    for r in with_acc:
        a = r.report.accuracy
        check = accuracy_check(r.run, all_runs)
        assert a is not None
        ref = check.reference_value if check is not None else None
        rel = check.relative if check is not None else None
        below = check.below_floor if check is not None else a.below_floor
        rows.append(
            (
                f"{r.report.model.name} {r.report.model.variant} · {r.label.split(' · ')[1]}",
                f"{a.kind.value}: {a.dataset} ({a.samples:,})",
                f"{a.metric} {a.value:.4f}",
                f"{ref:.4f}" if ref is not None else "-",
                f"{rel:.2%}" if rel is not None else "-",
                "BELOW 99% of fp32" if below else ("ok" if rel is not None else "-"),
            )
        )
    blocks.append(
        TableBlock(
            caption="Measured accuracy in a separate pass over the evaluation set.",
            headers=("variant", "evaluation", "value", "fp32", "relative", "floor"),
            rows=tuple(rows),
        )
    )
    fig = accuracy_figure(runs)
    if fig is not None:
        blocks.append(FigureBlock(fig))
    return blocks


def cost_section(cost: CostResult | None) -> list[Block]:
    """Placements, TCO curves, tipping point, tornado, Monte Carlo and every input's source."""
    blocks: list[Block] = [Heading(2, "Cost", "cost")]
    if cost is None:
        blocks.append(Para("No cost analysis was supplied (--cost).", Tone.NOTE))
        return blocks
    placements = [cost.edge, *(p for a in cost.analyses for p in a.placements)]
    cur = cost.currency
    rows = tuple(
        (
            p.label,
            "yes" if p.feasible else f"NO ({p.reason or 'infeasible'})",
            (
                f"{p.latency.p99_ms:.3g} ms" + (f" ({p.latency.label})" if p.latency.label else "")
                if p.latency.p99_ms is not None
                else "-"
            ),
            money(p.cost_per_million, cur),
            money(p.annual_cost, cur),
            money(p.tco, cur),
            money(p.capex_tco, cur),
            money(p.opex_tco, cur),
            money(p.pv, cur),
            (
                f"{p.kwh_per_year:,.0f} kWh ({p.kwh_basis.value})"
                if p.kwh_per_year is not None and p.kwh_basis is not None
                else "-"
            ),
        )
        for p in placements
    ) + tuple(
        (f"cloud: {a.cloud}", f"NOT MEASURED ({a.not_measured})", *("-",) * 8)
        for a in cost.analyses
        if a.not_measured
    )
    blocks.append(
        TableBlock(
            caption=(
                f"Estimated cost per placement in {cost.currency}: year one and over "
                f"{cost.horizon_months} months ({cost.amortisation.value}), capex and opex over "
                "the horizon; per million levelised (PV of cost / PV of inferences); SLO p99 "
                f"{cost.slo_p99_ms if cost.slo_p99_ms is not None else 'none'} ms."
                + (f" Every line: {'; '.join(cost.caveats)}." if cost.caveats else "")
            ),
            headers=(
                "placement",
                "feasible",
                "p99",
                "per million",
                "annual",
                "TCO",
                "capex",
                "opex",
                "present value",
                "energy/year",
            ),
            rows=rows,
        )
    )
    blocks.extend(
        Para(f"p99 of {p.label}: {p.latency.method}.", Tone.NOTE)
        for p in placements
        if p.placement.value in ("cloud", "split") and p.latency.method
    )
    blocks.extend(FigureBlock(f) for f in cost_figures(cost))
    for a in cost.analyses:
        blocks.extend(_risk_blocks(a, cur))
        inputs = tuple(
            (
                i.param.value,
                f"{i.value:.4g} {i.unit}",
                f"{i.low:.4g} - {i.high:.4g}" + (f" ({i.range_note})" if i.range_note else ""),
                i.basis.value + (" (stale)" if i.stale else ""),
                # the source a sourced value cites; otherwise where the figure came from
                (i.source if i.source else i.origin)
                + ("" if i.source or not i.assumed_value else " (assumed: no source)"),
                str(i.as_of) if i.as_of else "-",
            )
            for i in a.inputs
        )
        blocks.append(
            TableBlock(
                caption=f"Inputs of the analysis against {a.cloud}, with their sources.",
                headers=("input", "value", "range", "basis", "source", "as of"),
                rows=inputs,
            )
        )
    return blocks


def _risk_blocks(a: CloudAnalysis, cur: str) -> list[Block]:
    """The loss-side risk and the switching values of one analysis, as the result states them."""
    blocks: list[Block] = []
    mc = a.monte_carlo
    if mc is not None:
        rows = tuple(
            (
                name,
                money(s.mean, cur),
                money(s.p5, cur),
                money(s.p50, cur),
                money(s.p95, cur),
                money(s.var95, cur),
                money(s.cvar95, cur) if s.cvar95 is not None else "-",
                "high: P95 and above" if s.tail == "high" else "low: P5 and below",
            )
            for name, s in (
                ("edge cost (PV)", mc.edge_pv),
                ("cloud cost (PV)", mc.cloud_pv),
                ("NPV of choosing edge", mc.savings),
            )
        )
        blocks.append(
            TableBlock(
                caption=(
                    f"Risk against {a.cloud} over {mc.draws:,} Monte Carlo draws: P(loss choosing "
                    f"edge) {mc.p_loss:.1%}, expected NPV {money(mc.expected_saving, cur)}. VaR95 "
                    "and CVaR95 sit on the tail that hurts: high for a cost, low for the NPV."
                ),
                headers=("quantity", "mean", "P5", "P50", "P95", "VaR95", "CVaR95", "risk tail"),
                rows=rows,
            )
        )
    if a.switching:
        flips: tuple[tuple[str, ...], ...] = tuple(
            (
                f"{sv.param.value} [{sv.unit}]",
                f"{sv.base_value:.4g}",
                f"{sv.value:.4g}"
                if sv.value is not None
                else f"none in {sv.searched_low:.4g}..{sv.searched_high:.4g}",
                f"{sv.change:+.0%}" if sv.change is not None else "-",
                "yes" if sv.within_range else "no",
                f"{sv.cheaper_beyond.value} cheaper" if sv.cheaper_beyond else "-",
            )
            for sv in a.switching
        )
        blocks.append(
            TableBlock(
                caption=(
                    f"Switching values against {a.cloud}: the value of each leading input, the "
                    "rest at base, at which the cheaper placement flips (NPV = 0)."
                ),
                headers=("input", "base", "flips at", "change", "in range", "beyond it"),
                rows=flips,
            )
        )
    return blocks


def environment_section(runs: Sequence[RunData]) -> list[Block]:
    """The environment of every run: host fingerprint, runtime versions, backend options."""
    blocks: list[Block] = [Heading(2, "Environment", "environment")]
    for i, r in enumerate(runs, 1):
        h = r.report.host
        b = r.report.backend
        gpus = ", ".join(g.name for g in h.gpus) or "none"
        container = (h.container.kind or "yes") if h.container.detected else "no"
        items = [
            ("run", f"{r.label} ({r.run.path.name})"),
            ("status", r.report.status.value),
            ("started", r.report.started_at.isoformat()),
            ("host", f"{h.cpu_model or '-'}, {h.machine}, #{h.hostname_hash}"),
            (
                "CPUs",
                f"{h.cpu_count_logical or '-'} logical, {h.cpu_count_physical or '-'} physical, "
                f"{h.cpu_affinity or '-'} usable; governor {h.cpu_governor or '-'}",
            ),
            (
                "memory",
                f"{h.memory_total_bytes / 2**30:.1f} GiB" if h.memory_total_bytes else "-",
            ),
            ("OS", f"{h.os}, kernel {h.kernel}, Python {h.python}"),
            ("container", container),
            ("emulated", h.emulator or "yes" if h.emulated else "no"),
            ("board", h.board or "-"),
            ("GPUs", gpus),
            (
                "runtimes",
                ", ".join(f"{k} {v}" for k, v in sorted(h.runtime_versions.items())) or "-",
            ),
            (
                "backend",
                (
                    f"{b.name} ({b.runtime} {b.runtime_version}) on {b.device.value}; "
                    f"providers {', '.join(b.providers) or '-'}; "
                    + ", ".join(f"{k}={v}" for k, v in sorted(b.options.items()))
                )
                if b
                else "not loaded",
            ),
            (
                "model file",
                f"{r.report.model.path} sha256 {r.report.model.sha256[:16]}, "
                f"{r.report.model.size_bytes:,} bytes",
            ),
            ("tool", f"tippingpoint {r.report.tool.version} {r.report.tool.git_commit or ''}"),
        ]
        blocks.append(Heading(3, f"Run {i}", f"env-{i}"))
        blocks.append(KeyValues(tuple(items)))
    return blocks


METHOD_NOTES = (
    "Percentiles are nearest-rank (as MLPerf LoadGen); their intervals are bootstrap intervals.",
    "Latency is timed around each inference call alone; warm-up is excluded and reported apart.",
    "Energy is integrated over exactly the measured window; estimated energy is marked as such.",
    "Accuracy comes from a separate pass over the evaluation set on the same code path.",
)


def build_document(
    runs: Sequence[RunData], cost: CostResult | None = None, *, generated: datetime | None = None
) -> Document:
    """The whole report for ``runs`` and an optional cost result."""
    when = (generated or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    models = sorted({r.report.model.name for r in runs})
    hosts = len({r.report.host.hostname_hash for r in runs})
    subtitle = (
        f"{len(runs)} runs of {', '.join(models)} on {hosts} host{'s' if hosts != 1 else ''}; "
        f"generated {when}."
    )
    blocks: list[Block] = [
        *summary_section(runs, cost),
        *runs_section(runs),
        *comparison_section(runs),
        *placements_section(runs, cost),
        *repetitions_section(runs),
        *latency_section(runs),
        *http_section(runs),
        *split_section(runs),
        *hybrid_section(runs),
        *generation_section(runs),
        *energy_section(runs),
        *accuracy_section(runs),
        *cost_section(cost),
        *environment_section(runs),
        Heading(2, "Method", "method"),
        *(Para(n, Tone.NOTE) for n in METHOD_NOTES),
    ]
    return Document(title="tippingpoint report", subtitle=subtitle, blocks=tuple(blocks))
