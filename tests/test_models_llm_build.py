"""Rebuilding the generative suite from its definition gives the committed files, byte for byte.

Needs the ``export`` extra (torch, transformers, tokenizers, onnx-ir, onnxruntime-genai's model
builder): ``make test-export`` runs it in ``.venv-export``; elsewhere it is skipped. About a
minute on two cores (training, two builder runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

for _module in ("torch", "transformers", "tokenizers", "onnx_ir", "onnxruntime_genai"):
    pytest.importorskip(_module, reason="the generative build needs the export extra")

from tippingpoint.models.generative import LLM_DIR, load_generative_manifest  # noqa: E402
from tippingpoint.models.manifest import sha256_file  # noqa: E402


@pytest.mark.slow
def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-m", "tippingpoint.models.llm_build", "--out", str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
    )
    committed = load_generative_manifest()
    rebuilt = load_generative_manifest(tmp_path / "manifest.json")
    assert rebuilt.models == committed.models
    for entry in committed.models:
        for art in entry.artifacts:
            for f in art.files:
                assert sha256_file(tmp_path / f.file) == f.sha256, f.file
        assert sha256_file(tmp_path / entry.eval.file) == sha256_file(LLM_DIR / entry.eval.file)
