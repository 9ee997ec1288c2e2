"""Suite models through the harness: format per backend, --accuracy, refused and corrupt files."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tippingpoint.core.io import read_report
from tippingpoint.core.schema import RunFlag, RunStatus
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.accuracy import evaluate, suite_eval_set
from tippingpoint.models.manifest import ModelFormat, Variant, load_manifest
from tippingpoint.models.registry import resolve_model

from .helpers import QUICK, assert_one_line, tiny_scenario, tp


def test_run_accuracy_on_both_formats(tmp_path: Path) -> None:
    p = tp(
        "run", "-m", "digits-cnn", "--variant", "int8", "-b", "litert", "-b", "onnxruntime",
        "-s", "single-stream", "--accuracy", "-o", str(tmp_path), "--json", *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    entry = load_manifest().model("digits-cnn")
    reports = [read_report(Path(s["path"])) for s in json.loads(p.stdout)]
    assert sorted(r.model.format for r in reports) == [".onnx", ".tflite"]
    for r in reports:
        assert r.status is RunStatus.COMPLETE and r.model.sha256_verified
        art = entry.artifact(Variant.INT8, ModelFormat(r.model.format[1:]))
        assert r.model.sha256 == art.sha256
        assert r.accuracy is not None and r.accuracy.samples == 360
        assert r.accuracy.value == pytest.approx(art.accuracy.value)
        assert RunFlag.BELOW_ACCURACY_FLOOR not in r.flags


def test_accuracy_needs_a_suite_model(tmp_path: Path) -> None:
    p = tp("run", "-m", "mlp-tiny", "--accuracy", "-o", str(tmp_path), *QUICK)
    assert_one_line(p, 2, "evaluation set", "mlp-tiny")


def test_below_floor_is_flagged() -> None:
    eval_set, reference = suite_eval_set("digits-cnn")
    ref = resolve_model("digits-cnn", "fp32", ".onnx")
    spec = RunSpec(
        model=ref,
        backend="onnxruntime",
        scenario=tiny_scenario(),
        # a reference of 1.1: the whole 95% interval of value / reference is below the floor
        accuracy=lambda session: evaluate(session, eval_set, reference_value=1.1),
    )
    report = Runner().run(spec).report
    assert report.accuracy is not None
    assert report.accuracy.value == pytest.approx(reference) and report.accuracy.below_floor
    assert RunFlag.BELOW_ACCURACY_FLOOR in report.flags


def test_tampered_and_truncated_suite_files_fail_their_cell_only(tmp_path: Path) -> None:
    good = resolve_model("digits-cnn", "fp32", ".tflite")
    tampered = tmp_path / good.path.name
    shutil.copyfile(good.path, tampered)
    with tampered.open("r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02\x03")
    truncated = tmp_path / "half.tflite"
    truncated.write_bytes(good.path.read_bytes()[:4000])
    cells = [
        replace(good, path=tampered),
        replace(good, path=truncated, expected_sha256=None),
        good,
    ]
    runner = Runner()
    reports = [
        runner.run(RunSpec(model=m, backend="litert", scenario=tiny_scenario())).report
        for m in cells
    ]
    assert [r.status for r in reports] == [RunStatus.FAILED, RunStatus.FAILED, RunStatus.COMPLETE]
    assert reports[0].errors[0].kind == "ModelFileError"
    assert "sha256" in reports[0].errors[0].message
    assert reports[1].errors[0].kind == "ModelLoadError"


def test_suite_files_run_as_bring_your_own_paths(tmp_path: Path) -> None:
    """Token-id and int8 inputs are generated from the file's own specs."""
    done = {}
    for fmt, backend in ((".tflite", "litert"), (".onnx", "onnxruntime")):
        path = resolve_model("text-encoder-tiny", "int8", fmt).path
        p = tp(
            "run", "-m", str(path), "-b", backend, "-s", "single-stream",
            "-o", str(tmp_path / backend), "--json", *QUICK,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        (summary,) = json.loads(p.stdout)
        done[fmt] = read_report(Path(summary["path"]))
    assert all(r.status is RunStatus.COMPLETE for r in done.values())
    assert all(r.model.source.value == "file" for r in done.values())
    assert done[".tflite"].model.inputs[0].dtype == "int32"
    assert done[".tflite"].model.outputs[0].quant is not None
    assert done[".onnx"].model.inputs[0].dtype == "int64"


def test_run_suite_model_on_torch_uses_its_pt2(tmp_path: Path) -> None:
    p = tp(
        "run", "-m", "digits-cnn", "-b", "torch", "-s", "single-stream", "--accuracy",
        "-o", str(tmp_path), "--json", *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    (summary,) = json.loads(p.stdout)
    report = read_report(Path(summary["path"]))
    art = load_manifest().model("digits-cnn").artifact(Variant.FP32, ModelFormat.PT2)
    assert report.status is RunStatus.COMPLETE
    assert report.backend is not None and report.backend.name == "torch"
    assert report.model.format == ".pt2" and report.model.sha256_verified
    assert report.model.sha256 == art.sha256
    assert report.accuracy is not None
    assert report.accuracy.value == pytest.approx(art.accuracy.value)


def test_torch_without_a_pt2_names_what_the_suite_model_has(tmp_path: Path) -> None:
    p = tp("run", "-m", "mobilenetv2-035-96", "-b", "torch", "-o", str(tmp_path), *QUICK)
    assert_one_line(p, 2, "torch backend loads", "fp32.onnx", "pick a backend or --variant")
    p = tp(
        "run", "-m", "digits-cnn", "--variant", "int8", "-b", "torch", "-o", str(tmp_path), *QUICK
    )
    assert_one_line(p, 2, "no int8 file for this backend", "fp32.pt2")
