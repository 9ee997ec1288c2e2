"""Wire formats and pure pieces of the HTTP backend: KServe v2 tensors (JSON and binary),
TF Serving and template bodies, Server-Timing, URLs without credentials, arrivals and the
send-lag rule of the load generator."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tippingpoint.backends.http import kserve
from tippingpoint.backends.http.auth import public_url
from tippingpoint.backends.http.client import parse_server_timing
from tippingpoint.backends.http.kserve import CodecError, NamedTensor
from tippingpoint.backends.http.protocols import (
    KServeV2Codec,
    TemplateCodec,
    TfServingCodec,
    parse_input_specs,
)
from tippingpoint.core.schema import ArrivalProcess
from tippingpoint.harness.loadgen import (
    LATE_NS,
    WAKE_MARGIN_NS,
    LoadRun,
    arrival_offsets,
    pause_s,
)

DTYPES = sorted(kserve.V2_TYPES)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    binary=st.booleans(),
)
def test_kserve_round_trip(data: st.DataObject, dtype: str, binary: bool) -> None:
    kind = np.dtype(dtype).kind
    elements: st.SearchStrategy[bytes] | dict[str, bool] | None = None
    if kind == "f":
        elements = {"allow_nan": False}
    elif kind == "O":  # BYTES: byte strings (UTF-8 text, which JSON carries as it is)
        elements = st.text(max_size=8).map(str.encode)
    arr = data.draw(
        hnp.arrays(
            np.dtype(dtype),
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
            elements=elements,
        )
    )
    enc = kserve.encode_request([NamedTensor("x", arr)], binary_inputs=binary, binary_outputs=True)
    req = kserve.decode_request(enc.body, enc.header_length)
    (got,) = req.inputs
    assert got.name == "x" and got.array.dtype == arr.dtype and got.array.shape == arr.shape
    np.testing.assert_array_equal(got.array, arr)
    assert req.binary_default is True
    resp = kserve.encode_response("m", [NamedTensor("y", arr)], [binary])
    (out,) = kserve.decode_response(resp.body, resp.header_length)
    np.testing.assert_array_equal(out.array, arr)


def test_big_endian_input_is_sent_little_endian() -> None:
    arr = np.arange(3, dtype=">f4")
    enc = kserve.encode_request([NamedTensor("x", arr)], binary_inputs=True, binary_outputs=True)
    assert enc.body.endswith(np.arange(3, dtype="<f4").tobytes())


def test_kserve_rejects_unknown_types_and_surplus_bytes() -> None:
    with pytest.raises(CodecError, match="no KServe v2 datatype"):
        kserve.v2_datatype("complex64")
    enc = kserve.encode_request(
        [NamedTensor("x", np.zeros(2, np.float32))], binary_inputs=True, binary_outputs=False
    )
    with pytest.raises(CodecError, match="not claimed"):
        kserve.decode_request(enc.body + b"xx", enc.header_length)


def test_metadata_document_round_trip() -> None:
    from tippingpoint.core.types import TensorSpec

    specs = (TensorSpec(name="a", shape=(None, 3), dtype="float16"),)
    doc = kserve.metadata_document("m", ["1"], "onnxruntime_onnx", specs, specs)
    ins, outs = KServeV2Codec("m").parse_metadata(json.dumps(doc).encode())
    assert ins == outs == specs


def test_tfserving_bodies_and_metadata() -> None:
    from tippingpoint.core.types import TensorSpec

    codec = TfServingCodec("m", version="3")
    assert codec.infer_path() == "/v1/models/m/versions/3:predict"
    spec = TensorSpec(name="x", shape=(None, 2), dtype="float32")
    body = json.loads(codec.encode([spec], [np.ones((1, 2), np.float32)]).body)
    assert body == {"signature_name": "serving_default", "inputs": {"x": [[1.0, 1.0]]}}
    out = codec.decode(b'{"predictions": [[0.5, 2]]}', {}, [spec])
    assert out[0].dtype == np.float32 and out[0].tolist() == [[0.5, 2.0]]
    both = codec.decode(b'{"outputs": {"b": [1], "a": [2]}}', {}, [])
    assert [o.tolist() for o in both] == [[1], [2]]
    with pytest.raises(CodecError, match="signature"):
        codec.parse_metadata(b"{}")


def test_template_substitution_and_errors() -> None:
    from tippingpoint.core.types import TensorSpec

    spec = TensorSpec(name="x", shape=(1, 2), dtype="int64")
    codec = TemplateCodec("/p", '{"data": "{{x}}", "first": "{{0}}", "k": 1}', "out.0")
    body = json.loads(codec.encode([spec], [np.array([[1, 2]])]).body)
    assert body == {"data": [[1, 2]], "first": [[1, 2]], "k": 1}
    assert codec.decode(b'{"out": [[3, 4]]}', {}, [spec])[0].tolist() == [3, 4]
    with pytest.raises(CodecError, match="names no input"):
        TemplateCodec("/p", '{"a": "{{y}}"}').encode([spec], [np.zeros((1, 2), np.int64)])
    with pytest.raises(CodecError, match="not valid JSON"):
        TemplateCodec("/p", "{oops").encode([], [])
    with pytest.raises(CodecError, match="nothing at"):
        codec.decode(b'{"other": 1}', {}, [spec])


def test_input_specs_option() -> None:
    specs = parse_input_specs("x:float32:1x16, ids:int64:?x8")
    assert [(s.name, s.shape, s.dtype) for s in specs] == [
        ("x", (1, 16), "float32"),
        ("ids", (None, 8), "int64"),
    ]
    with pytest.raises(ValueError):
        parse_input_specs("x:float32")


@pytest.mark.parametrize(
    ("header", "metric", "ns"),
    [
        ("decode;dur=0.1, infer;dur=2.5, total;dur=3.25", "total", 3_250_000),
        ('db;desc="x";dur=4, app;dur=1', "total", 4_000_000),
        ("infer;dur=2.5, total;dur=3", "infer", 2_500_000),
        ("cache;desc=hit", "total", -1),
    ],
)
def test_server_timing(header: str, metric: str, ns: int) -> None:
    assert parse_server_timing(header, metric) == ns


def test_public_url() -> None:
    assert public_url("http://u:p@[::1]:8000/a?b=c") == "http://[::1]:8000/a"
    assert public_url("https://example.test/v2") == "https://example.test/v2"


def test_arrivals() -> None:
    rng = np.random.default_rng(0)
    gaps = arrival_offsets(1000.0, ArrivalProcess.POISSON, rng, 200_000)
    assert gaps.mean() == pytest.approx(1e6, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.02)  # exponential: CV 1
    const = arrival_offsets(250.0, ArrivalProcess.CONSTANT, rng, 10)
    assert np.all(const == 4e6)


def _run_with_lags(lags_ns: list[int], open_loop: bool = True) -> LoadRun:
    n = len(lags_ns)
    sched = np.arange(n, dtype=np.int64) * 1_000_000
    start = sched + np.asarray(lags_ns, dtype=np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    return LoadRun(
        scheduled_ns=sched,
        start_ns=start,
        end_ns=start + 500_000,
        errors=(None,) * n,
        bytes_sent=zeros,
        bytes_received=zeros,
        server_ns=zeros - 1,
        status=zeros + 200,
        retries=0,
        window_start_ns=0,
        window_end_ns=int(start[-1] + 500_000),
        open_loop=open_loop,
        offered_rate_qps=1000.0 if open_loop else None,
    )


def test_send_lag_rule_is_more_than_one_percent_over_one_ms() -> None:
    at_limit = _run_with_lags([LATE_NS + 1] * 1 + [0] * 99)
    assert at_limit.late_fraction == 0.01 and not at_limit.lag_invalid
    over = _run_with_lags([LATE_NS + 1] * 2 + [0] * 98)
    assert over.lag_invalid
    exactly_one_ms = _run_with_lags([LATE_NS] * 50 + [0] * 50)
    assert exactly_one_ms.late_fraction == 0.0
    closed = _run_with_lags([LATE_NS * 5] * 10, open_loop=False)
    assert not closed.lag_invalid
    # latency counts from the scheduled time: the lag is inside it
    assert np.all(over.latency_ns == over.service_ns + over.send_lag_ns)


def test_scheduler_sleeps_whole_milliseconds_ending_before_the_send() -> None:
    assert pause_s(-5) == 0.0 and pause_s(500_000) == 0.0
    assert pause_s(1_000_000 + WAKE_MARGIN_NS - 1) == 0.0
    assert pause_s(WAKE_MARGIN_NS // 2) == 0.0  # inside the margin: spin (yield) until due
    for delta_ns in (
        WAKE_MARGIN_NS + 1_300_000,
        WAKE_MARGIN_NS + 2_000_000,
        WAKE_MARGIN_NS + 5_700_000,
        100_000_000,
    ):
        slept = pause_s(delta_ns)
        # epoll rounds the wait up to whole milliseconds: that rounded wait still ends early
        waited_ns = -(-round(slept * 1e9) // 1_000_000) * 1_000_000
        assert 0 < waited_ns <= delta_ns - WAKE_MARGIN_NS
        assert delta_ns - waited_ns < 1_000_000 + WAKE_MARGIN_NS


def _texts(*values: bytes) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


def test_bytes_tensors_follow_the_binary_extension_and_json_strings() -> None:
    """KServe BYTES: binary data is each element's uint32 little-endian length then its bytes
    (written out here by hand), JSON data is strings; both decode back to the same bytes."""
    words = _texts(b"hi", "h\u00e9".encode(), b"")
    enc = kserve.encode_request([NamedTensor("w", words)], binary_inputs=True, binary_outputs=False)
    assert enc.header_length is not None
    head = json.loads(enc.body[: enc.header_length])
    assert head["inputs"][0]["datatype"] == "BYTES"
    blob = enc.body[enc.header_length :]
    assert blob == b"\x02\x00\x00\x00hi" + b"\x03\x00\x00\x00h\xc3\xa9" + b"\x00\x00\x00\x00"
    assert head["inputs"][0]["parameters"]["binary_data_size"] == len(blob)
    as_json = kserve.encode_request(
        [NamedTensor("w", words)], binary_inputs=False, binary_outputs=False
    )
    assert json.loads(as_json.body)["inputs"][0]["data"] == ["hi", "h\u00e9", ""]
    for body, length in ((enc.body, enc.header_length), (as_json.body, None)):
        (back,) = kserve.decode_request(body, length).inputs
        assert back.array.dtype == object and list(back.array) == list(words)


@pytest.mark.parametrize(
    ("blob", "needle"),
    [
        (b"\x05\x00\x00\x00hi", "runs past"),
        (b"\x02\x00", "ends inside"),
        (b"\x00\x00\x00\x00\x00\x00\x00\x00", "bytes follow"),
    ],
)
def test_malformed_bytes_data_is_a_codec_error(blob: bytes, needle: str) -> None:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "w",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        }
    ).encode()
    with pytest.raises(CodecError, match=needle):
        kserve.decode_request(head + blob, len(head))


def test_bytes_tensors_over_grpc_raw_and_typed_contents() -> None:
    """gRPC carries BYTES raw in the same length-prefixed layout, or as bytes_contents."""
    pytest.importorskip("google.protobuf", reason="protobuf comes with the grpc extra")
    from tippingpoint.backends.grpc import tensors
    from tippingpoint.backends.grpc.proto import M

    words = _texts(b"ab", b"xyz")
    req = tensors.parse(
        M.ModelInferRequest, tensors.encode_request("m", None, [NamedTensor("w", words)])
    )
    assert req.inputs[0].datatype == "BYTES"
    assert req.raw_input_contents[0] == b"\x02\x00\x00\x00ab\x03\x00\x00\x00xyz"
    (back,) = tensors.decode_request(req)
    assert list(back.array) == [b"ab", b"xyz"]
    typed = M.ModelInferResponse(model_name="m")
    out = typed.outputs.add(name="o", datatype="BYTES")
    out.shape.append(2)
    out.contents.bytes_contents.extend([b"ab", b"xyz"])
    (decoded,) = tensors.decode_response(typed.SerializeToString())
    assert list(decoded.array) == [b"ab", b"xyz"]
