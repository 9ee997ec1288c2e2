"""Harness overhead benchmark: the harness's reported p50 against a bare timing loop.

Run with ``make bench-overhead``. For each model, one process alternates rounds of a bare
``perf_counter_ns`` loop around ``InferenceSession.run`` with full harness runs on the same
session options, and prints the ratio of medians of p50 (targets: <= 1.05 on the smallest
model, <= 1.01 on a ~100 µs model). Where collectors are available it also runs the harness
with all of them on and prints that ratio against the bare loop (same targets) and the cost of
measuring, harness-on over harness-off (target <= 1.03: collectors sample in threads, never in
the timed call, so they may add at most 3%). This is a benchmark: it prints, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import StopRule, WarmupRule
from tippingpoint.harness.config import scenario_settings
from tippingpoint.harness.runner import Runner, RunSpec
from tippingpoint.models.registry import resolve_model

TARGETS = {"mlp-tiny": 1.05, "conv-small": 1.01}
"""Ratio targets of the core harness (collectors off) to the bare loop."""
COLLECTORS_TARGET = 1.03
"""With every available collector on, the harness's p50 is within 3% of its p50 with them off
(and the collectors-on ratio to the bare loop still meets the model's core target)."""


def bare_p50_ns(model: str, queries: int, threads: int) -> float:
    """p50 of a bare loop: perf_counter_ns, session.run, perf_counter_ns, append."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    sess = ort.InferenceSession(
        str(resolve_model(model).path), so, providers=["CPUExecutionProvider"]
    )
    inp = sess.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in inp.shape]
    feeds = {inp.name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    run = sess.run
    clock = time.perf_counter_ns
    for _ in range(max(queries // 10, 10)):
        run(None, feeds)
    lat: list[int] = []
    append = lat.append
    for _ in range(queries):
        t0 = clock()
        run(None, feeds)
        append(clock() - t0)
    return float(np.median(lat))


def harness_p50_ns(
    model: str, queries: int, threads: int, runner: Runner, collectors_on: bool
) -> float:
    """p50 reported by a harness run with the same query count."""
    sc = scenario_settings(
        ScenarioKind.SINGLE_STREAM,
        1,
        warmup=WarmupRule(min_queries=max(queries // 10, 10), min_duration_s=0),
        stop=StopRule(min_queries=queries, min_duration_s=0, max_duration_s=600),
    )
    report = runner.run(
        RunSpec(resolve_model(model), "onnxruntime", sc, {"intra_op_threads": threads})
    ).report
    assert report.results is not None, report.errors
    return report.results.latency.p50 * 1e6


def _runner(collectors_on: bool) -> tuple[Runner, list[str]]:
    if not collectors_on:
        return Runner(), []
    try:
        from tippingpoint.harness.collectors.selection import open_all_available
    except ImportError:
        return Runner(), []
    opened, _skipped = open_all_available()
    return Runner(collectors=opened), [c.name for c in opened]


def help_seconds(repeats: int = 5) -> float:
    """Median wall time of ``tippingpoint --help`` in a fresh interpreter."""
    import subprocess
    import sys

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tippingpoint", "--help"], capture_output=True, check=True
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Print the overhead ratios for each model, collectors off and (where any exist) on."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    h = help_seconds()
    print(f"tippingpoint --help: {h:.3f} s (target < 0.5 s) {'ok' if h < 0.5 else 'OVER TARGET'}")
    off = Runner()
    on, names = _runner(True)
    if not names:
        print("collectors on: no collector available here, skipped")
    label_on = "collectors on (" + ", ".join(names) + ")"
    try:
        for model, target in TARGETS.items():
            queries = args.queries if model == "mlp-tiny" else args.queries // 10
            bare: list[float] = []
            h_off: list[float] = []
            h_on: list[float] = []
            for _ in range(args.rounds):  # interleaved, so drift affects all sides alike
                bare.append(bare_p50_ns(model, queries, args.threads))
                h_off.append(harness_p50_ns(model, queries, args.threads, off, False))
                if names:
                    h_on.append(harness_p50_ns(model, queries, args.threads, on, True))
            b, hf = statistics.median(bare), statistics.median(h_off)
            print(_line("collectors off", model, b, hf, target))
            if names:
                hn = statistics.median(h_on)
                print(_line(label_on, model, b, hn, target))
                cost = hn / hf
                verdict = "ok" if cost <= COLLECTORS_TARGET else "OVER TARGET"
                print(
                    f"{'on vs off':>24} {model:>11}: h_on/h_off {cost:.3f} "
                    f"(target <= {COLLECTORS_TARGET}) {verdict}"
                )
    finally:
        for c in on.collectors:
            c.close()


def _line(label: str, model: str, bare_ns: float, harness_ns: float, target: float) -> str:
    ratio = harness_ns / bare_ns
    verdict = "ok" if ratio <= target else "OVER TARGET"
    return (
        f"{label:>24} {model:>11}: bare p50 {bare_ns / 1000:8.2f} µs  harness p50 "
        f"{harness_ns / 1000:8.2f} µs  ratio {ratio:.3f} (target <= {target}) {verdict}"
    )


if __name__ == "__main__":
    main()
