"""A cost result as tables an analyst can take away: CSV files and an .xlsx workbook.

Reads the result, never computes a figure. Every table is a header of names with units in
brackets and rows of plain values: numbers stay numbers (floats and ints), dates ISO strings,
missing figures empty. Tables: summary, placements (with capex and opex subtotals), cost lines,
monthly cash flows by component and placement, inputs (value, range, basis, source, as-of),
tornado, switching values and Monte Carlo percentiles.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from tippingpoint.calculator.result import CloudAnalysis, CostResult, PlacementResult

Cell = float | int | str | bool | None
Table = tuple[tuple[str, ...], list[tuple[Cell, ...]]]

SHEETS = (
    "summary",
    "placements",
    "cost_lines",
    "cash_flows",
    "inputs",
    "tornado",
    "switching",
    "monte_carlo",
)
"""The tables, in workbook order; each CSV file is named after its table."""


def _d(v: date | None) -> str | None:
    return v.isoformat() if v is not None else None


def _placements(result: CostResult) -> list[tuple[str, PlacementResult]]:
    out = [("-", result.edge)]
    out += [(a.cloud, p) for a in result.analyses for p in a.placements]
    return out


def summary(result: CostResult) -> Table:
    """Key figures, one per row: item, value, unit."""
    cur = result.currency
    rec = result.recommendation
    rows: list[tuple[Cell, ...]] = [
        ("schema version", result.schema_version, ""),
        ("computed on", _d(result.computed_on), "date"),
        ("start (month 0)", _d(result.start), "date"),
        ("currency", cur, ""),
        ("exchange rate", result.fx_rate, f"{cur} per USD"),
        ("model", result.model, ""),
        ("variant", result.variant, ""),
        ("device", result.device, ""),
        ("network", result.network, ""),
        ("energy", result.energy, ""),
        ("workload", result.workload, ""),
        ("horizon", result.horizon_months, "months"),
        ("SLO p99", result.slo_p99_ms, "ms"),
        ("illustrative", "; ".join(result.illustrative) or None, ""),
        ("caveats", "; ".join(result.caveats) or None, ""),
        ("recommendation status", rec.status.value, ""),
        ("recommended placement", rec.label, ""),
        ("recommendation reason", rec.reason, ""),
        ("invalid inputs", "; ".join(rec.invalid_inputs) or None, ""),
    ]
    for a in result.analyses:
        rows.extend(_analysis_summary(a, cur))
    return ("item", "value", "unit"), rows


def _analysis_summary(a: CloudAnalysis, cur: str) -> list[tuple[Cell, ...]]:
    tag = f"vs {a.cloud}: "
    if a.not_measured:
        return [(tag + "not measured", a.not_measured, "")]
    rows: list[tuple[Cell, ...]] = []
    c = a.comparison
    if c is not None:
        rows += [
            (tag + "NPV of choosing edge", c.npv_savings, cur),
            (tag + "payback", c.payback_months, "months"),
            (tag + "payback date", _d(c.payback_date), "date"),
            (tag + "discounted payback", c.discounted_payback_months, "months"),
            (tag + "discounted payback", c.discounted_payback_hours, "hours"),
            (tag + "discounted payback date", _d(c.discounted_payback_date), "date"),
            (tag + "break-even month", c.break_even_month, "month"),
            (tag + "tipping volume", c.tipping.volume_per_day, "inferences/day"),
            (tag + "tipping basis", c.tipping.basis, ""),
        ]
    mc = a.monte_carlo
    if mc is not None:
        rows += [
            (tag + "P(edge cheaper)", mc.p_edge_cheaper, "probability"),
            (tag + "P(loss choosing edge)", mc.p_loss, "probability"),
            (tag + "expected NPV of choosing edge", mc.expected_saving, cur),
            (tag + "VaR95 of the NPV (P5)", mc.savings.var95, cur),
            (tag + "CVaR95 of the NPV (mean at or below P5)", mc.savings.cvar95, cur),
        ]
    return rows


def placements(result: CostResult) -> Table:
    """One row per placement: feasibility, cost views, capex and opex, energy."""
    cur = result.currency
    head = (
        "analysis",
        "placement",
        "label",
        "feasible",
        "reason",
        "p99 [ms]",
        "p99 basis",
        "peak upload [Mbit/s]",
        f"cost per million [{cur}/M inferences]",
        f"year one [{cur}]",
        f"TCO [{cur}]",
        f"PV [{cur}]",
        f"EAC [{cur}/year]",
        f"capex TCO [{cur}]",
        f"opex TCO [{cur}]",
        f"capex PV [{cur}]",
        f"opex PV [{cur}]",
        "edge units year one",
        "cloud instances year one",
        "energy [kWh/year]",
        "energy basis",
        "CO2e [kg/year]",
        "caveats",
    )
    rows: list[tuple[Cell, ...]] = []
    for cloud, p in _placements(result):
        rows.append(
            (
                cloud,
                p.placement.value,
                p.label,
                p.feasible,
                p.reason,
                p.latency.p99_ms,
                p.latency.basis.value if p.latency.basis else None,
                p.link.peak_upload_mbps if p.link is not None else None,
                p.cost_per_million,
                p.annual_cost,
                p.tco,
                p.pv,
                p.eac,
                p.capex_tco,
                p.opex_tco,
                p.capex_pv,
                p.opex_pv,
                p.edge_units_year1,
                p.cloud_instances_year1,
                p.kwh_per_year,
                p.kwh_basis.value if p.kwh_basis else None,
                p.co2e_kg_per_year,
                "; ".join(p.caveats) or None,
            )
        )
    for a in result.analyses:
        if a.not_measured:
            rows.append((a.cloud, "cloud", f"cloud: {a.cloud}", False, a.not_measured))
    return head, [r + (None,) * (len(head) - len(r)) for r in rows]


def cost_lines(result: CostResult) -> Table:
    """Every cost line of every placement."""
    cur = result.currency
    head = (
        "analysis",
        "placement",
        "component",
        "kind",
        f"year one [{cur}]",
        f"TCO [{cur}]",
        f"PV [{cur}]",
        "basis",
        "inputs",
        "assumed inputs",
        "how",
        "caveats",
    )
    rows: list[tuple[Cell, ...]] = [
        (
            cloud,
            p.label,
            ln.component.value,
            ln.category,
            ln.annual,
            ln.tco,
            ln.pv,
            ln.basis.value,
            ", ".join(i.value for i in ln.inputs) or None,
            ", ".join(i.value for i in ln.assumed_inputs) or None,
            ln.note,
            "; ".join(ln.caveats) or None,
        )
        for cloud, p in _placements(result)
        for ln in p.lines
    ]
    return head, rows


def cash_flows(result: CostResult) -> Table:
    """Monthly cash flows, undiscounted: one row a month, one column per placement and
    component (month 0 is upfront)."""
    cur = result.currency
    cols: list[tuple[str, Sequence[float]]] = []
    for _, p in _placements(result):
        for cf in p.cash_flows:
            cols.append((f"{p.label} | {cf.component.value} [{cur}]", cf.values))
    months = max((len(v) for _, v in cols), default=0)
    head = ("month", *(name for name, _ in cols))
    rows: list[tuple[Cell, ...]] = [
        (t, *(v[t] if t < len(v) else None for _, v in cols)) for t in range(months)
    ]
    return head, rows


def inputs(result: CostResult) -> Table:
    """Every input of every analysis: value, range, basis, source, as-of."""
    head = (
        "analysis",
        "input",
        "value",
        "unit",
        "low",
        "high",
        "distribution",
        "basis",
        "range stated",
        "range note",
        "source",
        "origin",
        "as of",
        "stale",
    )
    rows: list[tuple[Cell, ...]] = [
        (
            a.cloud,
            r.param.value,
            r.value,
            r.unit,
            r.low,
            r.high,
            r.distribution.value,
            r.basis.value,
            r.range_stated,
            r.range_note,
            r.source,
            r.origin,
            _d(r.as_of),
            r.stale,
        )
        for a in result.analyses
        for r in a.inputs
    ]
    return head, rows


def tornado(result: CostResult) -> Table:
    """Each input at its low and high, the rest at base: the NPV of choosing edge."""
    cur = result.currency
    head = (
        "analysis",
        "input",
        "unit",
        "base",
        "low",
        "high",
        f"NPV at low [{cur}]",
        f"NPV at high [{cur}]",
        f"swing [{cur}]",
    )
    rows: list[tuple[Cell, ...]] = [
        (
            a.cloud,
            r.param.value,
            r.unit,
            r.base_value,
            r.low,
            r.high,
            r.metric_low,
            r.metric_high,
            r.swing,
        )
        for a in result.analyses
        if a.tornado is not None
        for r in a.tornado.rows
    ]
    return head, rows


def switching(result: CostResult) -> Table:
    """The value of each leading input at which the cheaper placement flips."""
    head = (
        "analysis",
        "input",
        "unit",
        "base",
        "switching value",
        "change [share of base]",
        "within range",
        "searched low",
        "searched high",
        "cheaper beyond",
    )
    rows: list[tuple[Cell, ...]] = [
        (
            a.cloud,
            s.param.value,
            s.unit,
            s.base_value,
            s.value,
            s.change,
            s.within_range,
            s.searched_low,
            s.searched_high,
            s.cheaper_beyond.value if s.cheaper_beyond else None,
        )
        for a in result.analyses
        for s in a.switching
    ]
    return head, rows


def monte_carlo(result: CostResult) -> Table:
    """Percentiles and tail risk of the present values and of the NPV of choosing edge."""
    cur = result.currency
    head = (
        "analysis",
        "quantity",
        f"mean [{cur}]",
        f"std [{cur}]",
        f"P5 [{cur}]",
        f"P50 [{cur}]",
        f"P95 [{cur}]",
        f"VaR95 [{cur}]",
        f"CVaR95 [{cur}]",
        "risk tail",
        "draws",
        "seed",
    )
    rows: list[tuple[Cell, ...]] = []
    for a in result.analyses:
        mc = a.monte_carlo
        if mc is None:
            continue
        for name, s in (
            ("edge PV", mc.edge_pv),
            ("cloud PV", mc.cloud_pv),
            ("NPV of choosing edge", mc.savings),
        ):
            figures = (s.mean, s.std, s.p5, s.p50, s.p95, s.var95, s.cvar95, s.tail)
            rows.append((a.cloud, name, *figures, mc.draws, mc.seed))
    return head, rows


def tables(result: CostResult) -> dict[str, Table]:
    """Every table, keyed by name in :data:`SHEETS` order."""
    makers = (summary, placements, cost_lines, cash_flows, inputs, tornado, switching, monte_carlo)
    return dict(zip(SHEETS, (make(result) for make in makers), strict=True))


def write_csv(result: CostResult, folder: Path) -> list[Path]:
    """One CSV file per table in ``folder`` (created); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, (head, rows) in tables(result).items():
        path = folder / f"{name}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(head)
            w.writerows(["" if c is None else c for c in row] for row in rows)
        out.append(path)
    return out


def write_xlsx(result: CostResult, path: Path) -> None:
    """A workbook with one sheet per table (openpyxl, the ``report`` extra)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    for i, (name, (head, rows)) in enumerate(tables(result).items()):
        ws = wb.worksheets[0] if i == 0 else wb.create_sheet(name)
        ws.title = name
        ws.append(list(head))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(list(row))
        ws.freeze_panes = "A2"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
