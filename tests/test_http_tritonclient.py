"""An independent client: the official tritonclient[http] lists, queries metadata and runs
inference (JSON and binary tensors) against the reference server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.http_helpers import add_feeds
from tippingpoint.server.background import BackgroundServer

httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http] (dev extra)")


@pytest.fixture(scope="module")
def client(add_server: BackgroundServer) -> Iterator[object]:
    c = httpclient.InferenceServerClient(url=f"127.0.0.1:{add_server.port}")
    try:
        yield c
    finally:
        c.close()


def test_health_index_and_metadata(client: object) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("add")
    index = client.get_model_repository_index()
    assert [(m["name"], m["state"]) for m in index] == [("add", "READY")]
    meta = client.get_model_metadata("add")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("a", "FP32", [-1, 4]),
        ("b", "FP32", [-1, 4]),
        ("i", "INT64", [-1, 2]),
    ]
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer(client: object, binary: bool) -> None:
    feeds = add_feeds(3)
    inputs = []
    for name, arr, dtype in zip("abi", feeds, ("FP32", "FP32", "INT64"), strict=True):
        inp = httpclient.InferInput(name, list(arr.shape), dtype)
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("y", "z")]
    result = client.infer("add", inputs, outputs=outputs)
    np.testing.assert_allclose(result.as_numpy("y"), feeds[0] + feeds[1], rtol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("z"), feeds[2])


def test_error_is_reported_to_the_client(client: object) -> None:
    from tritonclient.utils import InferenceServerException

    inp = httpclient.InferInput("a", [1, 3], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(InferenceServerException, match="has shape"):
        client.infer("add", [inp])
