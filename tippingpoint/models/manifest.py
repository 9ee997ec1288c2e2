"""The suite manifest: every exported file with its hash, tensors, cost and measured accuracy.

``models/artifacts/manifest.json`` lists the committed (core) suite; ``make models SUITE=full``
also writes ``models/artifacts/full/manifest.json`` (not committed). Loading needs only pydantic
and the standard library. Format history (``schema_version``):

* 1: first version; the ``pt2`` format was added later without a bump (older manifests
  simply have no ``.pt2`` artifacts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, ValidationError

from tippingpoint.core.errors import ModelFileError, UnknownModelError
from tippingpoint.core.schema import AccuracyKind
from tippingpoint.core.types import Frozen, TensorSpec
from tippingpoint.models.datasets import Metric
from tippingpoint.models.suite.catalog import Task, Tier

MANIFEST_VERSION: Final = 1
ARTIFACTS_DIR = Path(__file__).parent / "artifacts"
"""Where the committed suite lives; ``ARTIFACTS_DIR / 'full'`` holds the on-demand models."""
MANIFEST_NAME = "manifest.json"


class Variant(str, Enum):
    """Numeric precision of an exported file."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"


class ModelFormat(str, Enum):
    """Runtime file format."""

    ONNX = "onnx"
    TFLITE = "tflite"
    PT2 = "pt2"
    """A ``torch.export`` program for the torch backend; fp32 only (fp16/bf16 are its options)."""

    @property
    def suffix(self) -> str:
        """The file suffix, e.g. '.onnx'."""
        return "." + self.value


class VariantAccuracy(Frozen):
    """Accuracy of one exported file on the model's evaluation set, measured at export."""

    kind: AccuracyKind
    metric: Metric
    value: float
    samples: int
    runtime: str = Field(description="runtime and version that measured it")
    relative_to_fp32: float = Field(description="value / the fp32 torch model's value")
    agreement_top1: float | None = None
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    cosine_similarity: float | None = None
    below_floor: bool = Field(description="relative_to_fp32 below MLPerf's 99% floor")


class Artifact(Frozen):
    """One exported file of a suite model."""

    variant: Variant
    format: ModelFormat
    file: str = Field(description="path relative to the manifest's folder")
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    quantization: str | None = Field(default=None, description="how this variant was made")
    accuracy: VariantAccuracy


class EvalFile(Frozen):
    """The committed evaluation set of a model."""

    file: str
    sha256: str
    size_bytes: int
    samples: int


class DatasetInfo(Frozen):
    """Where the model's data comes from and how accuracy is scored."""

    name: str
    description: str
    kind: AccuracyKind
    metric: Metric
    eval: EvalFile
    calibration: str = Field(description="what the int8 calibration set is")
    calibration_samples: int
    reference_value: float = Field(description="the fp32 torch model's value on the eval set")


class SuiteEntry(Frozen):
    """A suite model: cost, data, training, and its exported files."""

    name: str
    description: str
    tier: Tier
    task: Task
    parameters: int
    macs: int = Field(description="multiply-accumulates of one batch-1 inference")
    seed: int
    training: str
    dataset: DatasetInfo
    artifacts: tuple[Artifact, ...]

    def artifact(self, variant: Variant, fmt: ModelFormat) -> Artifact:
        """The file of ``variant`` in ``fmt``."""
        for art in self.artifacts:
            if art.variant is variant and art.format is fmt:
                return art
        have = ", ".join(f"{a.variant.value}.{a.format.value}" for a in self.artifacts)
        raise UnknownModelError(
            f"suite model '{self.name}' has no {variant.value} {fmt.suffix} file",
            f"available: {have}",
        )


class Manifest(Frozen):
    """All suite models exported together, with the tool versions that made them."""

    schema_version: Literal[1] = MANIFEST_VERSION
    generated_by: dict[str, str] = Field(description="package -> version used to export")
    seed: int
    reproducibility: str = Field(description="what regenerating reproduces, and within what")
    models: tuple[SuiteEntry, ...]

    def model(self, name: str) -> SuiteEntry:
        """The entry called ``name``."""
        for entry in self.models:
            if entry.name == name:
                return entry
        raise UnknownModelError(
            f"no suite model named '{name}' in the manifest",
            "known: " + ", ".join(m.name for m in self.models),
        )


def load_manifest(path: Path = ARTIFACTS_DIR / MANIFEST_NAME) -> Manifest:
    """Read and validate a manifest; an unreadable or invalid one is a ModelFileError."""
    try:
        return Manifest.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ModelFileError(
            f"suite manifest not found: {path}", "regenerate the suite with 'make models'"
        ) from None
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(
            f"suite manifest {path} is invalid: {first}",
            "restore it from git or regenerate it with 'make models'",
        ) from exc


def suite_manifests() -> list[tuple[Path, Manifest]]:
    """(folder, manifest) of the committed suite and, when generated, the full tier."""
    out: list[tuple[Path, Manifest]] = []
    for folder in (ARTIFACTS_DIR, ARTIFACTS_DIR / "full"):
        if (folder / MANIFEST_NAME).is_file():
            out.append((folder, load_manifest(folder / MANIFEST_NAME)))
    return out


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    """package -> installed version ("not installed" when absent), for ``generated_by``."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str) -> str:
    """Hash ``path`` and compare with the manifest; missing or changed is a ModelFileError."""
    if not path.is_file():
        raise ModelFileError(
            f"suite file missing: {path}", "regenerate the suite with 'make models'"
        )
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelFileError(
            f"{path.name} has sha256 {actual[:12]}…, the manifest says {expected_sha256[:12]}…",
            "the file changed since export: restore it from git or regenerate with 'make models'",
        )
    return actual
