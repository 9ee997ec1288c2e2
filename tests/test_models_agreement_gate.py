"""The accuracy gate that fits the model: the metric follows the output, every figure carries a
95% interval, the floor is judged on the interval, and generated samples grow to a target."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.backends.base import Session
from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend
from tippingpoint.core.io import read_report
from tippingpoint.core.schema import AccuracyResult, RunFlag
from tippingpoint.core.stats import bootstrap_mean_ci, wilson_interval
from tippingpoint.core.types import TensorSpec
from tippingpoint.harness.baseline import generate_samples
from tippingpoint.models.accuracy import (
    COSINE_FLOOR,
    AgreementMetric,
    SampleGrowth,
    class_scores_rule,
    compare_growing,
    compare_sessions,
    judge,
)
from tippingpoint.models.manifest import ARTIFACTS_DIR
from tippingpoint.models.registry import resolve_model

from .helpers import QUICK, assert_one_line, tp


def _open(name: str) -> Session:
    return OnnxRuntimeCpuBackend().load(ARTIFACTS_DIR / name, {"intra_op_threads": 1})


def test_wilson_hand_worked() -> None:
    # 9 of 10, z = 1.96: p = 0.9, z²/n = 0.38416, centre = 0.9 + 0.19208 = 1.09208,
    # p(1-p)/n = 0.009, z²/4n² = 0.009604, half = 1.96 * sqrt(0.018604) = 0.267338,
    # divided by 1 + z²/n = 1.38416: (0.824742, 1.359418) / 1.38416 = (0.5958, 0.9821)
    lo, hi = wilson_interval(9, 10, z=1.96)
    assert lo == pytest.approx((1.09208 - 1.96 * math.sqrt(0.018604)) / 1.38416)
    assert (round(lo, 4), round(hi, 4)) == (0.5958, 0.9821)
    # at p = 1 the interval does not collapse: (n / (n + z²), 1)
    lo, hi = wilson_interval(64, 64, z=1.96)
    assert lo == pytest.approx(64 / (64 + 1.96**2)) and hi == 1.0
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_bootstrap_mean_interval_brackets_the_mean() -> None:
    values = np.random.default_rng(1).normal(0.5, 0.1, 400)
    lo, hi = bootstrap_mean_ci(values, seed=2)
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert lo < values.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert bootstrap_mean_ci(np.ones(10)) == (1.0, 1.0)


def test_floor_is_judged_on_the_interval() -> None:
    # 63 of 64 agree: point 0.984 < 0.99, but the Wilson interval (0.917, 0.997) straddles it
    straddles = judge("top1-agreement", np.array([1.0] * 63 + [0.0]), 0.99)
    assert straddles.verdict == "inconclusive"
    assert straddles.interval.low < 0.99 < straddles.interval.high
    # 56 of 100: the whole interval is below
    below = judge("top1-agreement", np.array([1.0] * 56 + [0.0] * 44), 0.99)
    assert below.verdict == "below-floor" and below.interval.high < 0.99
    above = judge("top1-agreement", np.ones(2000), 0.99)
    assert above.verdict == "pass" and above.interval.low > 0.99
    # an error is judged against a ceiling: below the floor means the whole interval above it
    err = judge("relative-error", np.full(50, 0.2), 0.1, higher_is_better=False)
    assert err.verdict == "below-floor"


def test_the_rule_reads_the_output() -> None:
    frames = TensorSpec(name="frames", shape=(None, 640), dtype="float32")
    recon = TensorSpec(name="reconstruction", shape=(None, 640), dtype="float32")
    rng = np.random.default_rng(0)
    assert not class_scores_rule(rng.normal(size=(8, 640)), recon, [frames])[0]
    probs = rng.dirichlet(np.ones(10), size=8)
    assert class_scores_rule(probs, None, [frames])[0]
    image = TensorSpec(name="image", shape=(1, 1, 8, 8), dtype="float32")
    logits = TensorSpec(name="logits", shape=(1, 10), dtype="float32")
    assert class_scores_rule(rng.normal(size=(8, 10)), logits, [image])[0]
    unit = rng.normal(size=(8, 32))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    out = TensorSpec(name="out", shape=(1, 32), dtype="float32")
    assert not class_scores_rule(unit, out, [image])[0]
    assert not class_scores_rule(rng.normal(size=(8, 1)), out, [image])[0]
    assert not class_scores_rule(rng.normal(size=(8, 4, 4)), out, [image])[0]


def _ae_pair(metric: AgreementMetric | None, growth: SampleGrowth) -> AccuracyResult:
    with _open("ae-anomaly.int8.onnx") as int8, _open("ae-anomaly.fp32.onnx") as fp32:

        def generate(n: int) -> list[list[np.ndarray]]:
            return generate_samples(int8.inputs, fp32.inputs, n, 0, {})

        return compare_growing(int8, fp32, generate, dataset="ae", metric=metric, growth=growth)


def test_autoencoder_int8_is_judged_by_cosine_not_top1() -> None:
    """The issue's case: an int8 autoencoder with cosine 0.997 was flagged at ~56% top-1."""
    as_top1 = _ae_pair(AgreementMetric.TOP1, SampleGrowth(time_cap_s=0.0))
    assert as_top1.agreement_top1 is not None and as_top1.agreement_top1 < 0.7
    assert as_top1.below_floor  # what the old gate said
    result = _ae_pair(None, SampleGrowth())
    assert result.metric == "cosine" and "reconstruction" in (result.metric_rule or "")
    assert result.agreement_top1 is None
    assert result.value == pytest.approx(0.997, abs=0.002) and result.value >= COSINE_FLOOR
    assert not result.below_floor and not result.inconclusive
    gates = {g.metric: g for g in result.gates or ()}
    assert set(gates) == {"cosine", "relative-error"}
    assert all(g.verdict == "pass" for g in gates.values())
    assert gates["relative-error"].higher_is_better is False
    assert result.interval is not None and result.interval.low >= COSINE_FLOOR
    assert result.samples == 64 and result.sample_stop == "95% interval within ±1%"
    dumped = result.model_dump(mode="json")
    assert dumped["sample_time_cap_s"] == 20.0 and dumped["relative_error"] < 0.1


def test_growth_stops_at_the_cap() -> None:
    # top-1 over a reconstruction is near 50%: ±1 point needs ~10,000 samples; a zero cap stops
    # after the first batch and says so
    capped = _ae_pair(AgreementMetric.TOP1, SampleGrowth(time_cap_s=0.0))
    assert capped.samples == 64 and capped.sample_time_cap_s == 0.0
    assert capped.sample_stop is not None and capped.sample_stop.startswith("time cap 0 s")
    most = _ae_pair(AgreementMetric.TOP1, SampleGrowth(start=16, max_samples=64))
    assert most.samples == 64 and most.sample_stop == "max count 64"


def test_fixed_samples_carry_intervals_and_no_growth(tmp_path: Path) -> None:
    eval_npz = np.load(ARTIFACTS_DIR / "ae-anomaly.eval.npz")
    samples = [[eval_npz["input_0"][i : i + 1]] for i in range(32)]
    with _open("ae-anomaly.int8.onnx") as int8, _open("ae-anomaly.fp32.onnx") as fp32:
        result = compare_sessions(
            int8, fp32, samples, dataset="eval", metric=AgreementMetric.RELATIVE_ERROR
        )
    assert result.metric == "relative-error" and result.metric_rule == (
        "--agreement-metric relative-error"
    )
    assert result.relative_error is not None and result.relative_error < 0.01
    assert result.reference_value == 0.0 and result.relative_to_reference is None
    assert result.sample_stop is None and "sample_stop" not in result.model_dump(mode="json")


def test_cli_autoencoder_pair_and_the_override(tmp_path: Path) -> None:
    int8 = resolve_model("ae-anomaly", "int8", ".onnx").path
    fp32 = resolve_model("ae-anomaly", "fp32", ".onnx").path
    args = ("run", "-m", str(int8), "-b", "onnxruntime", "--baseline", str(fp32),
            "-s", "single-stream", "--json", *QUICK)  # fmt: skip
    p = tp(*args, "-o", str(tmp_path / "a"))
    assert p.returncode == 0, p.stderr
    report = read_report(Path(json.loads(p.stdout)[0]["path"]))
    acc = report.accuracy
    assert acc is not None and acc.metric == "cosine" and not acc.below_floor
    assert RunFlag.BELOW_ACCURACY_FLOOR not in report.flags
    p = tp(*args, "--agreement-metric", "top1", "-o", str(tmp_path / "b"))
    assert p.returncode == 0, p.stderr
    acc = read_report(Path(json.loads(p.stdout)[0]["path"])).accuracy
    assert acc is not None and acc.metric == "top1-agreement"
    assert acc.metric_rule == "--agreement-metric top1"
    bad = tp(*args, "--agreement-metric", "mse", "-o", str(tmp_path / "c"))
    assert_one_line(bad, 2, "--agreement-metric", "mse")
