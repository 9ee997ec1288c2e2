"""LiteRT backend on real ai-edge-litert interpreters and real .tflite files."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tflite_build import Dense, forward, random_mlp, write_mlp
from tippingpoint.backends.base import Backend, Session
from tippingpoint.backends.litert import LiteRtBackend, parse_delegate_options
from tippingpoint.core.errors import (
    InvalidOptionError,
    ModelFileError,
    ModelLoadError,
    RuntimeNotInstalledError,
)
from tippingpoint.core.types import Device
from tippingpoint.harness.inputs import generate_feeds

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ai_edge_litert") is None, reason="needs ai-edge-litert"
)

LAYERS = random_mlp([32, 64, 10], seed=1)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tflite")
    return {
        "float32": write_mlp(d / "mlp_fp32.tflite", LAYERS),
        "dynamic": write_mlp(d / "mlp_dyn.tflite", LAYERS, batch=None),
        "int8": write_mlp(d / "mlp_int8.tflite", LAYERS, io_dtype="int8"),
        "uint8": write_mlp(d / "mlp_uint8.tflite", LAYERS, io_dtype="uint8"),
    }


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * scale


def test_backend_satisfies_protocol() -> None:
    backend = LiteRtBackend()
    assert isinstance(backend, Backend)
    assert backend.formats == (".tflite",)


def test_availability_does_not_import_the_runtime() -> None:
    code = (
        "import sys; from tippingpoint.backends.litert import LiteRtBackend;"
        "a = LiteRtBackend().availability();"
        "print(a.installed, a.runtime, 'ai_edge_litert' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "ai-edge-litert", "False"]


@pytest.mark.parametrize("xnnpack", [True, False])
def test_float_model_matches_reference(models: dict[str, Path], xnnpack: bool) -> None:
    with LiteRtBackend().load(models["float32"], {"threads": 1, "xnnpack": xnnpack}) as session:
        assert isinstance(session, Session)
        assert [(s.name, s.shape, s.dtype, s.quant) for s in session.inputs] == [
            ("x", (1, 32), "float32", None)
        ]
        assert session.outputs[0].shape == (1, 10)
        feeds = generate_feeds(session.inputs, 1, {}, seed=3)
        out = session.bind(feeds)()
        np.testing.assert_allclose(out[0], forward(LAYERS, feeds[0]), rtol=1e-5, atol=1e-5)
        desc = session.describe()
    assert desc.runtime == "ai-edge-litert"
    assert desc.runtime_version == importlib.metadata.version("ai-edge-litert")
    assert desc.device is Device.CPU
    assert desc.threads == 1
    assert desc.options["xnnpack"] is xnnpack
    assert ("xnnpack" in desc.providers) is xnnpack


def test_dynamic_batch_resizes_on_bind(models: dict[str, Path]) -> None:
    with LiteRtBackend().load(models["dynamic"], {}) as session:
        assert session.inputs[0].shape == (None, 32)
        assert session.outputs[0].shape == (None, 10)
        for batch in (4, 2):
            feeds = generate_feeds(session.inputs, batch, {}, seed=batch)
            out = session.bind(feeds)()[0]
            assert out.shape == (batch, 10)
            np.testing.assert_allclose(out, forward(LAYERS, feeds[0]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("io_dtype", ["int8", "uint8"])
def test_quantized_io_exposes_scale_and_zero_point(models: dict[str, Path], io_dtype: str) -> None:
    with LiteRtBackend().load(models[io_dtype], {"threads": 1}) as session:
        spec_in, spec_out = session.inputs[0], session.outputs[0]
        assert spec_in.dtype == spec_out.dtype == io_dtype
        assert spec_in.quant is not None and spec_out.quant is not None
        assert spec_in.quant.scale > 0 and spec_out.quant.scale > 0
        if io_dtype == "uint8":
            assert spec_in.quant.zero_point > 0  # asymmetric around N(0, 1) data
        feeds = generate_feeds(session.inputs, 1, {}, seed=5)
        assert feeds[0].dtype == np.dtype(io_dtype)
        q_out = session.bind(feeds)()[0]
    assert q_out.dtype == np.dtype(io_dtype)
    real_in = dequantize(feeds[0], spec_in.quant.scale, spec_in.quant.zero_point)
    real_out = dequantize(q_out, spec_out.quant.scale, spec_out.quant.zero_point)
    # two requantised layers: stated tolerance of four output quantisation steps
    np.testing.assert_allclose(
        real_out, forward(LAYERS, real_in), rtol=0, atol=4 * spec_out.quant.scale
    )


def test_bound_call_reads_fresh_outputs_each_time(models: dict[str, Path]) -> None:
    with LiteRtBackend().load(models["float32"], {}) as session:
        a = np.ones((1, 32), np.float32)
        b = -a
        out_a = session.bind([a])()[0]
        out_b = session.bind([b])()[0]
        np.testing.assert_allclose(out_a, forward(LAYERS, a), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out_b, forward(LAYERS, b), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def record_delegate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler to build the test delegate")
    src = Path(__file__).parent / "delegates" / "record_delegate.c"
    lib = tmp_path_factory.mktemp("delegate") / "librecord_delegate.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src)], check=True)
    return lib


def test_external_delegate_gets_its_options(
    models: dict[str, Path], record_delegate: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.txt"
    options = {
        "delegate": str(record_delegate),
        "delegate_options": f"record={record}; cache = /tmp/x",
        "xnnpack": False,
    }
    with LiteRtBackend().load(models["float32"], options) as session:
        feeds = generate_feeds(session.inputs, 1, {}, seed=7)
        out = session.bind(feeds)()[0]
        desc = session.describe()
    np.testing.assert_allclose(out, forward(LAYERS, feeds[0]), rtol=1e-5, atol=1e-5)
    lines = record.read_text().splitlines()
    assert sorted(lines) == sorted([f"record={record}", "cache=/tmp/x", "prepare"])
    assert desc.device is Device.ACCELERATOR
    assert desc.device_name == record_delegate.name
    assert desc.providers == (record_delegate.name, "builtin")
    assert desc.options["delegate"] == str(record_delegate)


def test_delegate_that_refuses_to_load_is_an_option_error(
    models: dict[str, Path], record_delegate: Path
) -> None:
    # the test delegate refuses to start without its 'record' option
    with pytest.raises(InvalidOptionError, match="cannot load LiteRT delegate") as info:
        LiteRtBackend().load(models["float32"], {"delegate": str(record_delegate)})
    assert "library path" in info.value.hint


def test_missing_delegate_library(models: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidOptionError, match="libnothere"):
        LiteRtBackend().load(models["float32"], {"delegate": str(tmp_path / "libnothere.so")})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"threads": -1}, "threads"),
        ({"turbo": True}, "turbo"),
        ({"runtime": "tensorflow"}, "runtime"),
        ({"delegate_options": "novalue"}, "delegate_options"),
    ],
)
def test_invalid_options_name_the_option(
    models: dict[str, Path], options: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidOptionError, match=field) as info:
        LiteRtBackend().load(models["float32"], options)  # type: ignore[arg-type]
    assert "valid options" in info.value.hint


def test_parse_delegate_options() -> None:
    assert parse_delegate_options("") == {}
    assert parse_delegate_options("device=usb; a = b ;") == {"device": "usb", "a": "b"}
    with pytest.raises(ValueError, match="key=value"):
        parse_delegate_options("=x")


def test_corrupt_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(ModelLoadError, match=r"bad\.tflite") as info:
        LiteRtBackend().load(bad, {})
    assert "re-export" in info.value.hint
    with pytest.raises(ModelFileError):
        LiteRtBackend().load(tmp_path / "absent.tflite", {})


@pytest.mark.skipif(
    importlib.util.find_spec("tflite_runtime") is not None, reason="tflite-runtime is installed"
)
def test_requesting_an_absent_runtime_is_a_clear_error(models: dict[str, Path]) -> None:
    with pytest.raises(RuntimeNotInstalledError, match="tflite-runtime is not installed"):
        LiteRtBackend().load(models["float32"], {"runtime": "tflite-runtime"})


def test_explicit_ai_edge_litert_runtime(models: dict[str, Path]) -> None:
    with LiteRtBackend().load(models["float32"], {"runtime": "ai-edge-litert"}) as session:
        assert session.describe().runtime == "ai-edge-litert"


def test_layers_are_torch_linear_layout() -> None:
    # the builder's convention, which the cross-backend consistency test relies on
    layer = Dense(np.eye(3, 2, dtype=np.float32), np.zeros(3, np.float32), relu=False)
    np.testing.assert_array_equal(forward([layer], np.array([[1.0, 2.0]])), [[1.0, 2.0, 0.0]])


@pytest.mark.skipif(np.lib.NumpyVersion(np.__version__) < "2.0.0", reason="numpy 1 here")
def test_tflite_runtime_with_numpy2_is_refused_with_the_fix() -> None:
    from tippingpoint.backends.litert import _require_numpy1

    with pytest.raises(RuntimeNotInstalledError, match="needs numpy 1") as info:
        _require_numpy1()
    assert "tippingpoint[tflite]" in info.value.hint


def test_delegated_node_count(models: dict[str, Path]) -> None:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from tippingpoint.backends.litert import delegated_nodes

    on = Interpreter(model_path=str(models["float32"]))
    on.allocate_tensors()
    off = Interpreter(
        model_path=str(models["float32"]),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    off.allocate_tensors()
    assert delegated_nodes(on) == 1  # XNNPACK took both FULLY_CONNECTED nodes as one
    assert delegated_nodes(off) == 0


def test_other_formats_are_a_usage_error() -> None:
    onnx = Path(__file__).parents[1] / "tippingpoint" / "models" / "builtin" / "mlp-tiny.onnx"
    with pytest.raises(ModelFileError, match=r"loads \.tflite files, not mlp-tiny\.onnx"):
        LiteRtBackend().load(onnx, {})
