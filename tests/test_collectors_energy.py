"""Joules per inference from collector results: headline choice, median/IQR, idle, warnings."""

from __future__ import annotations

import pytest

from tippingpoint.core.schema import CollectorResult, Measurement, MeasurementMethod
from tippingpoint.harness.collectors.rapl import RaplCollector
from tippingpoint.harness.energy import (
    IdleBaseline,
    IdleReading,
    measure_idle,
    summarise_energy,
)

from .fakes.sysfs import FakeClock, FakeTree, RaplCounter, add_rapl_zone

S = 1_000_000_000


def _result(
    name: str,
    scope: str,
    energy: float | None,
    *,
    method: MeasurementMethod = MeasurementMethod.COUNTER,
    windows: tuple[float, ...] = (),
    seconds: float = 10.0,
    valid: bool = True,
    reason: str | None = None,
    note: str | None = None,
    formula: str | None = None,
) -> CollectorResult:
    ms = (
        ()
        if energy is None
        else (Measurement(quantity="energy", value=energy, unit="J", note=note),)
    )
    return CollectorResult(
        name=name,
        source=f"src:{name}",
        method=method,
        scope=scope,
        window_start_ns=5 * S,
        window_end_ns=5 * S + round(seconds * S),
        valid=valid,
        invalid_reason=reason,
        measurements=ms,
        window_energy_j=windows,
        formula=formula,
    )


def _idle(**watts: float) -> IdleBaseline:
    return IdleBaseline(tuple(IdleReading(n, w) for n, w in watts.items()), 5.0)


def test_no_energy_collector_means_no_summary():
    mem = CollectorResult(
        name="memory",
        source="/proc",
        method=MeasurementMethod.SAMPLED,
        scope="process",
        window_start_ns=0,
        window_end_ns=1,
    )
    assert summarise_energy([mem], 100) is None


def test_median_of_five_windows_with_iqr_and_dynamic_by_hand():
    # 1000 inferences in 10 s, 200 per 2 s window; idle 10 W -> 20 J idle per window
    windows = (40.0, 44.0, 42.0, 60.0, 41.0)
    r = _result("rapl", "cpu-package", sum(windows), windows=windows)
    s = summarise_energy(
        [r],
        1000,
        idle_before=_idle(rapl=10.0),
        idle_after=_idle(rapl=10.2),
        window_samples=[200] * 5,
    )
    assert s is not None and s.valid
    assert s.method is MeasurementMethod.COUNTER
    assert s.windows == 5
    assert s.window_joules_per_inference == pytest.approx((0.2, 0.22, 0.21, 0.3, 0.205))
    assert s.joules_per_inference == pytest.approx(0.21)  # the median, not 227/1000
    # inclusive quartiles of (0.2, 0.205, 0.21, 0.22, 0.3): 0.205 and 0.22
    assert s.iqr_joules_per_inference == pytest.approx(0.015)
    # dynamic: median of (E - 10.1 W x 2 s) / 200 = (42 - 20.2) / 200
    assert s.dynamic_joules_per_inference == pytest.approx((42.0 - 20.2) / 200)
    assert s.idle_watts_before == 10.0 and s.idle_watts_after == 10.2
    assert s.total_joules == pytest.approx(227.0)
    assert s.average_watts == pytest.approx(22.7)
    assert s.warnings == ()


def test_unequal_window_counts_are_used_when_given():
    r = _result("rapl", "cpu-package", 100.0, windows=(20.0,) * 5)
    s = summarise_energy([r], 500, window_samples=[50, 100, 100, 100, 150])
    assert s is not None
    assert s.window_joules_per_inference == pytest.approx((0.4, 0.2, 0.2, 0.2, 20 / 150))
    assert s.joules_per_inference == pytest.approx(0.2)


def test_short_run_falls_back_to_the_whole_window_and_says_so():
    r = _result("nvml", "gpu-board", 30.0, seconds=3.0)
    s = summarise_energy([r], 300)
    assert s is not None and s.valid
    assert s.windows == 1 and s.iqr_joules_per_inference is None
    assert s.joules_per_inference == pytest.approx(0.1)
    assert "whole window" in (s.note or "")


def test_idle_drift_and_non_positive_dynamic_warn():
    r = _result("rapl", "cpu-package", 100.0, windows=(20.0,) * 5)
    s = summarise_energy([r], 100, idle_before=_idle(rapl=9.0), idle_after=_idle(rapl=11.0))
    assert s is not None
    assert any("idle power drifted +22.2%" in w for w in s.warnings)
    assert any("dynamic energy" in w and "<= 0" in w for w in s.warnings)
    assert s.dynamic_joules_per_inference is not None and s.dynamic_joules_per_inference <= 0


def test_whole_device_source_wins_over_parts_and_estimate():
    rapl = _result("rapl", "cpu-package", 50.0)
    jetson = _result("jetson", "module-input", 80.0, method=MeasurementMethod.SAMPLED)
    est = _result("estimate", "system-estimate", 70.0, method=MeasurementMethod.ESTIMATED)
    s = summarise_energy([rapl, est, jetson], 100)
    assert s is not None
    assert s.scope == "module-input" and s.source == "src:jetson"
    assert s.method is MeasurementMethod.SAMPLED
    assert s.joules_per_inference == pytest.approx(0.8)


def test_disjoint_parts_are_summed_with_their_windows():
    rapl = _result("rapl", "cpu-package", 50.0, windows=(10.0,) * 5)
    nvml = _result("nvml", "gpu-board", 250.0, windows=(50.0,) * 5)
    s = summarise_energy(
        [rapl, nvml],
        1000,
        idle_before=_idle(rapl=2.0, nvml=20.0),
        idle_after=_idle(rapl=2.0, nvml=20.0),
    )
    assert s is not None and s.valid
    assert s.scope == "cpu-package + gpu-board"
    assert s.joules_per_inference == pytest.approx(0.3)
    assert s.idle_watts_before == 22.0
    assert s.dynamic_joules_per_inference == pytest.approx((60.0 - 22.0 * 2) / 200)


def test_a_failed_part_makes_the_sum_invalid_and_says_which():
    rapl = _result("rapl", "cpu-package", 50.0)
    nvml = _result("nvml", "gpu-board", None, valid=False, reason="nvml: window too short")
    s = summarise_energy([rapl, nvml], 100)
    assert s is not None
    assert not s.valid
    assert s.scope == "cpu-package"
    assert any("nvml (gpu-board) was invalid: nvml: window too short" in w for w in s.warnings)


def test_estimate_is_labelled_and_never_a_measurement():
    est = _result(
        "estimate",
        "system-estimate",
        52.5,
        method=MeasurementMethod.ESTIMATED,
        formula="P = P_idle + (P_peak - P_idle) * u; P_idle = 3 W",
    )
    s = summarise_energy([est], 100)
    assert s is not None
    assert s.method is MeasurementMethod.ESTIMATED
    assert "ESTIMATED, not measured: P = P_idle" in (s.note or "")


def test_all_invalid_has_no_number_not_zero():
    bad = _result("rapl", "cpu-package", None, valid=False, reason="rapl: read failed: EIO")
    s = summarise_energy([bad], 100)
    assert s is not None
    assert not s.valid and s.joules_per_inference is None
    assert "rapl: read failed: EIO" in (s.note or "")


def test_board_rail_note_is_carried_into_the_summary():
    r = _result(
        "rpi5",
        "board-rails",
        10.0,
        method=MeasurementMethod.SAMPLED,
        note="sum of the PMIC rails: excludes conversion losses",
    )
    s = summarise_energy([r], 10)
    assert s is not None and "excludes conversion losses" in (s.note or "")


def test_measure_idle_with_the_same_source(tmp_path):
    clock = FakeClock()
    tree = FakeTree(tmp_path)
    counter = RaplCounter(clock, watts=6.5, max_range_uj=10**12)
    add_rapl_zone(tree, "intel-rapl:0", "package-0", counter)
    c = RaplCollector(root=tree.root, opener=tree.opener, clock=clock, background=False)
    c.open()

    def sleep(seconds: float) -> None:
        for _ in range(round(seconds / 0.1)):
            clock.advance(0.1)
            c.poll()

    idle = measure_idle([c], 5.0, sleep=sleep, clock=clock)
    assert idle.duration_s == pytest.approx(5.0)
    assert idle.watts("rapl") == pytest.approx(6.5)
    assert idle.watts("nvml") is None


def test_poller_keeps_fixed_deadlines_however_long_a_read_takes():
    from tippingpoint.harness.collectors.sampling import Poller

    now = {"t": 100.0}
    calls: list[float] = []

    def read() -> None:  # each read takes 30 ms of a 100 ms interval
        calls.append(now["t"])
        now["t"] += 0.03

    def wait(timeout: float) -> bool:
        now["t"] += timeout
        return len(calls) >= 10

    p = Poller("fake", 0.1, read, clock=lambda: now["t"], wait=wait)
    p.run_until_stopped()
    # polls at start + k * interval, not drifting by the read time (which would give 0.13 s)
    assert calls == pytest.approx([100.0 + 0.1 * k for k in range(1, 11)])
    assert p.polls == 10 and p.skipped == 0
    assert p.achieved_hz() == pytest.approx(10 / (now["t"] - 100.0))


def test_poller_skips_deadlines_a_slow_read_overran():
    from tippingpoint.harness.collectors.sampling import Poller

    now = {"t": 0.0}
    calls: list[float] = []

    def read() -> None:
        calls.append(now["t"])
        now["t"] += 0.25 if len(calls) == 2 else 0.01  # the second read overruns two deadlines

    def wait(timeout: float) -> bool:
        now["t"] += timeout
        return len(calls) >= 4

    p = Poller("fake", 0.1, read, clock=lambda: now["t"], wait=wait)
    p.run_until_stopped()
    assert calls == pytest.approx([0.1, 0.2, 0.5, 0.6])  # no burst at 0.3 and 0.4
    assert p.skipped == 2


def test_too_short_windows_warn_that_the_figure_is_not_a_median():
    r = _result("rapl", "cpu-package", 10.0, windows=())
    s = summarise_energy([r], 100)
    assert s is not None and s.windows == 1 and s.valid
    assert any("not the median of at least 5 windows" in w for w in s.warnings)
