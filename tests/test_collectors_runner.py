"""Collectors inside a real run: ONNX Runtime on a built-in model, the report's collectors part."""

from __future__ import annotations

import statistics
import time

import pytest

from tippingpoint.core.schema import MeasurementMethod, RunFlag, RunStatus
from tippingpoint.harness.collectors.options import CollectorOptions
from tippingpoint.harness.collectors.rapl import RaplCollector
from tippingpoint.harness.collectors.selection import close_collectors, open_collectors
from tippingpoint.harness.energy import EnergyAccounting, window_sample_counts
from tippingpoint.harness.runner import Runner, RunSpec

from .fakes.sysfs import FakeTree, RaplCounter, add_rapl_zone
from .helpers import tiny_scenario


def test_window_sample_counts():
    ends = [10, 19, 20, 21, 35, 40, 99, 100]
    assert window_sample_counts(ends, 0, 100, 4) == [4, 2, 0, 2]
    assert window_sample_counts(ends, 0, 100, 4, batch_size=8) == [32, 16, 0, 16]


def test_unknown_and_unavailable_collectors(tmp_path):
    from tippingpoint.core.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="unknown collector 'joulemeter'"):
        open_collectors(["joulemeter"])
    opened, skipped = open_collectors(
        ["rapl", "estimate"], CollectorOptions(root=tmp_path, background=False)
    )
    assert opened == []
    reasons = {s.name: s.reason for s in skipped}
    assert "/sys/class/powercap does not exist" in reasons["rapl"]
    assert "idle and peak watts" in reasons["estimate"]


def test_auto_falls_back_to_the_estimate_only_when_nothing_is_measured(tmp_path):
    opts = CollectorOptions(root=tmp_path, background=False, idle_watts=2.0, peak_watts=9.0)
    opened, skipped = open_collectors(["auto"], opts)
    try:
        if any(c.name == "nvml" for c in opened):
            pytest.skip("this host has an NVIDIA GPU, so auto measures instead of estimating")
        assert [c.name for c in opened] == ["estimate"]
        assert {"rapl", "jetson"} <= {s.name for s in skipped}
    finally:
        close_collectors(opened)
    tree = FakeTree(tmp_path)
    add_rapl_zone(tree, "intel-rapl:0", "package-0", RaplCounter(time.perf_counter_ns, 5, 10**12))
    opts = CollectorOptions(
        root=tree.root, opener=tree.opener, background=False, idle_watts=2.0, peak_watts=9.0
    )
    opened, _ = open_collectors(["auto"], opts)
    try:
        assert "rapl" in [c.name for c in opened] and "estimate" not in [c.name for c in opened]
    finally:
        close_collectors(opened)


def test_a_run_with_collectors_fills_the_report(tmp_path, mlp):
    tree = FakeTree(tmp_path)
    add_rapl_zone(
        tree, "intel-rapl:0", "package-0", RaplCounter(time.perf_counter_ns, 15.0, 10**12)
    )
    rapl = RaplCollector(root=tree.root, opener=tree.opener, interval_s=0.01)
    rapl.open()
    opened, skipped = open_collectors(
        ["cpu", "memory", "estimate"], CollectorOptions(idle_watts=2.0, peak_watts=10.0)
    )
    collectors = [rapl, *opened]
    energy = EnergyAccounting(collectors, idle_s=0.2, settle_s=0.05)
    try:
        energy.before_run()
        runner = Runner(
            collectors=collectors,
            collectors_skipped=skipped,
            collectors_requested=("rapl", "cpu", "memory", "estimate"),
            energy=energy,
        )
        report = runner.run(RunSpec(mlp, "onnxruntime", tiny_scenario())).report
    finally:
        close_collectors(collectors)
    assert report.status is RunStatus.COMPLETE, report.errors
    section = report.collectors
    assert section.ran == ("rapl", "cpu", "memory", "estimate")
    by_name = {r.name: r for r in section.results}
    assert all(r.valid for r in by_name.values()), [r.invalid_reason for r in by_name.values()]
    assert by_name["estimate"].method is MeasurementMethod.ESTIMATED
    cpu = {m.quantity: m.value for m in by_name["cpu"].measurements}
    assert cpu["process_cpu_cores"] > 0
    # the measured counter is the headline; the estimate stays beside it, never mixed in
    summary = section.energy
    assert summary is not None and summary.valid
    assert summary.scope == "cpu-package" and summary.method is MeasurementMethod.COUNTER
    assert summary.idle_watts_before == pytest.approx(15.0, rel=0.05)
    assert summary.idle_watts_after == pytest.approx(15.0, rel=0.05)
    assert report.results is not None
    samples = report.results.throughput.samples
    seconds = (by_name["rapl"].window_end_ns - by_name["rapl"].window_start_ns) / 1e9
    assert summary.total_joules == pytest.approx(15.0 * seconds, rel=0.05)
    # the headline is the median of the windows' J/inference; the whole-run figure, a weighted
    # mean of the same windows, lies within their range (how far it is from the median depends
    # on how evenly the machine's load spread the inferences over the windows)
    per_window = summary.window_joules_per_inference
    assert len(per_window) >= 3
    assert summary.joules_per_inference == pytest.approx(statistics.median(per_window))
    whole = 15.0 * seconds / samples
    assert min(per_window) * 0.95 <= whole <= max(per_window) * 1.05
    assert RunFlag.ENERGY_ESTIMATED not in report.flags
    assert RunFlag.ENERGY_INVALID not in report.flags


def test_runner_measures_idle_flags_throttling_and_passes_energy_warnings(tmp_path, mlp):
    from tippingpoint.harness.collectors.thermal import ThermalCollector

    from .fakes.sysfs import add_cpu

    tree = FakeTree(tmp_path)
    counter = RaplCounter(time.perf_counter_ns, 20.0, 10**12)
    add_rapl_zone(tree, "intel-rapl:0", "package-0", counter)
    events = {"n": 0}

    def throttle_count() -> int:  # read at creation, open and begin_window: 0; at the end: 1
        events["n"] += 1
        return 0 if events["n"] <= 3 else 1

    add_cpu(tree, 0, 2_000_000, throttle_count)
    rapl = RaplCollector(root=tree.root, opener=tree.opener, interval_s=0.01)
    thermal = ThermalCollector(root=tree.root, opener=tree.opener, background=False)
    rapl.open()
    thermal.open()

    def idle_sleep(seconds: float) -> None:  # 5 W while idle, 20 W otherwise
        counter()  # settle the energy so far at the old power
        counter.watts = 5.0
        time.sleep(seconds)
        counter()
        counter.watts = 20.0

    energy = EnergyAccounting([rapl, thermal], idle_s=0.3, settle_s=0.01, sleep=idle_sleep)
    try:
        runner = Runner(collectors=[rapl, thermal], energy=energy)
        report = runner.run(RunSpec(mlp, "onnxruntime", tiny_scenario())).report
    finally:
        close_collectors([rapl, thermal])
    assert report.status is RunStatus.COMPLETE, report.errors
    s = report.collectors.energy
    assert s is not None and s.valid
    assert s.idle_watts_before == pytest.approx(5.0, rel=0.1)
    assert s.idle_watts_after == pytest.approx(5.0, rel=0.1)
    assert s.average_watts == pytest.approx(20.0, rel=0.1)
    assert s.dynamic_joules_per_inference == pytest.approx(0.75 * s.joules_per_inference, rel=0.15)
    assert RunFlag.THROTTLED in report.flags
    assert not any("drifted" in w for w in s.warnings)
    assert report.warnings == s.warnings
