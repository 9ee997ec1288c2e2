"""Figures of split runs (``run --split``): every profiled placement's end-to-end latency and
bytes sent, all-edge and all-cloud marked, and latency against bandwidth around the crossover.

Builds :mod:`tippingpoint.reports.charts.spec` figures from the ``split`` record of reports;
draws nothing. The placement bars are measured (the profile); the bandwidth sweep is modelled
from the measured profile (head, tail, the link's round trip, bytes sent) and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from tippingpoint.core.schema import Report, SplitCandidate, SplitRecord
from tippingpoint.reports.charts.spec import (
    Axis,
    Bar,
    BarFigure,
    BarGroup,
    Figure,
    LineFigure,
    Provenance,
    RefLine,
    Series,
    slug,
)

ALL_EDGE = "<all-edge>"
ALL_CLOUD = "<all-cloud>"
SWEEP_POINTS = 40


def short_cut(name: str) -> str:
    """A cut's name as a bar label: its last two path parts (``features.4/MaxPool_output_0``)."""
    if name in (ALL_EDGE, ALL_CLOUD):
        return name.strip("<>")
    parts = [p for p in name.split("/") if p]
    return "/".join(parts[-2:]) or name


def _rtt_s(report: Report) -> float:
    link = report.http.link if report.http is not None else None
    if link is None:
        return 0.0
    return (link.profile.delay_up_ms + link.profile.delay_down_ms) / 1e3


def _modelled_ms(c: SplitCandidate, bandwidth_bps: float, rtt_s: float) -> float:
    """Head + tail + (one round trip + upload at ``bandwidth_bps``) for ``c``, in ms."""
    if c.sent_bytes is None:
        return c.e2e_ms
    fixed = c.head_ms / 1e3 + (c.tail_ms or 0.0) / 1e3 + rtt_s
    return 1e3 * (fixed + 8.0 * c.sent_bytes / bandwidth_bps)


def split_figures(report: Report) -> list[Figure]:
    """The placement chart (latency and bytes) and the bandwidth sweep of one split run."""
    rec = report.split
    if rec is None or not rec.candidates:
        return []
    model = f"{report.model.name} {report.model.variant}"
    where = f" under {rec.network_profile}" if rec.network_profile else " on loopback (no link)"
    key = slug(f"{model}-{rec.network_profile or 'loopback'}-{rec.compression}")
    edge = next((c for c in rec.candidates if c.name == ALL_EDGE), None)
    cloud = next((c for c in rec.candidates if c.name == ALL_CLOUD), None)
    cuts = [c for c in rec.candidates if c.name not in (ALL_EDGE, ALL_CLOUD)]

    def label(c: SplitCandidate) -> str:
        return short_cut(c.name) + (" (chosen)" if c.name == rec.cut else "")

    refs = tuple(
        RefLine(f"{c.name.strip('<>')} {c.e2e_ms:.3g} ms", c.e2e_ms)
        for c in (edge, cloud)
        if c is not None
    )
    n = _profile_queries(report)
    latency = BarFigure(
        id=f"split-lat-{key}",
        title=f"Split placements: {model}{where}",
        caption=(
            f"Measured median end-to-end latency (ms) of each placement{where}: the head on "
            f"this machine, the activation sent ({rec.compression}), the tail on the endpoint"
            f"{n}. The dashed lines are all-edge (the whole model here) and all-cloud (the "
            f"input sent to the whole model). Chosen: {short_cut(rec.cut)} "
            f"({rec.chosen_by}, objective {rec.objective})." + _crossover_note(rec)
        ),
        value_axis=Axis("end-to-end latency", "ms"),
        groups=tuple(
            BarGroup(
                category=label(c),
                bars=(
                    Bar("head", c.head_ms),
                    Bar("transfer", c.transfer_ms or 0.0),
                    Bar("tail", c.tail_ms or 0.0),
                    Bar("end to end", c.e2e_ms),
                ),
            )
            for c in ([cloud] if cloud is not None else []) + cuts + ([edge] if edge else [])
        ),
        ref_lines=refs,
    )
    sent = [c for c in rec.candidates if c.sent_bytes is not None]
    size = BarFigure(
        id=f"split-bytes-{key}",
        title=f"Bytes per request: {model}",
        caption=(
            "Measured bytes of each placement's request: the tensor as the head produced it "
            "(raw) and the request on the wire (as sent: binary tensor plus its JSON header, "
            f"{rec.compression}). All-edge sends nothing."
        ),
        value_axis=Axis("bytes per request", "B"),
        groups=tuple(
            BarGroup(
                category=label(c),
                bars=(Bar("raw", float(c.raw_bytes or 0)), Bar("as sent", c.sent_bytes or 0.0)),
            )
            for c in sent
        ),
    )
    return [latency, size, *_sweep(report, rec, key, model)]


def _profile_queries(report: Report) -> str:
    return "; medians of the profiling requests after a warm-up" if report.split else ""


def _crossover_note(rec: SplitRecord) -> str:
    bw = rec.crossover_bandwidth_bps
    if bw is None:
        return " The chosen split and all-edge do not cross at any bandwidth (modelled)."
    return (
        f" Crossover with all-edge at {bw / 1e6:.3g} Mbit/s (modelled from the profile: "
        "below it all-edge is faster)."
    )


def _sweep(report: Report, rec: SplitRecord, key: str, model: str) -> Sequence[Figure]:
    """Latency against uplink bandwidth for all-edge, all-cloud and the chosen cut, modelled
    from the measured profile, the crossover marked."""
    chosen = next((c for c in rec.candidates if c.name == rec.cut), None)
    cloud = next((c for c in rec.candidates if c.name == ALL_CLOUD), None)
    edge = next((c for c in rec.candidates if c.name == ALL_EDGE), None)
    if chosen is None or edge is None:
        return []
    rtt = _rtt_s(report)
    bw = rec.crossover_bandwidth_bps
    centre = bw if bw is not None else 10e6
    low, high = centre / 100, centre * 100
    xs = [low * (high / low) ** (i / (SWEEP_POINTS - 1)) for i in range(SWEEP_POINTS)]
    series = [
        Series(
            short_cut(c.name),
            tuple((x / 1e6, _modelled_ms(c, x, rtt)) for x in xs),
            Provenance.ESTIMATED,
        )
        for c in (chosen, cloud, edge)
        if c is not None
    ]
    refs: tuple[RefLine, ...] = ()
    if bw:
        refs += (RefLine(f"crossover {bw / 1e6:.3g} Mbit/s", bw / 1e6, vertical=True),)
    link = report.http.link if report.http is not None else None
    up = link.profile.rate_up_mbps if link is not None else None
    if up is not None and low / 1e6 <= up <= high / 1e6:
        refs += (RefLine(f"{rec.network_profile} uplink {up:.3g} Mbit/s", up, vertical=True),)
    return [
        LineFigure(
            id=f"split-bw-{key}",
            title=f"Split vs all-edge against bandwidth: {model}",
            caption=(
                "Modelled, not measured: end-to-end latency (ms) against uplink bandwidth "
                "(Mbit/s, log scale) from the measured profile: head and tail medians, the "
                f"link's round trip ({rtt * 1e3:.3g} ms) and the bytes sent at each bandwidth."
                + _crossover_note(rec)
            ),
            x=Axis("uplink bandwidth", "Mbit/s", log=True),
            y=Axis("end-to-end latency", "ms", log=True),
            series=tuple(series),
            ref_lines=refs,
        )
    ]
