"""The hybrid backend against a real ``tippingpoint serve`` on loopback: each policy's
decisions (deterministic), the result cache, the fallback rule against a dead endpoint and
through the shaper's outage windows, the open-loop queue-depth knee, the report's hybrid
section and raw samples, and bad options as one-line usage errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tippingpoint.backends.hybrid.backend import HybridBackend, HybridSession
from tippingpoint.backends.network import Completion
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.links import LinkSpec, OutageMode, OutageWindow
from tippingpoint.core.schema import ArrivalProcess, StopRule
from tippingpoint.core.types import OptionValue
from tippingpoint.reports.document import TableBlock

from .helpers import QUICK, assert_one_line, tp
from .http_helpers import serve_process, short_scenario


def _scores_model(path: Path) -> Path:
    """y = x for a float32 [N, 4] input: the input is the class scores, so a test chooses
    how sure the 'local answer' is."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "scores",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _knee_model(path: Path, heavy: bool) -> Path:
    """x [1, 384, 384] -> y [1, 384]: the heavy one multiplies by a 384x384 matrix eight
    times first (the slow local model), the light one only averages (the fast cloud's model,
    the same signature)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((384, 384)).astype(np.float32) / 20
    nodes = []
    inits = []
    last = "x"
    if heavy:  # eight chained products: ~10-20 ms on one thread, well below the loop's reach
        inits.append(numpy_helper.from_array(w, "w"))
        for i in range(8):
            nodes.append(helper.make_node("MatMul", [last, "w"], [f"h{i}"]))
            last = f"h{i}"
    nodes.append(helper.make_node("ReduceMean", [last], ["y"], axes=[1], keepdims=0))
    graph = helper.make_graph(
        nodes,
        "knee",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 384, 384])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 384])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hybrid")
    return {
        "scores": _scores_model(d / "scores.onnx"),
        "knee": _knee_model(d / "knee.onnx", heavy=True),
        "knee_cloud": _knee_model(d / "knee_cloud.onnx", heavy=False),
    }


@pytest.fixture(scope="module")
def server(models: dict[str, Path]) -> Iterator[str]:
    """``tippingpoint serve`` in a subprocess: the scores model, and the light knee model
    under the heavy one's name."""
    with serve_process("-m", str(models["scores"]), "-m", f"knee={models['knee_cloud']}") as (
        url,
        _,
    ):
        yield url


def _load(model: Path, url: str, **opts: OptionValue) -> HybridSession:
    return HybridBackend().load(model, {"endpoint": url, "local_intra_op_threads": 1, **opts})


def _routes(session: HybridSession, feeds: list[np.ndarray], n: int) -> list[Completion]:
    """``n`` requests one after another through the session's transport."""
    send = session.request_fn(ScenarioKind.SINGLE_STREAM, feeds)

    async def run() -> list[Completion]:
        return [await send() for _ in range(n)]

    return session.run_async(run(), 60)


SURE = [np.array([[9.0, 0.0, 0.0, 0.0]], dtype=np.float32)]
UNSURE = [np.array([[0.1, 0.0, 0.0, 0.0]], dtype=np.float32)]


def test_baselines_route_every_request_one_way(models: dict[str, Path], server: str) -> None:
    with _load(models["scores"], server, policy="always-local") as s:
        local = _routes(s, SURE, 5)
    with _load(models["scores"], server, policy="always-cloud") as s:
        cloud = _routes(s, SURE, 5)
        answer = s.bind(SURE)()
    assert all(c.error is None for c in local + cloud)
    assert {(c.route.route, c.route.reason) for c in local if c.route} == {
        ("local", "always-local")
    }
    assert {(c.route.route, c.route.reason) for c in cloud if c.route} == {
        ("cloud", "always-cloud")
    }
    assert all(c.bytes_sent == 0 for c in local)  # nothing crossed the network
    assert all(c.bytes_sent > 0 and c.status == 200 for c in cloud)
    np.testing.assert_allclose(answer[0], SURE[0])  # the endpoint's answer, decoded


@pytest.mark.parametrize(
    ("measure", "threshold"), [("max-softmax", 0.8), ("entropy", 0.5)], ids=["softmax", "entropy"]
)
def test_confidence_offloads_unsure_answers(
    models: dict[str, Path], server: str, measure: str, threshold: float
) -> None:
    with _load(
        models["scores"], server, policy="confidence", measure=measure, threshold=threshold
    ) as s:
        sure = _routes(s, SURE, 3)
        unsure = _routes(s, UNSURE, 3)
    # softmax of [9, 0, 0, 0]: 0.9996 (entropy 0.003); of [0.1, 0, 0, 0]: 0.27 (entropy 0.9995)
    assert [(c.route.route, c.route.reason) for c in sure if c.route] == [
        ("local", "confident")
    ] * 3
    assert [(c.route.route, c.route.reason) for c in unsure if c.route] == [
        ("cloud", "low-confidence")
    ] * 3
    assert all(c.error is None for c in sure + unsure)


def test_queue_depth_offloads_beyond_k_in_flight(models: dict[str, Path], server: str) -> None:
    feeds = [np.ones((1, 384, 384), dtype=np.float32)]
    with _load(models["knee"], server, policy="queue-depth", k=2, local_workers=2) as s:
        send = s.request_fn(ScenarioKind.SINGLE_STREAM, feeds)

        async def burst() -> list[Completion]:
            return list(await asyncio.gather(*(send() for _ in range(6))))

        done = s.run_async(burst(), 60)
        after = _routes(s, feeds, 2)  # the queue drained: local again
    # the router decides each request before the next is started (one event loop): the first
    # two find fewer than k local requests in flight, the other four a full local queue
    assert [c.route.reason for c in done if c.route] == ["queue-ok"] * 2 + ["queue-full"] * 4
    assert [c.route.route for c in done if c.route] == ["local"] * 2 + ["cloud"] * 4
    assert [c.route.reason for c in after if c.route] == ["queue-ok"] * 2
    assert all(c.error is None for c in done + after)


def test_deadline_offloads_a_predicted_miss_and_explores(
    models: dict[str, Path], server: str
) -> None:
    with _load(models["scores"], server, policy="deadline", slo_ms=1e-6, explore_every=3) as s:
        tight = [c.route.reason for c in _routes(s, SURE, 8) if c.route]
    with _load(models["scores"], server, policy="deadline", slo_ms=60_000) as s:
        loose = [c.route.reason for c in _routes(s, SURE, 4) if c.route]
    # no estimate before the first local answer; then every local latency exceeds 1 ns, and
    # every third offload runs locally to refresh the estimate
    assert tight == [
        "no-estimate", "predicted-miss", "predicted-miss", "explore",
        "predicted-miss", "predicted-miss", "explore", "predicted-miss",
    ]  # fmt: skip
    assert loose == ["no-estimate"] + ["meets-slo"] * 3


def _until_probed(s: HybridSession) -> None:
    deadline = time.monotonic() + 10
    while s.state.rtt_ns is None and not s.state.probe_failed:
        assert time.monotonic() < deadline, "no RTT probe within 10 s"
        time.sleep(0.01)


def test_network_aware_follows_the_probed_rtt(models: dict[str, Path], server: str) -> None:
    with _load(models["scores"], server, policy="network-aware", rtt_max_ms=10_000) as s:
        _until_probed(s)
        fast = [c.route.reason for c in _routes(s, SURE, 3) if c.route]
    with _load(models["scores"], server, policy="network-aware", rtt_max_ms=1e-6) as s:
        _until_probed(s)
        slow = [c.route.reason for c in _routes(s, SURE, 3) if c.route]
    assert fast == ["rtt-ok"] * 3
    assert slow == ["rtt-high"] * 3


def test_cache_answers_a_repeated_input(models: dict[str, Path], server: str) -> None:
    with _load(models["scores"], server, policy="always-cloud", cache=True) as s:
        first = _routes(s, SURE, 3)
        other = _routes(s, UNSURE, 1)
        answer = s.bind(SURE)()
        assert s.cache is not None
        hits, lookups = s.cache.hits, s.cache.lookups
    assert [c.route.route for c in first if c.route] == ["cloud", "cache", "cache"]
    assert [c.route.route for c in other if c.route] == ["cloud"]  # a different input
    np.testing.assert_allclose(answer[0], SURE[0])  # the cached answer is the real one
    assert (hits, lookups) == (3, 5)


def test_fallback_answers_locally_when_the_endpoint_dies(models: dict[str, Path]) -> None:
    with serve_process("-m", str(models["scores"])) as (url, proc):
        with_fb = _load(models["scores"], url, policy="always-cloud", fallback=True)
        without = _load(models["scores"], url, policy="always-cloud")
        try:
            assert _routes(with_fb, SURE, 1)[0].route.route == "cloud"  # type: ignore[union-attr]
            proc.terminate()
            proc.wait(10)
            saved = _routes(with_fb, SURE, 3)
            lost = _routes(without, SURE, 3)
            answer = with_fb.bind(SURE)()
        finally:
            with_fb.close()
            without.close()
    assert all(c.error is None for c in saved)
    assert all(c.route is not None and c.route.fallback for c in saved)
    assert all(c.route is not None and c.route.route == "local" for c in saved)
    assert {c.route.cloud_error for c in saved if c.route} == {"connection"}
    np.testing.assert_allclose(answer[0], SURE[0])  # answered locally
    assert [c.error for c in lost] == ["connection"] * 3
    assert not any(c.route is not None and c.route.fallback for c in lost)


def _outage_run(model: Path, url: str, fallback: bool) -> tuple[object, object]:
    """An open loop at 40/s for 4 s through the shaper, whose link is reset from 1.5 to 2.1 s
    and black-holed from 2.6 to 3.1 s (counted from the shaper's start); the network run's
    http and hybrid sections."""
    from tippingpoint.harness.links.host import LinkThread
    from tippingpoint.harness.links.select import select_shaper
    from tippingpoint.harness.network import run_network_scenario

    link = LinkSpec.model_validate(
        {
            "name": "outages",
            "user_defined": True,
            "delay_up_ms": 1.0,
            "delay_down_ms": 1.0,
            "outages": (
                OutageWindow(start_s=1.5, duration_s=0.6, mode=OutageMode.RESET),
                OutageWindow(start_s=2.6, duration_s=0.5, mode=OutageMode.BLACKHOLE),
            ),
        }
    )
    entry = socket.socket()
    entry.bind(("127.0.0.1", 0))
    entry.listen(128)
    port = int(url.rsplit(":", 1)[1])
    shaped = LinkThread(select_shaper(link, "proxy"), ("127.0.0.1", port), listen=entry)
    opts: dict[str, OptionValue] = {
        "policy": "always-cloud",
        "fallback": fallback,
        "cloud_timeout_s": 0.3,
        "cloud_connect_timeout_s": 0.3,
    }
    # load while the link starts: the session's readiness and metadata requests wait in the
    # entry's backlog until the link accepts, so the outage clock starts with the session ready
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(_load, model, f"http://127.0.0.1:{entry.getsockname()[1]}", **opts)
        time.sleep(0.2)
        shaped.start()
        session = loading.result(60)
    try:
        with session as s:
            scenario = short_scenario(
                ScenarioKind.SERVER,
                target_rate_qps=40.0,
                arrival=ArrivalProcess.CONSTANT,
                stop=StopRule(min_queries=1, min_duration_s=4.0, max_duration_s=10.0),
            )
            run = run_network_scenario(s, SURE, scenario)
    finally:
        shaped.stop()
    return run.http, run.hybrid


def test_outage_with_fallback_loses_no_request(models: dict[str, Path], server: str) -> None:
    http, hybrid = _outage_run(models["scores"], server, fallback=True)
    from tippingpoint.core.schema import HttpResults, HybridResults

    assert isinstance(http, HttpResults) and isinstance(hybrid, HybridResults)
    assert http.requests >= 100
    assert http.successes == http.requests, http.errors_by_kind  # none lost
    assert http.errors_by_kind == {}
    assert hybrid.fallback_rate > 0
    assert hybrid.cloud_errors.get("connection", 0) >= 1, hybrid.cloud_errors  # the reset
    assert hybrid.cloud_errors.get("timeout", 0) >= 1, hybrid.cloud_errors  # the black hole
    assert hybrid.offload_rate == 1.0  # every request went to the cloud first
    assert hybrid.answered_by["local"] == round(hybrid.fallback_rate * hybrid.decided)


def test_outage_without_fallback_counts_failures_by_kind(
    models: dict[str, Path], server: str
) -> None:
    http, hybrid = _outage_run(models["scores"], server, fallback=False)
    from tippingpoint.core.schema import HttpResults, HybridResults

    assert isinstance(http, HttpResults) and isinstance(hybrid, HybridResults)
    assert http.successes < http.requests
    assert http.errors_by_kind.get("connection", 0) >= 1, http.errors_by_kind
    assert http.errors_by_kind.get("timeout", 0) >= 1, http.errors_by_kind
    assert hybrid.fallback_rate == 0.0
    assert hybrid.cloud_errors == http.errors_by_kind  # every failure was a cloud failure


def test_open_loop_queue_depth_offloads_past_local_capacity(
    models: dict[str, Path], server: str
) -> None:
    """The knee: below the local capacity (1 / local service time, one worker) the local side
    keeps up and little is offloaded; past it, the share offloaded rises. Rates are set from
    the local service time measured here, and the assertions leave wide margins."""
    from tippingpoint.harness.network import run_network_scenario

    feeds = [np.random.default_rng(2).standard_normal((1, 384, 384)).astype(np.float32)]
    with _load(models["knee"], server, policy="always-local") as s:
        call = s.local.bind(feeds)
        call()
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        service_s = float(np.median(times))  # a busy moment of the shared machine aside
    capacity = 1 / service_s
    rates = [capacity * f for f in (0.2, 1.0, 5.0)]
    offload = []
    with _load(models["knee"], server, policy="queue-depth", k=1) as s:
        for rate in rates:
            scenario = short_scenario(
                ScenarioKind.SERVER,
                target_rate_qps=rate,
                arrival=ArrivalProcess.CONSTANT,
                stop=StopRule(min_queries=30, min_duration_s=1.5, max_duration_s=10.0),
            )
            run = run_network_scenario(s, feeds, scenario)
            assert run.hybrid is not None
            assert run.hybrid.decided >= 0.9 * run.http.requests  # routed, not dropped
            offload.append(run.hybrid.offload_rate)
    low, knee, high = offload
    assert high >= 0.35, offload  # 5x capacity: ideally 4/5 go to the cloud
    assert low <= 0.4, offload  # 1/5 capacity: the local side is mostly idle (ideally 0)
    assert low < high - 0.15, offload
    assert low <= knee + 0.15 and knee <= high + 0.15, offload  # monotone, within noise


def test_run_report_has_the_hybrid_section_and_samples(tmp_path: Path) -> None:
    from tippingpoint.core.io import load_samples, read_report

    out = tmp_path / "r"
    p = tp(
        "run", "-m", "mlp-tiny", "-b", "hybrid", "--endpoint", "local", "-s", "single-stream",
        "--opt", "policy=deadline", "--opt", "slo_ms=50", "--opt", "cache=true", "-o", str(out),
        *QUICK,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    (path,) = out.glob("*.json")
    report = read_report(path)
    h = report.hybrid
    assert h is not None and report.http is not None
    assert h.policy == "deadline" and h.cache and h.slo_ms == 50
    assert h.decided == h.requests == report.http.requests
    # one input repeated: after the first answer every request is a cache hit
    assert h.cache_hit_rate is not None and h.cache_hit_rate > 0.9
    assert h.deadline_miss_rate is not None and 0.0 <= h.deadline_miss_rate <= 1.0
    assert h.policy_overhead_us_mean > 0
    assert sum(h.reasons.values()) == h.decided
    arrays = load_samples(report, path)
    assert len(arrays["hybrid_route"]) == h.requests
    assert Counter(arrays["hybrid_route"].tolist()) == h.answered_by
    assert report.results is not None and report.results.raw is not None
    assert "hybrid_route" in report.results.raw.arrays  # named, with its unit
    # beside an edge run: the placements table (seed 003's Table 1), each cell naming its run
    p = tp("run", "-m", "mlp-tiny", "-s", "single-stream", "-o", str(out), *QUICK)
    assert p.returncode == 0, p.stderr
    md = tmp_path / "report.md"
    p = tp("report", str(out), "-o", str(md), "--format", "md")
    assert p.returncode == 0, p.stderr
    text = md.read_text()
    assert "Hybrid routing" in text
    assert "deadline" in text and f"{h.offload_rate:.1%}" in text
    table = text.split("## Placements compared", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().split(",")[0]: line for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| placement")}  # fmt: skip
    assert set(rows) == {"edge", "hybrid"}
    assert f"run {report.run_id[:8]}" in rows["hybrid"]  # latency and bandwidth name the run
    assert "bare path" in rows["hybrid"]  # no --network: the row says its link was unshaped
    assert "none: no network" in rows["edge"] and "no cost result" in rows["edge"]
    # costed in process (the calculator's hand-worked profiles and edge figures; this run's
    # hybrid report): the cost cells name the cost result's placements, the hybrid one
    # measured from this run
    from tippingpoint.calculator.compute import calculate
    from tippingpoint.reports.document import placements_section
    from tippingpoint.reports.runs import LoadedRun, RunData

    from .calculator_factory import edge_report, hand_api, hand_profiles

    loaded = [RunData(LoadedRun(x, read_report(x), 1), None) for x in sorted(out.glob("*.json"))]
    cost = calculate(
        [edge_report(100, 20, model="mlp-tiny"), report], profiles=hand_profiles(),
        clouds=[hand_api()], today=date(2026, 11, 23), tool_version="test", draws=0,
        proxy_host=True, accept_flagged=True,
    )  # fmt: skip
    (_, _, costed) = placements_section(loaded, cost)
    assert isinstance(costed, TableBlock)
    cells = {row[0].split(",")[0]: row[3] for row in costed.rows}
    assert "(edge: " in cells["edge"]
    assert "(hybrid: " in cells["hybrid"] and "(measured)" in cells["hybrid"]


def test_a_plain_run_has_no_hybrid_section(tmp_path: Path) -> None:
    out = tmp_path / "r"
    p = tp("run", "-m", "mlp-tiny", "-s", "single-stream", "-o", str(out), *QUICK)
    assert p.returncode == 0, p.stderr
    (path,) = out.glob("*.json")
    assert '"hybrid"' not in path.read_text()  # omitted, not null


@pytest.mark.parametrize(
    ("opts", "needles"),
    [
        (["policy=queue-depth", "k=0"], ["queue-depth policy option 'k'", "greater than"]),
        (["policy=confidence", "threshold=1.5"], ["confidence policy option 'threshold'"]),
        (["policy=deadline"], ["needs a latency objective", "slo_ms=MS"]),
        (["policy=no-such"], ["unknown hybrid policy 'no-such'", "queue-depth"]),
        (["policy=always-local", "k=2"], ["unknown hybrid option 'k'", "local_*"]),
        (["cache_size=0"], ["hybrid option 'cache_size'"]),
        (["policy=network-aware", "rtt_max_ms=-1"], ["rtt_max_ms"]),
    ],
    ids=["k", "threshold", "no-slo", "policy", "foreign", "cache", "rtt"],
)
def test_bad_policy_options_are_one_line_before_anything_runs(
    tmp_path: Path, opts: list[str], needles: list[str]
) -> None:
    out = tmp_path / "r"
    flags = [x for o in opts for x in ("--opt", o)]
    p = tp(
        "run", "-m", "mlp-tiny", "-b", "hybrid", "--endpoint", "http://127.0.0.1:9",
        "-s", "single-stream", *flags, "-o", str(out), *QUICK,
    )  # fmt: skip
    assert_one_line(p, 2, *needles)
    assert not out.exists() or not list(out.glob("*.json"))


def test_validate_options_needs_no_endpoint_and_load_does() -> None:
    HybridBackend().validate_options({"policy": "queue-depth", "k": 3})
    with pytest.raises(InvalidOptionError, match="needs an endpoint"):
        HybridBackend().load(Path("x.onnx"), {"policy": "always-local"})


def test_accuracy_pass_scores_the_routed_answers(tmp_path: Path) -> None:
    """--accuracy routes the evaluation set like any request: with the same model on both
    sides, a policy scores as the all-local reference does, whatever share it offloads."""
    from tippingpoint.core.io import read_report

    out = tmp_path / "r"
    for policy in (["policy=always-local"], ["policy=confidence", "threshold=0.99"]):
        flags = [x for o in policy for x in ("--opt", o)]
        p = tp(
            "run", "-m", "digits-cnn", "-b", "hybrid", "--endpoint", "local",
            "-s", "single-stream", "--accuracy", *flags, "-o", str(out), *QUICK,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
    reports = [read_report(x) for x in sorted(out.glob("*.json"))]
    by = {r.hybrid.policy: r for r in reports if r.hybrid is not None}
    local, routed = by["always-local"].accuracy, by["confidence"].accuracy
    assert local is not None and routed is not None
    assert local.metric == routed.metric == "top1"
    assert abs(local.value - routed.value) <= 1 / local.samples  # a near-tie at most
    md = tmp_path / "report.md"
    assert tp("report", str(out), "-o", str(md), "--format", "md").returncode == 0
    hybrid_table = md.read_text().split("## Hybrid routing", 1)[1].split("\n## ", 1)[0]
    assert f"top1 {routed.value:.4g}" in hybrid_table
