"""The probe's command-line misuse, replayed: every bad count, duration, seed or rate is one
``error:`` line on stderr and exit 2 before anything runs (no output directory is created), and
reading a report nested too deeply or writing a report onto a directory is one line too.

The commands run in this process through :func:`tippingpoint.cli.main` (the console script's
entry point), so each check costs milliseconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tippingpoint.cli import main

pytestmark = pytest.mark.probe("cli-misuse")


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``tippingpoint ARGS`` in this process: exit code, stdout, stderr."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code: int, err: str, *needles: str) -> None:
    """Exit 2 and one ``error:`` line on stderr holding every needle, no traceback."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


BAD_LIMITS = [
    (["--min-queries", "-5"], "--min-queries"),
    (["--min-queries", "0"], "--min-queries"),
    (["--warmup-queries", "-1"], "--warmup-queries"),
    (["--min-duration", "-1"], "--min-duration"),
    (["--min-duration", "nan"], "--min-duration"),
    (["--min-duration", "inf"], "--min-duration"),
    (["--max-duration", "-3"], "--max-duration"),
    (["--max-duration", "0"], "--max-duration"),
    (["--max-duration", "nan"], "--max-duration"),
    (["--warmup-duration", "-2"], "--warmup-duration"),
    (["--warmup-duration", "nan"], "--warmup-duration"),
    (["--min-duration", "5", "--max-duration", "1"], "--max-duration"),
    (["--min-duration", "500"], "default --max-duration"),
    (["--idle-s", "-2"], "--idle-s"),
    (["--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize(("flags", "needle"), BAD_LIMITS, ids=[" ".join(f) for f, _ in BAD_LIMITS])
def test_bad_limits_are_usage_errors_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str], needle: str
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "run", "-m", "mlp-tiny", "--out", str(out), *flags)
    assert_usage_error(code, err, needle)
    assert not out.exists(), "the output directory was created before the usage error"


@pytest.mark.parametrize("rate", ["1e9", "0", "-5", "nan", "inf"])
def test_rates_the_generator_cannot_schedule_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rate: str
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "run", "-m", "mlp-tiny", "--endpoint", "local", "-s", "server", "--rate", rate,
        "--out", str(out),
    )  # fmt: skip
    assert_usage_error(code, err, "--rate", "100,000")
    assert not out.exists()


@pytest.fixture(scope="module")
def nested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSON document nested 200,000 levels deep (valid JSON, no report)."""
    path = tmp_path_factory.mktemp("nested") / "nested.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    return path


@pytest.mark.probe("reports")
@pytest.mark.parametrize(
    "command",
    [
        ["show", "{n}"],
        ["compare", "{n}", "{n}"],
        ["report", "{n}", "--out", "{tmp}/r.html"],
        ["report", "{real}", "--cost", "{n}", "--out", "{tmp}/r.html"],
        [
            "cost",
            "--reports",
            "{n}",
            "--device",
            "rpi5",
            "--cloud",
            "gpu-t4-ondemand",
            "-w",
            "camera-analytics",
        ],
    ],
    ids=["show", "compare", "report", "report --cost", "cost"],
)
def test_deeply_nested_json_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    nested: Path,
    real_results: Path,
    command: list[str],
) -> None:
    fill = {"n": str(nested), "tmp": str(tmp_path), "real": str(real_results)}
    code, _, err = run_cli(capsys, *(part.format(**fill) for part in command))
    assert_usage_error(code, err, "nested too deeply")


@pytest.mark.probe("reports")
def test_report_out_naming_a_directory_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, real_results: Path
) -> None:
    code, _, err = run_cli(capsys, "report", str(real_results), "--out", str(tmp_path))
    assert_usage_error(code, err, "is a directory", "report.html")


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    from tests.helpers import assert_one_line, tp

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = tp("serve", "-m", "mlp-tiny", "--port", str(port), timeout=60)
    assert_one_line(proc, 2, f"127.0.0.1:{port}", "--port")


@pytest.mark.parametrize("flag", ["--header-timeout", "--timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_serve_limits_that_are_not_positive_and_finite_are_usage_errors(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    code, _, err = run_cli(capsys, "serve", "-m", "mlp-tiny", flag, value)
    assert_usage_error(code, err, "invalid server limits", "--header-timeout")


@pytest.mark.parametrize("kind", ["empty", "random", "truncated"])
@pytest.mark.parametrize("fmt", [".onnx", ".tflite"])
def test_files_the_backend_cannot_load_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str, fmt: str
) -> None:
    """The README promises exit 2 before anything runs; the probe got exit 1 and a failed
    report for empty, random and truncated files."""
    import numpy as np

    from tippingpoint.models.registry import resolve_model

    good = resolve_model("digits-cnn", "fp32", fmt).path.read_bytes()
    data = {
        "empty": b"",
        "random": np.random.default_rng(0).bytes(4096),
        "truncated": good[: len(good) // 3],
    }[kind]
    bad = tmp_path / f"bad{fmt}"
    bad.write_bytes(data)
    backend = "litert" if fmt == ".tflite" else "onnxruntime"
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "run", "-m", str(bad), "-b", backend, "-s", "single-stream", "--out", str(out)
    )
    assert_usage_error(code, err, f"bad{fmt}")
    assert not list(out.glob("*.json"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-m", "{tmp}"], "is a directory"),
        (["--suite", "{tmp}"], "is a directory"),
        (["-m", "mlp-tiny", "--inputs", "{text}"], "not an .npz"),
        (["-m", "mlp-tiny", "--inputs", "{npy}"], "single .npy"),
        (["-m", "mlp-tiny", "--inputs", "{nan}"], "NaN or infinite"),
    ],
    ids=["dir as -m", "dir as --suite", "text --inputs", "npy --inputs", "all-NaN --inputs"],
)
def test_misleading_lines_name_the_real_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], needle: str
) -> None:
    import numpy as np

    from tippingpoint.models.registry import resolve_model

    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    np.save(tmp_path / "one.npy", np.zeros(3))
    name = "input"
    from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend

    with OnnxRuntimeCpuBackend().load(resolve_model("mlp-tiny").path, {}) as s:
        name = s.inputs[0].name
    np.savez(tmp_path / "nan.npz", **{name: np.full((4, 16), np.nan, np.float32)})
    fill = {
        "tmp": str(tmp_path),
        "text": str(tmp_path / "text.npz"),
        "npy": str(tmp_path / "one.npy"),
        "nan": str(tmp_path / "nan.npz"),
    }
    code, _, err = run_cli(
        capsys, "run", *(a.format(**fill) for a in args), "--out", str(tmp_path / "out")
    )
    assert_usage_error(code, err, needle)


@pytest.mark.probe("reports")
def test_show_on_an_empty_directory_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "show", str(tmp_path))
    assert_usage_error(code, err, "no report JSON files")


@pytest.mark.probe("endpoint-faults")
def test_run_failed_lines_go_to_stderr_and_name_the_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The probe: 'run failed' went to stdout with stderr empty, and read 'run failed: ' alone
    for an error without text. An endpoint that refuses connections fails its run."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run_cli(
        capsys, "run", "-m", "mlp-tiny", "--endpoint", f"http://127.0.0.1:{port}",
        "-s", "single-stream", "--idle-s", "0", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 1
    (line,) = [x for x in err.splitlines() if "run failed" in x]
    assert "EndpointError" in line and "cannot reach" in line
    assert "run failed" not in out


@pytest.mark.probe("reports")
@pytest.mark.parametrize("command", ["compare", "report"])
def test_a_sidecar_with_a_wrong_sha256_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, real_results: Path, command: str
) -> None:
    """The probe: compare and report exited 0 calling a tampered sidecar 'missing'."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(real_results, copy)
    sidecar = sorted(copy.glob("*mlp-tiny*single-stream*.samples.npz"))[0]
    sidecar.write_bytes(sidecar.read_bytes() + b"x")
    extra = ["--out", str(tmp_path / "r.html")] if command == "report" else []
    code, _, err = run_cli(capsys, command, str(copy), *extra)
    assert_usage_error(code, err, "do not match the report's sha256", sidecar.name)


@pytest.mark.probe("reports")
def test_report_cost_naming_a_run_report_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, real_results: Path
) -> None:
    """The probe: ``report --cost RUN_REPORT`` said 'no report JSON files'."""
    run_report = sorted(real_results.glob("*.json"))[0]
    code, _, err = run_cli(
        capsys, "report", str(real_results), "--cost", str(run_report), "--out",
        str(tmp_path / "r.html"),
    )  # fmt: skip
    assert_usage_error(code, err, "is a run report", "not a cost result")


@pytest.mark.probe("endpoint-faults")
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "--debug"])
def test_a_failed_run_is_on_stderr_and_debug_shows_its_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, debug: bool
) -> None:
    """The probe: 'run failed' went to stdout with stderr empty, and --debug showed no
    traceback for a failed run."""
    import socket

    with socket.socket() as closed:  # a port nothing listens on once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    args = ["run", "-m", "mlp-tiny", "-b", "http", "--endpoint", f"http://127.0.0.1:{port}"]
    args += ["-s", "single-stream", "--quick", "--out", str(tmp_path / "out")]
    code, out, err = run_cli(capsys, *(["--debug", *args] if debug else args))
    assert code == 1, err
    failed = [line for line in err.splitlines() if line.startswith("run failed")]
    assert len(failed) == 1 and "EndpointError" in failed[0] and "cannot reach" in failed[0]
    assert "run failed" not in out
    if debug:
        assert "Traceback (most recent call last)" in err and "in load" in err
    else:
        assert "Traceback" not in err


def test_a_model_with_a_string_input_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The probe's W item: a string-typed input failed the run with 'data type
    tensor(string) not understood' (exit 1, no fix)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.STRING, [1])
    y = helper.make_tensor_value_info("y", TensorProto.STRING, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "text.onnx")
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "run", "-m", str(tmp_path / "text.onnx"), "-s", "single-stream", "--quick",
        "--out", str(out),
    )  # fmt: skip
    assert_usage_error(code, err, "input 'x'", "string tensor", "numeric")
    assert not out.exists()
