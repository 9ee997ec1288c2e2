"""Figure specifications: the data of a chart, its axes, units and provenance, and no drawing.

A figure is built once from reports (or a cost result) and drawn by either writer: inline SVG
for HTML (:mod:`tippingpoint.reports.charts.svg`) or PNG for Markdown
(:mod:`tippingpoint.reports.charts.png`). Every figure carries a caption that states its units,
its sample counts and whether its values were measured or estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


def slug(text: str) -> str:
    """A file- and id-safe form of ``text``, for figure ids."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


class Provenance(str, Enum):
    """Whether a series holds measured values or estimates; estimates are drawn differently."""

    MEASURED = "measured"
    ESTIMATED = "estimated"


@dataclass(frozen=True)
class Axis:
    """One axis: what it shows, in which unit, on which scale."""

    label: str
    unit: str
    log: bool = False

    @property
    def title(self) -> str:
        """The axis title with its unit, e.g. ``latency (ms)``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


@dataclass(frozen=True)
class Series:
    """A named sequence of (x, y) points."""

    label: str
    points: tuple[tuple[float, float], ...]
    provenance: Provenance = Provenance.MEASURED


@dataclass(frozen=True)
class Marker:
    """A labelled point drawn on top of a line chart (e.g. a break-even point)."""

    label: str
    x: float
    y: float


@dataclass(frozen=True)
class RefLine:
    """A horizontal (``vertical=False``) or vertical reference line with a label."""

    label: str
    value: float
    vertical: bool = False


@dataclass(frozen=True)
class Bar:
    """One bar: its series label, value and provenance."""

    series: str
    value: float
    provenance: Provenance = Provenance.MEASURED


@dataclass(frozen=True)
class BarGroup:
    """Bars sharing one category on the category axis."""

    category: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class TornadoRow:
    """One input of a one-at-a-time sweep: the output at the input's low and high values."""

    label: str
    low: float
    high: float


@dataclass(frozen=True)
class FigureBase:
    """What every figure has: an id (for file names and anchors), a title and a caption."""

    id: str
    title: str
    caption: str


@dataclass(frozen=True)
class LineFigure(FigureBase):
    """Lines over a shared x axis, with optional marked points and reference lines."""

    x: Axis = field(default_factory=lambda: Axis("x", ""))
    y: Axis = field(default_factory=lambda: Axis("y", ""))
    series: tuple[Series, ...] = ()
    markers: tuple[Marker, ...] = ()
    ref_lines: tuple[RefLine, ...] = ()
    steps: bool = False
    """Draw as a step function (a CDF)."""


@dataclass(frozen=True)
class BarFigure(FigureBase):
    """Grouped vertical bars: one group per category, one bar per series."""

    value_axis: Axis = field(default_factory=lambda: Axis("value", ""))
    groups: tuple[BarGroup, ...] = ()
    ref_lines: tuple[RefLine, ...] = ()


@dataclass(frozen=True)
class TornadoFigure(FigureBase):
    """Horizontal bars from each input's low to high outcome around a base value."""

    value_axis: Axis = field(default_factory=lambda: Axis("value", ""))
    base: float = 0.0
    rows: tuple[TornadoRow, ...] = ()


@dataclass(frozen=True)
class HistogramFigure(FigureBase):
    """A histogram given by bin edges and counts, with labelled vertical markers."""

    x: Axis = field(default_factory=lambda: Axis("value", ""))
    edges: tuple[float, ...] = ()
    counts: tuple[float, ...] = ()
    markers: tuple[RefLine, ...] = ()
    provenance: Provenance = Provenance.ESTIMATED


@dataclass(frozen=True)
class PointGroup:
    """One category of a points figure: a value per repetition beside their summary."""

    category: str
    points: tuple[float, ...]
    """One value per run, in repetition order."""
    summary: float
    """The group's value (the mean of its runs)."""
    low: float | None = None
    """The summary's interval, when there is one (two runs or more)."""
    high: float | None = None
    flagged: bool = False
    """The runs disagree beyond the threshold: drawn in the warning colour."""


@dataclass(frozen=True)
class PointsFigure(FigureBase):
    """Per category, each run as a point and beside them the summary with its interval."""

    value_axis: Axis = field(default_factory=lambda: Axis("value", ""))
    groups: tuple[PointGroup, ...] = ()


Figure = LineFigure | BarFigure | TornadoFigure | HistogramFigure | PointsFigure
"""Any figure a writer can draw."""
