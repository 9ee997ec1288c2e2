"""Generative runs end to end (harness/generative.py through expand and execute): the OpenAI
stub of ``tippingpoint serve`` on loopback and the suite's tiny-llm on onnxruntime-genai.

Timing: medians only. TPOT (10 ms a token) is checked within 5% (the stub's due times are
absolute, so fixed costs cancel in it). TTFT (50 ms) is never below 50 ms, and within 5% once
the fixed cost of a request on this machine is taken off (measured the same way against a stub
that waits 1 ms) plus a 10 ms allowance: on a loaded 2-core machine that fixed cost itself
varies between runs (4-9 ms measured), so a raw TTFT within 5% is a benchmark's figure, not a
test's.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("aiohttp", reason="aiohttp is the http extra (the OpenAI client and stub)")

from tippingpoint.cli import main
from tippingpoint.core import io as report_io
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import (
    ArrivalProcess,
    MeasurementMethod,
    Report,
    RunFlag,
    RunStatus,
    StopMode,
    TokenMetrics,
)
from tippingpoint.core.token_metrics import parse_slo
from tippingpoint.harness.collectors.options import CollectorOptions
from tippingpoint.harness.execute import ExecuteOptions, ExitStatus, execute
from tippingpoint.harness.generative import GenerationSettings, PromptSet
from tippingpoint.harness.matrix import NetworkRequest, RunRequest, expand
from tippingpoint.reports.charts.spec import LineFigure
from tippingpoint.reports.document import FigureBlock, Heading, TableBlock
from tippingpoint.reports.render_report import build_from_paths, write_report_file
from tippingpoint.server.app import ServerConfig
from tippingpoint.server.background import BackgroundServer
from tippingpoint.server.openai import OpenAiService, StubSource, StubSpec
from tippingpoint.server.repository import ModelRepository

JITTER_MS = 10.0
"""Allowance for a sleeping server's and client's late wake-ups on a loaded 2-core machine
(measured here: the fixed cost of a request varies between 4 and 9 ms from run to run)."""
ITLS = (5.0, 10.0, 20.0, 40.0)
"""Inter-token times of the goodput stubs, against a TPOT bound of 15 ms."""


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    sources = [
        StubSource("stub", StubSpec(50.0, 10.0)),
        StubSource("stub2", StubSpec(50.0, 10.0, tokens_per_chunk=2)),
        StubSource("zero", StubSpec(1.0, 0.0)),
        *(StubSource(f"itl{int(i)}", StubSpec(10.0, i)) for i in ITLS),
    ]
    with BackgroundServer(ModelRepository(), ServerConfig(port=0), OpenAiService(sources)) as srv:
        yield f"openai+http://127.0.0.1:{srv.port}/v1"


def quick_request(**kw: object) -> RunRequest:
    base: dict[str, object] = {
        "stop": StopMode.FIXED,
        "min_queries": 8,
        "min_duration_s": 0.2,
        "warmup_queries": 2,
        "warmup_s": 0.0,
        "idle_s": 0.0,
    }
    base.update(kw)
    return RunRequest(**base)  # type: ignore[arg-type]


def run(request: RunRequest, out: Path) -> list[Report]:
    result = execute(expand(request), ExecuteOptions(out=out, sigterm_as_interrupt=False))
    assert result.status is ExitStatus.COMPLETE, [
        (w.report.errors, w.report.status) for w in result.written
    ]
    return [report_io.read_report(w.path) for w in result.written]


def metrics(report: Report) -> TokenMetrics:
    assert report.generation is not None
    return report.generation.metrics


def stub_run(
    url: str, model: str, out: Path, tokens: int = 20, queries: int = 8, **gen: object
) -> Report:
    settings = GenerationSettings(output_tokens=tokens, **gen)  # type: ignore[arg-type]
    (report,) = run(
        quick_request(endpoint=url, models=(model,), generation=settings, min_queries=queries),
        out / model,
    )
    return report


def test_stub_ttft_and_tpot_within_5_percent(stub: str, tmp_path: Path) -> None:
    report = stub_run(stub, "stub", tmp_path, queries=20)
    zero = stub_run(stub, "zero", tmp_path, tokens=2, queries=20)
    m, z = metrics(report), metrics(zero)
    assert report.status is RunStatus.COMPLETE and report.backend is not None
    assert report.backend.name == "openai" and report.scenario.kind is ScenarioKind.SINGLE_STREAM
    assert m.ttft is not None and m.tpot is not None and m.e2el is not None
    assert z.ttft is not None
    fixed = z.ttft.p50 - 1.0
    print(f"TTFT p50 {m.ttft.p50:.2f} ms, fixed cost {fixed:.2f} ms, TPOT {m.tpot.p50:.3f} ms")
    assert m.tpot.p50 == pytest.approx(10.0, rel=0.05)
    assert m.ttft.min >= 50.0  # never early
    # within 5% once the request's fixed cost is off, with JITTER_MS for a loaded machine
    assert m.ttft.p50 - max(fixed, 0.0) <= 50.0 * 1.05 + JITTER_MS
    # server's counts reported, no tokenizer on the client: nothing invented
    assert m.succeeded == m.requests >= 8 and m.output_tokens == 20 * m.succeeded
    assert m.token_counts.server_total == m.output_tokens and m.token_counts.client_total is None
    assert not m.multi_token_chunks
    # the cold first request and the raw per-request samples
    assert report.cold_start is not None and report.cold_start.first_inference_ms is not None
    assert report.results is not None and report.results.raw is not None
    files = list((tmp_path / "stub").glob("*.json"))
    arrays = report_io.load_samples(report, files[0])
    offsets = arrays["gen_chunk_offsets"]
    assert len(arrays["gen_scheduled_ns"]) == m.requests == len(offsets) - 1
    assert np.all(np.diff(offsets) == 20) and len(arrays["gen_chunk_ns"]) == offsets[-1]
    assert set(arrays["gen_error"].tolist()) == {""}
    assert np.all(arrays["gen_output_tokens_server"] == 20)
    assert np.all(arrays["gen_output_tokens_client"] == -1)
    assert '"generation"' in files[0].read_text()


def test_two_tokens_a_chunk_tpot_and_chunk_gap_differ(stub: str, tmp_path: Path) -> None:
    m = metrics(stub_run(stub, "stub2", tmp_path))
    assert m.tpot is not None and m.chunk_gap is not None
    # per token: still 10 ms; per chunk: two tokens arrive together every 20 ms
    assert m.tpot.p50 == pytest.approx(10.0, rel=0.05)
    assert m.chunk_gap.p50 == pytest.approx(20.0, rel=0.05)
    assert m.output_tokens == 20 * m.succeeded
    # the client counts no chunk here: 20 reported tokens over 11 chunks (the first token
    # alone at TTFT, then pairs) flag it, and their ratio is the mean
    assert m.multi_token_chunks and m.tokens_per_chunk == pytest.approx(20 / 11)


def test_goodput_falls_as_inter_token_time_rises_past_the_slo(stub: str, tmp_path: Path) -> None:
    slo = parse_slo("tpot=15")
    fractions = []
    for itl in ITLS:
        m = metrics(stub_run(stub, f"itl{int(itl)}", tmp_path, tokens=8, slo=slo))
        assert m.goodput is not None and m.goodput.slo == slo
        fractions.append(m.goodput.good_fraction)
        if m.goodput.good:
            assert m.goodput.requests_per_s > 0
    print("good fraction by inter-token ms:", dict(zip(ITLS, fractions, strict=True)))
    assert fractions[0] == 1.0 and fractions[-1] == 0.0
    assert all(a >= b for a, b in itertools.pairwise(fractions))


def test_open_loop_gamma_and_a_peak_search_that_finds_none(stub: str, tmp_path: Path) -> None:
    # TTFT of 10 ms can never meet a 5 ms bound: the search halves 20/s down to 1/16 of it
    settings = GenerationSettings(
        output_tokens=4, slo=parse_slo("ttft=5"), find_peak=True, burstiness=0.5
    )
    request = quick_request(
        endpoint=stub,
        models=("itl5",),
        scenarios=(ScenarioKind.SERVER,),
        min_queries=3,
        min_duration_s=0.5,
        network=NetworkRequest(rate_qps=20.0, arrival=ArrivalProcess.GAMMA),
        generation=settings,
    )
    (report,) = run(request, tmp_path)
    gen = report.generation
    assert gen is not None and gen.peak_rate_rps is None and gen.peak_target_fraction == 0.9
    assert gen.burstiness == 0.5 and report.scenario.arrival is ArrivalProcess.GAMMA
    rates = [p.offered_rate_rps for p in gen.sweep]
    assert rates == [20.0, 10.0, 5.0, 2.5, 1.25]
    assert all(p.meets is False and p.good_fraction == 0.0 for p in gen.sweep)


def test_prompts_file_sets_each_request(stub: str, tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "one two three", "max_tokens": 3}\n\n{"prompt": "four"}\n')
    report = stub_run(stub, "zero", tmp_path, tokens=5, prompts_file=path)
    gen = report.generation
    assert gen is not None and gen.prompts == "file prompts.jsonl (2 prompts)"
    m = gen.metrics
    # requests alternate 3 and 5 tokens (the second line takes --output-tokens)
    assert m.output_tokens in {4 * m.succeeded, 4 * m.succeeded + 1, 4 * m.succeeded - 1}
    assert gen.max_tokens_mean == 4.0


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"generation": GenerationSettings(find_peak=True)}, "--find-peak"),
        ({"generation": GenerationSettings(slo=parse_slo("ttft=5"))}, "generative backends"),
        ({"scenarios": (ScenarioKind.OFFLINE,)}, "offline"),
        ({"generation": GenerationSettings(burstiness=0.0)}, "--burstiness"),
    ],
)
def test_bad_generative_requests_are_usage_errors(
    kw: dict[str, object], needle: str, tmp_path: Path
) -> None:
    backends = () if needle == "generative backends" else ("onnxruntime-genai",)
    models = ("tabular-mlp",) if not backends else ("tiny-llm",)
    with pytest.raises(InvalidOptionError, match=needle):
        expand(quick_request(models=models, backends=backends, **kw))


def test_bad_prompts_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": ""}\n')
    with pytest.raises(InvalidOptionError, match=r"p\.jsonl:1"):
        PromptSet.from_jsonl(path)
    path.write_text("not json\n")
    with pytest.raises(InvalidOptionError, match="not JSON"):
        expand(
            quick_request(
                models=("tiny-llm",),
                backends=("onnxruntime-genai",),
                generation=GenerationSettings(prompts_file=path),
            )
        )


def test_tiny_llm_on_onnxruntime_genai(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is the genai extra")
    request = quick_request(
        models=("tiny-llm",),
        backends=("onnxruntime-genai",),
        scenarios=(ScenarioKind.SINGLE_STREAM, ScenarioKind.CONCURRENCY),
        network=NetworkRequest(concurrency=(2,)),
        generation=GenerationSettings(output_tokens=12, slo=parse_slo("e2el=10000")),
        collectors=("estimate",),
        collector_options=CollectorOptions(idle_watts=2.0, peak_watts=6.0),
    )
    single, conc = run(request, tmp_path)
    for report in (single, conc):
        gen = report.generation
        assert gen is not None and report.model.sha256_verified
        m = gen.metrics
        assert m.succeeded == m.requests >= 8 and m.output_tokens == 12 * m.succeeded
        # in process both sides count every token: equal, one token a chunk
        assert m.token_counts.difference == 0 and m.token_counts.compared == m.succeeded
        assert m.tokens_per_chunk == 1.0 and not m.multi_token_chunks
        assert m.ttft is not None and m.tpot is not None and m.chunk_gap is not None
        assert m.goodput is not None and m.goodput.good_fraction == 1.0
        # energy over the timed window, labelled as the estimate it is
        assert gen.energy_method is MeasurementMethod.ESTIMATED
        assert gen.joules_per_output_token is not None and gen.joules_per_output_token > 0
        assert gen.joules_per_request is not None
        assert RunFlag.ENERGY_ESTIMATED in report.flags
    assert conc.scenario.concurrency == 2 and conc.generation is not None
    (point,) = conc.generation.sweep
    assert point.concurrency == 2 and point.output_tokens_per_s > 0


def test_report_generation_section_and_figures(stub: str, tmp_path: Path) -> None:
    request = quick_request(
        endpoint=stub,
        models=("stub2",),
        scenarios=(ScenarioKind.CONCURRENCY,),
        network=NetworkRequest(concurrency=(1, 2)),
        generation=GenerationSettings(output_tokens=6, slo=parse_slo("ttft=500")),
    )
    run(request, tmp_path / "runs")
    doc = build_from_paths([tmp_path / "runs"])
    headings = [b.text for b in doc.blocks if isinstance(b, Heading)]
    assert "Generation" in headings
    (table,) = [b for b in doc.blocks if isinstance(b, TableBlock) and "TPOT" in b.headers]
    assert len(table.rows) == 2 and all("multi-token chunks" in row[5] for row in table.rows)
    figures = {b.figure.id: b.figure for b in doc.blocks if isinstance(b, FigureBlock)}
    assert {"gen-ttft-cdf", "gen-gap-cdf"} <= set(figures)
    (conc,) = [f for i, f in figures.items() if i.startswith("gen-tokens-concurrency")]
    assert isinstance(conc, LineFigure)
    (line,) = conc.series
    assert [x for x, _ in line.points] == [1.0, 2.0] and all(y > 0 for _, y in line.points)
    gap = figures["gen-gap-cdf"]
    assert isinstance(gap, LineFigure) and "A chunk is not a token" in gap.caption
    html = write_report_file([tmp_path / "runs"], tmp_path / "r.html")
    assert "Time to first token CDF" in html.read_text()
    # a run without a generation section renders no Generation heading
    plain = build_from_paths([Path(__file__).parent / "fixtures" / "report_v1.json"])
    assert "Generation" not in [b.text for b in plain.blocks if isinstance(b, Heading)]


def test_run_cli_openai_endpoint_json(
    stub: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["run", "--endpoint", stub, "-m", "zero", "-o", str(tmp_path), "--idle-s", "0"]
    quick = ["--stop", "fixed", "--min-queries", "4", "--min-duration", "0.1"]
    rc = main([*base, *quick, "--output-tokens", "3", "--slo", "ttft=1000", "--json"])
    assert rc == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["scenario"] == "single-stream" and row["good_fraction"] == 1.0
    assert row["ttft_p50_ms"] > 0 and row["output_tokens_per_s"] > 0
    # bad generative flags: one line, exit 2, nothing written
    assert main([*base, "--slo", "ttft=fast"]) == 2
    assert main([*base, "--find-peak", "-s", "server", "--rate", "5"]) == 2
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_ctrl_c_keeps_the_measured_requests(tmp_path: Path) -> None:
    """SIGINT in the measured part: exit 130, the run's report marked interrupted with the
    requests measured so far (figures and sidecar), as for any run."""
    source = StubSource("slow", StubSpec(20.0, 5.0))
    with BackgroundServer(ModelRepository(), ServerConfig(port=0), OpenAiService([source])) as srv:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tippingpoint",
                "run",
                "--endpoint",
                f"openai+http://127.0.0.1:{srv.port}/v1",
                "-m",
                "slow",
                "--stop",
                "fixed",
                "--min-duration",
                "60",
                "--max-duration",
                "120",
                "--warmup-queries",
                "2",
                "--warmup-duration",
                "0",
                "--output-tokens",
                "4",
                "--idle-s",
                "0",
                "-o",
                str(tmp_path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90
        # the cold request and 2 warm-up requests, then at least 5 measured ones
        while time.monotonic() < deadline and source._requests < 8:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    (path,) = tmp_path.glob("*.json")
    report = report_io.read_report(path)
    assert report.status is RunStatus.INTERRUPTED and RunFlag.INTERRUPTED in report.flags
    assert report.generation is not None
    m = report.generation.metrics
    assert m.succeeded >= 4 and m.output_tokens == 4 * m.succeeded
    arrays = report_io.load_samples(report, path)
    assert len(arrays["gen_scheduled_ns"]) == m.requests


def test_tiny_llm_served_counted_on_both_sides(tmp_path: Path) -> None:
    """tiny-llm behind ``tippingpoint serve``'s OpenAI endpoint, its tokenizer on the client:
    the server's usage and the client's count are both kept, compared request by request."""
    pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is the genai extra")
    pytest.importorskip("tokenizers", reason="tokenizers counts on the client (genai extra)")
    from tippingpoint.harness.matrix import BackendOption
    from tippingpoint.models.registry import resolve_model
    from tippingpoint.server.openai import load_sources

    tokenizer = resolve_model("tiny-llm").path.parent / "tokenizer.json"
    sources = load_sources(["tiny-llm"], None)
    with BackgroundServer(ModelRepository(), ServerConfig(port=0), OpenAiService(sources)) as srv:
        request = quick_request(
            endpoint=f"openai+http://127.0.0.1:{srv.port}",
            models=("tiny-llm",),
            options=(BackendOption("tokenizer", str(tokenizer)),),
            generation=GenerationSettings(output_tokens=8),
        )
        (report,) = run(request, tmp_path)
    assert report.backend is not None and report.backend.name == "openai"
    m = metrics(report)
    tc = m.token_counts
    assert m.succeeded == m.requests >= 8
    assert tc.server_total == 8 * m.succeeded and tc.client_total is not None
    assert tc.compared == m.succeeded
    assert tc.difference == tc.server_total - tc.client_total
    print(f"server {tc.server_total}, client {tc.client_total}, differing in {tc.differing}")
