"""Model lookup: a suite name (with variant and format) or a path to a user's file.

Suite models are listed in manifests (``models/builtin/manifest.json`` for the built-in ONNX
micro-models, see :mod:`tippingpoint.models.builtin_build`; the exported suite adds its own); each
entry records the file's sha256, checked before a run loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tippingpoint.core.errors import ModelFileError, UnknownModelError
from tippingpoint.core.schema import ModelIdentity, ModelSource
from tippingpoint.core.types import TensorSpec
from tippingpoint.models.manifest import sha256_file, suite_manifests

BUILTIN_DIR = Path(__file__).parent / "builtin"
KNOWN_SUFFIXES = (".onnx", ".tflite", ".pt2", ".pt")
DEFAULT_SUITE = ("tabular-mlp", "digits-cnn", "ds-cnn-kws")
"""What ``tippingpoint run`` measures without ``--model``: the three smallest suite models
(committed ONNX/LiteRT files and evaluation sets, so no torch is needed), as ``make bench``."""


@dataclass(frozen=True)
class ModelRef:
    """A resolved model file and what is known of it before loading."""

    name: str
    variant: str
    path: Path
    source: ModelSource
    expected_sha256: str | None = None
    parameters: int | None = None
    macs: int | None = None
    description: str = ""

    @property
    def format(self) -> str:
        """The file suffix, e.g. '.onnx'."""
        return self.path.suffix


def _builtin_refs() -> list[ModelRef]:
    manifest = BUILTIN_DIR / "manifest.json"
    if not manifest.is_file():
        return []
    data = json.loads(manifest.read_text())
    return [
        ModelRef(
            name=name,
            variant=entry["variant"],
            path=BUILTIN_DIR / entry["file"],
            source=ModelSource.BUILTIN,
            expected_sha256=entry["sha256"],
            parameters=entry.get("parameters"),
            macs=entry.get("macs"),
            description=entry.get("description", ""),
        )
        for name, entry in sorted(data.items())
    ]


def _suite_refs() -> list[ModelRef]:
    """One ref per exported file of the torch suite (models/artifacts/manifest.json)."""
    return [
        ModelRef(
            name=entry.name,
            variant=art.variant.value,
            path=folder / art.file,
            source=ModelSource.SUITE,
            expected_sha256=art.sha256,
            parameters=entry.parameters,
            macs=entry.macs,
            description=entry.description,
        )
        for folder, manifest in suite_manifests()
        for entry in manifest.models
        for art in entry.artifacts
    ]


def _generative_refs() -> list[ModelRef]:
    """One ref per variant of the generative suite (models/artifacts/llm/manifest.json): the
    folder's ``genai_config.json``, which onnxruntime-genai loads; :func:`verify` hashes every
    file of the folder against the manifest."""
    from tippingpoint.models.generative import LLM_DIR, MANIFEST_NAME, load_generative_manifest

    if not (LLM_DIR / MANIFEST_NAME).is_file():
        return []
    refs: list[ModelRef] = []
    for entry in load_generative_manifest().models:
        for art in entry.artifacts:
            config = art.config_path()
            sha = next(
                (f.sha256 for f in art.files if (LLM_DIR / f.file) == config),
                None,
            )
            refs.append(
                ModelRef(
                    name=entry.name,
                    variant=art.variant.value,
                    path=config,
                    source=ModelSource.SUITE,
                    expected_sha256=sha,
                    parameters=entry.parameters,
                    description=entry.description,
                )
            )
    return refs


def _verify_generative_folder(ref: ModelRef) -> None:
    """Every file of a generative suite variant's folder against the manifest."""
    from tippingpoint.models.generative import (
        GENAI_CONFIG,
        GenerativeVariant,
        load_generative_manifest,
        verify_artifact,
    )

    if ref.source is not ModelSource.SUITE or ref.path.name != GENAI_CONFIG:
        return
    try:
        art = load_generative_manifest().model(ref.name).artifact(GenerativeVariant(ref.variant))
    except (UnknownModelError, ValueError):
        return
    verify_artifact(art)


def list_models() -> list[ModelRef]:
    """Every model the registry knows, in name/variant/format order."""
    refs = _builtin_refs() + _suite_refs() + _generative_refs()
    return sorted(refs, key=lambda r: (r.name, r.variant, r.format))


def looks_like_path(spec: str) -> bool:
    """Whether a --model value names a file rather than a suite model."""
    return "/" in spec or spec.endswith(KNOWN_SUFFIXES) or Path(spec).exists()


def resolve_model(spec: str, variant: str | None = None, fmt: str | None = None) -> ModelRef:
    """Resolve a suite name (+ variant, format) or a file path to a :class:`ModelRef`."""
    if looks_like_path(spec):
        path = Path(spec).expanduser()
        if path.is_dir():
            raise ModelFileError(
                f"--model {path} is a directory, not a model file",
                "pass the .onnx/.tflite/.pt2 file inside it",
            )
        if not path.is_file():
            raise ModelFileError(
                f"model file not found: {path}", "check the path passed to --model"
            )
        return ModelRef(
            name=path.stem, variant=variant or "user", path=path, source=ModelSource.FILE
        )
    candidates = [r for r in list_models() if r.name == spec]
    if not candidates:
        known = ", ".join(sorted({r.name for r in list_models()}))
        raise UnknownModelError(
            f"unknown model '{spec}'",
            f"known models: {known}; or pass a path to an .onnx/.tflite file",
        )
    if variant is not None:
        candidates = [r for r in candidates if r.variant == variant]
    if fmt is not None:
        candidates = [r for r in candidates if r.format == fmt]
    if not candidates:
        have = ", ".join(
            sorted({f"{r.variant}{r.format}" for r in list_models() if r.name == spec})
        )
        raise UnknownModelError(
            f"model '{spec}' has no variant {variant or '*'} in format {fmt or '*'}",
            f"available: {have}",
        )
    order = {"fp32": 0, "fp16": 1, "int8": 2}
    return sorted(candidates, key=lambda r: (order.get(r.variant, 9), r.format))[0]


def remote_ref(name: str) -> ModelRef:
    """A model known only by its ``name`` on an endpoint: no local file, nothing to hash."""
    return ModelRef(name=name, variant="remote", path=Path(), source=ModelSource.REMOTE)


def is_remote(ref: ModelRef) -> bool:
    """Whether ``ref`` is a model known only on an endpoint (see :func:`remote_ref`)."""
    return ref.source is ModelSource.REMOTE


def for_backend(ref: ModelRef, formats: tuple[str, ...]) -> ModelRef:
    """The same suite model and variant in a format the backend loads (e.g. .tflite for litert).

    File models and refs already in a loadable format are returned unchanged.
    """
    if ref.source is not ModelSource.SUITE or ref.format in formats:
        return ref
    for fmt in formats:
        try:
            return resolve_model(ref.name, ref.variant, fmt)
        except UnknownModelError:
            continue
    return ref


def verify(ref: ModelRef) -> str:
    """Hash the file, compare with the manifest when there is one, and return the hash."""
    if ref.source is ModelSource.REMOTE:
        return ""  # no local file: the endpoint has the model
    if not ref.path.is_file():
        raise ModelFileError(
            f"model file missing: {ref.path}", "regenerate the suite with 'make models'"
        )
    _verify_generative_folder(ref)
    digest = sha256_file(ref.path)
    if ref.expected_sha256 is not None and digest != ref.expected_sha256:
        raise ModelFileError(
            f"{ref.path.name} has sha256 {digest[:12]}…, the manifest says "
            f"{ref.expected_sha256[:12]}…",
            "the file changed since export: regenerate it ('make models') or restore it from git",
        )
    return digest


def unloaded_identity(ref: ModelRef) -> ModelIdentity:
    """The model section of a run that never loaded ``ref``: no hash, no tensors, no counts,
    and size 0 when the file is missing."""
    return ModelIdentity(
        name=ref.name,
        variant=ref.variant,
        format=ref.format,
        source=ref.source,
        path="" if ref.source is ModelSource.REMOTE else str(ref.path),
        sha256="",
        size_bytes=ref.path.stat().st_size if ref.path.is_file() else 0,
    )


def identity(
    ref: ModelRef,
    digest: str,
    inputs: tuple[TensorSpec, ...] = (),
    outputs: tuple[TensorSpec, ...] = (),
) -> ModelIdentity:
    """The report's model section for a resolved, verified model: what the unloaded section
    holds, with the file's hash and size, its tensors and the manifest's counts."""
    return unloaded_identity(ref).model_copy(
        update={
            "sha256": digest,
            "size_bytes": ref.path.stat().st_size if ref.path.is_file() else 0,
            "inputs": inputs,
            "outputs": outputs,
            "parameters": ref.parameters,
            "macs": ref.macs,
            "sha256_verified": ref.expected_sha256 is not None,
        }
    )
