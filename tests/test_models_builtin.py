"""The committed built-in models are exactly what the builder writes, and are verified on load."""

import json
import shutil
from pathlib import Path

import pytest

from tippingpoint.core.errors import ModelFileError
from tippingpoint.models import builtin_build
from tippingpoint.models.registry import BUILTIN_DIR, ModelRef, resolve_model, verify


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    entries = builtin_build.build(tmp_path)
    committed = json.loads((BUILTIN_DIR / "manifest.json").read_text())
    assert entries == committed
    for name, entry in entries.items():
        assert (tmp_path / entry["file"]).read_bytes() == (
            BUILTIN_DIR / entry["file"]
        ).read_bytes(), name


def test_sha256_mismatch_is_refused(tmp_path: Path, mlp: ModelRef) -> None:
    copy = tmp_path / mlp.path.name
    shutil.copy(mlp.path, copy)
    with copy.open("ab") as f:
        f.write(b"\0")
    tampered = ModelRef(mlp.name, mlp.variant, copy, mlp.source, mlp.expected_sha256)
    with pytest.raises(ModelFileError, match="manifest says") as err:
        verify(tampered)
    assert "make models" in err.value.hint


def test_user_file_resolves_as_file(mlp: ModelRef) -> None:
    ref = resolve_model(str(mlp.path))
    assert ref.source.value == "file" and ref.expected_sha256 is None
    assert len(verify(ref)) == 64
