"""The generative peak-rate search (``run --find-peak``) against a server with a known capacity
knee: ``tippingpoint serve --llm-stub ...,slots=N`` answers N streams at once and queues the
rest first come, first served, the wait counted in their time to first token.

The knee. A request holds a slot ``H = ttft + (tokens - 1) * itl`` (0.2 s here), so N slots
serve ``C = N / H`` requests/s (4 / 0.2 = 20/s). Sent at a constant rate r below C, every
request finds a free slot: its TTFT is the stub's 50 ms plus the client's and loop's delays,
well inside the 150 ms bound. Past C the queue grows: request j waits about
``floor(j / N) * (H - N / r)``, so a probe of duration D sends about ``r * D`` requests and 90%
of them meet a bound that leaves ``S = bound - ttft`` of slack only while
``(0.9 r D - N - 1) (1/C - 1/r) <= S``, which holds up to ``C (1 + S / (0.9 D - (N + 1) / C))``
(21.8/s here). A rate just past capacity queues too slowly for a finite probe to see, so this
edge, not C, is the search's true upper limit; no delay on a loaded machine can move a probe
above it to a pass (sleeps are never early and every delay only adds to TTFT).

The band. The search doubles from 6/s (0.3 C: 6, 12, 24), then bisects between its highest
passing and lowest failing rates until they are 5% apart. Noise-free it ends within 5% below
the first failing rate, itself above C times H / (H + the stub's few-millisecond overshoot),
so about 0.9 C or more; the lower edge 0.75 C leaves room for one probe below capacity failing
on a loaded machine (a failure at the first bisection probe, 18/s, leaves [12, 18] and the
search still ends at 17.25/s). Rates are modest (at most 24/s, 4 chunks a request) so the
client keeps its schedule.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp", reason="aiohttp is the http extra (the OpenAI client and stub)")

from tests.http_helpers import serve_process
from tippingpoint.cli import main
from tippingpoint.core import io as report_io
from tippingpoint.core.schema import ArrivalProcess
from tippingpoint.server.openai import GenRequest, Outcome, StubSource, StubSpec

SLOTS = 4
TTFT_MS = 50.0
ITL_MS = 50.0
TOKENS = 4
HOLD_S = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1e3
CAPACITY = SLOTS / HOLD_S
"""Requests/s the stub serves: 20."""
TTFT_BOUND_MS = 150.0
PROBE_S = 1.5
START = 0.3 * CAPACITY
UPPER = CAPACITY * (1 + (TTFT_BOUND_MS - TTFT_MS) / 1e3 / (0.9 * PROBE_S - (SLOTS + 1) / CAPACITY))
"""The highest rate a probe can pass (see the module): 21.8/s."""
LOWER = 0.75 * CAPACITY


def test_slots_queue_first_come_first_served() -> None:
    """One slot, three requests at once: each first token comes one hold time after the
    previous one's, in arrival order; a waiter that gives up leaves the queue."""
    source = StubSource("stub", StubSpec(ttft_ms=40.0, itl_ms=20.0, slots=1))
    req = GenRequest("a b", 2, ignore_eos=True, stream=True, include_usage=False)

    async def first_token(t0: float, give_up: bool = False) -> float:
        chunks = source.stream(req, Outcome())
        if give_up:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(anext(chunks), 0.005)
            return -1.0
        await anext(chunks)
        first = time.perf_counter() - t0
        async for _ in chunks:
            pass
        return first

    async def scenario() -> list[float]:
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(first_token(t0, give_up=i == 1)) for i in range(4)]
        return await asyncio.gather(*tasks)

    first, gave_up, second, third = asyncio.run(scenario())
    # a slot is held 40 + 1 * 20 ms: first tokens at 40, 100 and 160 ms, never early; had the
    # request that gave up kept its place, the last would come a hold later (220 ms)
    assert gave_up == -1.0
    assert 0.040 <= first < second < third
    assert second - first >= 0.060 - 0.002 and third - second >= 0.060 - 0.002
    assert third - first < 0.180


def test_find_peak_finds_the_capacity_knee_of_a_slotted_stub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"ttft={TTFT_MS:g},itl={ITL_MS:g},slots={SLOTS}"
    with serve_process("--llm-stub", spec) as (url, _):
        rc = main(
            [
                "run",
                "--endpoint",
                f"openai+{url}/v1",
                "-m",
                "stub",
                "-s",
                "server",
                "--rate",
                f"{START:g}",
                "--arrival",
                "constant",
                "--slo",
                f"ttft={TTFT_BOUND_MS:g}",
                "--find-peak",
                "--output-tokens",
                str(TOKENS),
                "--stop",
                "fixed",
                "--min-queries",
                "4",
                "--min-duration",
                f"{PROBE_S:g}",
                "--warmup-queries",
                "2",
                "--warmup-duration",
                "0",
                "--idle-s",
                "0",
                "-o",
                str(tmp_path),
                "--json",
            ]
        )
    assert rc == 0, capsys.readouterr().err
    (path,) = tmp_path.glob("*.json")
    report = report_io.read_report(path)
    gen = report.generation
    assert gen is not None and report.scenario.arrival is ArrivalProcess.CONSTANT
    sweep: list[tuple[float, bool | None, float | None]] = []
    for point in gen.sweep:
        assert point.offered_rate_rps is not None  # every probe records its rate
        sweep.append((point.offered_rate_rps, point.meets, point.good_fraction))
    print(f"capacity {CAPACITY:g}/s, band [{LOWER:g}, {UPPER:.2f}], peak {gen.peak_rate_rps}")
    print("probes (rate, meets, good fraction):", sweep)
    peak = gen.peak_rate_rps
    assert peak is not None and gen.peak_target_fraction == 0.9
    assert LOWER <= peak <= UPPER
    # the search as recorded: doubling from the start until a probe fails, then bisecting
    # between the highest pass and the lowest failure until they are within 5%
    rates = [r for r, _, _ in sweep]
    assert rates[:3] == [START, 2 * START, 4 * START] and 3 < len(rates) <= 12
    good, bad = 2 * START, 4 * START
    for rate, meets, _ in sweep[3:]:
        assert rate == pytest.approx((good + bad) / 2)
        good, bad = (rate, bad) if meets else (good, rate)
    assert peak == good == max(r for r, m, _ in sweep if m)
    assert (bad - good) / good <= 0.05
    # well below capacity every request meets the bound; well past it the queue fails it
    assert all(m and f == 1.0 for r, m, f in sweep if r <= 0.6 * CAPACITY)
    assert any(r >= 1.2 * CAPACITY for r in rates)
    assert all(m is False and f is not None and f < 0.9 for r, m, f in sweep if r > UPPER)
