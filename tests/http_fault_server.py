"""A small fault-injecting HTTP server for the HTTP backend's tests, run as a subprocess:
``python tests/http_fault_server.py`` prints its port and serves on 127.0.0.1 until killed.

Routes: ``/ok`` (200, Server-Timing), ``/status/{code}``, ``/slow/{ms}``, ``/reset`` (TCP RST),
``/flaky`` (503 then 200, alternating), ``/garbage`` (200 with a non-JSON body), ``/chunked``
(200 in chunked transfer-encoding, with Server-Timing), ``/echo``
(a 500 whose body echoes the credentials), ``/echo-cut/{pad}`` (the same after ``pad`` dots,
so a truncation cuts the token), ``/gate`` (200 only with the HTTP Basic user and the
``api_key`` query below), a KServe v2 model ``blank`` whose metadata lists no inputs (it
doubles what it is sent; an empty request is a 500), a KServe v2 model ``text`` taking a
BYTES input (JSON or binary; its metadata lists no inputs), and a minimal
TF Serving model ``double`` (``/v1/models/double[/metadata|:predict]``) that returns 2*x.
A stall is injected from outside by SIGSTOP/SIGCONT of the whole process.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys

from aiohttp import web

TF_METADATA = {
    "model_spec": {"name": "double", "version": "1"},
    "metadata": {
        "signature_def": {
            "signature_def": {
                "serving_default": {
                    "inputs": {
                        "x": {
                            "dtype": "DT_FLOAT",
                            "tensor_shape": {"dim": [{"size": "-1"}, {"size": "4"}]},
                        }
                    },
                    "outputs": {
                        "y": {
                            "dtype": "DT_FLOAT",
                            "tensor_shape": {"dim": [{"size": "-1"}, {"size": "4"}]},
                        }
                    },
                    "method_name": "tensorflow/serving/predict",
                }
            }
        }
    },
}


async def ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text='{"ok":true}', headers={"Server-Timing": "total;dur=0.050"})


async def status(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=int(request.match_info["code"]), text="injected")


async def slow(request: web.Request) -> web.Response:
    await request.read()
    await asyncio.sleep(int(request.match_info["ms"]) / 1000)
    return web.Response(text="{}")


async def reset(request: web.Request) -> web.Response:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError


COUNTER = {"flaky": 0}


async def flaky(request: web.Request) -> web.Response:
    await request.read()
    COUNTER["flaky"] += 1
    if COUNTER["flaky"] % 2:
        return web.Response(status=503, text="try again")
    return web.Response(text="{}")


async def garbage(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="<html>not json</html>")


async def chunked(request: web.Request) -> web.StreamResponse:
    await request.read()
    resp = web.StreamResponse(headers={"Server-Timing": "total;dur=0.070"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for part in (b'{"outputs": ', b"[1, 2, ", b"3]}"):
        await resp.write(part)
    await resp.write_eof()
    return resp


async def echo(request: web.Request) -> web.Response:
    """A careless server: a 500 whose body echoes the request's credentials."""
    await request.read()
    creds = request.headers.get("Authorization", "") + " " + request.headers.get("X-Api-Key", "")
    return web.Response(status=500, text=f"bad credentials: {creds}")


async def echo_cut(request: web.Request) -> web.Response:
    """A careless server with a long error: ``pad`` dots, then the credentials it was sent,
    so the client's 200-character excerpt cuts the token where the test chooses."""
    await request.read()
    creds = request.headers.get("Authorization", "") + " " + request.headers.get("X-Api-Key", "")
    pad = "." * int(request.match_info["pad"])
    return web.Response(status=500, text=f"{pad}{creds} and more text after the token")


GATE_USER = "gate-user"
GATE_PASSWORD = "pa55-Gate-Word-71"
GATE_KEY = "k3y-Gate-Value-9Q"


async def gate(request: web.Request) -> web.Response:
    """A gateway in front of a model: 200 only with HTTP Basic ``gate-user:GATE_PASSWORD`` and
    the query ``api_key=GATE_KEY`` (as API gateways check), else 401 or 403."""
    import base64

    await request.read()
    expected = base64.b64encode(f"{GATE_USER}:{GATE_PASSWORD}".encode()).decode()
    if request.headers.get("Authorization") != f"Basic {expected}":
        return web.Response(status=401, text="basic auth required")
    if request.query.get("api_key") != GATE_KEY:
        return web.Response(status=403, text="api key required")
    return web.json_response({"outputs": [1.0]})


BLANK_METADATA = {"name": "blank", "versions": ["3"], "platform": "custom", "inputs": [],
                  "outputs": []}  # fmt: skip


async def ready(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def blank_metadata(request: web.Request) -> web.Response:
    return web.json_response(BLANK_METADATA)


async def blank_infer(request: web.Request) -> web.Response:
    """A custom KServe predictor whose metadata lists no inputs: it doubles whatever tensors it
    is sent, and answers an empty request with a 500 (as such servers do)."""
    from tippingpoint.backends.http import kserve

    body = await request.read()
    length = request.headers.get(kserve.HEADER_LENGTH)
    try:
        req = kserve.decode_request(body, int(length) if length else None)
    except kserve.CodecError as exc:
        return web.json_response({"error": str(exc)}, status=500)
    outs = [kserve.NamedTensor(t.name + "_out", t.array * 2) for t in req.inputs]
    enc = kserve.encode_response("blank", outs, [req.binary_default] * len(outs), req.id, "3")
    return web.Response(body=enc.body, headers=enc.headers())


async def text_metadata(request: web.Request) -> web.Response:
    """The ``text`` model lists no inputs (a custom predictor): --opt inputs= gives them."""
    return web.json_response(
        {"name": "text", "versions": ["1"], "platform": "custom", "inputs": [], "outputs": []}
    )


def _bytes_elements(blob: bytes) -> list[str]:
    """The binary extension's BYTES layout, read by hand: uint32 LE length, then the bytes."""
    out, pos = [], 0
    while pos < len(blob):
        (size,) = struct.unpack_from("<I", blob, pos)
        out.append(blob[pos + 4 : pos + 4 + size].decode())
        pos += 4 + size
    return out


async def text_infer(request: web.Request) -> web.Response:
    """A KServe v2 model ``text`` taking one BYTES input (JSON strings or binary data) and
    answering each element's length in bytes; anything but a BYTES input is a 400."""
    body = await request.read()
    length = request.headers.get("Inference-Header-Content-Length")
    try:
        head = json.loads(body[: int(length)] if length else body)
        (entry,) = head["inputs"]
        if entry["datatype"] != "BYTES":
            raise ValueError("not BYTES")
        if length:
            values = _bytes_elements(body[int(length) :])
        else:
            values = entry["data"]
        count = 1
        for d in entry["shape"]:
            count *= d
        if len(values) != count or not all(isinstance(v, str) for v in values):
            raise ValueError("wrong count")
    except (ValueError, KeyError, TypeError, struct.error):
        return web.json_response({"error": "model 'text' takes one BYTES input"}, status=400)
    lengths = [len(v.encode()) for v in values]
    out = {"name": "length", "datatype": "INT64", "shape": [len(lengths)], "data": lengths}
    return web.json_response({"model_name": "text", "outputs": [out]})


async def tf_status(request: web.Request) -> web.Response:
    return web.json_response({"model_version_status": [{"version": "1", "state": "AVAILABLE"}]})


async def tf_metadata(request: web.Request) -> web.Response:
    return web.json_response(TF_METADATA)


async def tf_predict(request: web.Request) -> web.Response:
    doc = await request.json()
    x = doc["inputs"]["x"] if isinstance(doc["inputs"], dict) else doc["inputs"]
    return web.json_response({"outputs": [[2 * v for v in row] for row in x]})


def make_app() -> web.Application:
    app = web.Application()
    for route, handler in (
        ("/ok", ok),
        ("/status/{code}", status),
        ("/slow/{ms}", slow),
        ("/reset", reset),
        ("/flaky", flaky),
        ("/garbage", garbage),
        ("/chunked", chunked),
        ("/echo", echo),
        ("/echo-cut/{pad}", echo_cut),
        ("/gate", gate),
    ):
        app.router.add_route("*", route, handler)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2/models/blank", blank_metadata)
    app.router.add_post("/v2/models/blank/infer", blank_infer)
    app.router.add_get("/v2/models/text", text_metadata)
    app.router.add_post("/v2/models/text/infer", text_infer)
    app.router.add_get("/v1/models/double", tf_status)
    app.router.add_get("/v1/models/double/metadata", tf_metadata)
    app.router.add_post("/v1/models/double:predict", tf_predict)
    return app


async def main() -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
