"""Split inference, graph side: where an ONNX model can be cut in two, the two halves, and which
cut is fastest for a given network.

A *cut* is one tensor of the main graph that every path from the model's inputs to its outputs
passes through (a dominator of the outputs in the dataflow graph). Running the *head* (inputs ->
cut tensor) on the edge and the *tail* (cut tensor -> outputs) in the cloud then needs exactly
that one tensor sent over the network. Initializers and constant-only subgraphs are no paths;
tensors inside If/Loop/Scan bodies are never cuts (only the main graph is cut), but the outer
tensors those bodies read count as their node's inputs.

:func:`choose_cut` is pure arithmetic over measured (or estimated) costs: edge head time,
transfer of the cut tensor at a bandwidth plus one round trip, cloud tail time; all-edge and
all-cloud are candidates beside the cuts. :func:`crossover_bandwidth` is where two candidates
are equally fast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Final

from tippingpoint.core.errors import ModelFileError, UsageError

ALL_EDGE: Final = "<all-edge>"
"""The candidate name of running the whole model on the edge (nothing is sent)."""
ALL_CLOUD: Final = "<all-cloud>"
"""The candidate name of sending the model's input and running the whole model in the cloud."""

_SUBGRAPH_OPS: Final = frozenset({"If", "Loop", "Scan"})


class InvalidCutError(UsageError):
    """A tensor name that is no valid single-tensor cut of the model."""


class SplitModelError(ModelFileError):
    """The file to split is no readable ONNX model."""


@dataclass(frozen=True)
class Cut:
    """One valid single-tensor cut, in topological order of its producer."""

    name: str
    index: int
    """Position of the producing node in the graph's (topological) node list."""
    op_type: str
    """The producing node's operator."""
    dtype: str | None
    """numpy name of the element type, e.g. 'float32'; None when unknown."""
    shape: tuple[int | str | None, ...] | None
    """Static dims as ints, symbolic dims by name, unknown dims as None; None: rank unknown."""
    bytes_per_sample: int | None
    """Bytes of one sample of the tensor (the batch dim divided out); None when not static."""


@dataclass(frozen=True)
class SplitPair:
    """The head and tail model files of one cut."""

    cut: str
    head: Path
    tail: Path


# ----------------------------------------------------------------------------- loading


def _load(model: Path | Any) -> Any:
    """An onnx ModelProto from a path (or the proto itself), or a one-line usage error."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise SplitModelError(
            f"model file not found: {path}", "pass the path of an .onnx file to split"
        )
    try:
        proto = onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # any parse failure means "not ONNX"
        raise SplitModelError(
            f"{path.name} is not an ONNX model ({type(exc).__name__})",
            "split inference needs an .onnx file; export the model to ONNX or pick an .onnx "
            "suite variant",
        ) from exc
    if len(proto.graph.node) == 0 or len(proto.graph.output) == 0:
        raise SplitModelError(
            f"{path.name} is not an ONNX model with a graph to split",
            "split inference needs an .onnx file; export the model to ONNX",
        )
    return proto


def _subgraph_reads(node: Any) -> set[str]:
    """Names an If/Loop/Scan body reads from outer scopes (inputs it does not define itself)."""
    import onnx

    reads: set[str] = set()
    for attr in node.attribute:
        graphs = []
        if attr.type == onnx.AttributeProto.GRAPH:
            graphs.append(attr.g)
        elif attr.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(attr.graphs)
        for graph in graphs:
            defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
            for inner in graph.node:
                defined.update(o for o in inner.output if o)
            for inner in graph.node:
                reads.update(i for i in inner.input if i and i not in defined)
                reads.update(_subgraph_reads(inner) - defined)
            reads.update(o.name for o in graph.output if o.name not in defined)
    return reads


def _node_inputs(node: Any) -> list[str]:
    import onnx

    names = [i for i in node.input if i]
    graph_kinds = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if node.op_type in _SUBGRAPH_OPS or any(a.type in graph_kinds for a in node.attribute):
        names.extend(sorted(_subgraph_reads(node)))
    return names


# ----------------------------------------------------------------------------- cuts


def _live_tensors(graph: Any) -> tuple[list[str], dict[str, list[int]], list[list[str]]]:
    """Graph inputs that are no initializers, each tensor's consumers, each node's live inputs."""
    inits = {t.name for t in graph.initializer}
    sources = [i.name for i in graph.input if i.name not in inits]
    consumers: dict[str, list[int]] = {}
    node_inputs: list[list[str]] = []
    for idx, node in enumerate(graph.node):
        names = _node_inputs(node)
        node_inputs.append(names)
        for name in names:
            consumers.setdefault(name, []).append(idx)
    return sources, consumers, node_inputs


def _reaches_outputs(
    graph: Any,
    sources: Sequence[str],
    consumers: dict[str, list[int]],
    blocked: str | None,
) -> bool:
    """Whether any graph output is reachable from the inputs without passing ``blocked``."""
    outputs = {o.name for o in graph.output}
    seen: set[str] = set()
    stack = [s for s in sources if s != blocked]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in outputs:
            return True
        for idx in consumers.get(name, ()):
            for out in graph.node[idx].output:
                if out and out != blocked and out not in seen:
                    stack.append(out)
    return False


def _value_infos(model: Any) -> dict[str, Any]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shapes are optional: a cut without them is still a cut
        inferred = model
    graph = inferred.graph
    return {v.name: v for v in [*graph.value_info, *graph.input, *graph.output]}


def _describe(
    info: Any | None,
) -> tuple[str | None, tuple[int | str | None, ...] | None, int | None]:
    """dtype, shape and per-sample bytes of a ValueInfoProto (None where unknown)."""
    import onnx
    from onnx import helper

    if info is None or not info.type.HasField("tensor_type"):
        return None, None, None
    ttype = info.type.tensor_type
    dtype: str | None = None
    itemsize: int | None = None
    if ttype.elem_type:
        try:
            np_dtype = helper.tensor_dtype_to_np_dtype(ttype.elem_type)
            dtype = np_dtype.name
            itemsize = np_dtype.itemsize
        except (KeyError, TypeError, ValueError):
            dtype = onnx.TensorProto.DataType.Name(ttype.elem_type).lower()
    if not ttype.HasField("shape"):
        return dtype, None, None
    dims: list[int | str | None] = []
    for dim in ttype.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    shape = tuple(dims)
    per_sample: int | None = None
    if itemsize is not None:
        rest = shape[1:] if shape else ()
        if all(isinstance(d, int) for d in rest):  # dim 0 is the batch, fixed or not
            per_sample = math.prod(int(d) for d in rest if isinstance(d, int)) * itemsize
    return dtype, shape, per_sample


def enumerate_cuts(model: Path | Any) -> list[Cut]:
    """Every valid single-tensor cut of ``model`` (a path or ModelProto), in topological order.

    The model's own inputs and outputs are not listed: cutting there is all-cloud / all-edge.
    """
    proto = _load(model)
    graph = proto.graph
    sources, consumers, _ = _live_tensors(graph)
    if not sources:
        return []
    outputs = {o.name for o in graph.output}
    infos = _value_infos(proto)
    # only tensors downstream of an input are paths; constant-only tensors never dominate
    live: set[str] = set(sources)
    for node in graph.node:
        if any(i in live for i in _node_inputs(node)):
            live.update(o for o in node.output if o)
    cuts: list[Cut] = []
    for idx, node in enumerate(graph.node):
        for out in node.output:
            if not out or out not in live or out in outputs:
                continue
            if _reaches_outputs(graph, sources, consumers, blocked=out):
                continue
            dtype, shape, per_sample = _describe(infos.get(out))
            cuts.append(Cut(out, idx, node.op_type, dtype, shape, per_sample))
    return cuts


def _check_cut(cut: str, cuts: Sequence[Cut], label: str) -> None:
    if any(c.name == cut for c in cuts):
        return
    names = [c.name for c in cuts]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    raise InvalidCutError(
        f"'{cut}' is no valid single-tensor cut of {label}",
        f"valid cuts: {shown}" if names else "this model has no single-tensor cut; run it whole",
    )


def extract_split(model_path: Path, cut: str, out_dir: Path) -> SplitPair:
    """Write ``<stem>.head.onnx`` (inputs -> cut) and ``<stem>.tail.onnx`` (cut -> outputs).

    Both keep the model's opset imports and the initializers they use.
    """
    import onnx
    from onnx.utils import Extractor

    model_path = Path(model_path)
    proto = _load(model_path)
    cuts = enumerate_cuts(proto)
    _check_cut(cut, cuts, model_path.name)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from tippingpoint.core.errors import OutputDirError

        raise OutputDirError(
            f"cannot create {out_dir}: {exc.strerror}", "pass a writable output folder"
        ) from exc
    graph = proto.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # shapes are optional; the extractor then gets an untyped value_info
        inferred = proto
    known = {v.name for v in [*inferred.graph.value_info, *inferred.graph.output]}
    if cut not in known:
        inferred.graph.value_info.append(onnx.helper.make_empty_tensor_value_info(cut))
    extractor = Extractor(inferred)
    head = extractor.extract_model(inputs, [cut])
    tail = extractor.extract_model([cut], outputs)
    stem = model_path.name.removesuffix(".onnx")
    head_path = out_dir / f"{stem}.head.onnx"
    tail_path = out_dir / f"{stem}.tail.onnx"
    for part, path in ((head, head_path), (tail, tail_path)):
        part.ir_version = proto.ir_version
        onnx.save(part, str(path))
    return SplitPair(cut=cut, head=head_path, tail=tail_path)


# ----------------------------------------------------------------------------- chooser


@dataclass(frozen=True)
class Candidate:
    """One placement: ``edge_s`` of head compute, ``cloud_s`` of tail compute, and what is sent.

    ``sent_bytes`` is None for all-edge (nothing crosses the network, no round trip).
    """

    name: str
    edge_s: float
    cloud_s: float
    sent_bytes: float | None

    def latency_s(self, bandwidth_bps: float, rtt_s: float, return_bytes: float = 0.0) -> float:
        """End-to-end latency: edge head + (one RTT + upload + result download) + cloud tail."""
        if bandwidth_bps <= 0:
            raise UsageError(
                f"bandwidth must be positive, got {bandwidth_bps}", "pass a bandwidth in bit/s > 0"
            )
        if self.sent_bytes is None:
            return self.edge_s + self.cloud_s
        transfer = rtt_s + 8.0 * (self.sent_bytes + return_bytes) / bandwidth_bps
        return self.edge_s + transfer + self.cloud_s


@dataclass(frozen=True)
class Choice:
    """The fastest candidate and every candidate's latency (candidate order)."""

    best: Candidate
    latency_s: float
    latencies: tuple[tuple[str, float], ...]


def candidates_from_nodes(
    edge_node_s: Sequence[float],
    cloud_node_s: Sequence[float],
    cuts: Iterable[tuple[str, int, float]],
    input_bytes: float,
) -> list[Candidate]:
    """All-cloud, each cut, all-edge, from per-node costs in topological node order.

    ``cuts`` holds ``(tensor, producer node index, bytes)``: nodes ``0..index`` run on the edge,
    the rest in the cloud.
    """
    if len(edge_node_s) != len(cloud_node_s):
        raise UsageError(
            f"{len(edge_node_s)} edge costs but {len(cloud_node_s)} cloud costs",
            "give one edge and one cloud cost per node",
        )
    total_edge = float(sum(edge_node_s))
    total_cloud = float(sum(cloud_node_s))
    out = [Candidate(ALL_CLOUD, 0.0, total_cloud, float(input_bytes))]
    for name, index, size in cuts:
        if not 0 <= index < len(edge_node_s):
            raise UsageError(
                f"cut '{name}' is produced by node {index}, outside 0..{len(edge_node_s) - 1}",
                "give the producer's index in the graph's node list",
            )
        head = float(sum(edge_node_s[: index + 1]))
        tail = float(sum(cloud_node_s[index + 1 :]))
        out.append(Candidate(name, head, tail, float(size)))
    out.append(Candidate(ALL_EDGE, total_edge, 0.0, None))
    return out


def choose_cut(
    candidates: Sequence[Candidate],
    bandwidth_bps: float,
    rtt_s: float,
    return_bytes: float = 0.0,
) -> Choice:
    """The candidate with the lowest end-to-end latency (the first one on a tie)."""
    if not candidates:
        raise UsageError("no placement candidates to choose from", "include all-edge at least")
    lat = [(c, c.latency_s(bandwidth_bps, rtt_s, return_bytes)) for c in candidates]
    best, best_s = min(lat, key=lambda pair: pair[1])
    return Choice(best, best_s, tuple((c.name, s) for c, s in lat))


def crossover_bandwidth(
    a: Candidate, b: Candidate, rtt_s: float, return_bytes: float = 0.0
) -> float | None:
    """The bandwidth (bit/s) at which ``a`` and ``b`` are equally fast; None when there is none.

    Each latency is ``fixed + 8 * bytes / bandwidth``; they meet where
    ``bandwidth = 8 * (bytes_b - bytes_a) / (fixed_a - fixed_b)``, if that is positive.
    """

    def parts(c: Candidate) -> tuple[float, float]:
        if c.sent_bytes is None:
            return c.edge_s + c.cloud_s, 0.0
        return c.edge_s + c.cloud_s + rtt_s, 8.0 * (c.sent_bytes + return_bytes)

    fixed_a, bits_a = parts(a)
    fixed_b, bits_b = parts(b)
    if fixed_a == fixed_b:
        return None
    bandwidth = (bits_b - bits_a) / (fixed_a - fixed_b)
    return bandwidth if bandwidth > 0 and math.isfinite(bandwidth) else None


# ----------------------------------------------------------------------------- compression


class Compression(str, Enum):
    """How the cut tensor crosses the network."""

    NONE = "none"
    FP16 = "fp16"
    """Cast to float16 at the end of the head, back to float32 at the start of the tail."""
    INT8 = "int8"
    """Asymmetric uint8 with one static scale and zero point (QuantizeLinear at the end of the
    head, DequantizeLinear at the start of the tail), calibrated on the profiling inputs."""


def int8_params(low: float, high: float) -> tuple[float, int]:
    """Scale and uint8 zero point covering ``[low, high]`` (widened to include 0)."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    scale = (high - low) / 255.0 if high > low else 1.0
    zero = round(-low / scale)
    return scale, max(0, min(255, zero))


def compress_pair(
    pair: SplitPair,
    compression: Compression,
    out_dir: Path,
    int8_range: tuple[float, float] | None = None,
) -> SplitPair:
    """``pair`` with the cut tensor sent compressed: the head ends in the encoding (Cast or
    QuantizeLinear) and the tail starts with the decoding; the sent tensor is named
    ``<cut>.<compression>``. ``NONE`` returns ``pair`` unchanged; int8 needs ``int8_range``
    (the activation's observed min and max). Only float32 cuts are compressed."""
    import onnx
    from onnx import TensorProto, helper

    if compression is Compression.NONE:
        return pair
    head = onnx.load(str(pair.head))
    tail = onnx.load(str(pair.tail))
    (head_out,) = head.graph.output
    elem = head_out.type.tensor_type.elem_type
    if elem != TensorProto.FLOAT:
        raise UsageError(
            f"cut '{pair.cut}' is {TensorProto.DataType.Name(elem).lower()}, not float32: "
            f"{compression.value} compression applies to float32 tensors",
            "pick a float32 cut or --split-compression none",
        )
    sent = f"{pair.cut}.{compression.value}"
    dims = head_out.type.tensor_type.shape
    if compression is Compression.FP16:
        wire_type = TensorProto.FLOAT16
        head.graph.node.append(helper.make_node("Cast", [pair.cut], [sent], to=wire_type))
        decode = [helper.make_node("Cast", [sent], [pair.cut], to=TensorProto.FLOAT)]
        params: list[Any] = []
    else:
        if int8_range is None:
            raise UsageError("int8 compression needs the activation's range", "calibrate first")
        scale, zero = int8_params(*int8_range)
        wire_type = TensorProto.UINT8
        params = [
            helper.make_tensor(f"{sent}.scale", TensorProto.FLOAT, [], [scale]),
            helper.make_tensor(f"{sent}.zero_point", TensorProto.UINT8, [], [zero]),
        ]
        head.graph.initializer.extend(params)
        head.graph.node.append(
            helper.make_node(
                "QuantizeLinear", [pair.cut, f"{sent}.scale", f"{sent}.zero_point"], [sent]
            )
        )
        tail.graph.initializer.extend(params)
        decode = [
            helper.make_node(
                "DequantizeLinear", [sent, f"{sent}.scale", f"{sent}.zero_point"], [pair.cut]
            )
        ]
    wire = helper.make_tensor_value_info(sent, wire_type, None)
    wire.type.tensor_type.shape.CopyFrom(dims)
    del head.graph.output[:]
    head.graph.output.append(wire)
    (tail_in,) = [i for i in tail.graph.input if i.name == pair.cut]
    tail.graph.input.remove(tail_in)
    tail.graph.input.insert(0, wire)
    nodes = list(tail.graph.node)
    del tail.graph.node[:]
    tail.graph.node.extend([*decode, *nodes])
    stem = pair.head.name.removesuffix(".head.onnx")
    out_dir.mkdir(parents=True, exist_ok=True)
    head_path = out_dir / f"{stem}.{compression.value}.head.onnx"
    tail_path = out_dir / f"{stem}.{compression.value}.tail.onnx"
    onnx.save(head, str(head_path))
    onnx.save(tail, str(tail_path))
    return SplitPair(cut=pair.cut, head=head_path, tail=tail_path)
