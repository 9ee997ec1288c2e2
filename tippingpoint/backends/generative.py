"""The generative-session interface, and the one per-request record every generative path fills.

A generative request produces its output as a *stream*: the first token arrives after the
prompt has been processed, the rest one step at a time, delivered in *chunks* (a chunk is one
event of a stream: an in-process token loop delivers one token per chunk; a server-sent-events
stream may carry several tokens per event). Every generative path, an in-process runtime
(:mod:`tippingpoint.backends.onnxruntime_genai`) or an OpenAI-compatible streaming client, records
each request as one :class:`StreamCompletion`: ``perf_counter_ns`` readings of when it was
scheduled, sent, when each chunk arrived and when it ended, how many tokens each chunk carried,
and the token counts each side reported. The metrics (time to first token, time per output token,
chunk gaps, goodput; :mod:`tippingpoint.core.token_metrics`) are computed from these records
only, so in-process and network runs are measured the same way.

Usage::

    with GenAiBackend().load(config_path, {"threads": 1}) as session:
        assert isinstance(session, GenerativeSession)
        gen = session.generate("the sensor reads", max_new_tokens=32)
        gen.completion.ttft_ns, gen.completion.output_tokens, gen.text
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from tippingpoint.backends.base import Session, SessionBase
from tippingpoint.core.errors import InvalidShapeError
from tippingpoint.core.token_metrics import RequestTimings
from tippingpoint.core.types import BackendDescription, TensorSpec


@dataclass(frozen=True, slots=True)
class StreamCompletion:
    """One generative request, as the client measured it.

    All times are ``time.perf_counter_ns`` readings of the measuring process. ``chunk_ns[i]`` is
    when chunk ``i`` (one that carried output; keep-alives and the final usage-only event are
    not chunks) was received, ``chunk_tokens[i]`` how many output tokens it carried, or 0
    where that is unknown (an SSE event whose text the client cannot tokenize, with no
    per-chunk usage). Token counts are ``None`` when that side did not report them: a count is
    never invented.
    """

    scheduled_ns: int
    """When the load generator meant to send it (open loop); equal to ``start_ns`` in a
    closed loop."""
    start_ns: int
    """Right before the request was handed to the runtime or the network client."""
    end_ns: int
    """Right after the last chunk (or the error) was received."""
    chunk_ns: tuple[int, ...] = ()
    chunk_tokens: tuple[int, ...] = ()
    prompt_tokens_client: int | None = None
    """Prompt tokens as the client counted them (its tokenizer), if it did."""
    output_tokens_client: int | None = None
    """Output tokens as the client counted them: the in-process token loop's own count, or the
    sum of ``chunk_tokens`` when every chunk's count is known."""
    prompt_tokens_server: int | None = None
    """``usage.prompt_tokens`` of a server's response, or the runtime's count in process."""
    output_tokens_server: int | None = None
    """``usage.completion_tokens`` of a server's response, or the runtime's count in process."""
    error: str | None = None
    """None for a success, else the failure's kind: ``timeout``, ``http-429``, ``cut``
    (stream ended without its end marker), ``malformed-event``, ``not-streaming``, ..."""
    status: int = 0
    """HTTP status, 0 in process or when no response arrived."""
    finish_reason: str | None = None
    """``length``, ``stop``, ... as reported, when reported."""

    @property
    def first_token_ns(self) -> int | None:
        """When the first chunk arrived, or None when none did."""
        return self.chunk_ns[0] if self.chunk_ns else None

    @property
    def output_tokens(self) -> int | None:
        """The output token count the metrics use: the server's when reported, else the
        client's, else None."""
        if self.output_tokens_server is not None:
            return self.output_tokens_server
        return self.output_tokens_client

    @property
    def ok(self) -> bool:
        """A success with at least one chunk."""
        return self.error is None and bool(self.chunk_ns)


@dataclass(frozen=True, slots=True)
class Generation:
    """What :meth:`GenerativeSession.generate` returns: the tokens, their text, their timing."""

    prompt_tokens: tuple[int, ...]
    tokens: tuple[int, ...]
    """The generated token ids, in order (the prompt excluded)."""
    completion: StreamCompletion
    text: str | None = field(default=None)
    """The decoded output, when asked for (decoding is outside the timed window)."""


@dataclass(frozen=True, slots=True)
class GenerativeInfo:
    """What a generative session says of its model."""

    vocab_size: int
    context_length: int
    """The most tokens, prompt and output together, one request may hold."""
    eos_token_id: int
    model_type: str
    """The architecture as the runtime names it, e.g. ``llama``."""


@runtime_checkable
class GenerativeSession(Session, Protocol):
    """A session that generates token streams and times each token itself.

    It is a :class:`~tippingpoint.backends.base.Session` too: ``bind`` takes one ``int32``
    array of prompt token ids and returns a call that generates the session's default number
    of new tokens, so the single-shot harness can time whole generations as it times any
    inference.
    """

    def generate(
        self,
        prompt: Sequence[int] | str,
        max_new_tokens: int,
        *,
        ignore_eos: bool = True,
        scheduled_ns: int | None = None,
        decode: bool = False,
        on_token: Callable[[int], None] | None = None,
    ) -> Generation:
        """Generate up to ``max_new_tokens`` greedily after ``prompt`` (token ids, or text the
        session tokenizes inside the timed window), recording each token's arrival.

        ``on_token`` is called with each token id right after its arrival is recorded (a
        streaming server forwards tokens with it; its cost falls in the next token's time, so
        leave it None when measuring); an exception it raises stops the generation.

        ``ignore_eos`` (the benchmarking default, as vLLM's ``--ignore-eos``) makes exactly
        ``max_new_tokens`` tokens; without it the stream may end early at end-of-sequence.
        ``scheduled_ns`` is the open loop's intended send time, kept in the record. A prompt
        that does not fit the context is an ``InvalidShapeError``.
        """
        ...

    def tokenize(self, text: str) -> tuple[int, ...]:
        """The model's token ids for ``text``."""
        ...

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        ...

    @property
    def generative_info(self) -> GenerativeInfo:
        """Vocabulary, context length, end-of-sequence id, architecture."""
        ...


class TokenLoopSession(SessionBase):
    """What an in-process token loop (onnxruntime-genai, llama.cpp) shares: the session's
    tensors, the context check, ``bind`` for the single-shot harness, and the record a
    finished loop becomes (one token per chunk, both sides' counts the runtime's own).
    Subclasses implement ``generate``, ``tokenize`` and ``detokenize``."""

    def __init__(
        self, info: GenerativeInfo, max_new_tokens: int, description: BackendDescription
    ) -> None:
        super().__init__(
            [TensorSpec(name="input_ids", shape=(1, None), dtype="int32")],
            [TensorSpec(name="output_ids", shape=(1, None), dtype="int32")],
            description,
        )
        self._info = info
        self._max_new_tokens = max_new_tokens

    @property
    def generative_info(self) -> GenerativeInfo:
        """Vocabulary, context length, end-of-sequence id, architecture."""
        return self._info

    def generate(
        self,
        prompt: Sequence[int] | str,
        max_new_tokens: int,
        *,
        ignore_eos: bool = True,
        scheduled_ns: int | None = None,
        decode: bool = False,
        on_token: Callable[[int], None] | None = None,
    ) -> Generation:
        """See :class:`GenerativeSession`."""
        raise NotImplementedError

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens``."""
        raise NotImplementedError

    def _check_fits(self, prompt_len: int, max_new_tokens: int) -> None:
        if prompt_len < 1:
            raise InvalidShapeError("the prompt is empty", "give at least one prompt token")
        if max_new_tokens < 1:
            raise InvalidShapeError(
                f"max_new_tokens is {max_new_tokens}", "ask for at least one new token"
            )
        limit = self._info.context_length
        if prompt_len + max_new_tokens > limit:
            raise InvalidShapeError(
                f"{prompt_len} prompt tokens + {max_new_tokens} new tokens exceed the model's "
                f"context of {limit}",
                "shorten the prompt or ask for fewer new tokens",
            )

    def _finished(
        self,
        ids: tuple[int, ...],
        tokens: list[int],
        stamps: list[int],
        start: int,
        *,
        ignore_eos: bool,
        scheduled_ns: int | None,
        decode: bool,
    ) -> Generation:
        """The loop's record: each token a chunk at its stamp, the runtime's counts on both
        sides, ``stop`` when it ended at end-of-sequence (decoding after the timed window)."""
        end = stamps[-1] if stamps else time.perf_counter_ns()
        stopped = bool(tokens) and not ignore_eos and tokens[-1] == self._info.eos_token_id
        completion = StreamCompletion(
            scheduled_ns=start if scheduled_ns is None else scheduled_ns,
            start_ns=start,
            end_ns=end,
            chunk_ns=tuple(stamps),
            chunk_tokens=(1,) * len(stamps),
            prompt_tokens_client=len(ids),
            output_tokens_client=len(tokens),
            prompt_tokens_server=len(ids),
            output_tokens_server=len(tokens),
            finish_reason="stop" if stopped else "length",
        )
        text = self.detokenize(tokens) if decode else None
        return Generation(prompt_tokens=ids, tokens=tuple(tokens), completion=completion, text=text)

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """One call generates ``max_new_tokens`` (an option) after the prompt ``feeds[0]``
        (``int32`` token ids, shape ``(1, n)``) and returns them as ``(1, max_new_tokens)``."""
        if len(feeds) != 1:
            raise ValueError(f"expected 1 input (prompt token ids), got {len(feeds)}")
        ids = tuple(int(t) for t in np.asarray(feeds[0]).reshape(-1))
        self._check_fits(len(ids), self._max_new_tokens)
        n = self._max_new_tokens

        def call() -> Sequence[np.ndarray]:
            gen = self.generate(ids, n)
            return [np.asarray(gen.tokens, dtype=np.int32).reshape(1, -1)]

        return call


def request_timings(completions: Sequence[StreamCompletion]) -> RequestTimings:
    """A run's records as the columns :mod:`tippingpoint.core.token_metrics` reads."""
    return RequestTimings.from_columns(
        scheduled_ns=[c.scheduled_ns for c in completions],
        start_ns=[c.start_ns for c in completions],
        end_ns=[c.end_ns for c in completions],
        chunks=[c.chunk_ns for c in completions],
        chunk_tokens=[c.chunk_tokens for c in completions],
        output_tokens_server=[c.output_tokens_server for c in completions],
        output_tokens_client=[c.output_tokens_client for c in completions],
        prompt_tokens=[
            c.prompt_tokens_server if c.prompt_tokens_server is not None else c.prompt_tokens_client
            for c in completions
        ],
        errors=[c.error for c in completions],
    )
