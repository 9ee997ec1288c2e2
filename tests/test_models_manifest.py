"""The committed suite: manifest, hashes, size budget, specs, registry resolution."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tippingpoint.core.errors import ModelFileError, UnknownModelError
from tippingpoint.core.schema import AccuracyKind, ModelSource
from tippingpoint.models.accuracy import evaluate, suite_eval_set
from tippingpoint.models.manifest import (
    ARTIFACTS_DIR,
    Manifest,
    ModelFormat,
    Variant,
    load_manifest,
    sha256_file,
    verify_file,
)
from tippingpoint.models.registry import for_backend, resolve_model, verify
from tippingpoint.models.suite import Tier, suite_model, suite_models


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest()


def test_every_core_model_has_six_variants(manifest: Manifest) -> None:
    """Six ONNX/LiteRT files each, plus an fp32 .pt2 exactly for the catalogue's pt2 models."""
    assert [m.name for m in manifest.models] == [m.name for m in suite_models(Tier.CORE)]
    six = {(v, f) for v in Variant for f in (ModelFormat.ONNX, ModelFormat.TFLITE)}
    for entry in manifest.models:
        pairs = {(a.variant, a.format) for a in entry.artifacts}
        pt2 = {(Variant.FP32, ModelFormat.PT2)} if suite_model(entry.name).pt2 else set()
        assert pairs == six | pt2, entry.name
        assert entry.parameters > 0 and entry.macs > 0
    with_pt2 = {m.name for m in manifest.models if suite_model(m.name).pt2}
    assert with_pt2 == {"tabular-mlp", "digits-cnn", "ds-cnn-kws", "resnet8"}


def test_hashes_and_sizes_match_committed_files(manifest: Manifest) -> None:
    for entry in manifest.models:
        for art in entry.artifacts:
            path = ARTIFACTS_DIR / art.file
            assert verify_file(path, art.sha256) == art.sha256
            assert path.stat().st_size == art.size_bytes
        eval_path = ARTIFACTS_DIR / entry.dataset.eval.file
        assert sha256_file(eval_path) == entry.dataset.eval.sha256


def test_committed_size_budget(manifest: Manifest) -> None:
    sizes = [a.size_bytes for m in manifest.models for a in m.artifacts]
    sizes += [m.dataset.eval.size_bytes for m in manifest.models]
    assert max(sizes) <= 5 * 2**20
    assert sum(sizes) <= 25 * 2**20


def test_int8_litert_io_carries_scale_and_zero_point(manifest: Manifest) -> None:
    for entry in manifest.models:
        art = entry.artifact(Variant.INT8, ModelFormat.TFLITE)
        for spec in (*art.inputs, *art.outputs):
            if spec.dtype == "int8":
                assert spec.quant is not None and spec.quant.scale > 0
                assert -128 <= spec.quant.zero_point <= 127
        assert art.outputs[0].dtype == "int8", entry.name
    text = manifest.model("text-encoder-tiny")
    assert text.artifact(Variant.INT8, ModelFormat.TFLITE).inputs[0].dtype == "int32"
    assert text.artifact(Variant.INT8, ModelFormat.ONNX).inputs[0].dtype == "int64"


def test_labelled_only_where_real_labels_exist(manifest: Manifest) -> None:
    kinds = {m.name: m.dataset.kind for m in manifest.models}
    assert kinds["digits-cnn"] is AccuracyKind.LABELLED
    assert kinds["tabular-mlp"] is AccuracyKind.LABELLED
    assert kinds["resnet8"] is AccuracyKind.AGREEMENT
    assert manifest.model("ae-anomaly").dataset.metric == "cosine"
    for entry in manifest.models:
        for art in entry.artifacts:
            assert art.accuracy.kind is entry.dataset.kind
            assert art.accuracy.samples == entry.dataset.eval.samples


def test_fp32_exports_match_torch_reference_figures(manifest: Manifest) -> None:
    for entry in manifest.models:
        for art in entry.artifacts:
            if art.variant is not Variant.FP32:
                continue
            acc = art.accuracy
            assert acc.value == pytest.approx(entry.dataset.reference_value)
            assert acc.cosine_similarity is not None and acc.cosine_similarity > 0.99999


def test_unknown_variant_and_model_are_usage_errors(manifest: Manifest) -> None:
    with pytest.raises(UnknownModelError, match="no-such-model") as info:
        manifest.model("no-such-model")
    assert "digits-cnn" in info.value.hint
    with pytest.raises(UnknownModelError, match="int4") as info:
        resolve_model("digits-cnn", "int4")
    assert "int8.tflite" in info.value.hint


def test_registry_resolves_suite_files_with_checked_hash() -> None:
    ref = resolve_model("digits-cnn", "int8", ".tflite")
    assert ref.source is ModelSource.SUITE
    assert ref.path == ARTIFACTS_DIR / "digits-cnn.int8.tflite"
    assert verify(ref) == ref.expected_sha256
    default = resolve_model("resnet8")
    assert (default.variant, default.format) == ("fp32", ".onnx")


def test_torch_backend_gets_the_pt2_with_checked_hash(tmp_path: Path, manifest: Manifest) -> None:
    from tippingpoint.backends.torch_backend import TorchBackend

    art = manifest.model("digits-cnn").artifact(Variant.FP32, ModelFormat.PT2)
    assert art.accuracy.runtime.startswith("torch ")
    ref = for_backend(resolve_model("digits-cnn"), TorchBackend.formats)
    assert (ref.path, ref.source) == (ARTIFACTS_DIR / art.file, ModelSource.SUITE)
    assert ref.expected_sha256 == art.sha256 and verify(ref) == art.sha256
    assert resolve_model("digits-cnn", "fp32", ".pt2") == ref
    changed = tmp_path / ref.path.name
    data = bytearray(ref.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="the manifest says"):
        verify(replace(ref, path=changed))
    eval_set, reference = suite_eval_set("digits-cnn")
    with TorchBackend().load(ref.path, {"threads": 1}) as session:
        result = evaluate(session, eval_set, reference)
    assert result.value == pytest.approx(art.accuracy.value, abs=1e-12)
    assert result.max_abs_error == pytest.approx(art.accuracy.max_abs_error, rel=1e-4)
    # a model without a committed .pt2 stays on its .onnx (the torch backend then says so)
    no_pt2 = for_backend(resolve_model("mobilenetv2-035-96"), TorchBackend.formats)
    assert no_pt2.format == ".onnx"


def test_changed_file_is_refused(tmp_path: Path, manifest: Manifest) -> None:
    art = manifest.model("digits-cnn").artifact(Variant.FP32, ModelFormat.ONNX)
    copy = tmp_path / "copy.onnx"
    shutil.copyfile(ARTIFACTS_DIR / art.file, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="the manifest says") as info:
        verify_file(copy, art.sha256)
    assert "make models" in info.value.hint
    with pytest.raises(ModelFileError, match="missing"):
        verify_file(tmp_path / "gone.onnx", art.sha256)


def test_invalid_manifest_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json")
    with pytest.raises(ModelFileError, match="invalid"):
        load_manifest(bad)
    data = json.loads((ARTIFACTS_DIR / "manifest.json").read_text())
    data["schema_version"] = 99
    bad.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="invalid"):
        load_manifest(bad)
    with pytest.raises(ModelFileError, match="not found"):
        load_manifest(tmp_path / "absent.json")


def test_runtime_path_needs_neither_torch_nor_sklearn() -> None:
    code = (
        "import sys\n"
        "from tippingpoint.models.accuracy import suite_eval_set\n"
        "from tippingpoint.models.registry import list_models\n"
        "list_models(); suite_eval_set('digits-cnn')\n"
        "heavy = {'torch', 'sklearn', 'onnx', 'litert_torch'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_write_manifest_merges_by_name_and_checks_the_budget(
    tmp_path: Path, manifest: Manifest
) -> None:
    from tippingpoint.models.build import check_sizes, write_manifest

    digits, tabular = manifest.model("digits-cnn"), manifest.model("tabular-mlp")
    write_manifest(tmp_path, [digits], seed=1)
    merged = write_manifest(tmp_path, [tabular, digits], seed=1)
    assert [m.name for m in merged.models] == ["tabular-mlp", "digits-cnn"]
    assert load_manifest(tmp_path / "manifest.json") == merged
    assert check_sizes(tmp_path, merged) == []
    big = digits.artifacts[0].model_copy(update={"size_bytes": 6 * 2**20})
    oversized = merged.model_copy(
        update={"models": (digits.model_copy(update={"artifacts": (big,)}),)}
    )
    problems = check_sizes(tmp_path, oversized)
    assert len(problems) == 1 and "limit 5 MiB" in problems[0]
