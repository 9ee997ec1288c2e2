"""The open-loop generator's bookkeeping for requests that never answer.

The request function here is an asyncio coroutine standing in for a server that never replies
to every fifth request; the generator (schedule, in-flight tracking, drain) is the real one.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from tippingpoint.backends.network import Completion
from tippingpoint.core.schema import ArrivalProcess, StopRule
from tippingpoint.harness.loadgen import DRAIN_TIMEOUT, open_loop


def test_unanswered_requests_time_out_without_counting_as_send_lag() -> None:
    count = 0

    async def send() -> Completion:
        nonlocal count
        count += 1
        start = time.perf_counter_ns()
        if count % 5 == 0:
            await asyncio.Event().wait()  # never answered
        await asyncio.sleep(0.001)
        return Completion(start, time.perf_counter_ns(), None, 10, 20, -1, 0, 200)

    rule = StopRule(min_queries=100, min_duration_s=0.5, max_duration_s=5.0)
    run = asyncio.run(
        open_loop(send, 200.0, rule, arrival=ArrivalProcess.CONSTANT, drain_timeout_s=0.2)
    )
    timeouts = np.array([e == DRAIN_TIMEOUT for e in run.errors])
    assert timeouts.sum() == len(run.errors) // 5 > 0
    # the stuck requests were sent on time: their lag is the send lag, not the drain wait
    assert run.send_lag_ns[timeouts].max() < 50_000_000
    # (the run's late fraction itself depends on the machine's load, so it is not asserted)
    assert (run.end_ns[timeouts] > run.start_ns[timeouts]).all()
