"""Phase summaries of device sessions and their place in the report."""

from __future__ import annotations

from array import array

import numpy as np

from tippingpoint.backends.phases import PhaseSamples, TimedRegion, summarize_phases
from tippingpoint.harness.stats import latency_stats
from tippingpoint.reports.schema import PerformanceResults, Throughput


def _results(phases: object) -> PerformanceResults:
    lat = latency_stats(np.array([1_000_000, 2_000_000, 3_000_000]), with_ci=False)
    tput = Throughput(queries_per_s=1.0, samples_per_s=1.0, duration_s=3.0, queries=3, samples=3)
    return PerformanceResults(latency=lat, throughput=tput, phases=phases)  # type: ignore[arg-type]


def test_summary_in_milliseconds_per_phase() -> None:
    rng = np.random.default_rng(0)
    samples = PhaseSamples()
    for _ in range(50):
        samples.h2d_ns.append(int(rng.integers(10_000, 20_000)))
        samples.compute_ns.append(int(rng.integers(100_000, 200_000)))
        samples.d2h_ns.append(int(rng.integers(5_000, 9_000)))
    phases = summarize_phases(samples, TimedRegion.COPIES_AND_COMPUTE)
    assert phases is not None
    assert phases.timed_region == "h2d+compute+d2h"
    assert phases.method == "cuda-events"
    assert phases.compute.count == phases.h2d.count == phases.d2h.count == 50
    assert phases.h2d.max == max(samples.h2d_ns) / 1e6
    assert phases.compute.min == min(samples.compute_ns) / 1e6
    assert phases.d2h.p50 < phases.h2d.p50 < phases.compute.p50


def test_no_samples_no_section_and_clear() -> None:
    samples = PhaseSamples(array("q", [1]), array("q", [2]), array("q", [3]))
    assert len(samples) == 1
    samples.clear()
    assert len(samples) == 0
    assert summarize_phases(samples, TimedRegion.COMPUTE) is None


def test_report_omits_absent_phases_and_round_trips_present_ones() -> None:
    without = _results(None)
    assert "phases" not in without.model_dump(mode="json")  # old digests stay valid
    samples = PhaseSamples(array("q", [10, 12]), array("q", [100, 90]), array("q", [5, 6]))
    phases = summarize_phases(samples, TimedRegion.COMPUTE)
    with_phases = _results(phases)
    data = with_phases.model_dump(mode="json")
    assert data["phases"]["compute"]["count"] == 2
    assert PerformanceResults.model_validate(data) == with_phases
