"""PNG figures through matplotlib (the ``report`` extra), for Markdown reports.

Draws the same figure specs as the SVG writer: estimated series dashed, estimated bars
hatched, the caption (units, sample counts, provenance) printed under every chart.
matplotlib is imported only when a PNG is drawn.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from tippingpoint.core.errors import RuntimeNotInstalledError
from tippingpoint.reports.charts.spec import (
    BarFigure,
    Figure,
    HistogramFigure,
    LineFigure,
    PointsFigure,
    Provenance,
    TornadoFigure,
)
from tippingpoint.reports.charts.svg import PALETTE, WARN


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise RuntimeNotInstalledError(
            "Markdown reports draw PNG figures with matplotlib, which is not installed",
            "pip install 'tippingpoint[report]', or use --format html",
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _line(ax: Any, fig: LineFigure) -> None:
    for i, s in enumerate(fig.series):
        if not s.points:
            continue
        xs, ys = zip(*s.points, strict=False)
        style = "--" if s.provenance is Provenance.ESTIMATED else "-"
        label = s.label + (" (estimated)" if s.provenance is Provenance.ESTIMATED else "")
        color = PALETTE[i % len(PALETTE)]
        if fig.steps:
            ax.step(xs, ys, where="post", linestyle=style, color=color, label=label, lw=1.6)
        else:
            ax.plot(xs, ys, linestyle=style, color=color, label=label, lw=1.8, marker=".")
    for ref in fig.ref_lines:
        line = ax.axvline if ref.vertical else ax.axhline
        line(ref.value, color="#555", linestyle=":", lw=1.2, label=ref.label)
    for m in fig.markers:
        ax.plot([m.x], [m.y], "o", ms=9, mfc="white", mec="#c00", mew=2.2)
        ax.annotate(m.label, (m.x, m.y), xytext=(8, 8), textcoords="offset points", color="#c00")
    if fig.x.log:
        ax.set_xscale("log")
    if fig.y.log:
        ax.set_yscale("log")
    ax.set_xlabel(fig.x.title)
    ax.set_ylabel(fig.y.title)


def _bars(ax: Any, fig: BarFigure) -> None:
    names: list[str] = []
    for g in fig.groups:
        for b in g.bars:
            if b.series not in names:
                names.append(b.series)
    width = 0.8 / max(max((len(g.bars) for g in fig.groups), default=1), 1)
    labelled: set[str] = set()
    for gi, g in enumerate(fig.groups):
        for bi, b in enumerate(g.bars):
            color = PALETTE[names.index(b.series) % len(PALETTE)]
            est = b.provenance is Provenance.ESTIMATED
            label = b.series + (" (estimated)" if est and "estimat" not in b.series else "")
            ax.bar(
                gi - 0.4 + width * (bi + 0.5),
                b.value,
                width * 0.95,
                color="white" if est else color,
                edgecolor=color,
                hatch="///" if est else None,
                label=None if label in labelled else label,
            )
            labelled.add(label)
    for ref in fig.ref_lines:
        ax.axhline(ref.value, color="#555", linestyle=":", lw=1.2, label=ref.label)
    ax.set_xticks(range(len(fig.groups)))
    ax.set_xticklabels(
        [textwrap.shorten(g.category, 28, placeholder="…") for g in fig.groups],
        rotation=20 if len(fig.groups) > 4 else 0,
        ha="right" if len(fig.groups) > 4 else "center",
    )
    ax.set_ylabel(fig.value_axis.title)


def _tornado(ax: Any, fig: TornadoFigure) -> None:
    ys = range(len(fig.rows))
    ax.barh(
        ys,
        [r.low - fig.base for r in fig.rows],
        left=fig.base,
        color=PALETTE[0],
        label="input at its low value",
    )
    ax.barh(
        ys,
        [r.high - fig.base for r in fig.rows],
        left=fig.base,
        color=PALETTE[1],
        label="input at its high value",
    )
    ax.axvline(fig.base, color="black", lw=1.2)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([textwrap.shorten(r.label, 40, placeholder="…") for r in fig.rows])
    ax.invert_yaxis()
    ax.set_xlabel(fig.value_axis.title)


def _histogram(ax: Any, fig: HistogramFigure) -> None:
    est = fig.provenance is Provenance.ESTIMATED
    ax.stairs(
        fig.counts,
        fig.edges,
        fill=True,
        color="white" if est else PALETTE[0],
        edgecolor=PALETTE[0],
        hatch="///" if est else None,
        label="draws per bin" + (" (estimated)" if est else ""),
    )
    for ref in fig.markers:
        ax.axvline(ref.value, color="#555", linestyle=":", lw=1.2)
        ax.annotate(
            ref.label,
            (ref.value, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
        )
    ax.set_xlabel(fig.x.title)
    ax.set_ylabel("draws (count)")


def _points(ax: Any, fig: PointsFigure) -> None:
    labelled: set[str] = set()
    for gi, g in enumerate(fig.groups):
        color = WARN if g.flagged else PALETTE[0]
        n = len(g.points)
        xs = [gi - 0.35 + 0.4 * (k + 0.5) / max(n, 1) for k in range(n)]
        label = "runs disagree" if g.flagged else "one run"
        ax.scatter(xs, g.points, color=color, s=22, label=None if label in labelled else label)
        labelled.add(label)
        err = None
        if g.low is not None and g.high is not None:
            err = [[g.summary - g.low], [g.high - g.summary]]
        summary = "mean of the runs, 95% interval"
        ax.errorbar(
            [gi + 0.22],
            [g.summary],
            yerr=err,
            fmt="_",
            color="black",
            ms=14,
            mew=2.5,
            capsize=4,
            label=None if summary in labelled else summary,
        )
        labelled.add(summary)
    ax.set_xticks(range(len(fig.groups)))
    ax.set_xticklabels(
        [textwrap.fill(textwrap.shorten(g.category, 72, placeholder="…"), 26) for g in fig.groups],
        fontsize=8,
    )
    if fig.value_axis.log:
        ax.set_yscale("log")
    ax.set_ylabel(fig.value_axis.title)


def write_png(fig: Figure, path: Path) -> Path:
    """Draw ``fig`` into a PNG file at ``path``."""
    plt = _pyplot()
    caption = "\n".join(textwrap.wrap(fig.caption, 110))
    lines = caption.count("\n") + 1
    f, ax = plt.subplots(figsize=(9, 5.2 + 0.18 * lines), dpi=110)
    try:
        if isinstance(fig, LineFigure):
            _line(ax, fig)
        elif isinstance(fig, BarFigure):
            _bars(ax, fig)
        elif isinstance(fig, TornadoFigure):
            _tornado(ax, fig)
        elif isinstance(fig, PointsFigure):
            _points(ax, fig)
        else:
            _histogram(ax, fig)
        ax.set_title(fig.title, loc="left")
        ax.grid(True, alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(loc="best", fontsize=8)
        f.text(0.01, 0.01, caption, fontsize=7.5, va="bottom", ha="left", color="#333")
        f.tight_layout(rect=(0, 0.03 + 0.022 * lines, 1, 1))
        f.savefig(path)
    finally:
        plt.close(f)
    return path
