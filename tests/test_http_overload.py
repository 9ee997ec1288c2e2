"""The open loop under overload (the probe's ``--rate 1e9``): the schedule is streamed, due
sends are handled in bounded bursts, so an endpoint that never answers still lets the run end
at its cap with every dropped request counted, Ctrl-C still interrupts it, and a load that
outlives its budget is one line naming the fix, not an empty TimeoutError."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from tippingpoint.backends.http.backend import LoopThread
from tippingpoint.backends.network import Completion
from tippingpoint.core.errors import InferenceError
from tippingpoint.core.schema import StopRule
from tippingpoint.harness.loadgen import MAX_RATE_QPS, OVERLOAD, open_loop

pytestmark = pytest.mark.probe("interrupts")


async def never_answers() -> Completion:
    """A request to an endpoint that never answers."""
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


def test_overload_ends_at_the_cap_with_drops_counted() -> None:
    loop = LoopThread()
    try:
        stop = StopRule(min_queries=10**9, min_duration_s=0.0, max_duration_s=0.3)
        run = loop.run(
            open_loop(never_answers, MAX_RATE_QPS, stop, max_inflight=8, drain_timeout_s=0.05),
            60,
        )
    finally:
        loop.stop()
    assert not run.interrupted
    dropped = sum(e == OVERLOAD for e in run.errors)
    assert dropped == len(run.errors) - 8  # all but the 8 in flight (then timed out)
    assert len(run.errors) <= MAX_RATE_QPS * 0.3 * 1.01 + 1


def test_ctrl_c_interrupts_an_overloaded_open_loop() -> None:
    loop = LoopThread()
    sending = threading.Event()

    async def first_send_marks() -> Completion:
        sending.set()
        return await never_answers()

    def interrupt_once_sending() -> None:
        # Ctrl-C once the generator is overloaded, not at a fixed delay: on a loaded machine
        # the loop thread may not have sent anything 0.5 s after the test started
        if sending.wait(60):
            time.sleep(0.3)
            os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=interrupt_once_sending, daemon=True)
    try:
        stop = StopRule(min_queries=10**9, min_duration_s=0.0, max_duration_s=120.0)
        killer.start()
        run = loop.run_interruptible(
            open_loop(first_send_marks, MAX_RATE_QPS, stop, max_inflight=8, drain_timeout_s=0.05),
            300,
        )
    finally:
        killer.join(70)
        loop.stop()
    assert run.interrupted
    assert len(run.scheduled_ns) > 8  # the 8 in flight, then drops counted
    # scheduled time, not wall time: the run ended long before its 120 s cap
    assert (run.scheduled_ns[-1] - run.window_start_ns) / 1e9 < 60


def test_a_load_past_its_budget_is_one_line() -> None:
    loop = LoopThread()
    try:
        stop = StopRule(min_queries=10**9, min_duration_s=0.0, max_duration_s=120.0)
        with pytest.raises(InferenceError) as info:
            loop.run_interruptible(
                open_loop(never_answers, 1000.0, stop, max_inflight=8, drain_timeout_s=0.05),
                0.3,
            )
    finally:
        loop.stop()
    line = info.value.one_line()
    assert "did not finish within" in line and "--rate" in line
