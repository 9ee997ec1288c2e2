"""Split inference, graph side: cuts, head/tail extraction, and the latency chooser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from tippingpoint.core.errors import UsageError
from tippingpoint.core.schema import ModelSource
from tippingpoint.models.registry import ModelRef, list_models
from tippingpoint.models.split import (
    ALL_CLOUD,
    ALL_EDGE,
    InvalidCutError,
    SplitModelError,
    candidates_from_nodes,
    choose_cut,
    crossover_bandwidth,
    enumerate_cuts,
    extract_split,
)

SUITE_FP32 = sorted(
    (
        r
        for r in list_models()
        if r.source is ModelSource.SUITE and r.variant == "fp32" and r.format == ".onnx"
    ),
    key=lambda r: r.name,
)


def _feeds(session: ort.InferenceSession, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for arg in session.get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in arg.shape]
        if "int" in arg.type:
            feeds[arg.name] = rng.integers(0, 32, size=shape).astype(np.int64)
        else:
            feeds[arg.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_suite_has_fp32_onnx_models() -> None:
    assert len(SUITE_FP32) >= 5


@pytest.mark.parametrize("ref", SUITE_FP32, ids=lambda r: r.name)
def test_head_then_tail_equals_full_model(ref: ModelRef, tmp_path: Path) -> None:
    path = ref.path
    cuts = enumerate_cuts(path)
    assert cuts, f"{path.name} has no cut"
    assert [c.index for c in cuts] == sorted(c.index for c in cuts)  # topological order
    full = _session(path)
    feeds = _feeds(full)
    expected = full.run(None, feeds)
    picks = {cuts[0].name, cuts[len(cuts) // 2].name, cuts[-1].name}
    for name in sorted(picks):
        pair = extract_split(path, name, tmp_path / name.replace("/", "_"))
        head, tail = _session(pair.head), _session(pair.tail)
        assert [o.name for o in head.get_outputs()] == [name]
        assert [i.name for i in tail.get_inputs()] == [name]
        (activation,) = head.run(None, feeds)
        cut = next(c for c in cuts if c.name == name)
        if cut.bytes_per_sample is not None:
            assert activation.nbytes == cut.bytes_per_sample * activation.shape[0]
        got = tail.run(None, {name: activation})
        for want, have in zip(expected, got, strict=True):
            scale = max(float(np.ptp(want)), 1.0)
            np.testing.assert_allclose(have, want, rtol=0, atol=1e-5 * scale)


def _toy_branchy(path: Path) -> Path:
    """x -> A -> a; a -> B -> b; a -> C -> c; (b + c) -> D -> y: a and d are cuts, b, c not."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="A"),
        helper.make_node("Mul", ["a", "w"], ["b"], name="B"),
        helper.make_node("Neg", ["a"], ["c"], name="C"),
        helper.make_node("Add", ["b", "c"], ["d"], name="D"),
        helper.make_node("Add", ["d", "w"], ["y"], name="E"),
    ]
    graph = helper.make_graph(nodes, "toy", [x], [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_cuts_are_dominators_and_skip_initializer_paths(tmp_path: Path) -> None:
    path = _toy_branchy(tmp_path / "toy.onnx")
    cuts = enumerate_cuts(path)
    assert [c.name for c in cuts] == ["a", "d"]
    assert cuts[0].shape == ("batch", 4) and cuts[0].dtype == "float32"
    assert cuts[0].bytes_per_sample == 16


def test_no_cut_inside_a_subgraph(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    branch_out = helper.make_tensor_value_info("inner", TensorProto.FLOAT, [1, 4])
    then_g = helper.make_graph(
        [helper.make_node("Relu", ["h"], ["inner"])], "then", [], [branch_out]
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["h"], ["inner"])], "else", [], [branch_out]
    )
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["h"]),
        helper.make_node("If", ["cond"], ["z"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Abs", ["z"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [x, cond], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    names = [c.name for c in enumerate_cuts(model)]
    # cond reaches the If directly, so only the If's own output dominates; 'inner' never counts
    assert names == ["z"]
    assert "inner" not in names and "h" not in names


def test_invalid_cut_names_the_valid_ones(tmp_path: Path) -> None:
    path = _toy_branchy(tmp_path / "toy.onnx")
    with pytest.raises(InvalidCutError) as info:
        extract_split(path, "b", tmp_path / "out")
    line = info.value.one_line()
    assert issubclass(InvalidCutError, UsageError) and info.value.exit_code == 2
    assert "'b' is no valid single-tensor cut" in line and "valid cuts: a, d" in line
    assert "\n" not in line


def test_non_onnx_file_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_text("not a protobuf at all")
    with pytest.raises(SplitModelError) as info:
        enumerate_cuts(bogus)
    assert info.value.exit_code == 2
    assert "not an ONNX model" in info.value.one_line()
    with pytest.raises(SplitModelError):
        extract_split(tmp_path / "missing.onnx", "a", tmp_path / "out")


# ----------------------------------------------------------------------------- chooser
#
# Toy chain x -> n0 -> t0 -> n1 -> t1 -> n2 -> y, input 1000 B, t0 400 B, t1 10 B.
# edge per node (s): 0.010, 0.050, 0.020      cloud per node (s): 0.001, 0.005, 0.002
# bandwidth 8000 bit/s (1000 B/s), RTT 0.1 s:
#   all-cloud: 0 + 0.1 + 1000/1000 + 0.008        = 1.108
#   cut t0:    0.010 + 0.1 + 400/1000 + 0.007     = 0.517
#   cut t1:    0.060 + 0.1 + 10/1000 + 0.002      = 0.172   <- fastest
#   all-edge:  0.080                                        <- faster still
# so with RTT 0.1 s all-edge wins; with RTT 0.01 s cut t1 costs 0.082 and all-edge 0.080;
# at RTT 0 cut t1 costs 0.072 and wins.

EDGE = [0.010, 0.050, 0.020]
CLOUD = [0.001, 0.005, 0.002]
CUTS = [("t0", 0, 400.0), ("t1", 1, 10.0)]


def test_candidates_from_nodes_sum_head_and_tail() -> None:
    cands = candidates_from_nodes(EDGE, CLOUD, CUTS, input_bytes=1000)
    assert [c.name for c in cands] == [ALL_CLOUD, "t0", "t1", ALL_EDGE]
    t1 = cands[2]
    assert t1.edge_s == pytest.approx(0.060) and t1.cloud_s == pytest.approx(0.002)
    assert cands[-1].sent_bytes is None and cands[-1].edge_s == pytest.approx(0.080)


def test_choose_cut_matches_hand_computation() -> None:
    cands = candidates_from_nodes(EDGE, CLOUD, CUTS, input_bytes=1000)
    slow = choose_cut(cands, bandwidth_bps=8000, rtt_s=0.1)
    assert dict(slow.latencies) == pytest.approx(
        {ALL_CLOUD: 1.108, "t0": 0.517, "t1": 0.172, ALL_EDGE: 0.080}
    )
    assert slow.best.name == ALL_EDGE
    fast = choose_cut(cands, bandwidth_bps=8000, rtt_s=0.0)
    assert fast.best.name == "t1" and fast.latency_s == pytest.approx(0.072)
    # a fast link and a slow edge: all-cloud wins
    slow_edge = candidates_from_nodes([1.0, 1.0, 1.0], CLOUD, CUTS, input_bytes=1000)
    assert choose_cut(slow_edge, bandwidth_bps=8e9, rtt_s=0.001).best.name == ALL_CLOUD


def test_crossover_bandwidth_hand_worked() -> None:
    cands = {c.name: c for c in candidates_from_nodes(EDGE, CLOUD, CUTS, input_bytes=1000)}
    # all-cloud: 0.108 + 8000/bw; cut t1: 0.162 + 80/bw -> bw = 7920 / 0.054 = 146666.67 bit/s
    bw = crossover_bandwidth(cands[ALL_CLOUD], cands["t1"], rtt_s=0.1)
    assert bw is not None and bw == pytest.approx(7920 / 0.054)
    assert choose_cut([cands[ALL_CLOUD], cands["t1"]], bw * 1.01, 0.1).best.name == ALL_CLOUD
    assert choose_cut([cands[ALL_CLOUD], cands["t1"]], bw * 0.99, 0.1).best.name == "t1"
    # all-edge 0.080 vs cut t1 at RTT 0: 0.062 + 80/bw = 0.080 -> bw = 80 / 0.018
    assert crossover_bandwidth(cands[ALL_EDGE], cands["t1"], rtt_s=0.0) == pytest.approx(80 / 0.018)
    # at RTT 0.1 cut t1 never beats all-edge: no crossover
    assert crossover_bandwidth(cands[ALL_EDGE], cands["t1"], rtt_s=0.1) is None


def test_chooser_rejects_bad_numbers() -> None:
    cands = candidates_from_nodes(EDGE, CLOUD, CUTS, input_bytes=1000)
    with pytest.raises(UsageError):
        choose_cut(cands, bandwidth_bps=0, rtt_s=0.1)
    with pytest.raises(UsageError):
        candidates_from_nodes(EDGE, CLOUD[:2], CUTS, input_bytes=1)
    with pytest.raises(UsageError):
        candidates_from_nodes(EDGE, CLOUD, [("t9", 7, 1.0)], input_bytes=1)
    with pytest.raises(UsageError):
        choose_cut([], 1.0, 0.0)
