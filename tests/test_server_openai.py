"""The OpenAI-compatible streaming endpoint of ``tippingpoint serve`` over real HTTP on loopback,
read with the standard library's http.client (so the server is checked independently of any
client of ours): event format, usage, the stub's schedule, errors, the suite LLM end to end.

Timing is asserted only as lower bounds the stub guarantees (it never sends a chunk before
its due time); how late a loaded machine delivers is not asserted.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("aiohttp", reason="aiohttp is the serve extra")
pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is the genai extra")

from tippingpoint.backends.generative import StreamCompletion, request_timings
from tippingpoint.backends.http.auth import Secret
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.token_metrics import summarize
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.openai import (
    GenAiSource,
    OpenAiService,
    StubSource,
    StubSpec,
    load_sources,
    parse_stub,
)
from tippingpoint.server.repository import ModelRepository

TTFT_MS, ITL_MS = 20.0, 4.0


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    sources = [
        *load_sources(["tiny-llm"], None),
        StubSource("stub", StubSpec(TTFT_MS, ITL_MS, tokens_per_chunk=1)),
        StubSource("stub2", StubSpec(TTFT_MS, ITL_MS, tokens_per_chunk=2)),
        StubSource("flaky", StubSpec(0, 0, error_rate=0.5)),
    ]
    with BackgroundServer(ModelRepository(), ServerConfig(port=0), OpenAiService(sources)) as srv:
        yield srv


def post(
    srv: BackgroundServer, path: str, doc: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        conn.request("POST", path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.headers), resp.read()
    finally:
        conn.close()


def stream(srv: BackgroundServer, path: str, doc: dict[str, Any]) -> tuple[list[Any], list[int]]:
    """The events of an SSE answer (parsed JSON, or the string '[DONE]') and when each
    arrived (perf_counter_ns), after the send time as element 0 of the times."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        t0 = time.perf_counter_ns()
        conn.request("POST", path, body=json.dumps({**doc, "stream": True}).encode())
        resp = conn.getresponse()
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        events: list[Any] = []
        times = [t0]
        while line := resp.readline():
            if not line.strip():
                continue
            assert line.startswith(b"data: "), line
            payload = line[len(b"data: ") :].strip()
            times.append(time.perf_counter_ns())
            events.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
        return events, times
    finally:
        conn.close()


def test_stub_stream_format_usage_and_schedule(server: BackgroundServer) -> None:
    doc = {"model": "stub2", "prompt": "one two three", "max_tokens": 7}
    events, times = stream(
        server, "/v1/completions", {**doc, "stream_options": {"include_usage": True}}
    )
    assert events[-1] == "[DONE]"
    usage_event = events[-2]
    assert usage_event["choices"] == []
    assert usage_event["usage"] == {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}
    content = events[:-2]
    texts = [e["choices"][0]["text"] for e in content]
    # the first token alone, then chunks of 2: w0 | w1 w2 | w3 w4 | w5 w6
    assert texts == [" w0", " w1 w2", " w3 w4", " w5 w6", ""]  # then the closing event
    assert [e["choices"][0]["finish_reason"] for e in content] == [None] * 4 + ["length"]
    assert all(e["usage"] is None and e["object"] == "text_completion" for e in content)
    # chunk j is due when its last token is produced: TTFT + (last index) x ITL after arrival
    sent = times[0]
    for arrived, last in zip(times[1:5], (0, 2, 4, 6), strict=True):
        assert arrived - sent >= (TTFT_MS + last * ITL_MS) * 1e6
    # the same stream as the metrics read it: the client counts one token per stub word
    record = StreamCompletion(
        scheduled_ns=sent,
        start_ns=sent,
        end_ns=times[4],
        chunk_ns=tuple(times[1:5]),
        chunk_tokens=tuple(len(t.split()) for t in texts[:4]),
        output_tokens_client=7,
        output_tokens_server=usage_event["usage"]["completion_tokens"],
    )
    m = summarize(request_timings([record]))
    assert m.multi_token_chunks and m.token_counts.differing == 0
    assert m.ttft is not None and m.ttft.min >= TTFT_MS


def test_chat_stream_role_first_and_no_usage_unless_asked(server: BackgroundServer) -> None:
    doc = {"model": "stub", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    events, _ = stream(server, "/v1/chat/completions", doc)
    assert events[-1] == "[DONE]" and len(events) == 5
    deltas = [e["choices"][0]["delta"] for e in events[:-1]]
    assert deltas[0] == {"role": "assistant", "content": " w0"} and deltas[-1] == {}
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert "".join(d.get("content", "") for d in deltas) == " w0 w1 w2"
    assert all("usage" not in e and e["object"] == "chat.completion.chunk" for e in events[:-1])


def test_suite_llm_over_http_matches_the_session(server: BackgroundServer) -> None:
    llm = server.llm
    assert llm is not None
    source = llm.sources["tiny-llm"]
    assert isinstance(source, GenAiSource)
    expected = source.session.generate("the robot", 20, decode=True)
    doc = {"model": "tiny-llm", "prompt": "the robot", "max_tokens": 20, "ignore_eos": True}
    status, _, body = post(server, "/v1/completions", doc)
    answer = json.loads(body)
    assert status == 200 and answer["choices"][0]["text"] == expected.text
    assert answer["usage"] == {"prompt_tokens": 2, "completion_tokens": 20, "total_tokens": 22}
    events, _ = stream(
        server, "/v1/completions", {**doc, "stream_options": {"include_usage": True}}
    )
    pieces = [e["choices"][0]["text"] for e in events[:-3]]  # [-3]: the closing event
    assert len(pieces) == 20 and "".join(pieces) == expected.text
    assert events[-3]["choices"][0] == {
        "index": 0,
        "finish_reason": "length",
        "text": "",
        "logprobs": None,
    }
    assert events[-2]["usage"]["completion_tokens"] == 20
    # token ids as the prompt, and a chat request whose prompt is the message's content
    ids = list(expected.prompt_tokens)
    status, _, body = post(server, "/v1/completions", {**doc, "prompt": ids})
    assert json.loads(body)["choices"][0]["text"] == expected.text
    chat = {"model": "tiny-llm", "messages": [{"role": "user", "content": "the robot"}]}
    status, _, body = post(
        server, "/v1/chat/completions", {**chat, "max_tokens": 20, "ignore_eos": True}
    )
    assert json.loads(body)["choices"][0]["message"]["content"] == expected.text


def test_without_ignore_eos_the_model_may_stop(server: BackgroundServer) -> None:
    doc = {"model": "tiny-llm", "prompt": "the robot", "max_tokens": 200}
    answer = json.loads(post(server, "/v1/completions", doc)[2])
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] < 200


def test_error_rate_answers_429_with_retry_after(server: BackgroundServer) -> None:
    doc = {"model": "flaky", "prompt": "x", "max_tokens": 2}
    statuses = []
    for _ in range(6):
        status, headers, body = post(server, "/v1/completions", doc)
        statuses.append(status)
        if status == 429:
            assert headers["Retry-After"] == "1"
            assert json.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert statuses.count(429) == 3 and statuses.count(200) == 3


@pytest.mark.parametrize(
    ("doc", "status", "param"),
    [
        (b"{not json", 400, None),
        ({"model": "stub"}, 400, "prompt"),
        ({"model": "stub", "prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        (
            {"model": "stub", "prompt": "x", "stream_options": {"include_usage": True}},
            400,
            "stream_options",
        ),
        ({"model": "stub", "prompt": "x", "n": 2}, 400, "n"),
        ({"model": "stub", "prompt": [1, "a"]}, 400, "prompt"),
        ({"model": "tiny-llm", "prompt": "the cloud", "max_tokens": 300}, 400, "max_tokens"),
        ({"model": "none", "prompt": "x"}, 404, "model"),
    ],
)
def test_bad_requests_are_openai_errors(
    server: BackgroundServer, doc: object, status: int, param: str | None
) -> None:
    got, _, body = post(server, "/v1/completions", doc)
    error = json.loads(body)["error"]
    assert got == status and error["param"] == param and error["message"]


def test_chat_needs_messages(server: BackgroundServer) -> None:
    status, _, body = post(server, "/v1/chat/completions", {"model": "stub", "messages": []})
    assert status == 400 and json.loads(body)["error"]["param"] == "messages"


def test_v1_routes_need_the_token() -> None:
    service = OpenAiService([StubSource("stub", StubSpec(0, 0))])
    config = ServerConfig(port=0, token=Secret("tok-123"))
    with BackgroundServer(ModelRepository(), config, service) as srv:
        doc = {"model": "stub", "prompt": "x", "max_tokens": 1}
        assert post(srv, "/v1/completions", doc)[0] == 401
        ok = post(srv, "/v1/completions", doc, {"Authorization": "Bearer tok-123"})
        assert ok[0] == 200


def test_stub_spec_parsing() -> None:
    assert parse_stub("ttft=50,itl=10,chunk=2,error=0.01") == StubSpec(50, 10, 2, 0.01)
    assert parse_stub("itl=3") == StubSpec(itl_ms=3)
    assert parse_stub("ttft=5,slots=4") == StubSpec(ttft_ms=5, slots=4)
    assert parse_stub("ttft=5").slots is None  # no limit unless asked
    bad_slots = ("slots=0", "slots=2.5", "slots=inf", "slots=x")
    for bad in ("ttft", "foo=1", "chunk=0", "chunk=1.5", "error=2", "itl=-1", "ttft=x", *bad_slots):
        with pytest.raises(InvalidOptionError):
            parse_stub(bad)


def test_cli_refuses_a_bad_stub_with_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tippingpoint", "serve", "--llm-stub", "chunk=0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip().startswith("error: invalid --llm-stub")
        and "\n" not in done.stderr.strip()
    )
