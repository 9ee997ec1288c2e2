"""Token-level metrics, worked by hand on five requests (times in ms below, ns in the records).

    req  scheduled  sent  chunks (tokens)              end  prompt  output s/c  outcome
    A    0          0     50 60 70 80 90 (1 each)      90   10      5/5         ok
    B    100        102   160 180 200 (2 each)         200  20      6/6         ok
    C    200        200   230 (1)                      230  5       -/1         ok
    D    300        300   -                            301  -       -/-         http-429
    E    400        400   450 470 (1 each)             500  8       -/2         cut

From the schedule: TTFT A 50, B 60, C 30; E2EL 90, 100, 30; TPOT A (90-50)/4 = 10,
B (100-60)/5 = 8, C undefined (one token). Chunk gaps (successes only): A 10 x4, B 20 x2.
Duration 0 -> 500 ms: 12 output tokens -> 24 tokens/s; 12 + 35 prompt -> 94 tokens/s;
3 successes -> 6 requests/s. Tokens per chunk: 12 tokens / 9 chunks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tippingpoint.backends.generative import StreamCompletion, request_timings
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.token_metrics import (
    RequestTimings,
    Slo,
    chunk_gaps_ns,
    e2el_ns,
    good_requests,
    parse_slo,
    summarize,
    tpot_ns,
    ttft_ns,
)

MS = 1_000_000


def _c(
    scheduled: int,
    start: int,
    chunks: tuple[int, ...],
    end: int,
    tokens: tuple[int, ...] = (),
    *,
    prompt: int | None = None,
    server: int | None = None,
    client: int | None = None,
    error: str | None = None,
) -> StreamCompletion:
    return StreamCompletion(
        scheduled_ns=scheduled * MS,
        start_ns=start * MS,
        end_ns=end * MS,
        chunk_ns=tuple(c * MS for c in chunks),
        chunk_tokens=tokens,
        prompt_tokens_server=prompt,
        output_tokens_server=server,
        output_tokens_client=client,
        error=error,
    )


RUN = [
    _c(0, 0, (50, 60, 70, 80, 90), 90, (1,) * 5, prompt=10, server=5, client=5),
    _c(100, 102, (160, 180, 200), 200, (2, 2, 2), prompt=20, server=6, client=6),
    _c(200, 200, (230,), 230, (1,), prompt=5, client=1),
    _c(300, 300, (), 301, error="http-429"),
    _c(400, 400, (450, 470), 500, (1, 1), prompt=8, client=2, error="cut"),
]


@pytest.fixture()
def timings() -> RequestTimings:
    return request_timings(RUN)


def test_per_request_definitions(timings: RequestTimings) -> None:
    first = timings.first_token_ns
    assert list(first // MS) == [50, 160, 230, -1, 450]
    ttft = ttft_ns(first, timings.scheduled_ns)
    e2el = e2el_ns(timings.end_ns, timings.scheduled_ns)
    assert list(ttft[:3] // MS) == [50, 60, 30]
    assert list(e2el[:3] // MS) == [90, 100, 30]
    tpot = tpot_ns(e2el, ttft, timings.output_tokens)
    assert tpot[0] == 10 * MS and tpot[1] == 8 * MS
    assert math.isnan(tpot[2]) and math.isnan(tpot[3])  # one token; no count
    # from the send time instead, B's TTFT and E2EL both lose the 2 ms, its TPOT does not move
    sent = tpot_ns(
        e2el_ns(timings.end_ns, timings.start_ns),
        ttft_ns(first, timings.start_ns),
        timings.output_tokens,
    )
    assert sent[1] == 8 * MS
    gaps = chunk_gaps_ns(timings.chunk_ns, timings.chunk_offsets, timings.ok)
    assert sorted(gaps // MS) == [10, 10, 10, 10, 20, 20]
    assert list(timings.ok) == [True, True, True, False, False]


def test_run_summary_hand_worked(timings: RequestTimings) -> None:
    m = summarize(timings)
    assert (m.requests, m.succeeded) == (5, 3)
    assert m.failed == {"cut": 1, "http-429": 1}
    assert m.duration_s == pytest.approx(0.5)
    assert m.output_tokens == 12 and m.prompt_tokens == 35
    assert m.output_tokens_per_s == pytest.approx(24.0)
    assert m.total_tokens_per_s == pytest.approx(94.0)
    assert m.requests_per_s == pytest.approx(6.0)
    assert m.ttft is not None and m.ttft.mean == pytest.approx(140 / 3)
    assert (m.ttft.min, m.ttft.p50, m.ttft.max) == (30.0, 50.0, 60.0)
    assert m.tpot is not None and m.tpot.count == 2 and m.tpot.mean == pytest.approx(9.0)
    assert m.e2el is not None and m.e2el.p50 == 90.0
    assert m.chunk_gap is not None and m.chunk_gap.count == 6
    assert m.chunk_gap.mean == pytest.approx(80 / 6)
    # B's chunks carry 2 tokens: its gaps are 20 ms while its TPOT is 8 ms (40 ms over the 5
    # tokens after the first, one of which came with the first): chunks are not tokens, flagged
    assert m.multi_token_chunks and m.tokens_per_chunk == pytest.approx(12 / 9)
    assert m.token_counts.server_total == 11 and m.token_counts.client_total == 12
    assert (m.token_counts.compared, m.token_counts.differing) == (2, 0)
    assert m.origin == "scheduled send time" and m.goodput is None


def test_goodput_against_an_slo(timings: RequestTimings) -> None:
    m = summarize(timings, slo=parse_slo("ttft=55,tpot=9"))
    # A fails TPOT (10 > 9), B fails TTFT (60 > 55), C has one token and meets TTFT: 1 good
    assert m.goodput is not None and m.goodput.good == 1
    assert m.goodput.requests_per_s == pytest.approx(2.0)
    assert m.goodput.good_fraction == pytest.approx(1 / 5)  # failures count as sent
    # a bound equal to the figure is met
    tied = summarize(timings, slo=Slo(tpot_ms=10))
    assert tied.goodput is not None and tied.goodput.good == 3
    assert tied.goodput.slo.describe() == "tpot<=10ms"
    assert summarize(timings, slo=Slo(e2el_ms=95)).goodput.good == 2  # type: ignore[union-attr]


def test_goodput_falls_as_the_token_time_rises_past_the_slo() -> None:
    """Twenty 32-token streams at 50 ms TTFT; the inter-token time sweeps past a 20 ms TPOT
    bound and the good fraction falls from 1 to 0 exactly there."""
    slo = Slo(ttft_ms=100, tpot_ms=20)
    fractions = []
    for itl in (5, 10, 20, 21, 40):
        run = [
            _c(0, 0, tuple(50 + k * itl for k in range(32)), 50 + 31 * itl, (1,) * 32, client=32)
            for _ in range(20)
        ]
        m = summarize(request_timings(run), slo=slo)
        assert m.tpot is not None and m.tpot.mean == pytest.approx(itl)
        assert m.goodput is not None
        fractions.append(m.goodput.good_fraction)
    assert fractions == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_one_token_per_chunk_tpot_is_the_mean_gap() -> None:
    rng = np.random.default_rng(3)
    arrivals = 40 + np.cumsum(rng.integers(1, 30, size=17))
    t = request_timings([_c(0, 0, tuple(int(a) for a in arrivals), int(arrivals[-1]), client=17)])
    m = summarize(t)
    assert m.tpot is not None and m.chunk_gap is not None
    assert m.tpot.mean == pytest.approx(m.chunk_gap.mean)
    assert not m.multi_token_chunks


def test_unknown_counts_are_not_invented() -> None:
    """A stream whose tokens nobody counted has a TTFT and an E2EL but no TPOT, no tokens,
    and cannot be shown to meet a TPOT bound."""
    t = request_timings([_c(0, 0, (30, 40, 50), 50)])
    assert t.output_tokens[0] == -1 and t.chunk_tokens.tolist() == [0, 0, 0]
    m = summarize(t, slo=Slo(tpot_ms=1000))
    assert m.ttft is not None and m.tpot is None and m.output_tokens == 0
    assert m.tokens_per_chunk is None and not m.multi_token_chunks
    assert m.token_counts.server_total is None and m.token_counts.client_total is None
    assert m.goodput is not None and m.goodput.good == 0
    assert summarize(t, slo=Slo(ttft_ms=30)).goodput.good == 1  # type: ignore[union-attr]


def test_server_and_client_counts_compared() -> None:
    t = request_timings(
        [
            _c(0, 0, (10, 20), 20, prompt=3, server=3, client=2),
            _c(0, 0, (10, 20), 20, prompt=3, server=2, client=2),
        ]
    )
    counts = summarize(t).token_counts
    assert (counts.compared, counts.differing, counts.difference) == (2, 1, 1)
    assert counts.server_total == 5 and counts.client_total == 4


def test_good_requests_vectorised() -> None:
    good = good_requests(
        ok=np.array([True, True, False, True]),
        ttft=np.array([10, 30, 10, 10]) * MS,
        tpot=np.array([5.0 * MS, 5.0 * MS, 5.0 * MS, np.nan]),
        e2el=np.array([100, 100, 100, 10]) * MS,
        output_tokens=np.array([20, 20, 20, 1]),
        slo=Slo(ttft_ms=20, tpot_ms=5),
    )
    assert good.tolist() == [True, False, False, True]


@pytest.mark.parametrize(
    "text", ["ttft", "foo=1", "ttft=-1", "ttft=abc", "ttft=1,ttft=2", "ttft=nan", "", "tpot=0"]
)
def test_bad_slo_is_a_usage_error(text: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        parse_slo(text)
    assert info.value.exit_code == 2 and info.value.hint


def test_slo_parsing() -> None:
    assert parse_slo("ttft=200, TPOT=50") == Slo(ttft_ms=200, tpot_ms=50)
    assert parse_slo("e2el=1500.5").describe() == "e2el<=1500.5ms"


def test_mismatched_chunk_counts_refused() -> None:
    with pytest.raises(ValueError, match="2 chunks but 1"):
        request_timings([_c(0, 0, (1, 2), 2, (1,))])
