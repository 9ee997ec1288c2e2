"""Coordinated omission: a server that freezes for 1 s in the middle of a 10 s open-loop run
at 200 requests/s must show the stall in the reported p99 (hundreds of ms, as wrk2 reports),
where a closed-loop client facing the same stall reports a p99 of a few ms."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.http_helpers import (
    RATE,
    RUN_S,
    STALL_AT_S,
    STALL_S,
    fault_server,
    freeze,
    short_scenario,
)
from tippingpoint.backends.http import HttpBackend
from tippingpoint.core.schema import ArrivalProcess, ScenarioKind, StopRule
from tippingpoint.harness.network import NetworkRun, run_network_scenario


def run_with_stall(url: str, proc: subprocess.Popen[str], **scenario: object) -> NetworkRun:
    opts = {"endpoint": url, "protocol": "template", "path": "/ok", "template": "{}"}
    with HttpBackend().load(Path("remote"), opts) as s:
        sc = short_scenario(**scenario)
        timer = freeze(proc, STALL_AT_S if sc.kind is ScenarioKind.SERVER else 1.0, STALL_S)
        try:
            return run_network_scenario(s, [], sc)
        finally:
            timer.join()


@pytest.mark.slow
def test_open_loop_p99_shows_a_one_second_stall() -> None:
    with fault_server() as (url, proc):
        open_run = run_with_stall(
            url,
            proc,
            kind=ScenarioKind.SERVER,
            target_rate_qps=RATE,
            arrival=ArrivalProcess.CONSTANT,
            stop=StopRule(min_queries=1, min_duration_s=RUN_S, max_duration_s=RUN_S + 5),
        )
        closed_run = run_with_stall(
            url, proc, stop=StopRule(min_queries=200, min_duration_s=3.0, max_duration_s=10.0)
        )
    http = open_run.http
    assert open_run.results is not None and closed_run.results is not None
    # the generator kept its schedule through the stall: ~2000 requests, none failed
    assert http.requests >= RATE * RUN_S * 0.99
    assert http.error_rate == 0.0
    lat = open_run.results.latency
    # ~200 requests were scheduled during the stall, waiting 0..1000 ms: 10% of the run,
    # so p99 lies among them, near the top of the stall
    assert lat.p99 >= 500.0
    assert lat.max >= 900.0
    assert lat.p50 < lat.p99 / 10
    # latency from the scheduled time includes the time a request waited to be sent
    assert np.all(open_run.load.latency_ns >= open_run.load.service_ns)
    # the closed-loop client saw the same stall as one slow request and a small p99
    closed = closed_run.results.latency
    assert closed.max >= 900.0
    assert closed.p99 < lat.p99 / 5
