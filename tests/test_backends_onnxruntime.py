from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tippingpoint.backends.base import Backend, Session
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import InvalidOptionError, ModelFileError, ModelLoadError
from tippingpoint.core.types import Device
from tippingpoint.models.registry import ModelRef


def _mlp_reference(model_path: Path, x: np.ndarray) -> np.ndarray:
    w = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(model_path)).graph.initializer}
    h = np.maximum(x @ w["w1"] + w["b1"], 0)
    return h @ w["w2"] + w["b2"]


def test_registered_through_entry_point_and_satisfies_protocol() -> None:
    cls = get_backend("onnxruntime")
    backend = cls()
    assert isinstance(backend, Backend)
    assert backend.availability().installed


def test_session_runs_and_matches_numpy(mlp: ModelRef) -> None:
    backend = get_backend("onnxruntime")()
    with backend.load(mlp.path, {"intra_op_threads": 1}) as session:
        assert isinstance(session, Session)
        (spec,) = session.inputs
        assert spec.name == "x" and spec.shape == (None, 32) and spec.dtype == "float32"
        x = np.random.default_rng(0).standard_normal((4, 32)).astype(np.float32)
        (logits,) = session.bind([x])()
        np.testing.assert_allclose(logits, _mlp_reference(mlp.path, x), rtol=1e-5, atol=1e-5)


def test_every_option_recorded_with_defaults(mlp: ModelRef) -> None:
    backend = get_backend("onnxruntime")()
    with backend.load(mlp.path, {"intra_op_threads": 2, "graph_optimization": "basic"}) as s:
        d = s.describe()
    assert d.device is Device.CPU
    assert d.providers == ("CPUExecutionProvider",)
    assert d.threads == 2
    assert d.options == {
        "intra_op_threads": 2,
        "inter_op_threads": 0,
        "graph_optimization": "basic",
        "execution_mode": "sequential",
        "enable_cpu_mem_arena": True,
        "enable_mem_pattern": True,
        "allow_spinning": True,
    }


def test_invalid_option_names_the_option(mlp: ModelRef) -> None:
    backend = get_backend("onnxruntime")()
    with pytest.raises(InvalidOptionError, match="graph_optimization") as err:
        backend.load(mlp.path, {"graph_optimization": "fastest"})
    assert "valid options" in err.value.hint
    with pytest.raises(InvalidOptionError, match="bogus"):
        backend.load(mlp.path, {"bogus": 1})


def test_corrupt_model_is_a_load_error(corrupt_onnx: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"could not load broken\.onnx"):
        get_backend("onnxruntime")().load(corrupt_onnx, {})


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        get_backend("onnxruntime")().load(tmp_path / "nope.onnx", {})
