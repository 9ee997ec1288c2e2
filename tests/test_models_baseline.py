"""``run --baseline``: a file compared with another on generated or user-supplied inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.core.errors import InvalidShapeError
from tippingpoint.core.io import read_report
from tippingpoint.core.schema import AccuracyKind, RunStatus
from tippingpoint.core.types import QuantParams, TensorSpec
from tippingpoint.harness.baseline import file_samples, generate_samples
from tippingpoint.models.accuracy import suite_eval_set
from tippingpoint.models.registry import resolve_model

from .helpers import QUICK, assert_one_line, tp

INT8 = TensorSpec(
    name="x", shape=(1, 4), dtype="int8", quant=QuantParams(scale=0.01, zero_point=-128)
)
FLOAT = TensorSpec(name="x", shape=(None, 4), dtype="float32")
IDS = TensorSpec(name="ids", shape=(1, 6), dtype="int64")


def test_generated_samples_fit_both_files() -> None:
    samples = generate_samples([INT8, IDS], [FLOAT, IDS], count=50, seed=3, overrides={})
    assert len(samples) == 50
    values = np.concatenate([s[0] for s in samples])
    assert values.dtype == np.float32 and values.shape == (50, 4)
    assert values.min() >= 0.0 and values.max() <= 2.55  # the int8 input's real range
    ids = np.concatenate([s[1] for s in samples])
    assert ids.dtype == np.int64 and ids.min() >= 0
    again = generate_samples([INT8, IDS], [FLOAT, IDS], count=50, seed=3, overrides={})
    np.testing.assert_array_equal(values, np.concatenate([s[0] for s in again]))
    plain = generate_samples([FLOAT], [FLOAT], count=5, seed=0, overrides={})
    assert plain[0][0].shape == (1, 4) and plain[0][0].min() < 0


def test_generated_samples_need_dynamic_shapes_and_matching_inputs() -> None:
    dynamic = TensorSpec(name="seq", shape=(1, None), dtype="float32")
    with pytest.raises(InvalidShapeError, match="seq"):
        generate_samples([dynamic], [dynamic], count=1, seed=0, overrides={})
    ok = generate_samples([dynamic], [dynamic], count=1, seed=0, overrides={"seq": (1, 7)})
    assert ok[0][0].shape == (1, 7)
    with pytest.raises(InvalidShapeError, match="inputs"):
        generate_samples([FLOAT, IDS], [FLOAT], count=1, seed=0, overrides={})


def test_file_samples_are_rows() -> None:
    feeds = {"x": np.zeros((3, 4), np.float32), "ids": np.ones((3, 6), np.int64)}
    samples = file_samples(feeds, [FLOAT, IDS])
    assert len(samples) == 3 and samples[2][1].shape == (1, 6)
    with pytest.raises(InvalidShapeError, match="'ids'"):
        file_samples({"x": feeds["x"]}, [FLOAT, IDS])
    with pytest.raises(InvalidShapeError, match="rows"):
        file_samples({"x": feeds["x"], "ids": feeds["ids"][:2]}, [FLOAT, IDS])


def test_cli_int8_tflite_against_fp32_onnx(tmp_path: Path) -> None:
    int8 = resolve_model("digits-cnn", "int8", ".tflite").path
    fp32 = resolve_model("digits-cnn", "fp32", ".onnx").path
    p = tp(
        "run", "-m", str(int8), "-b", "litert", "--baseline", str(fp32),
        "-s", "single-stream", "-o", str(tmp_path), "--json", *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    report = read_report(Path(json.loads(p.stdout)[0]["path"]))
    assert report.status is RunStatus.COMPLETE
    acc = report.accuracy
    assert acc is not None and acc.kind is AccuracyKind.AGREEMENT
    assert acc.samples >= 64 and "digits-cnn.fp32.onnx" in acc.dataset
    assert f"{acc.samples} samples" in acc.dataset and acc.sample_stop is not None
    assert acc.sample_time_cap_s == 20.0 and acc.sample_target_half_width == 0.01
    assert acc.metric == "top1-agreement" and acc.interval is not None
    assert acc.max_abs_error is not None and 0 < acc.max_abs_error < 5
    assert acc.cosine_similarity is not None and acc.cosine_similarity > 0.99


def test_cli_baseline_on_user_inputs(tmp_path: Path) -> None:
    eval_set, _ = suite_eval_set("digits-cnn")
    data = tmp_path / "digits.npz"
    np.savez(data, image=eval_set.inputs[0][:40])
    int8 = resolve_model("digits-cnn", "int8", ".onnx").path
    fp32 = resolve_model("digits-cnn", "fp32", ".onnx").path
    p = tp(
        "run", "-m", str(int8), "-b", "onnxruntime", "--baseline", str(fp32),
        "--inputs", str(data), "-s", "single-stream", "-o", str(tmp_path / "r"), "--json", *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    report = read_report(Path(json.loads(p.stdout)[0]["path"]))
    assert report.accuracy is not None and report.accuracy.samples == 40
    assert report.accuracy.value >= 0.975 and not report.accuracy.below_floor


def test_missing_baseline_is_a_usage_error(tmp_path: Path) -> None:
    model = resolve_model("digits-cnn", "int8", ".onnx").path
    missing = tmp_path / "nope.onnx"
    p = tp("run", "-m", str(model), "--baseline", str(missing), "-o", str(tmp_path), *QUICK)
    assert_one_line(p, 2, "baseline", "nope.onnx")
