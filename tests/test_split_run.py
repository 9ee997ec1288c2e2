"""Split inference run for real (issue 16): ``run --split`` on a suite model, the head on ONNX
Runtime CPU here and the tail on ``tippingpoint serve`` on loopback (the local stand-in),
optionally behind the network shaper; the report carries the cut, the bytes and the profile.
Bad input is one line and exit 2 before anything runs.

Runs go through :func:`tippingpoint.cli.main` in this process (the stand-in is a child)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tippingpoint.backends.split import SplitBackend
from tippingpoint.calculator.compute import calculate
from tippingpoint.calculator.model import Placement
from tippingpoint.cli import main
from tippingpoint.core.io import read_report
from tippingpoint.harness.standin import LocalStandIn
from tippingpoint.models.registry import resolve_model
from tippingpoint.models.split import (
    ALL_CLOUD,
    ALL_EDGE,
    Compression,
    compress_pair,
    enumerate_cuts,
    extract_split,
)

from .calculator_factory import cloud_report, edge_report, hand_cloud, hand_profiles

SHORT = [
    "--quick",
    "--idle-s",
    "0",
    "--min-queries",
    "10",
    "--min-duration",
    "0.5",
    "--warmup-queries",
    "2",
    "--warmup-duration",
    "0",
    "--split-queries",
    "3",
]
DIGITS = resolve_model("digits-cnn", "fp32", ".onnx").path
POOL = "/features/features.4/MaxPool_output_0"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


EDGE = edge_report(100, 20, joules=0.05)
CLOUD = cloud_report(peak_rate_qps=50, server_p99_ms=10)


def reports(out: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def assert_usage_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_given_cut_runs_end_to_end_on_loopback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "run", "-m", "digits-cnn", "--split", POOL, "-o", str(tmp_path), *SHORT
    )
    assert code == 0, out + err
    (report,) = reports(tmp_path)
    assert report["status"] == "complete"
    assert report["backend"]["name"] == "split"
    assert report["backend"]["options"]["cut"] == POOL
    assert "local-standin" in report["flags"]
    split = report["split"]
    assert split["cut"] == POOL and split["chosen_by"] == "given"
    assert split["compression"] == "none"
    assert split["activation_bytes"] == 32 * 4 * 4 * 4  # (1, 32, 4, 4) float32
    # binary tensor plus its JSON header: more than the raw activation, less than twice it
    sent = report["http"]["bytes_sent_per_request"]
    assert split["activation_bytes"] < sent < 2 * split["activation_bytes"]
    assert report["results"]["latency"]["p50"] > 0
    names = [c["name"] for c in split["candidates"]]
    assert names == [ALL_CLOUD, POOL, ALL_EDGE]
    cut = split["candidates"][1]
    # the same head and tail files run here on the evaluation rows: equal to the full model
    assert cut["max_abs_error"] < 1e-4 and cut["top1_agreement"] == 1.0
    assert cut["head_ms"] > 0 and cut["tail_ms"] >= 0 and cut["e2e_ms"] >= cut["head_ms"]
    assert cut["raw_bytes"] == split["activation_bytes"]
    # the HTML report: a split section with its table and charts
    html = tmp_path / "report.html"
    code, out, err = run_cli(capsys, "report", str(tmp_path), "-o", str(html))
    assert code == 0, out + err
    page = html.read_text()
    assert 'id="split"' in page and "Split placements: digits-cnn fp32" in page
    assert "split-bytes-" in page and "split-bw-" in page
    # the calculator costs a split placement from the run, and takes it for neither side
    (path,) = sorted(tmp_path.glob("*.json"))
    split_report = read_report(path).model_copy(update={"model": EDGE.model})
    cost = calculate(
        [EDGE, CLOUD, split_report],
        profiles=hand_profiles(),
        clouds=[hand_cloud()],
        today=date(2026, 11, 29),
        tool_version="test",
        draws=0,
    )
    plain = calculate(
        [EDGE, CLOUD],
        profiles=hand_profiles(),
        clouds=[hand_cloud()],
        today=date(2026, 11, 29),
        tool_version="test",
        draws=0,
    )
    assert not any("not costed" in w for w in cost.warnings)
    (split,) = [p for p in cost.analyses[0].placements if p.placement is Placement.SPLIT]
    assert f"(run {split_report.run_id[:8]})" in split.label
    # run on the bare path, costed under 'lan': its p99 is no figure for this network
    assert split.latency.p99_ms is None and "bare path" in split.latency.method
    assert cost.edge.cost_per_million == plain.edge.cost_per_million


def test_auto_int8_under_a_network_profile_records_compression_and_the_choice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys,
        "run",
        "-m",
        "digits-cnn",
        "--split",
        "auto",
        "--split-compression",
        "int8",
        "--network",
        "lte",
        "--device",
        "rpi5",
        "-o",
        str(tmp_path),
        *SHORT,
    )
    assert code == 0, out + err
    (report,) = reports(tmp_path)
    split = report["split"]
    assert split["compression"] == "int8" and split["chosen_by"] == "auto"
    assert split["network_profile"] == "lte"
    assert report["http"]["link"]["profile"]["name"] == "lte"
    cuts = [c for c in split["candidates"] if c["name"] not in (ALL_EDGE, ALL_CLOUD)]
    assert len(cuts) == len(enumerate_cuts(DIGITS))
    chosen = min(cuts, key=lambda c: c["e2e_ms"])
    assert split["cut"] == chosen["name"]  # latency objective: the fastest profiled cut
    for c in cuts:
        # a quarter of the float32 bytes on the wire (plus the header); a measured, nonzero
        # error that keeps the class (digits' margins are wide)
        assert c["sent_bytes"] < c["raw_bytes"] / 4 + 512
        assert 0 < c["max_abs_error"] < 0.5
        assert c["top1_agreement"] is not None and c["top1_agreement"] >= 0.95
        assert c["energy_j"] is not None and c["energy_j"] > 0  # estimated from rpi5's watts
    assert split["device_watts"] is not None


def test_split_backend_outputs_equal_the_full_model_with_fp16_close(tmp_path: Path) -> None:
    import onnxruntime as ort

    rows = np.random.default_rng(0).random((1, 1, 8, 8), dtype=np.float32)
    full = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    ref = full.run(None, {full.get_inputs()[0].name: rows})[0]
    pair = extract_split(DIGITS, POOL, tmp_path / "plain")
    half = compress_pair(pair, Compression.FP16, tmp_path / "fp16")
    with LocalStandIn([pair.tail, half.tail]) as url:
        for p, tol in ((pair, 1e-5), (half, 1e-2)):
            opts: dict[str, str | int | float | bool] = {
                "endpoint": url,
                "head": str(p.head),
                "tail": str(p.tail),
            }
            with SplitBackend().load(DIGITS, opts) as session:
                (got,) = session.bind([rows])()
            np.testing.assert_allclose(got, ref, atol=tol)


def test_invalid_cut_lists_the_valid_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "run", "-m", "digits-cnn", "--split", "no-such-tensor", "-o", str(out), *SHORT
    )
    line = assert_usage_error(code, err, "no-such-tensor", "valid cuts:", POOL)
    assert "--split auto" in line
    assert not out.exists() or not list(out.glob("*.json"))


def test_non_onnx_model_with_split(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tflite = resolve_model("digits-cnn", "fp32", ".tflite").path
    code, _, err = run_cli(
        capsys, "run", "-m", str(tflite), "--split", "auto", "-o", str(tmp_path), *SHORT
    )
    assert_usage_error(code, err, "no .onnx file", "export it to ONNX")
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a protobuf at all")
    code, _, err = run_cli(
        capsys, "run", "-m", str(bogus), "--split", "auto", "-o", str(tmp_path), *SHORT
    )
    assert_usage_error(code, err, "not an ONNX model", "split inference needs an .onnx file")
    assert not list(tmp_path.glob("*.json"))


def test_split_without_onnx_runtime(tmp_path: Path) -> None:
    # hide onnxruntime from this process only, as on a board where it was never installed
    code = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "from tippingpoint.cli import main\n"
        f"sys.exit(main(['run', '-m', 'digits-cnn', '--split', 'auto', '-o', {str(tmp_path)!r},"
        " '--quick']))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--split needs onnxruntime" in lines[0], p.stderr
    assert "pip install 'tippingpoint[onnx,http]'" in lines[0]
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["-m", "tabular-mlp"], ("--split cuts one model",)),
        (["--split-compression", "zstd"], ("--split-compression must be",)),
        (["--split-objective", "energy"], ("needs the device's watts", "--device")),
        (["--split-objective", "cost"], ("price per hour", "--split-cloud")),
        (["--split-queries", "1"], ("--split-queries",)),
        (["-b", "onnxruntime"], ("-b/--backend",)),
        (["--fresh-process"], ("--fresh-process",)),
        (["--split-objective", "speed"], ("--split-objective must be",)),
    ],
)
def test_split_misuse_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], needles: tuple[str, ...]
) -> None:
    code, _, err = run_cli(
        capsys,
        "run",
        "-m",
        "digits-cnn",
        "--split",
        "auto",
        "-o",
        str(tmp_path),
        *SHORT[:-2],
        *extra,
    )
    assert_usage_error(code, err, *needles)
    assert not list(tmp_path.glob("*.json"))


def test_remote_endpoint_serving_the_tails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tippingpoint.harness.matrix import RunRequest
    from tippingpoint.harness.split import SplitRequest, check_split, placements

    out = tmp_path / "out"
    request = SplitRequest(split=POOL, work_dir=out / "split")
    plan = check_split(RunRequest(models=("digits-cnn",)), request)
    rows = [np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)]
    items = placements(plan, rows)  # the files the run writes, served beforehand
    tails = [i.pair.tail for i in items if i.pair is not None]
    code, _, err = run_cli(
        capsys,
        "run",
        "-m",
        "digits-cnn",
        "--split",
        POOL,
        "--endpoint",
        "http://127.0.0.1:9",  # nothing serves there: one line naming the serve command
        "-o",
        str(out),
        *SHORT,
    )
    assert_usage_error(code, err, "does not serve", "tippingpoint serve -m")
    with LocalStandIn([DIGITS, *tails]) as url:
        code, stdout, err = run_cli(
            capsys, "run", "-m", "digits-cnn", "--split", POOL, "--endpoint", url,
            "-o", str(out), *SHORT,
        )  # fmt: skip
    assert code == 0, stdout + err
    (report,) = reports(out)
    assert report["split"]["cut"] == POOL
    assert "local-standin" not in report["flags"]  # a server the user started, as is
    assert report["http"]["endpoint"].startswith("http://127.0.0.1:")


def _cand(name: str, head: float, tail: float, e2e: float, sent: float) -> Any:
    from tippingpoint.core.schema import SplitCandidate

    return SplitCandidate(
        name=name, head_ms=head, tail_ms=tail, transfer_ms=e2e - head - tail, e2e_ms=e2e,
        sent_bytes=sent,
    )  # fmt: skip


def test_objectives_choose_by_hand_computed_figures(tmp_path: Path) -> None:
    from tippingpoint.harness.split import Objective, SplitRequest, _with_energy, choose

    # a: fast but a long head; b: slow, short head, few bytes; c: many bytes, long tail
    cands = [_cand("a", 8.0, 1.0, 20.0, 4000), _cand("b", 1.0, 2.0, 30.0, 500)]
    cands.append(_cand("c", 2.0, 20.0, 25.0, 9000))
    latency = SplitRequest("auto", tmp_path)
    assert choose(cands, latency).name == "a"
    # energy (estimated): head x 8 W + wait x 2 W: a 0.064+0.024, b 0.008+0.058, c 0.016+0.046
    energy = SplitRequest("auto", tmp_path, objective=Objective.ENERGY, active_watts=8.0)
    energy = dataclasses.replace(energy, idle_watts=2.0)
    with_j = [_with_energy(c, energy) for c in cands]
    assert [round(c.energy_j or 0, 4) for c in with_j] == [0.088, 0.066, 0.062]
    assert choose(with_j, energy).name == "c"
    # cost: tail s x 3.6 USD/h + bytes x 1 USD/GB: a 1e-6+4e-6, b 2e-6+5e-7, c 2e-5+9e-6
    cost = SplitRequest(
        "auto", tmp_path, objective=Objective.COST, cloud_usd_per_hour=3.6, usd_per_gb=1.0
    )
    assert choose(cands, cost).name == "b"
    assert choose(cands, SplitRequest("c", tmp_path)).name == "c"  # a given cut is kept


def test_auto_bounds_the_cuts_of_a_bigger_graph() -> None:
    from tippingpoint.harness.split import DEFAULT_MAX_CUTS, _bounded

    path = resolve_model("mobilenetv2-035-96", "fp32", ".onnx").path
    cuts = enumerate_cuts(path)
    assert len(cuts) > DEFAULT_MAX_CUTS
    kept = _bounded(cuts, DEFAULT_MAX_CUTS)
    assert len(kept) == DEFAULT_MAX_CUTS
    assert [c.index for c in kept] == sorted(c.index for c in kept)  # topological order
    smallest = min(cuts, key=lambda c: c.bytes_per_sample or 1 << 62)
    assert smallest in kept
