"""``run`` input handling: --inputs rows per query, --shape and the batch, fixed-batch LiteRT
models, suite-file settings against flags, and usage errors found before the matrix runs."""

from __future__ import annotations

import errno
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.tflite_build import forward, random_mlp, write_mlp
from tippingpoint.backends.litert import LiteRtBackend
from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend
from tippingpoint.core.errors import FixedBatchError, InvalidShapeError
from tippingpoint.core.io import read_report
from tippingpoint.core.schema import AccuracyKind, RunStatus
from tippingpoint.harness.inputs import match_feeds, query_feeds, resolve_shape
from tippingpoint.models.accuracy import suite_eval_set
from tippingpoint.models.registry import resolve_model

from .helpers import QUICK, assert_one_line, one_report, tp

needs_litert = pytest.mark.skipif(
    importlib.util.find_spec("ai_edge_litert") is None, reason="needs ai-edge-litert"
)
LAYERS = random_mlp([32, 16, 4], seed=2)
FIXED_TFLITE = resolve_model("digits-cnn", "fp32", ".tflite").path


def write_seq_model(path: Path) -> Path:
    """y = relu(x) for a float32 input [N, L]: a dynamic batch and a dynamic length."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "L"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "L"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def summary(p: object) -> list[dict[str, object]]:
    return json.loads(p.stdout)  # type: ignore[attr-defined]


# --- --inputs: rows are samples ------------------------------------------------------------


def test_input_rows_make_each_query_of_the_batch_size(tmp_path: Path) -> None:
    model = write_seq_model(tmp_path / "seq.onnx")
    rows = np.arange(3 * 5, dtype=np.float32).reshape(3, 5)
    with OnnxRuntimeCpuBackend().load(model, {}) as session:
        (one,) = match_feeds(session.inputs, {"x": rows}, 1)
        np.testing.assert_array_equal(one, rows[:1])
        (eight,) = match_feeds(session.inputs, {"x": rows}, 8)  # cycled: 0 1 2 0 1 2 0 1
        np.testing.assert_array_equal(eight, rows[[0, 1, 2, 0, 1, 2, 0, 1]])
        out = session.bind([eight])()[0]
        assert out.shape == (8, 5)
        (wide,) = match_feeds(session.inputs, {"x": rows.astype(np.float64)}, 2)
        assert wide.dtype == np.float32  # converted within its kind, as the accuracy pass does
        with pytest.raises(InvalidShapeError, match="is complex128, the model expects float32"):
            match_feeds(session.inputs, {"x": rows.astype(np.complex128)}, 1)
        with pytest.raises(InvalidShapeError, match="rows are samples"):
            match_feeds(session.inputs, {"x": rows[0]}, 1)


@needs_litert
def test_float_rows_are_quantised_for_an_int8_model(tmp_path: Path) -> None:
    model = write_mlp(tmp_path / "q.tflite", LAYERS, io_dtype="int8", batch=None)
    rows = np.random.default_rng(0).standard_normal((40, 32)).astype(np.float32)
    with LiteRtBackend().load(model, {}) as session:
        spec = session.inputs[0]
        assert spec.quant is not None
        (q,) = match_feeds(session.inputs, {spec.name: rows}, 4)
        assert q.dtype == np.int8 and q.shape == (4, 32)
        scale, zero = spec.quant.scale, spec.quant.zero_point
        back = (q.astype(np.float32) - zero) * scale
        expected = np.clip(rows[:4], (-128 - zero) * scale, (127 - zero) * scale)
        np.testing.assert_allclose(back, expected, atol=scale / 2 + 1e-6)


def test_user_rows_follow_the_scenario_batch_in_reports(tmp_path: Path) -> None:
    data = tmp_path / "rows.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((40, 32)).astype(np.float32))
    p = tp(
        "run", "-m", "mlp-tiny", "-s", "single-stream", "-s", "offline", "--batch-sizes", "8",
        "--inputs", str(data), "-o", str(tmp_path / "r"), "--json", *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    reports = [read_report(Path(str(s["path"]))) for s in summary(p)]
    assert [r.scenario.batch_size for r in reports] == [1, 8]
    for r in reports:
        assert r.status is RunStatus.COMPLETE and r.scenario.input_source == "rows.npz"
        assert r.results is not None
        assert r.results.throughput.samples == r.results.throughput.queries * r.scenario.batch_size


@needs_litert
def test_readme_int8_tflite_against_fp32_tflite_on_float_rows(tmp_path: Path) -> None:
    """The README's bring-your-own comparison: float rows feed the int8 speed run and both
    files of the --baseline pass."""
    int8 = resolve_model("digits-cnn", "int8", ".tflite").path
    fp32 = resolve_model("digits-cnn", "fp32", ".tflite").path
    eval_set, _ = suite_eval_set("digits-cnn")
    with LiteRtBackend().load(int8, {}) as session:
        name = session.inputs[0].name
        assert session.inputs[0].dtype == "int8"
    data = tmp_path / "x.npz"
    np.savez(data, **{name: eval_set.inputs[0][:40]})
    assert eval_set.inputs[0].dtype == np.float32
    p = tp(
        "run", "-m", str(int8), "-b", "litert", "--baseline", str(fp32), "--inputs", str(data),
        "-s", "single-stream", "-o", str(tmp_path / "r"), "--json", *QUICK,
    )  # fmt: skip
    report = one_report(p)
    assert report.status is RunStatus.COMPLETE and report.scenario.batch_size == 1
    acc = report.accuracy
    assert acc is not None and acc.kind is AccuracyKind.AGREEMENT and acc.samples == 40
    assert acc.value >= 0.95


def test_wrong_inputs_are_usage_errors_before_any_run(tmp_path: Path) -> None:
    out = tmp_path / "r"
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.ones((4, 31), dtype=np.float32))
    p = tp("run", "-m", "mlp-tiny", "--inputs", str(bad), "-o", str(out), *QUICK)
    assert_one_line(p, 2, "--inputs array 'x' has shape [4, 31]", "rows are samples")
    assert not list(out.glob("*.json"))
    np.savez(bad, y=np.ones((4, 32), dtype=np.float32))
    p = tp("run", "-m", "mlp-tiny", "--inputs", str(bad), "-o", str(out), *QUICK)
    assert_one_line(p, 2, "no array for input 'x'")


# --- --shape ---------------------------------------------------------------------------------


def test_shape_override_keeps_the_scenario_batch() -> None:
    from tippingpoint.core.types import TensorSpec

    seq = TensorSpec(name="x", shape=(None, None), dtype="float32")
    assert resolve_shape(seq, 8, {"x": (1, 16)}) == (8, 16)
    fixed = TensorSpec(name="x", shape=(1, 32), dtype="float32")
    with pytest.raises(FixedBatchError, match="fixed batch of 1"):
        resolve_shape(fixed, 8, {})
    assert resolve_shape(fixed, 8, {}, resizable=True) == (8, 32)
    with pytest.raises(InvalidShapeError, match="does not match"):
        resolve_shape(fixed, 1, {"x": (1, 31)})


def test_dynamic_length_needs_shape_then_runs(tmp_path: Path) -> None:
    model = write_seq_model(tmp_path / "seq.onnx")
    out = tmp_path / "r"
    p = tp("run", "-m", str(model), "-s", "single-stream", "-o", str(out), *QUICK)
    assert_one_line(p, 2, "input 'x' has dynamic dimension 1", "--shape x=Nx")
    assert not list(out.glob("*.json"))
    p = tp(
        "run", "-m", str(model), "-s", "offline", "--batch-sizes", "4", "--shape", "x=1x16",
        "-o", str(out), "--json", *QUICK,
    )  # fmt: skip
    report = one_report(p)
    assert report.status is RunStatus.COMPLETE and report.scenario.batch_size == 4


def test_unknown_shape_name_is_a_usage_error(tmp_path: Path) -> None:
    p = tp("run", "-m", "mlp-tiny", "--shape", "typo=1x32", "-o", str(tmp_path), *QUICK)
    assert_one_line(p, 2, "--shape names input 'typo'", "model inputs: x")


# --- fixed batch of 1 on LiteRT --------------------------------------------------------------


@needs_litert
def test_litert_resizes_a_fixed_batch_when_the_graph_allows(tmp_path: Path) -> None:
    model = write_mlp(tmp_path / "fixed.tflite", LAYERS, batch=1)
    with LiteRtBackend().load(model, {}) as session:
        assert session.inputs[0].shape == (1, 32)
        for batch in (8, 1, 3):
            feeds = query_feeds(session.inputs, batch, {}, seed=batch, resizable=True)
            out = session.bind(feeds)()[0]
            assert out.shape == (batch, 4)
            np.testing.assert_allclose(out, forward(LAYERS, feeds[0]), rtol=1e-5, atol=1e-5)


@needs_litert
def test_litert_refused_resize_is_a_fixed_batch_error_and_the_session_still_runs() -> None:
    with LiteRtBackend().load(FIXED_TFLITE, {}) as session:
        feeds = query_feeds(session.inputs, 8, {}, seed=0, resizable=True)
        with pytest.raises(FixedBatchError, match="fixed batch of 1") as info:
            session.bind(feeds)
        assert "\n" not in info.value.one_line() and "dynamic batch" in info.value.one_line()
        one = query_feeds(session.inputs, 1, {}, seed=0)
        assert session.bind(one)()[0].shape == (1, 10)


@needs_litert
def test_default_matrix_on_litert_skips_offline_batches_it_cannot_run(tmp_path: Path) -> None:
    out = tmp_path / "r"
    p = tp(
        "run", "-m", "digits-cnn", "-b", "litert", "--batch-sizes", "1,8",
        "-o", str(out), "--json", *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    entries = summary(p)
    assert [(e["scenario"], e["status"]) for e in entries] == [
        ("single-stream", "complete"),
        ("offline", "complete"),
        ("offline", "skipped"),
    ]
    assert entries[2]["batch_size"] == 8 and entries[2]["path"] is None
    assert "fixed batch of 1" in str(entries[2]["reason"])
    assert "skipped digits-cnn · litert · offline b8" in p.stderr
    assert len(list(out.glob("*.json"))) == 2
    # nothing left to run: one usage error
    p = tp("run", "-m", "digits-cnn", "-b", "litert", "-s", "offline", "--batch-sizes", "8",
           "-o", str(out), *QUICK)  # fmt: skip
    assert_one_line(p, 2, "fixed batch of 1", "dynamic batch")


# --- usage errors found before the matrix ---------------------------------------------------


def test_model_format_the_backend_cannot_load(tmp_path: Path) -> None:
    onnx_file = resolve_model("digits-cnn", "fp32", ".onnx").path
    p = tp("run", "-m", str(onnx_file), "-b", "litert", "-o", str(tmp_path / "r"), *QUICK)
    assert_one_line(p, 2, "loads .tflite files", "digits-cnn.fp32.onnx")
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))


def test_accuracy_with_baseline_is_a_usage_error(tmp_path: Path) -> None:
    fp32 = resolve_model("digits-cnn", "fp32", ".onnx").path
    p = tp("run", "-m", "digits-cnn", "--accuracy", "--baseline", str(fp32), "-o", str(tmp_path))
    assert_one_line(p, 2, "--accuracy and --baseline", "pass one of them")


# --- suite file against flags ---------------------------------------------------------------


def test_suite_settings_and_explicit_flags(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(
        '[run]\nmodels = ["digits-cnn"]\nscenarios = ["offline"]\nbatch_sizes = [2]\n'
        "quick = true\nmin_queries = 20\nmin_duration_s = 0.05\nwarmup_s = 0\nseed = 5\n"
        "accuracy = true\n"
    )
    p = tp("run", "--suite", str(suite), "-o", str(tmp_path / "a"), "--json")
    report = one_report(p)
    assert report.scenario.batch_size == 2 and report.scenario.seed == 5
    assert report.accuracy is not None and report.accuracy.kind is AccuracyKind.LABELLED

    p = tp(
        "run", "--suite", str(suite), "--batch-sizes", "1,4", "--seed", "0",
        "-o", str(tmp_path / "b"), "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    reports = [read_report(Path(str(e["path"]))) for e in summary(p)]
    assert [r.scenario.batch_size for r in reports] == [1, 4]
    assert all(r.scenario.seed == 0 for r in reports)


def test_suite_help_keeps_the_run_table_name() -> None:
    import os

    env = {**os.environ, "COLUMNS": "300", "TERM": "dumb"}
    p = tp("run", "--help", env=env, timeout=60)
    assert p.returncode == 0
    assert "with a [run] table" in p.stdout


# --- a full disk mid-matrix -------------------------------------------------------------------


def test_report_write_failure_is_one_line_and_keeps_written_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second report meets a full disk (an OSError from the file system, faked: a test
    cannot fill a real disk); the first stays on disk, the error is one line."""
    import tippingpoint.core.io as io_mod
    from tippingpoint.cli import main

    real = io_mod.write_report
    calls: list[Path] = []

    def write_then_fill(report: object, out_dir: Path, samples: object = None) -> Path:
        if calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls.append(real(report, out_dir, samples))  # type: ignore[arg-type]
        return calls[-1]

    monkeypatch.setattr(io_mod, "write_report", write_then_fill)
    out = tmp_path / "r"
    code = main(
        ["run", "-m", "mlp-tiny", "-s", "offline", "--batch-sizes", "1,2", "-o", str(out), *QUICK]
    )
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "cannot write the report" in lines[0] and "No space left on device" in lines[0]
    assert "report(s) written before are kept" in lines[0]
    assert [p.name for p in out.glob("*.json")] == [calls[0].name]
    assert read_report(calls[0]).status is RunStatus.COMPLETE
