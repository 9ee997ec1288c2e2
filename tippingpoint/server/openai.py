"""An OpenAI-compatible streaming endpoint on the reference server: the suite LLM, or a stub.

Routes (added to the aiohttp application by :func:`tippingpoint.server.app.create_app`, behind
the same bearer-token check as the KServe routes)::

    GET  /v1/models
    POST /v1/completions         {"model", "prompt": str | [int], "max_tokens", "stream", ...}
    POST /v1/chat/completions    {"model", "messages": [{"role", "content"}], "max_tokens" |
                                  "max_completion_tokens", "stream", ...}

``stream: true`` answers server-sent events, one ``data: {json}`` event per chunk, a last
content chunk carrying ``finish_reason``, then ``data: [DONE]``; with
``stream_options: {"include_usage": true}`` every chunk carries ``"usage": null`` and one more
chunk before ``[DONE]`` has empty ``choices`` and the ``usage`` (OpenAI's format, which vLLM,
TGI, llama.cpp and Ollama follow). vLLM's ``ignore_eos`` and ``min_tokens`` are accepted.
Without ``stream`` the whole answer is one JSON document with ``usage``. Errors are OpenAI's
``{"error": {"message", "type", "param", "code"}}`` with a 4xx/5xx status.

Two sources of tokens:

* :class:`GenAiSource`: a :class:`~tippingpoint.backends.generative.GenerativeSession` (the suite
  LLM on onnxruntime-genai) generating on a thread pool, one token per chunk, greedy. The
  tiny model has no chat template: a chat request's prompt is its messages' contents joined by
  newlines.
* :class:`StubSource`: no model. Deterministic timing for tests and for checking clients: the
  first chunk (one token) is sent ``ttft_ms`` after the request arrived, token ``i`` is produced
  ``ttft_ms + i * itl_ms`` after it, and later chunks carry ``tokens_per_chunk`` tokens each,
  sent when their last token is produced. So time to first token is ``ttft_ms``, time per
  output token exactly ``itl_ms`` and the gaps between chunks ``tokens_per_chunk * itl_ms``.
  Every token is one word (`` w17``); ``max_tokens`` tokens are always produced. A fraction
  ``error_rate`` of requests, spread evenly (request k fails when ``floor(k * rate)`` steps),
  is answered ``429`` with ``Retry-After: 1``. With ``slots`` set, at most that many answers
  are produced at once, like a server with that many batch slots: a request beyond them waits,
  first come first served, for a slot to free before its ``ttft_ms`` starts, so its wait is
  part of its time to first token. A slot is held ``ttft_ms + (max_tokens - 1) * itl_ms``, so
  the stub's capacity is ``slots / that`` requests/s, past which the queue (and TTFT) grows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tippingpoint.backends.generative import GenerativeSession
from tippingpoint.core.errors import InvalidOptionError, InvalidShapeError

if TYPE_CHECKING:
    from aiohttp import web

DEFAULT_MAX_TOKENS = 16
"""OpenAI's default for /v1/completions; used for chat too when no limit is given."""


class ApiError(Exception):
    """An OpenAI-style error answer: status, message, type, param, extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The JSON error response."""
        from aiohttp import web

        code = {404: "model_not_found", 429: "rate_limit_exceeded"}.get(self.status)
        doc = {"error": {"message": self.message, "type": self.kind, "param": self.param}}
        doc["error"]["code"] = code
        return web.json_response(doc, status=self.status, headers=self.headers)


@dataclass(frozen=True)
class GenRequest:
    """A validated request, whichever endpoint it came from."""

    prompt: str | tuple[int, ...]
    max_tokens: int
    ignore_eos: bool
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class Chunk:
    """Text of one streamed event and the tokens it carries."""

    text: str
    tokens: int


@dataclass
class Outcome:
    """Filled in by a source as it streams: counts and why it stopped."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "length"


class TokenSource(Protocol):
    """Where a served model's tokens come from."""

    name: str

    def stream(self, req: GenRequest, outcome: Outcome) -> AsyncIterator[Chunk]:
        """The chunks of one answer; raises ApiError before the first chunk to refuse it."""
        ...

    def close(self) -> None:
        """Release threads and models."""
        ...


_DONE = object()


class GenAiSource:
    """A generative session behind the endpoint: generation on a thread pool, streamed."""

    def __init__(self, name: str, session: GenerativeSession, threads: int = 1) -> None:
        self.name = name
        self.session = session
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="generate")

    async def stream(self, req: GenRequest, outcome: Outcome) -> AsyncIterator[Chunk]:
        """Tokens as the session produces them, one per chunk, decoded incrementally."""
        session = self.session
        try:
            ids = session.tokenize(req.prompt) if isinstance(req.prompt, str) else req.prompt
            limit = session.generative_info.context_length
            if not ids:
                raise ApiError(400, "the prompt is empty", param="prompt")
            if len(ids) + req.max_tokens > limit:
                raise ApiError(
                    400,
                    f"{len(ids)} prompt tokens + max_tokens {req.max_tokens} exceed the model's "
                    f"context of {limit} tokens",
                    param="max_tokens",
                )
        except InvalidShapeError as exc:
            raise ApiError(400, exc.message, param="prompt") from None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancelled = False

        def on_token(token: int) -> None:
            if cancelled:
                raise asyncio.CancelledError("client went away")
            loop.call_soon_threadsafe(queue.put_nowait, token)

        def run() -> object:
            return session.generate(
                ids, req.max_tokens, ignore_eos=req.ignore_eos, on_token=on_token
            )

        future = loop.run_in_executor(self.pool, run)
        future.add_done_callback(lambda _: queue.put_nowait(_DONE))
        outcome.prompt_tokens = len(ids)
        tokens: list[int] = []
        shown = ""
        try:
            while (item := await queue.get()) is not _DONE:
                assert isinstance(item, int)
                tokens.append(item)
                text = session.detokenize(tokens)
                piece, shown = text[len(shown) :], text
                outcome.completion_tokens = len(tokens)
                yield Chunk(piece, 1)
            result = future.result()  # raises the session's error, if any
            finish = getattr(getattr(result, "completion", None), "finish_reason", None)
            outcome.finish_reason = str(finish or "length")
        finally:
            cancelled = True
            if not future.done():
                future.add_done_callback(lambda f: f.exception())  # retrieved: no warning

    def close(self) -> None:
        """Stop the threads and close the session."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()


@dataclass(frozen=True)
class StubSpec:
    """Timing of the stub (milliseconds), its chunking and its error fraction."""

    ttft_ms: float = 50.0
    itl_ms: float = 10.0
    tokens_per_chunk: int = 1
    error_rate: float = 0.0
    slots: int | None = None
    """Answers produced at once (None: any number); the others wait their turn, FIFO."""


def parse_stub(text: str) -> StubSpec:
    """``ttft=MS,itl=MS,chunk=N,error=FRACTION,slots=N`` (any subset) into a
    :class:`StubSpec`."""
    keys = {
        "ttft": "ttft_ms",
        "itl": "itl_ms",
        "chunk": "tokens_per_chunk",
        "error": "error_rate",
        "slots": "slots",
    }
    values: dict[str, float] = {}
    hint = "write e.g. --llm-stub ttft=50,itl=10,chunk=2,error=0.01,slots=8"
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in keys:
            raise InvalidOptionError(f"invalid --llm-stub part '{part}'", hint)
        try:
            values[keys[key.strip()]] = float(value)
        except ValueError:
            raise InvalidOptionError(f"--llm-stub {key}={value} is not a number", hint) from None
    spec = StubSpec(
        ttft_ms=values.get("ttft_ms", StubSpec.ttft_ms),
        itl_ms=values.get("itl_ms", StubSpec.itl_ms),
        tokens_per_chunk=int(values.get("tokens_per_chunk", StubSpec.tokens_per_chunk)),
        error_rate=values.get("error_rate", StubSpec.error_rate),
        slots=_whole(values["slots"]) if "slots" in values else None,
    )
    if (
        not (math.isfinite(spec.ttft_ms) and math.isfinite(spec.itl_ms))
        or spec.ttft_ms < 0
        or spec.itl_ms < 0
        or spec.tokens_per_chunk < 1
        or values.get("tokens_per_chunk", 1) != spec.tokens_per_chunk
        or not 0 <= spec.error_rate <= 1
        or (spec.slots is not None and (spec.slots < 1 or values["slots"] != spec.slots))
    ):
        raise InvalidOptionError(
            f"invalid --llm-stub '{text}'",
            "ttft and itl are milliseconds >= 0, chunk and slots whole numbers >= 1, "
            "error in [0, 1]",
        )
    return spec


def _whole(value: float) -> int:
    """``value`` truncated to an int (0 where it is not finite: refused by the caller)."""
    return int(value) if math.isfinite(value) else 0


class _Slots:
    """At most ``n`` holders at once; the others wait first come, first served (a freed slot
    is handed to the oldest waiter, never taken by a newcomer)."""

    def __init__(self, n: int) -> None:
        self.free = n
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for a slot (at once when one is free and nobody waits)."""
        if self.free and not self.waiters:
            self.free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        self.waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a slot while being cancelled
                self.release()
            else:
                self.waiters.remove(turn)
            raise

    def release(self) -> None:
        """Free a slot: to the oldest waiter still waiting, else to the pool."""
        while self.waiters:
            turn = self.waiters.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.free += 1


class StubSource:
    """Deterministic tokens at set times (see the module's description)."""

    def __init__(self, name: str, spec: StubSpec) -> None:
        self.name = name
        self.spec = spec
        self._requests = 0
        self._slots = _Slots(spec.slots) if spec.slots is not None else None

    def _refuse(self) -> bool:
        k = self._requests
        self._requests += 1
        rate = self.spec.error_rate
        return math.floor((k + 1) * rate) > math.floor(k * rate)

    async def stream(self, req: GenRequest, outcome: Outcome) -> AsyncIterator[Chunk]:
        """``max_tokens`` words, the first alone at TTFT (counted from when a slot is free),
        then in chunks."""
        loop = asyncio.get_running_loop()
        if self._refuse():
            raise ApiError(
                429, "stub: rate limited", kind="rate_limit_error", headers={"Retry-After": "1"}
            )
        slots = self._slots
        if slots is not None:
            await slots.acquire()
        try:
            t0 = loop.time()
            outcome.prompt_tokens = (
                len(req.prompt.split()) if isinstance(req.prompt, str) else len(req.prompt)
            )
            n, k = req.max_tokens, self.spec.tokens_per_chunk
            ttft, itl = self.spec.ttft_ms / 1e3, self.spec.itl_ms / 1e3
            bounds = [0, *range(1, n, k), n]
            for lo, hi in itertools.pairwise(bounds):
                due = t0 + ttft + (hi - 1) * itl
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                outcome.completion_tokens = hi
                yield Chunk("".join(f" w{i}" for i in range(lo, hi)), hi - lo)
        finally:  # also when the answer is abandoned (the client went away)
            if slots is not None:
                slots.release()

    def close(self) -> None:
        """Nothing to release."""


# ---- request parsing ----------------------------------------------------------------------


def _int_field(doc: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = doc.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ApiError(400, f"'{name}' must be a positive integer", param=name)
        return value
    return None


def parse_request(doc: object, chat: bool) -> GenRequest:
    """Validate a completions or chat-completions body."""
    if not isinstance(doc, dict):
        raise ApiError(400, "the body must be a JSON object")
    if chat:
        messages = doc.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "'messages' must be a non-empty list", param="messages")
        texts = []
        for m in messages:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and "text" in p
                )
            if not isinstance(content, str):
                raise ApiError(400, "each message needs a string 'content'", param="messages")
            texts.append(content)
        prompt: str | tuple[int, ...] = "\n".join(texts)
        max_tokens = _int_field(doc, "max_completion_tokens", "max_tokens")
    else:
        raw = doc.get("prompt")
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], (str, list)):
            raw = raw[0]  # a batch of one
        if isinstance(raw, str):
            prompt = raw
        elif isinstance(raw, list) and all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in raw
        ):
            prompt = tuple(raw)
        else:
            raise ApiError(400, "'prompt' must be a string or a list of token ids", param="prompt")
        max_tokens = _int_field(doc, "max_tokens")
    if doc.get("n", 1) != 1:
        raise ApiError(400, "only n=1 is supported", param="n")
    stream = doc.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false", param="stream")
    options = doc.get("stream_options")
    if options is not None and (not stream or not isinstance(options, dict)):
        raise ApiError(
            400, "'stream_options' is only allowed with stream: true", param="stream_options"
        )
    include_usage = bool((options or {}).get("include_usage", False))
    min_tokens = _int_field(doc, "min_tokens")
    max_tokens = max_tokens or DEFAULT_MAX_TOKENS
    ignore_eos = bool(doc.get("ignore_eos", False)) or (min_tokens or 0) >= max_tokens
    return GenRequest(prompt, max_tokens, ignore_eos, stream, include_usage)


# ---- the service --------------------------------------------------------------------------


def _sse(doc: object) -> bytes:
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


class OpenAiService:
    """The /v1 routes over named token sources."""

    def __init__(self, sources: Sequence[TokenSource]) -> None:
        self.sources = {s.name: s for s in sources}
        if len(self.sources) != len(sources):
            raise InvalidOptionError("two served LLMs share a name", "rename one")

    def register(self, app: web.Application) -> None:
        """Add the routes, and the sources' release at shutdown, to ``app``."""
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/chat/completions", self.chat_completions)

        async def cleanup(_: web.Application) -> None:
            self.close()

        app.on_cleanup.append(cleanup)

    def close(self) -> None:
        """Release every source."""
        for s in self.sources.values():
            s.close()

    async def models(self, request: web.Request) -> web.Response:
        """GET /v1/models."""
        from aiohttp import web

        data = [
            {"id": n, "object": "model", "created": 0, "owned_by": "tippingpoint"}
            for n in self.sources
        ]
        return web.json_response({"object": "list", "data": data})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/completions."""
        return await self._handle(request, chat=False)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        return await self._handle(request, chat=True)

    async def _handle(self, request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            try:
                doc = json.loads(await request.read())
            except ValueError:
                raise ApiError(400, "the body is not valid JSON") from None
            name = doc.get("model") if isinstance(doc, dict) else None
            source = self.sources.get(name) if isinstance(name, str) else None
            if source is None:
                if isinstance(doc, dict) and len(self.sources) == 1 and name is None:
                    source = next(iter(self.sources.values()))
                else:
                    known = ", ".join(self.sources) or "none"
                    raise ApiError(404, f"unknown model {name!r} (served: {known})", param="model")
            req = parse_request(doc, chat)
            outcome = Outcome()
            chunks = source.stream(req, outcome)
            first = await anext(chunks, None)  # refusals (ApiError) come before any output
        except ApiError as exc:
            return exc.response()
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        meta = {
            "id": ident,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": source.name,
        }
        if req.stream:
            return await self._stream(request, chat, req, meta, first, chunks, outcome)
        texts = [first.text] if first is not None else []
        try:
            texts += [c.text async for c in chunks]
        except Exception as exc:  # the runtime failed part-way
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            return ApiError(500, message, kind="server_error").response()
        return self._whole(chat, meta, "".join(texts), outcome)

    @staticmethod
    def _usage(outcome: Outcome) -> dict[str, int]:
        return {
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
        }

    def _whole(self, chat: bool, meta: dict[str, Any], text: str, outcome: Outcome) -> web.Response:
        from aiohttp import web

        choice: dict[str, Any] = {"index": 0, "finish_reason": outcome.finish_reason}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice.update(text=text, logprobs=None)
        obj = "chat.completion" if chat else "text_completion"
        doc = {**meta, "object": obj, "choices": [choice], "usage": self._usage(outcome)}
        return web.json_response(doc)

    async def _stream(
        self,
        request: web.Request,
        chat: bool,
        req: GenRequest,
        meta: dict[str, Any],
        first: Chunk | None,
        chunks: AsyncIterator[Chunk],
        outcome: Outcome,
    ) -> web.StreamResponse:
        from aiohttp import web

        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        extra: dict[str, Any] = {"usage": None} if req.include_usage else {}

        def event(text: str | None, finish: str | None, role: bool) -> bytes:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if chat:
                delta: dict[str, str] = {"role": "assistant"} if role else {}
                if text is not None:
                    delta["content"] = text
                choice["delta"] = delta
            else:
                choice.update(text=text or "", logprobs=None)
            return _sse({**meta, "choices": [choice], **extra})

        role = True
        try:  # each chunk goes out as it comes (no look-ahead: it would delay every chunk by
            # one), then OpenAI's closing event: no text, the finish reason
            if first is not None:
                await resp.write(event(first.text, None, role))
                role = False
            async for chunk in chunks:
                await resp.write(event(chunk.text, None, role))
                role = False
            await resp.write(event(None, outcome.finish_reason, role))
        except ConnectionError:  # the client went away
            return resp
        except Exception as exc:  # mid-stream: say so in the stream, end without [DONE]
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            await resp.write(_sse({"error": {"message": message, "type": "server_error"}}))
            await resp.write_eof()
            return resp
        if req.include_usage:
            await resp.write(_sse({**meta, "choices": [], "usage": self._usage(outcome)}))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def load_sources(
    llms: Sequence[str], stub: str | None, threads: int = 1, intra_op_threads: int = 1
) -> list[TokenSource]:
    """Token sources for ``--llm`` values (``tiny-llm``, ``tiny-llm.int4``, ``NAME=FOLDER``)
    and ``--llm-stub`` (served as ``stub``)."""
    from pathlib import Path

    from tippingpoint.backends.genai import GenAiBackend
    from tippingpoint.models.generative import GenerativeVariant, resolve_generative

    sources: list[TokenSource] = []
    try:
        for spec in llms:
            name, sep, target = spec.partition("=")
            if not sep:
                name, target = spec, spec
            if Path(target).exists():
                config = Path(target)
                served = name if sep else Path(target).resolve().name
            else:
                model, _, variant = target.partition(".")
                try:
                    var = GenerativeVariant(variant or "fp32")
                except ValueError:
                    raise InvalidOptionError(
                        f"unknown variant '{variant}' of {model}",
                        "variants: " + ", ".join(v.value for v in GenerativeVariant),
                    ) from None
                _, _, config = resolve_generative(model, var)
                served = name
            session = GenAiBackend().load(config, {"intra_op_threads": intra_op_threads})
            sources.append(GenAiSource(served, session, threads))
        if stub is not None:
            sources.append(StubSource("stub", parse_stub(stub)))
    except BaseException:
        for s in sources:
            s.close()
        raise
    return sources
