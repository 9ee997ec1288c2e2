"""Phase summaries of device sessions and their place in the report."""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np

from tippingpoint.backends.phases import PhaseSamples, TimedRegion, summarize_phases
from tippingpoint.core.schema import PerformanceResults, Throughput
from tippingpoint.core.stats import latency_stats

from .helpers import install_distribution, one_report, tp


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


PHASED_PLUGIN = '''
"""A backend timing copy-in, compute and copy-out apart, as the CUDA sessions do (no GPU here:
the phases are host copies and a numpy matmul, timed with perf_counter_ns)."""
import time
from pathlib import Path

import numpy as np

from tippingpoint.backends.base import Availability, BackendDescription, Device, SessionBase
from tippingpoint.backends.base import TensorSpec
from tippingpoint.backends.phases import PhaseSamples, TimedRegion


class PhasedSession(SessionBase):
    inputs = (TensorSpec(name="x", shape=(None, 32), dtype="float32"),)
    outputs = (TensorSpec(name="y", shape=(None, 10), dtype="float32"),)
    timed_region = TimedRegion.COPIES_AND_COMPUTE

    def __init__(self):
        self._samples = PhaseSamples()
        self._w = np.ones((32, 10), np.float32)

    def phase_samples(self):
        return self._samples

    def reset_phases(self):
        self._samples.clear()

    def bind(self, feeds):
        clock, s, w = time.perf_counter_ns, self._samples, self._w

        def call():
            t0 = clock()
            x = feeds[0].copy()
            t1 = clock()
            y = x @ w
            t2 = clock()
            out = [y.copy()]
            t3 = clock()
            s.h2d_ns.append(t1 - t0)
            s.compute_ns.append(t2 - t1)
            s.d2h_ns.append(t3 - t2)
            return out

        return call

    def describe(self):
        return BackendDescription(
            name="phased", runtime="tp-phased", runtime_version="0.1", device=Device.CPU
        )


class PhasedBackend:
    name = "phased"
    formats = (".onnx",)
    network = False

    def validate_options(self, options):
        pass

    def availability(self):
        return Availability(installed=True, runtime="tp-phased", version="0.1")

    def load(self, model: Path, options):
        return PhasedSession()
'''


def test_runner_reports_phases_of_the_measured_part_only(tmp_path: Path) -> None:
    env = install_distribution(
        tmp_path / "site",
        "tp-phased",
        "[tippingpoint.backends]\nphased = tp_phased:PhasedBackend\n",
        ("tp_phased", PHASED_PLUGIN),
    )
    ran = tp(
        "run",
        "-b",
        "phased",
        "-m",
        "mlp-tiny",
        "-s",
        "single-stream",
        "--quick",
        "--min-duration",
        "0.2",
        "-o",
        str(tmp_path / "r"),
        "--json",
        env=env,
    )
    report = one_report(ran)
    assert report.results is not None and report.results.phases is not None
    phases = report.results.phases
    assert phases.timed_region == "h2d+compute+d2h"
    # warm-up and first-inference samples were dropped: one sample per measured query
    assert phases.compute.count == phases.h2d.count == report.results.latency.count
    # the phases lie inside the timed call, query by query, so their means sum below its mean
    phase_mean = phases.compute.mean + phases.h2d.mean + phases.d2h.mean
    assert 0 < phase_mean <= report.results.latency.mean + 1e-9
