"""External meters (a real command, a CSV log) and the estimate, with hand-worked figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tippingpoint.core.schema import MeasurementMethod
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.estimate import EstimateCollector, estimate_watts
from tippingpoint.harness.collectors.meter import (
    MeterCommandCollector,
    MeterCsvCollector,
    parse_watts,
    read_meter_csv,
)

from .fakes.sysfs import FakeClock


def _value(result, quantity):
    return next(m.value for m in result.measurements if m.quantity == quantity)


def test_parse_watts():
    assert parse_watts("12.5\n") == 12.5
    assert parse_watts("power: 3.3 W") == 3.3
    assert parse_watts("1e1") == 10.0
    with pytest.raises(ValueError, match="no number"):
        parse_watts("n/a")


def test_meter_command_runs_a_real_command_and_integrates():
    clock = FakeClock()
    cmd = ["echo", "7.25 W"]
    c = MeterCommandCollector(cmd, clock=clock, background=False, windows=1)
    c.open()
    c.begin_window(clock())
    for _ in range(12):
        clock.advance(0.25)
        c.poll()
    r = c.end_window(clock(), queries=3, samples=3)
    assert r.valid, r.invalid_reason
    assert r.scope == "external-meter"
    assert r.method is MeasurementMethod.SAMPLED
    assert _value(r, "energy") == pytest.approx(7.25 * 3.0)


def test_meter_command_that_prints_no_number_is_skipped_with_the_reason():
    cmd = ["echo", "meter offline"]
    with pytest.raises(CollectorUnavailable, match=r"printed no number.*must print"):
        MeterCommandCollector(cmd, background=False).open()
    with pytest.raises(CollectorUnavailable, match="meter command failed"):
        MeterCommandCollector(["/nonexistent/meter"], background=False).open()


def _csv(path: Path, start_unix: float, watts: list[float], step: float = 0.5) -> None:
    lines = ["timestamp,watts"]
    lines += [f"{start_unix + i * step:.3f},{w}" for i, w in enumerate(watts)]
    path.write_text("\n".join(lines) + "\n")


def test_meter_csv_is_aligned_to_the_window_by_wall_clock(tmp_path):
    clock = FakeClock(start_ns=50_000_000_000)
    wall_offset = 1_700_000_000_000_000_000 - clock()

    def wall() -> int:
        return clock() + wall_offset

    log = tmp_path / "meter.csv"
    c = MeterCsvCollector(log, wall_clock=wall, clock=clock, windows=1)
    c.open()
    t0 = clock()
    c.begin_window(t0)
    clock.advance(4.0)
    start_unix = (t0 + wall_offset) / 1e9 - 1.0
    # 1 s before the window at 10 W, then 4 s at 20 W, then after at 10 W
    _csv(log, start_unix, [10.0, 10.0] + [20.0] * 9 + [10.0, 10.0])
    r = c.end_window(clock(), queries=4, samples=4)
    assert r.valid, r.invalid_reason
    assert _value(r, "energy") == pytest.approx(80.0)  # 20 W x 4 s
    assert _value(r, "window_start_unix") == pytest.approx((t0 + wall_offset) / 1e9)


def test_meter_csv_that_misses_the_window_is_invalid(tmp_path):
    clock = FakeClock()
    log = tmp_path / "meter.csv"
    c = MeterCsvCollector(log, wall_clock=lambda: clock() + 10**18, clock=clock, windows=1)
    c.open()
    c.begin_window(clock())
    clock.advance(4.0)
    _csv(log, (clock() + 10**18) / 1e9 - 1.0, [5.0, 5.0, 5.0, 5.0])  # only the last second
    r = c.end_window(clock(), queries=1, samples=1)
    assert not r.valid
    assert "does not cover the whole window" in (r.invalid_reason or "")


def test_meter_csv_volts_amps_and_iso_times(tmp_path):
    log = tmp_path / "usb.csv"
    log.write_text(
        "Time,Voltage,Current\n2026-01-01T00:00:00+00:00,5.0,0.5\n2026-01-01T00:00:01Z,5.0,1.0\n"
    )
    rows = read_meter_csv(log)
    assert rows == [(1_767_225_600_000_000_000, 2.5), (1_767_225_601_000_000_000, 5.0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("when,what\n1,2\n")
    with pytest.raises(ValueError, match="needs a time column"):
        read_meter_csv(bad)


# -- estimate -------------------------------------------------------------------------------


def test_estimate_watts_by_hand():
    assert estimate_watts(3.0, 12.0, 0.0) == 3.0
    assert estimate_watts(3.0, 12.0, 1.0) == 12.0
    assert estimate_watts(3.0, 12.0, 0.25) == 5.25  # 3 + 9 x 0.25
    assert estimate_watts(3.0, 12.0, 1.7) == 12.0  # clamped


def test_estimate_collector_hand_worked_case():
    # 4 CPUs, 10 s wall, 10 s of process CPU time: u = 10 / (10 x 4) = 0.25
    # P = 3 + (12 - 3) x 0.25 = 5.25 W; E = 52.5 J
    clock = FakeClock()
    cpu = {"ns": 7_000_000_000}
    c = EstimateCollector(
        3.0,
        12.0,
        cpus=4,
        profile="rpi5",
        cpu_time_ns=lambda: cpu["ns"],
        clock=clock,
        background=False,
    )
    c.open()
    c.begin_window(clock())
    for _ in range(10):
        clock.advance(1.0)
        cpu["ns"] += 1_000_000_000
        c.poll()
    r = c.end_window(clock(), queries=100, samples=100)
    assert r.valid, r.invalid_reason
    assert r.method is MeasurementMethod.ESTIMATED
    assert r.scope == "system-estimate"
    assert _value(r, "energy") == pytest.approx(52.5)
    assert _value(r, "cpu_utilisation") == pytest.approx(0.25)
    assert _value(r, "estimated_power") == pytest.approx(5.25)
    assert r.formula is not None
    assert "P_idle = 3 W, P_peak = 12 W, N = 4 (profile rpi5)" in r.formula
    assert r.window_energy_j == pytest.approx((10.5,) * 5)


def test_estimate_needs_the_profile_watts():
    with pytest.raises(CollectorUnavailable, match="idle and peak watts"):
        EstimateCollector(background=False).open()
    with pytest.raises(CollectorUnavailable, match="0 <= idle <= peak"):
        EstimateCollector(10.0, 5.0, background=False).open()
