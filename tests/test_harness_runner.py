import numpy as np
import pytest

from tippingpoint.core.schema import (
    AccuracyKind,
    AccuracyResult,
    CollectorResult,
    RunFlag,
    RunStatus,
    ScenarioKind,
    StopRule,
    WarmupRule,
)
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import ModelRef

from .helpers import TINY_WARMUP, tiny_scenario


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


class _WindowRecorder:
    """An estimate collector that records when the runner opened its window."""

    def __init__(self, interval_s: float = 0.01) -> None:
        from tippingpoint.harness.collectors.estimate import EstimateCollector

        self.inner = EstimateCollector(2.0, 10.0, interval_s=interval_s)
        self.name = self.inner.name
        self.is_energy = True
        self.interval_s = self.inner.interval_s
        self.min_window_s = self.inner.min_window_s
        self.min_samples = self.inner.min_samples
        self.begun: list[int] = []

    def open(self) -> None:
        self.inner.open()

    def begin_window(self, t_ns: int) -> None:
        self.begun.append(t_ns)
        self.inner.begin_window(t_ns)

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        return self.inner.end_window(t_ns, queries=queries, samples=samples)

    def close(self) -> None:
        self.inner.close()


def _accuracy(session: object) -> AccuracyResult:
    return AccuracyResult(
        kind=AccuracyKind.AGREEMENT, dataset="probe", samples=1, metric="top1", value=1.0
    )


def test_http_energy_window_starts_after_the_warmup_and_cell_accuracy_runs() -> None:
    from tests.http_helpers import serve_process, short_scenario
    from tippingpoint.harness.energy import EnergyAccounting
    from tippingpoint.models.registry import resolve_model

    rec = _WindowRecorder()
    rec.open()
    sc = short_scenario(
        warmup=WarmupRule(min_queries=3, min_duration_s=0.4),
        stop=StopRule(min_queries=20, min_duration_s=0.3, max_duration_s=5.0),
    )
    energy = EnergyAccounting([rec], idle_s=0.0)
    try:
        with serve_process("--model", "mlp-tiny") as (url, _):
            outcome = Runner(collectors=[rec], energy=energy).run(
                RunSpec(
                    resolve_model("mlp-tiny"),
                    "http",
                    sc,
                    backend_options={"endpoint": url},
                    accuracy=_accuracy,
                )
            )
    finally:
        rec.close()
    r = outcome.report
    assert r.status is RunStatus.COMPLETE, r.errors
    assert outcome.samples is not None and r.warmup is not None
    assert r.warmup.duration_s >= 0.4
    # one window, opened after the 0.4 s warm-up, right before the measured part began
    assert len(rec.begun) == 1
    gap_s = (outcome.samples.window_start_ns - rec.begun[0]) / 1e9
    assert 0 <= gap_s < 0.1
    (result,) = r.collectors.results
    assert result.window_start_ns == rec.begun[0]
    # sub-window counts come from the requests' end times, as for local runs
    assert r.collectors.energy is not None and r.collectors.energy.windows == sc.windows
    assert r.collectors.energy.note is not None
    assert "throughput taken as constant" not in r.collectors.energy.note
    # the per-cell accuracy hook (--accuracy) runs for network backends too
    assert r.accuracy is not None and r.accuracy.dataset == "probe"


def test_energy_collector_lengthens_the_measured_part(mlp: ModelRef) -> None:
    from tippingpoint.harness.energy import EnergyAccounting, min_measured_s

    rec = _WindowRecorder(interval_s=0.02)
    rec.min_samples = rec.inner.min_samples = 10  # 10 samples x 20 ms = 0.2 s per window
    rec.open()
    sc = tiny_scenario()  # asks for 0.1 s
    need = min_measured_s([rec], sc.windows)
    assert need == pytest.approx(sc.windows * 0.2 * 1.1)
    energy = EnergyAccounting([rec], idle_s=0.01, settle_s=0.0)
    assert energy.idle_s == pytest.approx(0.2 * 1.1)  # the idle window is raised likewise
    try:
        energy.before_run()
        r = Runner(collectors=[rec], energy=energy).run(RunSpec(mlp, "onnxruntime", sc)).report
    finally:
        rec.close()
    assert r.status is RunStatus.COMPLETE, r.errors
    assert r.scenario.stop.min_duration_s == pytest.approx(need)  # the settings as run
    assert r.results is not None and r.results.throughput.duration_s >= need
    summary = r.collectors.energy
    assert summary is not None and summary.windows == sc.windows
    assert summary.note is not None and "lengthened from 0.1 s" in summary.note
    assert not any("whole-window" in w for w in r.warnings)


def test_without_energy_collectors_the_scenario_is_unchanged(mlp: ModelRef) -> None:
    sc = tiny_scenario()
    r = Runner().run(RunSpec(mlp, "onnxruntime", sc)).report
    assert r.scenario == sc


def test_host_gpu_settings_are_refreshed_once_torch_is_loaded(mlp: ModelRef) -> None:
    from tippingpoint.backends.gpuinfo import with_torch_settings
    from tippingpoint.core.schema import GpuInfo
    from tippingpoint.harness.fingerprint import host_fingerprint

    torch = pytest.importorskip("torch", reason="torch is the torch extra")
    gpu = GpuInfo(name="stand-in GPU", driver="1.0", cudnn=None)
    host = host_fingerprint().model_copy(update={"gpus": (gpu,)})
    assert host.gpus[0].settings == {}
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = not before
    try:
        refreshed = with_torch_settings(host.gpus, torch)
        assert refreshed[0].settings["cudnn.benchmark"] is (not before)
        assert "cuda.matmul.allow_tf32" in refreshed[0].settings
        # the runner re-reads them once the session has loaded
        r = Runner(host=host).run(RunSpec(mlp, "onnxruntime", tiny_scenario())).report
    finally:
        torch.backends.cudnn.benchmark = before
    assert r.host.gpus[0].name == "stand-in GPU"
    assert r.host.gpus[0].settings["cudnn.benchmark"] is (not before)
    assert with_torch_settings((), torch) == ()
