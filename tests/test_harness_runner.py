import numpy as np
import pytest

from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import ModelRef
from tippingpoint.reports.schema import (
    RunFlag,
    RunStatus,
    ScenarioKind,
    StopRule,
    WarmupRule,
)

from .conftest import TINY_WARMUP, tiny_scenario


def test_single_stream_report_is_complete(mlp: ModelRef) -> None:
    outcome = Runner().run(RunSpec(mlp, "onnxruntime", tiny_scenario()))
    r = outcome.report
    assert r.status is RunStatus.COMPLETE, r.errors
    assert r.backend is not None and r.backend.name == "onnxruntime"
    assert r.model.sha256_verified and len(r.model.sha256) == 64
    assert r.cold_start is not None and r.cold_start.load_s > 0
    assert r.cold_start.first_inference_ms is not None and r.cold_start.first_inference_ms > 0
    assert r.warmup is not None and r.warmup.queries >= TINY_WARMUP.min_queries
    assert r.results is not None
    lat = r.results.latency
    assert lat.min <= lat.p50 <= lat.p90 <= lat.p99 <= lat.p999 <= lat.max
    assert RunFlag.QUICK in r.flags
    assert r.host.python and r.host.runtime_versions["onnxruntime"]


def test_stop_rule_needs_both_minimums(mlp: ModelRef) -> None:
    # many queries, short duration: the count decides
    sc = tiny_scenario().model_copy(
        update={"stop": StopRule(min_queries=3000, min_duration_s=0.01, max_duration_s=30)}
    )
    r = Runner().run(RunSpec(mlp, "onnxruntime", sc)).report
    assert r.results is not None and r.results.throughput.queries >= 3000
    # few queries, longer duration: the duration decides
    sc = tiny_scenario().model_copy(
        update={"stop": StopRule(min_queries=5, min_duration_s=0.3, max_duration_s=30)}
    )
    r = Runner().run(RunSpec(mlp, "onnxruntime", sc)).report
    assert r.results is not None
    assert r.results.throughput.duration_s >= 0.3
    assert r.results.throughput.queries > 5


def test_duration_cap_flags_unmet_minimum(conv: ModelRef) -> None:
    sc = tiny_scenario().model_copy(
        update={
            "warmup": WarmupRule(min_queries=1, min_duration_s=0),
            "stop": StopRule(min_queries=10_000_000, min_duration_s=0, max_duration_s=0.3),
        }
    )
    r = Runner().run(RunSpec(conv, "onnxruntime", sc)).report
    assert r.status is RunStatus.COMPLETE
    assert RunFlag.MIN_QUERIES_NOT_MET in r.flags
    assert r.results is not None and r.results.throughput.duration_s < 1.0


def test_offline_batches_count_samples(conv: ModelRef) -> None:
    r = Runner().run(RunSpec(conv, "onnxruntime", tiny_scenario(ScenarioKind.OFFLINE, 8))).report
    assert r.results is not None
    t = r.results.throughput
    assert t.samples == 8 * t.queries
    assert t.samples_per_s == pytest.approx(8 * t.queries_per_s)


def test_raw_samples_reproduce_statistics(mlp: ModelRef) -> None:
    outcome = Runner().run(RunSpec(mlp, "onnxruntime", tiny_scenario()))
    assert outcome.samples is not None and outcome.report.results is not None
    ms = np.sort(outcome.samples.latency_ns) / 1e6
    assert outcome.report.results.latency.p50 == pytest.approx(
        np.percentile(ms, 50, method="inverted_cdf")
    )
    assert outcome.samples.end_ns[-1] <= (
        outcome.samples.window_end_ns - outcome.samples.window_start_ns
    )


def test_failure_becomes_failed_report_not_exception(corrupt_onnx, tmp_path) -> None:
    from tippingpoint.models.registry import resolve_model

    ref = resolve_model(str(corrupt_onnx))
    r = Runner().run(RunSpec(ref, "onnxruntime", tiny_scenario())).report
    assert r.status is RunStatus.FAILED
    assert r.errors[0].phase == "load" and r.errors[0].kind == "ModelLoadError"
    assert r.results is None


def test_wrong_user_shape_fails_cleanly(mlp: ModelRef) -> None:
    spec = RunSpec(mlp, "onnxruntime", tiny_scenario(), shape_overrides={"x": (1, 31)})
    r = Runner().run(spec).report
    assert r.status is RunStatus.FAILED
    assert r.errors[0].kind == "InvalidShapeError"
