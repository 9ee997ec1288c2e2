"""The convergence stop end to end: a third-party backend whose latency steps up halfway or
alternates, installed as its own distribution and run through the CLI; the network scenarios
against the reference server.

The stub's latency is a sleep on its own clock (from its first call, which the runner makes
right before a zero-length warm-up), so its regimes are long enough to be told apart on a
loaded machine: 1 ms fast, 5 ms slow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import textwrap
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from tests.http_helpers import serve_process, short_scenario
from tippingpoint.backends.base import SessionBase
from tippingpoint.backends.network import Completion, NetworkInfo, NetworkLimits, RequestFn
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.io import read_report
from tippingpoint.core.schema import (
    ArrivalProcess,
    Report,
    RunFlag,
    RunStatus,
    ScenarioKind,
    StopMode,
    StopReason,
    StopRule,
    WarmupRule,
)
from tippingpoint.core.types import BackendDescription, Device, TensorSpec
from tippingpoint.harness.matrix import RunRequest, expand
from tippingpoint.harness.network import run_network_scenario
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import resolve_model

from .helpers import assert_one_line, install_distribution, one_report, tp

PLUGIN = '''
"""A backend whose latency is a sleep: fast, then slow from step_s (or alternating every
alternate_s), on the session's own clock from its first call."""
import time
from pathlib import Path

from tippingpoint.backends.base import (
    Availability, BackendDescription, Device, SessionBase, TensorSpec,
)


class StepSession(SessionBase):
    inputs = (TensorSpec(name="x", shape=(None, 4), dtype="float32"),)
    outputs = (TensorSpec(name="y", shape=(None, 4), dtype="float32"),)

    def __init__(self, options):
        self.options = dict(options)

    def bind(self, feeds):
        fast = float(self.options.get("fast_ms", 1)) / 1e3
        slow = float(self.options.get("slow_ms", 5)) / 1e3
        step = float(self.options.get("step_s", 1e9))
        alternate = float(self.options.get("alternate_s", 0))
        out = [feeds[0].copy()]
        first = []

        def call():
            now = time.perf_counter()
            if not first:
                first.append(now)
            t = now - first[0]
            slow_now = int(t / alternate) % 2 == 1 if alternate else t >= step
            time.sleep(slow if slow_now else fast)
            return out

        return call

    def describe(self):
        return BackendDescription(
            name="stepper", runtime="tp-stepper", runtime_version="0.1",
            device=Device.CPU, options=self.options,
        )


class StepBackend:
    name = "stepper"
    formats = (".onnx",)
    network = False

    def validate_options(self, options):
        pass

    def availability(self):
        return Availability(installed=True, runtime="tp-stepper", version="0.1")

    def load(self, model: Path, options):
        return StepSession(options)
'''

SHORT = [
    "--warmup-queries", "1", "--warmup-duration", "0", "--min-queries", "10",
    "--min-duration", "2", "--max-duration", "6",
]  # fmt: skip
"""2 s minimum: windows of 0.4 s (80 slow queries), capped at 6 s."""


@pytest.fixture(scope="module")
def stepper_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    entry_points = textwrap.dedent(
        """\
        [tippingpoint.backends]
        stepper = tp_stepper:StepBackend
        """
    )
    return install_distribution(site, "tp-stepper", entry_points, ("tp_stepper", PLUGIN))


def _run(env: dict[str, str], out: Path, *args: str) -> Report:
    proc = tp(
        "run", "-b", "stepper", "-m", "mlp-tiny", "-s", "single-stream", *SHORT, *args,
        "--out", str(out), "--json", env=env, timeout=120,
    )  # fmt: skip
    report = one_report(proc)
    assert report.status is RunStatus.COMPLETE, report.errors
    return report


def test_a_slowdown_halfway_is_unstable_under_the_fixed_stop(
    stepper_env: dict[str, str], tmp_path: Path
) -> None:
    r = _run(stepper_env, tmp_path, "--stop", "fixed", "--opt", "step_s=1.0")
    assert r.scenario.stop.mode is StopMode.FIXED
    assert r.results is not None and r.results.stop is not None
    assert r.results.stop.reason is StopReason.MINIMUMS
    assert r.results.stop.converged is None and r.results.converged_segment is None
    assert RunFlag.UNSTABLE in r.flags
    drift = r.results.drift
    assert drift is not None and drift.slope_pct_per_s < 0 and drift.ci.high < 0


def test_a_slowdown_halfway_converges_on_the_later_regime_with_drift_reported(
    stepper_env: dict[str, str], tmp_path: Path
) -> None:
    r = _run(stepper_env, tmp_path, "--opt", "step_s=1.0")
    assert r.scenario.stop.mode is StopMode.CONVERGE  # the default
    assert r.scenario.stop.converge_windows == 3 and r.scenario.stop.converge_threshold == 0.1
    res = r.results
    assert res is not None and res.stop is not None and res.stability is not None
    assert res.stop.reason is StopReason.CONVERGED and res.stop.converged
    assert res.stop.window_s is not None and res.stop.windows is not None
    assert res.stop.duration_s > 2.0  # went on past the minimums until the windows agreed
    assert res.stability.stable and RunFlag.UNSTABLE not in r.flags
    # the agreeing windows are the slow regime: ~5 ms a query, against a faster whole part
    seg = res.converged_segment
    assert seg is not None and seg.end_s <= res.stop.duration_s
    assert seg.latency.p50 > 4.0
    assert seg.throughput.queries_per_s < 0.8 * res.throughput.queries_per_s
    assert seg.throughput.duration_s == pytest.approx(3 * res.stop.window_s)
    # the step is a trend over the measured part: significant, large, flagged apart
    assert res.drift is not None and res.drift.significant and res.drift.ci.high < 0
    assert RunFlag.DRIFTING in r.flags


def test_a_run_that_never_converges_stops_at_the_cap_and_says_so(
    stepper_env: dict[str, str], tmp_path: Path
) -> None:
    # fast and slow alternate every 0.6 s: whatever the phase, some window of any 3 in a row
    # holds a quarter more or less of the fast regime than their mean
    r = _run(stepper_env, tmp_path, "--window", "0.4", "--opt", "alternate_s=0.6")
    res = r.results
    assert res is not None and res.stop is not None
    assert res.stop.reason is StopReason.CAP and res.stop.converged is False
    assert 5.0 <= res.stop.duration_s <= 6.5 and res.stop.window_s == pytest.approx(0.4)
    assert res.stop.windows is not None and res.stop.windows >= 13
    assert res.converged_segment is None
    assert RunFlag.UNSTABLE in r.flags
    assert res.stability is not None and not res.stability.stable
    assert res.stability.rule is not None and "convergence stop" in res.stability.rule


def test_the_warmup_can_run_until_steady(stepper_env: dict[str, str], tmp_path: Path) -> None:
    # the step falls in the warm-up, which goes on until the slow regime's windows agree
    r = _run(
        stepper_env, tmp_path, "--warmup-until-steady", "--warmup-duration", "0.5",
        "--stop", "fixed", "--opt", "step_s=0.6",
    )  # fmt: skip
    assert r.scenario.warmup.until_steady is True
    assert r.warmup is not None and r.warmup.until_steady is not None
    steady = r.warmup.until_steady
    assert steady.steady and steady.window_s == pytest.approx(0.4)
    assert len(steady.windows) >= 3 and r.warmup.duration_s >= 1.2
    assert steady.extended_s == pytest.approx(r.warmup.duration_s - 0.5)
    assert r.results is not None and RunFlag.UNSTABLE not in r.flags


def test_an_unknown_stop_is_a_usage_error(tmp_path: Path) -> None:
    proc = tp("run", "-m", "mlp-tiny", "--stop", "sometimes", "--out", str(tmp_path))
    assert_one_line(proc, 2, "--stop must be fixed or converge")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (RunRequest(stop=StopMode.FIXED, converge_windows=4), "--converge-windows applies to"),
        (RunRequest(window_s=1.0, stop=StopMode.FIXED), "--window applies to"),
        (RunRequest(converge_windows=1), "--converge-windows must be at least 2"),
        (RunRequest(converge_threshold=10), "--converge-threshold is a fraction"),
        (RunRequest(window_s=0), "--window must be a positive"),
    ],
)
def test_stop_knobs_misuse_is_a_usage_error(request_: RunRequest, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        expand(dataclasses.replace(request_, models=("mlp-tiny",)))


def test_a_quick_run_stops_at_its_minimums_unless_asked_to_converge() -> None:
    (quick, *_) = expand(RunRequest(models=("mlp-tiny",), quick=True)).cells
    assert quick.scenario.stop.mode is StopMode.FIXED
    (asked, *_) = expand(RunRequest(models=("mlp-tiny",), quick=True, stop=StopMode.CONVERGE)).cells
    assert asked.scenario.stop.mode is StopMode.CONVERGE
    (default, *_) = expand(RunRequest(models=("mlp-tiny",))).cells
    assert default.scenario.stop.mode is StopMode.CONVERGE
    assert default.scenario.warmup.until_steady is None


def _converge(stop: StopRule) -> StopRule:
    return stop.model_copy(
        update={"mode": StopMode.CONVERGE, "converge_windows": 3, "converge_threshold": 0.1}
    )


def test_a_closed_network_loop_follows_the_convergence_stop() -> None:
    stop = _converge(StopRule(min_queries=20, min_duration_s=0.5, max_duration_s=8))
    sc = short_scenario(
        ScenarioKind.CONCURRENCY,
        stop=stop,
        warmup=WarmupRule(min_queries=5, min_duration_s=0),
        concurrency=2,
    )
    with serve_process("--model", "mlp-tiny") as (url, _):
        spec = RunSpec(resolve_model("mlp-tiny"), "http", sc, backend_options={"endpoint": url})
        report = Runner().run(spec).report
    assert report.status is RunStatus.COMPLETE, report.errors
    res = report.results
    assert res is not None and res.stop is not None and res.drift is not None
    assert res.stop.mode is StopMode.CONVERGE
    assert res.stop.reason in (StopReason.CONVERGED, StopReason.CAP)
    assert res.stop.converged is (res.stop.reason is StopReason.CONVERGED)
    assert res.stability is not None and res.stability.stable is res.stop.converged
    assert res.stop.windows is not None and len(res.stability.windows) == res.stop.windows
    assert res.stop.tolerance == 0.1  # a closed loop's windows are held to the threshold


T = TypeVar("T")


class QueueSession(SessionBase):
    """A network session whose transport is in-process: one request served at a time, each for
    ``service_s``, so the peak search finds a rate it can meet and one it cannot."""

    def __init__(self, service_s: float) -> None:
        spec = TensorSpec(name="x", shape=(None, 4), dtype="float32")
        desc = BackendDescription(
            name="queue-net", runtime="asyncio", runtime_version="0", device=Device.REMOTE
        )
        super().__init__((spec,), (spec,), desc)
        self.service_s = service_s

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        return lambda: list(feeds)

    def request_fn(self, kind: ScenarioKind, feeds: Sequence[np.ndarray]) -> RequestFn:
        servers: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}  # one per run_async

        async def send() -> Completion:
            start = time.perf_counter_ns()
            async with servers.setdefault(asyncio.get_running_loop(), asyncio.Lock()):
                await asyncio.sleep(self.service_s)
            return Completion(start, time.perf_counter_ns(), None, 16, 16, -1, 0, 0)

        return send

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run(asyncio.wait_for(coro, timeout))

    @property
    def limits(self) -> NetworkLimits:
        return NetworkLimits(timeout_s=1.0, retries=0, max_inflight=256)

    def network_info(self) -> NetworkInfo:
        return NetworkInfo(protocol="queue", endpoint="in-process", tls_verify=None, auth=None)


def test_the_open_loop_and_the_peak_search_probes_follow_the_convergence_stop() -> None:
    stop = _converge(StopRule(min_queries=10, min_duration_s=0.3, max_duration_s=1))
    sc = short_scenario(
        ScenarioKind.SERVER,
        stop=stop,
        warmup=WarmupRule(min_queries=5, min_duration_s=0),
        target_rate_qps=100.0,
        arrival=ArrivalProcess.POISSON,
    )
    feeds = [np.zeros((1, 4), np.float32)]
    run = run_network_scenario(QueueSession(0.004), feeds, sc, latency_bound_ms=50.0)
    assert run.results is not None and run.results.stop is not None
    assert run.results.stop.mode is StopMode.CONVERGE
    # 100/s passes or not (a loaded machine lags its sends); 800/s (over 250/s) never does
    assert len(run.http.sweep) >= 2
    assert all(p.converged is not None for p in run.http.sweep)


def test_the_cli_stop_flags_reach_the_report(tmp_path: Path) -> None:
    proc = tp(
        "run", "-m", "mlp-tiny", "-s", "single-stream", "--warmup-duration", "0",
        "--min-duration", "0.5", "--converge-windows", "4", "--converge-threshold", "0.2",
        "--window", "0.1", "--out", str(tmp_path), "--json",
    )  # fmt: skip
    r = one_report(proc)
    stop = r.scenario.stop
    assert (stop.mode, stop.converge_windows, stop.converge_threshold, stop.window_s) == (
        StopMode.CONVERGE,
        4,
        0.2,
        0.1,
    )
    assert r.results is not None and r.results.stop is not None
    assert r.results.stop.window_s == pytest.approx(0.1)
    assert r.results.stop.converge_windows == 4


def test_a_repeated_run_is_judged_by_its_group_not_by_its_own_windows(
    stepper_env: dict[str, str], tmp_path: Path
) -> None:
    # each repetition steps up halfway through its own fixed 2 s: unstable windows, a trend
    proc = tp(
        "run", "-b", "stepper", "-m", "mlp-tiny", "-s", "single-stream", *SHORT,
        "--stop", "fixed", "--repeat", "2", "--opt", "step_s=1.0", "--out", str(tmp_path),
        env=stepper_env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    reports = [read_report(p) for p in sorted(tmp_path.rglob("*.json"))]
    assert len(reports) == 2 and all(r.repetition is not None for r in reports)
    for r in reports:
        assert r.results is not None and r.results.stability is not None
        assert not r.results.stability.stable  # recorded as measured ...
        assert r.results.drift is not None and r.results.drift.ci.high < 0
        # ... but no within-run flag: the group's between-run spread judges a repetition
        assert RunFlag.UNSTABLE not in r.flags and RunFlag.DRIFTING not in r.flags
