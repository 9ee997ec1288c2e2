"""Each kind of bad input: one line naming the problem and the fix, the right exit code."""

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import QUICK, assert_one_line, tp


def test_missing_model_file(tmp_path: Path) -> None:
    p = tp("run", "-m", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "r"), *QUICK)
    assert_one_line(p, 2, "model file not found", "check the path")


def test_unknown_model_name(tmp_path: Path) -> None:
    p = tp("run", "-m", "no-such-model", "-o", str(tmp_path / "r"), *QUICK)
    assert_one_line(p, 2, "unknown model 'no-such-model'", "known models:")


def test_corrupt_onnx_is_a_usage_error_before_anything_runs(
    corrupt_onnx: Path, tmp_path: Path
) -> None:
    """The README's promise: a file the backend cannot load is exit 2, found before any run
    (the probe found exit 1 and a failed report)."""
    out = tmp_path / "r"
    p = tp(
        "run", "-m", "mlp-tiny", "-m", str(corrupt_onnx), "-s", "single-stream", "-o", str(out),
        *QUICK,
    )  # fmt: skip
    assert_one_line(p, 2, "cannot load broken.onnx", "check the file")
    assert not list(out.glob("*.json"))  # nothing ran, not even the good model


def test_wrong_input_shape(tmp_path: Path) -> None:
    p = tp(
        "run",
        "-m",
        "mlp-tiny",
        "-s",
        "single-stream",
        "--shape",
        "x=1x3",
        "-o",
        str(tmp_path),
        *QUICK,
    )
    assert_one_line(p, 2, "--shape x=1x3 does not match the model's input shape", "same rank")
    assert not list(tmp_path.glob("*.json"))  # found before anything ran


def test_malformed_shape_flag(tmp_path: Path) -> None:
    p = tp("run", "-m", "mlp-tiny", "--shape", "x=axb", "-o", str(tmp_path), *QUICK)
    assert_one_line(p, 2, "cannot parse --shape", "NAME=DIMxDIMx")


def test_unknown_backend(tmp_path: Path) -> None:
    p = tp("run", "-b", "tensorflow-9", "-o", str(tmp_path), *QUICK)
    assert_one_line(p, 2, "unknown backend 'tensorflow-9'", "tippingpoint backends")


def test_runtime_not_installed(tmp_path: Path) -> None:
    # hide onnxruntime from this process only, as on a board where it was never installed
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from tippingpoint.cli import main\n"
        f"sys.exit(main(['run', '-m', 'mlp-tiny', '-s', 'single-stream', '-o', {str(tmp_path)!r},"
        " '--quick']))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert "needs onnxruntime, which is not installed" in p.stderr
    assert "pip install 'tippingpoint[onnx]'" in p.stdout + p.stderr


def test_unwritable_output_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    p = tp("run", "-o", str(blocker / "sub"), *QUICK)
    assert_one_line(p, 2, "cannot write to output directory", "--out")


def test_invalid_suite_toml(tmp_path: Path) -> None:
    bad = tmp_path / "suite.toml"
    bad.write_text("[run\nmodels = ")
    assert_one_line(tp("run", "--suite", str(bad)), 2, "is not valid TOML", "fix the syntax")
    bad.write_text('[run]\nmodels = ["mlp-tiny"]\nbatch_sizes = [0]\n')
    assert_one_line(tp("run", "--suite", str(bad)), 2, "batch_sizes", "suite example")
    bad.write_text('[run]\nmodels = ["mlp-tiny"]\nwarp = 9\n')
    assert_one_line(tp("run", "--suite", str(bad)), 2, "warp")


def test_invalid_report_json(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text('{"schema_version": 1, "run_id": 3}')
    assert_one_line(tp("show", str(bad)), 2, "not a valid report", "regenerate")


def test_invalid_backend_option(tmp_path: Path) -> None:
    p = tp("run", "--opt", "intra_op_threads=-3", "-o", str(tmp_path), *QUICK)
    assert_one_line(p, 2, "invalid onnxruntime option 'intra_op_threads'", "valid options:")
    assert not list(tmp_path.glob("*.json"))  # once, before the matrix, not a report per cell


def test_debug_shows_traceback(tmp_path: Path) -> None:
    p = tp("--debug", "run", "-b", "nope", "-o", str(tmp_path))
    assert p.returncode != 0 and "Traceback" in p.stderr


@pytest.mark.parametrize("args", [["--help"], ["backends"], ["models"], ["schema"]])
def test_light_commands_do_not_import_runtimes(args: list[str]) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from tippingpoint.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main({args!r})\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'ai_edge_litert', 'tflite_runtime') "
        "if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "0 []", p.stdout + p.stderr
