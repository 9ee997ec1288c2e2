"""Token-level metrics of generative runs: definitions as pure functions over numpy arrays.

Every generative path (the in-process token loop, an OpenAI-compatible streaming client)
records each request as a ``StreamCompletion``
(:mod:`tippingpoint.backends.generative`); :func:`request_timings` there turns a run's records
into the columnar :class:`RequestTimings` these functions read. Times are integer nanoseconds
of one clock; ``-1`` marks "not known" in the integer columns, and a count is never invented.

The definitions (the README's metrics section states the same, with the names other tools use):

* **origin** of a request: its scheduled send time (open loop), which is its actual send time
  in a closed loop or when the load generator is on time; measuring from the schedule keeps a
  late sender's queueing in the figures (no coordinated omission).
* **TTFT**, time to first token = first chunk received - origin.
* **E2EL**, end-to-end latency = last chunk (or end of stream) received - origin.
* **TPOT**, time per output token (vLLM's definition) = (E2EL - TTFT) / (output tokens - 1),
  for requests with at least 2 output tokens; the first token is excluded (it is TTFT's).
* **ITL / chunk gap**: each gap between consecutive chunks of one request, pooled over
  requests (vLLM's ITL). A chunk is not a token: with k tokens per chunk the gaps are about k x
  TPOT, so runs whose chunks carry several tokens are flagged (from each chunk's count, or,
  where chunks are not counted, from a request reporting more output tokens than chunks).
* **output tokens/s** = output tokens of successful requests / duration; **total tokens/s**
  adds their prompt tokens; **requests/s** = successful requests / duration.
* **goodput** = successful requests meeting every given SLO (``metric <= bound``; a request
  with one output token meets any TPOT bound, as vLLM) / duration; the **good fraction** divides
  their count by every request sent, failures included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.schema import Goodput, LatencyStats, Slo, TokenCounts, TokenMetrics
from tippingpoint.core.stats import latency_stats

UNKNOWN = -1
"""Marks a time or count that was not observed."""


@dataclass(frozen=True)
class RequestTimings:
    """One run's requests as columns (one row per request), plus every chunk, flattened.

    Chunks of request ``i`` are ``chunk_ns[chunk_offsets[i]:chunk_offsets[i + 1]]`` with
    ``chunk_tokens`` alongside (0 where the tokens of a chunk are unknown).
    """

    scheduled_ns: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    output_tokens: np.ndarray
    """The count the metrics use: the server's, else the client's, else -1."""
    prompt_tokens: np.ndarray
    output_tokens_server: np.ndarray
    output_tokens_client: np.ndarray
    ok: np.ndarray
    """bool: a success with at least one chunk."""
    errors: tuple[str | None, ...]
    chunk_ns: np.ndarray
    chunk_tokens: np.ndarray
    chunk_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.start_ns)

    @property
    def first_token_ns(self) -> np.ndarray:
        """When each request's first chunk arrived; -1 for a request with none."""
        o = self.chunk_offsets
        has = o[1:] > o[:-1]
        out = np.full(len(self), UNKNOWN, dtype=np.int64)
        out[has] = self.chunk_ns[o[:-1][has]]
        return out

    @classmethod
    def from_columns(
        cls,
        *,
        scheduled_ns: Sequence[int],
        start_ns: Sequence[int],
        end_ns: Sequence[int],
        chunks: Sequence[Sequence[int]],
        chunk_tokens: Sequence[Sequence[int]],
        output_tokens_server: Sequence[int | None],
        output_tokens_client: Sequence[int | None],
        prompt_tokens: Sequence[int | None],
        errors: Sequence[str | None],
    ) -> RequestTimings:
        """Build from per-request values (None for an unknown count)."""

        def ints(values: Sequence[int | None]) -> np.ndarray:
            return np.asarray([UNKNOWN if v is None else v for v in values], dtype=np.int64)

        server, client = ints(output_tokens_server), ints(output_tokens_client)
        lengths = [len(c) for c in chunks]
        for i, (c, t) in enumerate(zip(chunks, chunk_tokens, strict=True)):
            if t and len(t) != len(c):
                raise ValueError(f"request {i}: {len(c)} chunks but {len(t)} chunk token counts")
        flat_tokens = [
            x for c, t in zip(chunks, chunk_tokens, strict=True) for x in (t or [0] * len(c))
        ]
        return cls(
            scheduled_ns=np.asarray(scheduled_ns, dtype=np.int64),
            start_ns=np.asarray(start_ns, dtype=np.int64),
            end_ns=np.asarray(end_ns, dtype=np.int64),
            output_tokens=np.where(server != UNKNOWN, server, client),
            prompt_tokens=ints(prompt_tokens),
            output_tokens_server=server,
            output_tokens_client=client,
            ok=np.asarray([e is None and n > 0 for e, n in zip(errors, lengths, strict=True)]),
            errors=tuple(errors),
            chunk_ns=np.asarray([x for c in chunks for x in c], dtype=np.int64),
            chunk_tokens=np.asarray(flat_tokens, dtype=np.int64),
            chunk_offsets=np.cumsum([0, *lengths], dtype=np.int64),
        )


# ---- per-request definitions (vectorised; ns in, ns out) ----------------------------------


def ttft_ns(first_token_ns: np.ndarray, origin_ns: np.ndarray) -> np.ndarray:
    """Time to first token: first chunk received - origin (scheduled or sent)."""
    return np.asarray(first_token_ns, dtype=np.int64) - np.asarray(origin_ns, dtype=np.int64)


def e2el_ns(end_ns: np.ndarray, origin_ns: np.ndarray) -> np.ndarray:
    """End-to-end latency: end of the stream - origin."""
    return np.asarray(end_ns, dtype=np.int64) - np.asarray(origin_ns, dtype=np.int64)


def tpot_ns(e2el: np.ndarray, ttft: np.ndarray, output_tokens: np.ndarray) -> np.ndarray:
    """Time per output token, vLLM's: (E2EL - TTFT) / (output tokens - 1); NaN where fewer
    than 2 output tokens (or an unknown count) leave it undefined."""
    n = np.asarray(output_tokens, dtype=np.int64)
    span = (np.asarray(e2el, dtype=np.int64) - np.asarray(ttft, dtype=np.int64)).astype(float)
    out = np.full(len(n), np.nan)
    many = n >= 2
    out[many] = span[many] / (n[many] - 1)
    return out


def chunk_gaps_ns(chunk_ns: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Every gap between consecutive chunks of the requests selected by the bool ``rows``,
    pooled (vLLM's ITL; a request with one chunk has none)."""
    gaps = np.diff(np.asarray(chunk_ns, dtype=np.int64))
    # a gap at index j joins chunks j and j+1: keep it when both belong to one selected request
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    if len(owner) < 2:
        return np.zeros(0, dtype=np.int64)
    keep: np.ndarray = (owner[1:] == owner[:-1]) & np.asarray(rows, dtype=bool)[owner[1:]]
    selected: np.ndarray = gaps[keep]
    return selected


def per_second(count: float, duration_ns: int) -> float:
    """``count`` per second over ``duration_ns``."""
    if duration_ns <= 0:
        raise ValueError("the duration must be positive")
    return count / (duration_ns / 1e9)


# ---- service-level objectives and goodput ---------------------------------------------------


SLO_KEYS = ("ttft", "tpot", "e2el")


def parse_slo(text: str) -> Slo:
    """``ttft=MS,tpot=MS,e2el=MS`` (any subset, at least one) into an :class:`Slo`."""
    bounds: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        key = key.strip().lower()
        if not sep or key not in SLO_KEYS:
            raise InvalidOptionError(
                f"invalid --slo part '{part.strip()}'",
                "write --slo ttft=MS,tpot=MS,e2el=MS (any of the three, milliseconds)",
            )
        if key in bounds:
            raise InvalidOptionError(f"--slo gives {key} twice", "give each bound once")
        try:
            ms = float(value)
        except ValueError:
            ms = float("nan")
        if not np.isfinite(ms) or ms <= 0:
            raise InvalidOptionError(
                f"--slo {key}={value.strip()} is not a positive number of milliseconds",
                "write e.g. --slo ttft=200,tpot=50",
            )
        bounds[key] = ms
    return Slo(ttft_ms=bounds.get("ttft"), tpot_ms=bounds.get("tpot"), e2el_ms=bounds.get("e2el"))


def good_requests(
    ok: np.ndarray,
    ttft: np.ndarray,
    tpot: np.ndarray,
    e2el: np.ndarray,
    output_tokens: np.ndarray,
    slo: Slo,
) -> np.ndarray:
    """bool per request: a success meeting every bound of ``slo`` (``<=``). A request with one
    output token meets any TPOT bound (vLLM counts its TPOT as 0); one whose output count is
    unknown cannot be shown to meet a TPOT bound and is not good."""
    good: np.ndarray = np.asarray(ok, dtype=bool).copy()
    if slo.ttft_ms is not None:
        good &= ttft <= slo.ttft_ms * 1e6
    if slo.e2el_ms is not None:
        good &= e2el <= slo.e2el_ms * 1e6
    if slo.tpot_ms is not None:
        n = np.asarray(output_tokens)
        meets = np.nan_to_num(tpot, nan=np.inf) <= slo.tpot_ms * 1e6
        good &= (n == 1) | meets
    return good


# ---- per-run summary --------------------------------------------------------------------------


def _stats(values: np.ndarray, with_ci: bool) -> LatencyStats | None:
    values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    return latency_stats(values, with_ci=with_ci) if len(values) else None


def _token_counts(t: RequestTimings) -> TokenCounts:
    s, c = t.output_tokens_server[t.ok], t.output_tokens_client[t.ok]
    both = (s != UNKNOWN) & (c != UNKNOWN)
    return TokenCounts(
        server_total=int(s[s != UNKNOWN].sum()) if np.any(s != UNKNOWN) else None,
        client_total=int(c[c != UNKNOWN].sum()) if np.any(c != UNKNOWN) else None,
        compared=int(both.sum()),
        differing=int((s[both] != c[both]).sum()),
        difference=int((s[both] - c[both]).sum()),
    )


def summarize(
    t: RequestTimings,
    *,
    duration_ns: int | None = None,
    slo: Slo | None = None,
    from_schedule: bool = True,
    with_ci: bool = False,
) -> TokenMetrics:
    """A run's figures. ``duration_ns`` defaults to first scheduled send -> last end;
    latencies are measured from each request's schedule (``from_schedule``) or its send."""
    if len(t) == 0:
        raise ValueError("no requests")
    origin = t.scheduled_ns if from_schedule else t.start_ns
    if duration_ns is None:
        duration_ns = int(t.end_ns.max() - min(t.scheduled_ns.min(), t.start_ns.min()))
    ok = t.ok
    ttft = ttft_ns(t.first_token_ns, origin)
    e2el = e2el_ns(t.end_ns, origin)
    tpot = tpot_ns(e2el, ttft, t.output_tokens)
    gaps = chunk_gaps_ns(t.chunk_ns, t.chunk_offsets, ok)
    out = t.output_tokens[ok]
    known_out = out[out != UNKNOWN]
    prompt = t.prompt_tokens[ok]
    prompt_total = int(prompt.sum()) if len(prompt) and np.all(prompt != UNKNOWN) else None
    owner_ok = np.repeat(ok, np.diff(t.chunk_offsets))
    known_chunks = t.chunk_tokens[owner_ok & (t.chunk_tokens > 0)]
    failed = Counter(e or "no-output" for e, good in zip(t.errors, ok, strict=True) if not good)
    goodput = None
    if slo is not None:
        good = good_requests(ok, ttft, tpot, e2el, t.output_tokens, slo)
        goodput = Goodput(
            slo=slo,
            good=int(good.sum()),
            requests_per_s=per_second(int(good.sum()), duration_ns),
            good_fraction=float(good.mean()),
        )
    return TokenMetrics(
        origin="scheduled send time" if from_schedule else "send time",
        requests=len(t),
        succeeded=int(ok.sum()),
        failed=dict(sorted(failed.items())),
        duration_s=duration_ns / 1e9,
        ttft=_stats(ttft[ok], with_ci),
        tpot=_stats(tpot[ok], with_ci),
        e2el=_stats(e2el[ok], with_ci),
        chunk_gap=_stats(gaps, with_ci),
        output_tokens=int(known_out.sum()),
        prompt_tokens=prompt_total,
        output_tokens_per_s=per_second(int(known_out.sum()), duration_ns),
        total_tokens_per_s=None
        if prompt_total is None
        else per_second(prompt_total + int(known_out.sum()), duration_ns),
        requests_per_s=per_second(int(ok.sum()), duration_ns),
        tokens_per_chunk=_tokens_per_chunk(t, known_chunks),
        multi_token_chunks=bool(np.any(known_chunks > 1)) or _more_tokens_than_chunks(t),
        token_counts=_token_counts(t),
        goodput=goodput,
    )


def _counted_without_chunk_counts(t: RequestTimings) -> tuple[np.ndarray, np.ndarray]:
    """(output tokens, chunks) of the successful requests whose output count is known but
    whose chunks' counts are not (an SSE stream with usage only at its end)."""
    n_chunks = np.diff(t.chunk_offsets)
    owner = np.repeat(np.arange(len(t)), n_chunks)
    unknown = np.zeros(len(t), dtype=bool)
    np.logical_or.at(unknown, owner, t.chunk_tokens == 0)
    rows = t.ok & unknown & (t.output_tokens != UNKNOWN)
    return t.output_tokens[rows], n_chunks[rows]


def _more_tokens_than_chunks(t: RequestTimings) -> bool:
    """Some request reported more output tokens than it had chunks: a chunk carried several."""
    tokens, chunks = _counted_without_chunk_counts(t)
    return bool(np.any(tokens > chunks))


def _tokens_per_chunk(t: RequestTimings, known_chunks: np.ndarray) -> float | None:
    """The mean over chunks with a known count; else output tokens / chunks of the requests
    whose output count is known (the counts reported, divided; none invented)."""
    if len(known_chunks):
        return float(known_chunks.mean())
    tokens, chunks = _counted_without_chunk_counts(t)
    return float(tokens.sum() / chunks.sum()) if chunks.sum() else None


def joules_per_token(energy_j: float, output_tokens: int) -> float | None:
    """Energy over the timed window / output tokens completed in it; None without tokens."""
    return energy_j / output_tokens if output_tokens > 0 else None
