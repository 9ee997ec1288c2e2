"""The generative suite's manifest: each exported language model, its files and hashes, quality.

A generative model is not one file but an ``onnxruntime-genai`` model folder (``model.onnx``,
its external weights ``model.onnx.data``, ``genai_config.json``, the tokenizer files), one folder
per variant under ``models/artifacts/llm/``. ``models/artifacts/llm/manifest.json`` lists every
file of every folder with its sha256 and size, the evaluation set, and the quality each variant
measured at export (perplexity on held-out generated text, agreement of its greedy continuations
with the fp32 torch model's). Loading needs only pydantic and the standard library.

Format history (``schema_version``): 1: first version.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from tippingpoint.core.errors import ModelFileError, UnknownModelError
from tippingpoint.core.types import Frozen
from tippingpoint.models.manifest import ARTIFACTS_DIR, EvalFile, verify_file

LLM_DIR = ARTIFACTS_DIR / "llm"
"""Where the committed generative models live, one folder per model and variant."""
MANIFEST_NAME = "manifest.json"
GENAI_CONFIG = "genai_config.json"
"""The file that names an onnxruntime-genai model folder (what ``--model`` points at)."""


class GenerativeVariant(str, Enum):
    """Weight precision of an exported language model."""

    FP32 = "fp32"
    INT4 = "int4"
    INT8 = "int8"


class ModelFile(Frozen):
    """One file of a model folder."""

    file: str = Field(description="path relative to the manifest's folder")
    sha256: str
    size_bytes: int


class GenerativeQuality(Frozen):
    """How close one variant is to the fp32 torch model, measured at export."""

    runtime: str = Field(description="runtime and version that measured it")
    perplexity: float = Field(description="exp(mean next-token loss) on the eval passages")
    relative_perplexity: float = Field(description="perplexity / the fp32 torch perplexity")
    probe_token_agreement: float = Field(
        description="fraction of greedy probe tokens equal to the torch model's, position-wise"
    )
    probes_identical: int = Field(description="probes whose whole continuation is identical")
    probes: int


class GenerativeArtifact(Frozen):
    """One variant: an onnxruntime-genai model folder."""

    variant: GenerativeVariant
    folder: str = Field(description="folder relative to the manifest's folder")
    files: tuple[ModelFile, ...]
    quantization: str | None = Field(default=None, description="how this variant was made")
    quality: GenerativeQuality

    @property
    def size_bytes(self) -> int:
        """All files of the folder together."""
        return sum(f.size_bytes for f in self.files)

    def config_path(self, root: Path = LLM_DIR) -> Path:
        """The folder's ``genai_config.json`` under ``root``."""
        return root / self.folder / GENAI_CONFIG


class GenerativeEntry(Frozen):
    """A generative suite model: architecture, tokenizer, training, evaluation and variants."""

    name: str
    description: str
    architecture: str = Field(description="the transformers class it was defined with")
    parameters: int
    weight_macs_per_token: int = Field(
        description="multiply-accumulates of the weight matrices for one token (attention over "
        "the context, which grows with position, excluded)"
    )
    vocab_size: int
    context_length: int
    eos_token_id: int
    seed: int
    training: str
    tokenizer: str
    reference_perplexity: float = Field(description="the fp32 torch model on the eval passages")
    eval: EvalFile
    artifacts: tuple[GenerativeArtifact, ...]

    def artifact(self, variant: GenerativeVariant) -> GenerativeArtifact:
        """The folder of ``variant``; UnknownModelError naming the variants there are."""
        for art in self.artifacts:
            if art.variant is variant:
                return art
        have = ", ".join(a.variant.value for a in self.artifacts)
        raise UnknownModelError(
            f"generative model '{self.name}' has no {variant.value} variant",
            f"available: {have}",
        )


class GenerativeManifest(Frozen):
    """Every generative suite model exported together, with the tool versions that made them."""

    schema_version: Literal[1] = 1
    generated_by: dict[str, str] = Field(description="package -> version used to build")
    reproducibility: str = Field(description="what regenerating reproduces, and within what")
    models: tuple[GenerativeEntry, ...]

    def model(self, name: str) -> GenerativeEntry:
        """The entry called ``name``."""
        for entry in self.models:
            if entry.name == name:
                return entry
        raise UnknownModelError(
            f"no generative suite model named '{name}'",
            "known: " + ", ".join(m.name for m in self.models),
        )

    @property
    def size_bytes(self) -> int:
        """Every committed file it lists: model folders and evaluation sets."""
        return sum(a.size_bytes for m in self.models for a in m.artifacts) + sum(
            m.eval.size_bytes for m in self.models
        )


def load_generative_manifest(path: Path = LLM_DIR / MANIFEST_NAME) -> GenerativeManifest:
    """Read and validate the manifest; an unreadable or invalid one is a ModelFileError."""
    try:
        return GenerativeManifest.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        raise ModelFileError(
            f"generative suite manifest not found: {path}", "regenerate it with 'make models'"
        ) from None
    except (OSError, ValueError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(
            f"generative suite manifest {path} is invalid: {first}",
            "restore it from git or regenerate it with 'make models'",
        ) from exc


def verify_artifact(artifact: GenerativeArtifact, root: Path = LLM_DIR) -> Path:
    """Hash every file of the folder against the manifest; returns the ``genai_config.json``.

    A missing or changed file is a ModelFileError naming it.
    """
    for f in artifact.files:
        verify_file(root / f.file, f.sha256)
    return artifact.config_path(root)


def resolve_generative(
    name: str, variant: GenerativeVariant = GenerativeVariant.FP32
) -> tuple[GenerativeEntry, GenerativeArtifact, Path]:
    """(entry, artifact, verified ``genai_config.json``) of a committed generative model."""
    entry = load_generative_manifest().model(name)
    art = entry.artifact(variant)
    return entry, art, verify_artifact(art)
