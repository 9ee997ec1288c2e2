"""A small inline-SVG chart writer: lines (and CDF steps), grouped bars, tornado, histogram,
points per repetition.

Pure string building: no fonts, scripts or external references, so the SVG renders inside a
self-contained HTML file. Ids inside each SVG are prefixed with the figure id, because many
SVGs share one document. Estimated series are dashed, estimated bars hatched.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from tippingpoint.reports.charts.spec import (
    Axis,
    BarFigure,
    Figure,
    HistogramFigure,
    LineFigure,
    PointsFigure,
    Provenance,
    RefLine,
    TornadoFigure,
)

PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)
"""Okabe-Ito colours, readable by colour-blind viewers."""

WIDTH = 720
BASE_HEIGHT = 380
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
DASH = "7 4"


def fmt_num(v: float) -> str:
    """A compact label for a number: 1.2M, 35k, 0.0072, 12.5."""
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1e9:
        return f"{v / 1e9:.3g}G"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}k"
    if a >= 1:
        return f"{v:,.4g}" if a < 1000 else f"{v:,.0f}"
    return f"{v:.2g}"


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round-numbered ticks covering [lo, hi] (about ``count`` of them)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks at 1, 2 and 5 times powers of ten inside [lo, hi] (every digit on short ranges)."""
    a = math.floor(math.log10(lo))
    b = math.ceil(math.log10(hi))
    for mults in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0**e for e in range(a, b + 1) for m in mults]
        inside = [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]
        if len(inside) >= 4 or (mults == (1,) and len(inside) >= 3):
            return inside
    return inside if len(inside) >= 2 else [lo, hi]


@dataclass(frozen=True)
class Scale:
    """Maps a data interval onto a pixel interval, linearly or logarithmically."""

    d0: float
    d1: float
    r0: float
    r1: float
    log: bool = False

    @classmethod
    def fit(cls, values: Sequence[float], r0: float, r1: float, log: bool, zero: bool) -> Scale:
        """A scale over ``values`` padded to round ticks; ``zero`` includes 0 on linear scales."""
        finite = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if not finite:
            return cls(0.0, 1.0, r0, r1, False)
        lo, hi = min(finite), max(finite)
        if log and hi / lo > 1.0001:
            pad = (hi / lo) ** 0.03
            return cls(lo / pad, hi * pad, r0, r1, True)
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        ticks = nice_ticks(lo, hi)
        return cls(ticks[0], ticks[-1], r0, r1, False)

    def __call__(self, v: float) -> float:
        """Pixel position of data value ``v``."""
        if self.log:
            v = max(v, self.d0)
            t = (math.log10(v) - math.log10(self.d0)) / (math.log10(self.d1) - math.log10(self.d0))
        else:
            t = (v - self.d0) / ((self.d1 - self.d0) or 1.0)
        return self.r0 + t * (self.r1 - self.r0)

    def ticks(self) -> list[float]:
        """Tick values inside the domain."""
        if self.log:
            return log_ticks(self.d0, self.d1)
        return [t for t in nice_ticks(self.d0, self.d1) if self.d0 <= t <= self.d1 + 1e-12]


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "middle", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(s)}</text>"
    )


def _fit_label(s: str, px: float, size: int = 11) -> str:
    room = max(int(px / (size * 0.58)), 3)
    return s if len(s) <= room else s[: room - 1] + "…"


class _Canvas:
    """An SVG document under construction, with a plot area and a legend below it."""

    def __init__(self, fig_id: str, title: str, caption: str, legend: list[tuple[str, int, bool]]):
        self.id = "".join(ch if ch.isalnum() else "-" for ch in fig_id)
        self.title = title
        self.caption = caption
        self.legend = legend
        self.left, self.right, self.top = 74.0, WIDTH - 20.0, 44.0
        self.rows = self._legend_rows()
        self.height = BASE_HEIGHT + 20 * len(self.rows)
        self.bottom = BASE_HEIGHT - 62.0
        self.parts: list[str] = []

    def _legend_rows(self) -> list[list[tuple[str, int, bool, float]]]:
        rows: list[list[tuple[str, int, bool, float]]] = [[]]
        used = 0.0
        avail = WIDTH - 2 * 20.0
        for label, color, est in self.legend:
            text = label + (" (estimated)" if est and "estimat" not in label else "")
            w = min(len(text) * 6.6 + 34, avail)
            if used + w > avail and rows[-1]:
                rows.append([])
                used = 0.0
            rows[-1].append((text, color, est, w))
            used += w
        return [r for r in rows if r]

    def add(self, s: str) -> None:
        """Append raw SVG markup."""
        self.parts.append(s)

    def hatch_id(self, color: int) -> str:
        """The id of the hatch pattern in palette colour ``color``."""
        return f"{self.id}-hatch-{color}"

    def axes(self, x: Scale | None, y: Scale | None, x_axis: Axis | None, y_axis: Axis) -> None:
        """Draw grid lines, ticks and axis titles."""
        if y is not None:
            for t in y.ticks():
                py = y(t)
                self.add(
                    f'<line x1="{self.left:.1f}" x2="{self.right:.1f}" y1="{py:.1f}" '
                    f'y2="{py:.1f}" stroke="#e3e3e3"/>'
                )
                self.add(_text(self.left - 6, py + 4, fmt_num(t), 11, "end", fill="#444"))
        if x is not None:
            for t in x.ticks():
                px = x(t)
                self.add(
                    f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{self.top:.1f}" '
                    f'y2="{self.bottom:.1f}" stroke="#f0f0f0"/>'
                )
                self.add(_text(px, self.bottom + 16, fmt_num(t), 11, fill="#444"))
        self.add(
            f'<rect x="{self.left:.1f}" y="{self.top:.1f}" width="{self.right - self.left:.1f}" '
            f'height="{self.bottom - self.top:.1f}" fill="none" stroke="#888"/>'
        )
        if x_axis is not None:
            self.add(_text((self.left + self.right) / 2, self.bottom + 36, x_axis.title, 12))
        cy = (self.top + self.bottom) / 2
        self.add(
            f'<text x="16" y="{cy:.1f}" font-size="12" text-anchor="middle" '
            f'transform="rotate(-90 16 {cy:.1f})">{escape(y_axis.title)}</text>'
        )

    def finish(self) -> str:
        """The complete SVG element."""
        defs = "".join(
            f'<pattern id="{self.hatch_id(i)}" width="6" height="6" '
            f'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            f'<rect width="6" height="6" fill="#fff"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{c}" stroke-width="3"/></pattern>'
            for i, c in enumerate(PALETTE)
        )
        legend: list[str] = []
        y0 = BASE_HEIGHT - 8
        for r, row in enumerate(self.rows):
            x = 20.0
            y = y0 + 20 * r
            for text, color, est, w in row:
                c = PALETTE[color % len(PALETTE)]
                if est:
                    legend.append(
                        f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="22" height="10" '
                        f'fill="url(#{self.hatch_id(color % len(PALETTE))})" stroke="{c}"/>'
                    )
                else:
                    legend.append(
                        f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="22" height="10" fill="{c}"/>'
                    )
                legend.append(_text(x + 28, y, _fit_label(text, w - 30), 11, "start"))
                x += w
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {self.height}" '
            f'width="100%" role="img" aria-labelledby="{self.id}-t {self.id}-d" '
            f'class="chart" data-figure="{escape(self.id)}" style="{FONT};max-width:{WIDTH}px">'
            f'<title id="{self.id}-t">{escape(self.title)}</title>'
            f'<desc id="{self.id}-d">{escape(self.caption)}</desc>'
            f"<defs>{defs}</defs>"
            f'<rect width="{WIDTH}" height="{self.height}" fill="#fff"/>'
            + _text(self.left, 24, _fit_label(self.title, WIDTH - 90, 15), 15, "start")
            + "".join(self.parts)
            + "".join(legend)
            + "</svg>"
        )


def _ref_lines(cv: _Canvas, x: Scale | None, y: Scale | None, refs: Sequence[RefLine]) -> None:
    for ref in refs:
        if ref.vertical and x is not None:
            px = x(ref.value)
            cv.add(
                f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{cv.top:.1f}" y2="{cv.bottom:.1f}" '
                f'stroke="#555" stroke-dasharray="3 3"/>'
            )
            cv.add(_text(px + 4, cv.top + 12, ref.label, 11, "start", fill="#333"))
        elif not ref.vertical and y is not None:
            py = y(ref.value)
            cv.add(
                f'<line x1="{cv.left:.1f}" x2="{cv.right:.1f}" y1="{py:.1f}" y2="{py:.1f}" '
                f'stroke="#555" stroke-dasharray="3 3"/>'
            )
            cv.add(_text(cv.right - 4, py - 4, ref.label, 11, "end", fill="#333"))


def line_svg(fig: LineFigure) -> str:
    """Lines (or CDF steps) with markers and reference lines."""
    legend = [(s.label, i, s.provenance is Provenance.ESTIMATED) for i, s in enumerate(fig.series)]
    cv = _Canvas(fig.id, fig.title, fig.caption, legend)
    xs = [p[0] for s in fig.series for p in s.points] + [m.x for m in fig.markers]
    ys = [p[1] for s in fig.series for p in s.points] + [m.y for m in fig.markers]
    xs += [r.value for r in fig.ref_lines if r.vertical]
    ys += [r.value for r in fig.ref_lines if not r.vertical]
    x = Scale.fit(xs, cv.left, cv.right, fig.x.log, zero=False)
    y = Scale.fit(ys, cv.bottom, cv.top, fig.y.log, zero=not fig.y.log)
    cv.axes(x, y, fig.x, fig.y)
    for i, s in enumerate(fig.series):
        if not s.points:
            continue
        color = PALETTE[i % len(PALETTE)]
        pts = [(x(px), y(py)) for px, py in s.points]
        d = f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"
        for (_, _py0), (px1, py1) in itertools.pairwise(pts):
            d += f"H{px1:.1f}V{py1:.1f}" if fig.steps else f"L{px1:.1f},{py1:.1f}"
        dash = f' stroke-dasharray="{DASH}"' if s.provenance is Provenance.ESTIMATED else ""
        cv.add(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        if not fig.steps and len(pts) <= 24:
            cv.add(
                "".join(
                    f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>' for px, py in pts
                )
            )
    _ref_lines(cv, x, y, fig.ref_lines)
    for m in fig.markers:
        px, py = x(m.x), y(m.y)
        anchor = "end" if px > (cv.left + cv.right) / 2 else "start"
        dx = -8 if anchor == "end" else 8
        cv.add(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="#fff" stroke="#c00" '
            f'stroke-width="2.5" class="marker"/>'
        )
        cv.add(_text(px + dx, py - 9, m.label, 12, anchor, fill="#c00", font_weight="bold"))
    return cv.finish()


def bar_svg(fig: BarFigure) -> str:
    """Grouped vertical bars; estimated bars hatched; values printed when there is room."""
    names: list[str] = []
    estimated: dict[str, bool] = {}
    for g in fig.groups:
        for b in g.bars:
            if b.series not in names:
                names.append(b.series)
            estimated[b.series] = estimated.get(b.series, False) or (
                b.provenance is Provenance.ESTIMATED
            )
    legend = [(n, i, estimated[n]) for i, n in enumerate(names)]
    cv = _Canvas(fig.id, fig.title, fig.caption, legend)
    values = [b.value for g in fig.groups for b in g.bars] + [r.value for r in fig.ref_lines]
    y = Scale.fit(values, cv.bottom, cv.top, False, zero=True)
    cv.axes(None, y, None, fig.value_axis)
    n_groups = max(len(fig.groups), 1)
    gw = (cv.right - cv.left) / n_groups
    total_bars = sum(len(g.bars) for g in fig.groups)
    for gi, g in enumerate(fig.groups):
        gx = cv.left + gi * gw
        bw = gw * 0.8 / max(len(g.bars), 1)
        for bi, b in enumerate(g.bars):
            ci = names.index(b.series) % len(PALETTE)
            bx = gx + gw * 0.1 + bi * bw
            y0, y1 = y(0.0), y(b.value)
            top, h = min(y0, y1), abs(y1 - y0)
            fill = (
                f"url(#{cv.hatch_id(ci)})" if b.provenance is Provenance.ESTIMATED else PALETTE[ci]
            )
            cv.add(
                f'<rect x="{bx + 1:.1f}" y="{top:.1f}" width="{max(bw - 2, 1):.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{fill}" stroke="{PALETTE[ci]}">'
                f"<title>{escape(f'{b.series}, {g.category}: {b.value:.6g}')}</title></rect>"
            )
            if total_bars <= 16 and bw >= 22:
                cv.add(_text(bx + bw / 2, top - 4, fmt_num(b.value), 10, fill="#333"))
        cv.add(_text(gx + gw / 2, cv.bottom + 16, _fit_label(g.category, gw), 11))
    _ref_lines(cv, None, y, fig.ref_lines)
    return cv.finish()


def tornado_svg(fig: TornadoFigure) -> str:
    """Horizontal bars from each input's low-value outcome to its high-value outcome."""
    legend = [("input at its low value", 0, False), ("input at its high value", 1, False)]
    cv = _Canvas(fig.id, fig.title, fig.caption, legend)
    longest = max((len(r.label) for r in fig.rows), default=10)
    cv.left = min(max(longest * 6.4 + 16, 120.0), 320.0)
    values = [v for r in fig.rows for v in (r.low, r.high)] + [fig.base]
    x = Scale.fit(values, cv.left, cv.right, False, zero=False)
    cv.axes(x, None, fig.value_axis, Axis("", ""))
    n = max(len(fig.rows), 1)
    rh = (cv.bottom - cv.top) / n
    bx0 = x(fig.base)
    for i, r in enumerate(fig.rows):
        ry = cv.top + i * rh + rh * 0.15
        h = rh * 0.7
        for value, color in ((r.low, PALETTE[0]), (r.high, PALETTE[1])):
            px = x(value)
            cv.add(
                f'<rect x="{min(px, bx0):.1f}" y="{ry:.1f}" width="{max(abs(px - bx0), 1):.1f}" '
                f'height="{h:.1f}" fill="{color}" opacity="0.85">'
                f"<title>{escape(f'{r.label}: {value:.6g}')}</title></rect>"
            )
        cv.add(_text(cv.left - 6, ry + h / 2 + 4, _fit_label(r.label, cv.left - 12), 11, "end"))
    cv.add(
        f'<line x1="{bx0:.1f}" x2="{bx0:.1f}" y1="{cv.top:.1f}" y2="{cv.bottom:.1f}" '
        f'stroke="#000" stroke-width="1.5"/>'
    )
    cv.add(_text(bx0, cv.top - 6, f"base {fmt_num(fig.base)}", 11, fill="#000"))
    return cv.finish()


def histogram_svg(fig: HistogramFigure) -> str:
    """Adjacent bars over bin edges, with labelled vertical markers (e.g. P5, P50, P95)."""
    est = fig.provenance is Provenance.ESTIMATED
    cv = _Canvas(fig.id, fig.title, fig.caption, [("draws per bin", 0, est)])
    x = Scale.fit(list(fig.edges) + [m.value for m in fig.markers], cv.left, cv.right, False, False)
    y = Scale.fit(list(fig.counts), cv.bottom, cv.top, False, zero=True)
    cv.axes(x, y, fig.x, Axis("draws", "count"))
    fill = f"url(#{cv.hatch_id(0)})" if est else PALETTE[0]
    for lo, hi, c in zip(fig.edges, fig.edges[1:], fig.counts, strict=False):
        x0, x1 = x(lo), x(hi)
        cv.add(
            f'<rect x="{x0:.1f}" y="{y(c):.1f}" width="{max(x1 - x0, 0.5):.1f}" '
            f'height="{max(y(0) - y(c), 0):.1f}" fill="{fill}" stroke="{PALETTE[0]}" '
            f'stroke-width="0.5"/>'
        )
    _ref_lines(cv, x, y, fig.markers)
    return cv.finish()


WARN = "#D55E00"


def points_svg(fig: PointsFigure) -> str:
    """Per category, one dot per run (spread left of centre in run order) and, to their right,
    the summary as a bar with its interval as a whisker; a flagged group is drawn in the
    warning colour."""
    legend = [("one run", 0, False), ("mean of the runs, 95% interval", 6, False)]
    if any(g.flagged for g in fig.groups):
        legend.append(("runs disagree", 1, False))
    cv = _Canvas(fig.id, fig.title, fig.caption, legend)
    values = [v for g in fig.groups for v in (*g.points, g.summary)]
    values += [v for g in fig.groups for v in (g.low, g.high) if v is not None]
    y = Scale.fit(values, cv.bottom, cv.top, fig.value_axis.log, zero=not fig.value_axis.log)
    cv.axes(None, y, None, fig.value_axis)
    gw = (cv.right - cv.left) / max(len(fig.groups), 1)
    for gi, g in enumerate(fig.groups):
        gx = cv.left + gi * gw
        color = WARN if g.flagged else PALETTE[0]
        n = len(g.points)
        for k, v in enumerate(g.points):
            px = gx + gw * (0.15 + 0.4 * (k + 0.5) / max(n, 1))
            cv.add(
                f'<circle cx="{px:.1f}" cy="{y(v):.1f}" r="4" fill="{color}" '
                f'fill-opacity="0.8"><title>{escape(f"{g.category}, run {k + 1}: {v:.6g}")}'
                "</title></circle>"
            )
        sx = gx + gw * 0.72
        if g.low is not None and g.high is not None:
            cv.add(
                f'<line x1="{sx:.1f}" x2="{sx:.1f}" y1="{y(g.low):.1f}" y2="{y(g.high):.1f}" '
                f'stroke="#000" stroke-width="1.5"/>'
            )
        cv.add(
            f'<line x1="{sx - 10:.1f}" x2="{sx + 10:.1f}" y1="{y(g.summary):.1f}" '
            f'y2="{y(g.summary):.1f}" stroke="#000" stroke-width="3">'
            f"<title>{escape(f'{g.category}: mean {g.summary:.6g}')}</title></line>"
        )
        cv.add(_text(gx + gw / 2, cv.bottom + 16, _fit_label(g.category, gw), 11))
    return cv.finish()


def figure_svg(fig: Figure) -> str:
    """Draw any figure as an SVG element."""
    if isinstance(fig, PointsFigure):
        return points_svg(fig)
    if isinstance(fig, LineFigure):
        return line_svg(fig)
    if isinstance(fig, BarFigure):
        return bar_svg(fig)
    if isinstance(fig, TornadoFigure):
        return tornado_svg(fig)
    return histogram_svg(fig)
