"""A streaming client for OpenAI-compatible endpoints: ``/v1/chat/completions`` and
``/v1/completions`` with ``stream: true`` and ``stream_options.include_usage`` (cloud APIs, vLLM,
TGI, llama.cpp's server, Ollama's OpenAI endpoint, ``tippingpoint serve --llm``).

Each request becomes one :class:`~tippingpoint.backends.generative.StreamCompletion`:
``perf_counter_ns`` right before the request is handed to the HTTP client, at the arrival of
every network read that completed an event carrying output, and after ``[DONE]`` (or the
failure). A chunk's time is taken where its bytes reach the process, not where the reading
task wakes: each connection's protocol (:func:`_stamping_handler`) reads the clock first thing
in ``data_received``, before aiohttp parses the bytes, and every event completed by one read of
the response takes the time the read's last bytes arrived (events that arrived in the same
read are stamped together, never before their bytes were there; the first chunk too when it
came in the same packet as the headers). The hand-over from
aiohttp's parser to the reading task (tens of microseconds on a busy loop) and the client's
own parsing are thus kept out of the timestamps; ``make bench-streams`` measures what is left.
Output tokens are the server's ``usage.completion_tokens`` when it reports them; a chunk's own token
count comes from cumulative per-chunk usage (vLLM's ``continuous_usage_stats``) or from the
caller's ``count_tokens`` (a tokenizer), else it is 0 (unknown) and the client's total is
left None. A count is never invented.

Failures are counted by kind, never raised: ``connect`` (no connection), ``timeout``,
``http-NNN`` (``http-429`` for a rate limit; its ``Retry-After`` is kept in
:attr:`OpenAiStreamClient.retry_after_s`, not acted on: retrying would hide the refusal from
the figures), ``not-streaming`` (a 2xx whose body is not ``text/event-stream``, e.g. a JSON
answer), ``malformed-event`` (an event whose data is not a JSON object), ``stream-error`` (an
``{"error": ...}`` event mid-stream), ``cut`` (the stream ended or broke before ``[DONE]``).

Design choice: aiohttp, not the project's raw asyncio HTTP/1.1 client. The raw client
(:mod:`tippingpoint.backends.http.rawclient`) reads whole request/response bodies, which suits
single-shot tensors; a stream needs incremental reads of chunked transfer encoding, TLS for
cloud APIs and proxies, all of which aiohttp already does correctly and which is already a
dependency of the ``http`` extra. The SSE parsing is ours and kept cheap per read: one
``perf_counter_ns``, a ``bytes`` split on the blank line, ``json.loads`` of the data field only
(``\\r\\n`` line ends normalised only when a read contains ``\\r``); no SSE library is added.

The secret (bearer token from ``token_env`` or ``token_file``, as the HTTP backend reads it via
:mod:`tippingpoint.backends.http.auth`) goes only into the request header; records hold error
kinds, never text from the server or the library.

Usage::

    config = OpenAiClientConfig.create("http://127.0.0.1:8000", model="stub", token_env="KEY")
    async with OpenAiStreamClient(config) as client:
        completion = await client.complete("the sensor reads", max_tokens=32)
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.base import SessionBase
from tippingpoint.backends.generative import StreamCompletion
from tippingpoint.backends.http.auth import (
    AuthConfig,
    AuthKind,
    Endpoint,
    load_secret,
    parse_endpoint,
)
from tippingpoint.backends.options import TypedOptions
from tippingpoint.core.errors import InvalidOptionError, RuntimeNotInstalledError
from tippingpoint.core.types import Availability, BackendDescription, Device, OptionValue

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.client_proto import ResponseHandler

EVENT_STREAM = "text/event-stream"


class ApiKind(str, Enum):
    """Which OpenAI route a request goes to."""

    CHAT = "chat"
    """``/v1/chat/completions`` (text in ``choices[0].delta.content``)."""
    COMPLETIONS = "completions"
    """``/v1/completions`` (text in ``choices[0].text``)."""

    @property
    def route(self) -> str:
        """The path below the endpoint's ``/v1``."""
        return "/chat/completions" if self is ApiKind.CHAT else "/completions"


@dataclass(frozen=True)
class OpenAiClientConfig:
    """Where and how to send (never printed with its secret: ``auth`` hides it)."""

    endpoint: Endpoint
    model: str
    api: ApiKind = ApiKind.CHAT
    auth: AuthConfig = field(default_factory=AuthConfig)
    timeout_s: float = 60.0
    connect_timeout_s: float = 5.0
    max_connections: int = 0
    """0: no limit (each stream holds one connection)."""
    include_usage: bool = True
    ignore_eos: bool = True
    """Send vLLM's ``ignore_eos`` (exactly ``max_tokens`` tokens where the server honours it)."""
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        url: str,
        model: str,
        *,
        api: ApiKind | str = ApiKind.CHAT,
        token_env: str | None = None,
        token_file: str | Path | None = None,
        **kwargs: Any,
    ) -> OpenAiClientConfig:
        """From a URL as users write it (``http://host:port`` or ``.../v1``) and the token
        source, read as the HTTP backend reads it."""
        endpoint = parse_endpoint(url)
        if endpoint.path.endswith("/v1"):
            endpoint = Endpoint(
                endpoint.scheme,
                endpoint.host,
                endpoint.port,
                endpoint.path[:-3],
                endpoint.userinfo,
                endpoint.query,
                endpoint.hidden,
            )
        try:
            kind = ApiKind(api)
        except ValueError:
            raise InvalidOptionError(
                f"unknown api '{api}'", "use api=chat or api=completions"
            ) from None
        return cls(endpoint, model, kind, _auth(endpoint, token_env, token_file), **kwargs)

    @property
    def url(self) -> str:
        """The full request URL (with the endpoint's query: not for printing)."""
        return self.endpoint.with_query(self.endpoint.base_url + "/v1" + self.api.route)

    @property
    def public_url(self) -> str:
        """The request URL as it may be printed (no user info, no query)."""
        return self.endpoint.base_url + "/v1" + self.api.route


def _auth(endpoint: Endpoint, token_env: str | None, token_file: str | Path | None) -> AuthConfig:
    hidden = endpoint.hidden
    basic = endpoint.basic()
    if token_env is None and token_file is None:
        if basic is not None:
            return AuthConfig(AuthKind.BASIC, basic, also_hidden=hidden)
        return AuthConfig(also_hidden=hidden)
    if basic is not None:
        raise InvalidOptionError(
            "the endpoint URL holds user info (HTTP Basic) and a bearer token is set: both "
            "would be the Authorization header",
            "drop the user info from the URL, or token_env/token_file",
        )
    return AuthConfig(AuthKind.BEARER, load_secret(token_env, token_file), also_hidden=hidden)


class _Stream:
    """Incremental SSE parsing of one response: feed reads, get the events' data payloads."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The data fields of every event completed by ``data`` (comments and other fields
        dropped; several ``data:`` lines of one event joined by newlines)."""
        buf = self.buffer + data
        if b"\r" in buf:
            held = buf.endswith(b"\r")  # may be the first half of a CRLF: keep it for later
            buf = (buf[:-1] if held else buf).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            buf += b"\r" if held else b""
        parts = buf.split(b"\n\n")
        self.buffer = parts.pop()
        out: list[bytes] = []
        for event in parts:
            if event.startswith(b"data:") and b"\n" not in event:  # the common case
                out.append(event[5:].strip())
                continue
            lines = [ln[5:].strip() for ln in event.split(b"\n") if ln.startswith(b"data:")]
            if lines:
                out.append(b"\n".join(lines))
        return out


def _stamping_handler() -> type[ResponseHandler]:
    """aiohttp's ``ResponseHandler`` with the arrival clock: ``perf_counter_ns`` first thing in
    ``data_received``, before aiohttp parses the bytes (made on first use: aiohttp is imported
    lazily)."""
    global _STAMPING
    if _STAMPING is None:
        from aiohttp.client_proto import ResponseHandler

        clock = time.perf_counter_ns

        class StampingHandler(ResponseHandler):
            arrived_ns = 0
            """When bytes last reached this connection (0: none since the last read)."""

            def data_received(self, data: bytes) -> None:
                if data:  # aiohttp calls it with b"" itself when the reader resumes reading
                    self.arrived_ns = clock()
                super().data_received(data)

        _STAMPING = StampingHandler
    return _STAMPING


_STAMPING: type[ResponseHandler] | None = None


def _stamping_connector(limit: int) -> aiohttp.TCPConnector:
    """A connector whose connections read the arrival clock (see :func:`_stamping_handler`).
    aiohttp makes each connection's protocol with the connector's ``_factory`` (a partial of
    ``ResponseHandler``, unchanged since aiohttp 3.0); where it is not that, the connector is
    left as it is and chunks are stamped when the reading task gets them."""
    import functools

    import aiohttp
    from aiohttp.client_proto import ResponseHandler

    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0)
    factory = getattr(connector, "_factory", None)
    if isinstance(factory, functools.partial) and factory.func is ResponseHandler:
        connector._factory = functools.partial(
            _stamping_handler(), *factory.args, **factory.keywords
        )
    return connector


class _Arrivals:
    """Reads one response's arrival clock (see :func:`_stamping_handler`). The protocol is
    taken when the response starts: aiohttp lets the connection go at the body's end, before
    the last read is made."""

    __slots__ = ("protocol", "since")

    def __init__(self, resp: aiohttp.ClientResponse, since: int) -> None:
        conn = resp.connection
        self.protocol: Any = conn.protocol if conn is not None else None
        self.since = since

    def take(self) -> int:
        """When the bytes of the read just made had all arrived, and the clock reset for the
        next read; the time now when the connection has no arrival clock or its reading is
        older than ``since`` (the request's start: left over from an earlier response)."""
        arrived: int = getattr(self.protocol, "arrived_ns", 0)
        if arrived:
            self.protocol.arrived_ns = 0
        return arrived if arrived >= self.since else time.perf_counter_ns()


class OpenAiStreamClient:
    """Sends streaming requests on one aiohttp session; use it as an async context manager on
    the loop that drives the load."""

    def __init__(
        self, config: OpenAiClientConfig, count_tokens: Callable[[str], int] | None = None
    ) -> None:
        self.config = config
        self.count_tokens = count_tokens
        """Counts the tokens of a chunk's text (a tokenizer); None: unknown unless the server
        reports per-chunk usage."""
        self.retry_after_s: float | None = None
        """The last ``Retry-After`` a refusal carried, in seconds, when it gave one."""
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OpenAiStreamClient:
        import aiohttp

        cfg = self.config
        connector = _stamping_connector(cfg.max_connections)
        headers = {"Accept": EVENT_STREAM, **cfg.auth.headers()}
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=cfg.timeout_s, sock_connect=cfg.connect_timeout_s),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def body(self, prompt: str | list[int], max_tokens: int) -> bytes:
        """The JSON request body."""
        cfg = self.config
        doc: dict[str, Any] = {"model": cfg.model, "max_tokens": max_tokens, "stream": True}
        if cfg.api is ApiKind.CHAT:
            text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
            doc["messages"] = [{"role": "user", "content": text}]
        else:
            doc["prompt"] = prompt
        if cfg.include_usage:
            doc["stream_options"] = {"include_usage": True}
        if cfg.ignore_eos:
            doc["ignore_eos"] = True
        doc.update(cfg.extra_body)
        return json.dumps(doc, separators=(",", ":")).encode()

    async def complete(
        self,
        prompt: str | list[int],
        max_tokens: int,
        *,
        scheduled_ns: int | None = None,
        body: bytes | None = None,
    ) -> StreamCompletion:
        """Send one streaming request and record it; never raises for a failed request."""
        import aiohttp

        if self._session is None:
            raise RuntimeError("use OpenAiStreamClient as 'async with'")
        data = body if body is not None else self.body(prompt, max_tokens)
        rec = _Record(self.config.api is ApiKind.CHAT, self.count_tokens)
        start = time.perf_counter_ns()
        try:
            async with self._session.post(
                self.config.url, data=data, headers={"Content-Type": "application/json"}
            ) as resp:
                rec.status = resp.status
                if resp.status != 200:
                    if resp.status == 429:
                        self.retry_after_s = _retry_after(resp.headers.get("Retry-After"))
                    await resp.read()
                    rec.error = f"http-{resp.status}"
                elif resp.content_type != EVENT_STREAM:
                    await resp.read()
                    rec.error = "not-streaming"
                else:
                    parser = _Stream()
                    arrivals = _Arrivals(resp, start)
                    async for raw in resp.content.iter_any():
                        now = arrivals.take()
                        for payload in parser.feed(raw):
                            if not rec.event(payload, now):
                                break
                        if rec.done or rec.error is not None:
                            break
                    if rec.error is None and not rec.done:
                        rec.error = "cut"
        except (TimeoutError, asyncio.TimeoutError):
            rec.error = "timeout"
        except aiohttp.ClientConnectorError:
            rec.error = "connect"
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            rec.error = "cut" if rec.status else "connect"
        except (aiohttp.ClientError, OSError):
            rec.error = "cut" if rec.status else "connect"
        end = time.perf_counter_ns()
        return rec.completion(start if scheduled_ns is None else scheduled_ns, start, end)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: not interpreted


class _Record:
    """What one response has said so far."""

    __slots__ = (
        "chat",
        "chunk_ns",
        "chunk_tokens",
        "count",
        "counts_known",
        "done",
        "error",
        "finish",
        "output_server",
        "prompt_server",
        "status",
        "usage_so_far",
    )  # fmt: skip

    def __init__(self, chat: bool, count: Callable[[str], int] | None) -> None:
        self.chat = chat
        self.count = count
        self.chunk_ns: list[int] = []
        self.chunk_tokens: list[int] = []
        self.status = 0
        self.error: str | None = None
        self.done = False
        self.finish: str | None = None
        self.prompt_server: int | None = None
        self.output_server: int | None = None
        self.usage_so_far = 0
        self.counts_known = True

    def event(self, payload: bytes, now: int) -> bool:
        """Take one event's data; False when the stream must stop (done or broken)."""
        if payload == b"[DONE]":
            self.done = True
            return False
        try:
            doc = json.loads(payload)
        except ValueError:
            self.error = "malformed-event"
            return False
        if not isinstance(doc, dict):
            self.error = "malformed-event"
            return False
        if "error" in doc:
            self.error = "stream-error"
            return False
        text = ""
        choices = doc.get("choices")
        if choices:
            choice = choices[0]
            if not isinstance(choice, dict):
                self.error = "malformed-event"
                return False
            if self.chat:
                delta = choice.get("delta")
                piece = delta.get("content") if isinstance(delta, dict) else None
            else:
                piece = choice.get("text")
            if isinstance(piece, str):
                text = piece
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
        elif choices is None and "usage" not in doc:
            self.error = "malformed-event"
            return False
        usage = doc.get("usage")
        delta_tokens = -1
        if isinstance(usage, dict):
            out, prompt = usage.get("completion_tokens"), usage.get("prompt_tokens")
            if isinstance(out, int) and not isinstance(out, bool) and out >= 0:
                delta_tokens = out - self.usage_so_far
                self.usage_so_far = self.output_server = out
            if isinstance(prompt, int) and not isinstance(prompt, bool) and prompt >= 0:
                self.prompt_server = prompt
        if text:
            if delta_tokens > 0:
                tokens = delta_tokens
            elif self.count is not None:
                tokens = self.count(text)
            else:
                tokens = 0
            if tokens <= 0:
                self.counts_known = False
            self.chunk_ns.append(now)
            self.chunk_tokens.append(max(tokens, 0))
        return True

    def completion(self, scheduled: int, start: int, end: int) -> StreamCompletion:
        known = self.counts_known and bool(self.chunk_tokens)
        return StreamCompletion(
            scheduled_ns=scheduled,
            start_ns=start,
            end_ns=end,
            chunk_ns=tuple(self.chunk_ns),
            chunk_tokens=tuple(self.chunk_tokens),
            output_tokens_client=sum(self.chunk_tokens) if known else None,
            prompt_tokens_server=self.prompt_server,
            output_tokens_server=self.output_server,
            error=self.error,
            status=self.status,
            finish_reason=self.finish,
        )


# ---- the backend plugin ---------------------------------------------------------------------


class OpenAiOptions(BaseModel):
    """Options of the ``openai`` backend (recorded in reports; never a secret)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(description="base URL, e.g. http://127.0.0.1:8000 or .../v1", repr=False)
    model_name: str | None = Field(default=None, description="default: the model file's stem")
    api: ApiKind = ApiKind.CHAT
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    max_connections: int = Field(default=0, ge=0, le=65536)
    include_usage: bool = True
    ignore_eos: bool = True
    token_env: str | None = Field(default=None, description="environment variable with the token")
    token_file: str | None = Field(default=None, description="file whose first line is the token")
    tokenizer: str | None = Field(
        default=None,
        description="a tokenizer.json (Hugging Face tokenizers) to count each chunk's tokens on "
        "the client, beside the server's usage",
    )


def tokenizer_counter(path: str) -> Callable[[str], int]:
    """Counts the tokens of a text with the ``tokenizer.json`` at ``path`` (no special tokens);
    a missing library or an unreadable file is a usage error naming the fix."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise RuntimeNotInstalledError(
            "the tokenizer option needs the tokenizers library", "pip install 'tippingpoint[genai]'"
        ) from None
    try:
        tok = Tokenizer.from_file(path)
    except Exception as exc:  # the library raises its own Exception for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidOptionError(
            f"cannot read tokenizer {path}: {first[:200]}", "pass a tokenizer.json file"
        ) from None

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    return count


class OpenAiSession(SessionBase):
    """A configured endpoint: :meth:`client` opens a streaming client on the caller's loop.

    It has no tensors: the single-shot harness cannot time it (``bind`` says so); generative
    scenarios drive :meth:`client`.
    """

    def __init__(
        self,
        config: OpenAiClientConfig,
        description: BackendDescription,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        super().__init__((), (), description)
        self.config = config
        self.count_tokens = count_tokens
        """The client-side token counter (the ``tokenizer`` option), or None."""

    def client(self, count_tokens: Callable[[str], int] | None = None) -> OpenAiStreamClient:
        """A new client (enter it with ``async with`` on the loop that sends); it counts chunk
        tokens with ``count_tokens``, else with the session's tokenizer, if any."""
        return OpenAiStreamClient(self.config, count_tokens or self.count_tokens)

    def bind(self, feeds: Any) -> Any:
        """Not a tensor model: generative scenarios drive :meth:`client` instead."""
        raise InvalidOptionError(
            "the openai backend streams generated tokens and has no tensor inputs",
            "run it with a generative scenario",
        )


class OpenAiBackend(TypedOptions[OpenAiOptions]):
    """Streaming client of an OpenAI-compatible endpoint (the model file is optional)."""

    name = "openai"
    formats: tuple[str, ...] = ()
    network = True
    options_model = OpenAiOptions

    def availability(self) -> Availability:
        """Installed when aiohttp is (the ``http`` extra)."""
        try:
            installed = importlib.util.find_spec("aiohttp") is not None
        except (ImportError, ValueError):
            installed = False
        try:
            ver: str | None = version("aiohttp")
        except PackageNotFoundError:
            ver = None
        return Availability(
            installed=installed,
            runtime="aiohttp",
            version=ver,
            install_hint="pip install 'tippingpoint[http]'",
        )

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> OpenAiSession:
        """A session for the endpoint; nothing is sent until a client sends."""
        opts = self.parse_options(options)
        avail = self.availability()
        if not avail.installed:
            raise RuntimeNotInstalledError(f"{self.name} needs aiohttp", avail.install_hint)
        config = OpenAiClientConfig.create(
            opts.endpoint,
            opts.model_name or Path(model).stem,
            api=opts.api,
            token_env=opts.token_env,
            token_file=opts.token_file,
            timeout_s=opts.timeout_s,
            connect_timeout_s=opts.connect_timeout_s,
            max_connections=opts.max_connections,
            include_usage=opts.include_usage,
            ignore_eos=opts.ignore_eos,
        )
        shown: dict[str, OptionValue] = {
            k: v.value if isinstance(v, Enum) else v
            for k, v in opts.model_dump().items()
            if k != "endpoint"
        }
        shown["endpoint"] = config.endpoint.base_url
        description = BackendDescription(
            name=self.name,
            runtime="aiohttp",
            runtime_version=avail.version or "unknown",
            device=Device.REMOTE,
            options=shown,
        )
        counter = tokenizer_counter(opts.tokenizer) if opts.tokenizer is not None else None
        return OpenAiSession(config, description, counter)
