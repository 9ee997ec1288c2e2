"""The suite LLM on onnxruntime-genai in the emulated arm64 guest (called by .ci/arm-check).

For each variant of tiny-llm (fp32, int4): verify its files against the manifest, load it on the
``onnxruntime-genai`` backend, run a short single stream (the suite's probe prompts, 16 new
tokens each, end-of-sequence ignored) and summarise it with the token metrics a generative
run's report carries (``GenerationResults``, written as JSON under OUT_DIR); then measure its
quality through the same backend (perplexity on the held-out windows, greedy probe
continuations) and compare it with the figures the manifest recorded on x86-64:

* every request succeeded with exactly 16 tokens, one per chunk, server and client counts equal;
* the host is aarch64 and the fingerprint says emulated;
* fp32: perplexity within 1e-3 (relative) of the manifest's and the same probe agreement;
  int4: perplexity within 1e-2 (its int8-activation kernels differ by CPU; its greedy
  continuations may then part from x86's, so their agreement is printed, not compared).

Timings under qemu mean nothing and are printed as emulated only.

    python .ci/arm_genai.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from tippingpoint.backends.genai import GenAiBackend
from tippingpoint.backends.generative import request_timings
from tippingpoint.core.schema import GenerationResults
from tippingpoint.core.token_metrics import summarize
from tippingpoint.harness.fingerprint import host_fingerprint
from tippingpoint.models.generative import LLM_DIR, GenerativeVariant, resolve_generative
from tippingpoint.models.llm_build import EvalSet, measure_variant

NEW_TOKENS = 16
PPL_TOLERANCE = {GenerativeVariant.FP32: 1e-3, GenerativeVariant.INT4: 1e-2}


def check_variant(variant: GenerativeVariant, out: Path) -> list[str]:
    """Run one variant; the problems found (empty: it passed)."""
    entry, art, config = resolve_generative("tiny-llm", variant)  # sha256 of every file
    evals = EvalSet.load(LLM_DIR / entry.eval.file)
    problems: list[str] = []
    with GenAiBackend().load(config, {"intra_op_threads": 1}) as session:
        desc = session.describe()
        done = [session.generate(p, NEW_TOKENS).completion for p in evals.probes()]
        metrics = summarize(request_timings(done))
        record = GenerationResults(
            metrics=metrics,
            prompts=f"the suite's {len(done)} probe prompts (tiny-llm.eval.npz)",
            max_tokens_mean=float(NEW_TOKENS),
            ignore_eos=True,
        )
        (out / f"generation-{variant.value}.json").write_text(record.model_dump_json(indent=2))
        quality = measure_variant(session, evals, entry.reference_perplexity)
    if metrics.succeeded != len(done) or metrics.failed:
        problems.append(f"{metrics.succeeded}/{len(done)} requests succeeded ({metrics.failed})")
    if metrics.output_tokens != NEW_TOKENS * len(done):
        problems.append(f"{metrics.output_tokens} output tokens, {NEW_TOKENS * len(done)} asked")
    if metrics.tokens_per_chunk != 1.0 or metrics.token_counts.differing:
        problems.append("chunks or token counts disagree with the in-process token loop")
    want = art.quality
    rel = abs(quality.perplexity / want.perplexity - 1)
    if rel > PPL_TOLERANCE[variant]:
        problems.append(
            f"perplexity {quality.perplexity:.6f} on arm64, {want.perplexity:.6f} in the "
            f"manifest (relative {rel:.2e} > {PPL_TOLERANCE[variant]:g})"
        )
    exact = variant is GenerativeVariant.FP32
    if exact and quality.probe_token_agreement != want.probe_token_agreement:
        problems.append(
            f"probe agreement {quality.probe_token_agreement:.3f} on arm64, "
            f"{want.probe_token_agreement:.3f} in the manifest"
        )
    ttft = metrics.ttft.p50 if metrics.ttft else float("nan")
    tpot = metrics.tpot.p50 if metrics.tpot else float("nan")
    print(
        f"arm-check: {'FAIL' if problems else 'ok  '} tiny-llm {variant.value} on "
        f"{desc.name} ({desc.runtime} {desc.runtime_version}): {metrics.succeeded} requests, "
        f"{metrics.output_tokens} tokens; perplexity {quality.perplexity:.6f} (x86 manifest "
        f"{want.perplexity:.6f}), probe agreement {quality.probe_token_agreement:.3f} (x86 "
        f"{want.probe_token_agreement:.3f}); emulated TTFT p50 {ttft:.1f} ms, TPOT p50 "
        f"{tpot:.2f} ms {'; '.join(problems)}"
    )
    return problems


def main(argv: list[str]) -> int:
    """Check both variants; non-zero on any problem."""
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    host = host_fingerprint()
    failed = 0
    if host.machine != "aarch64" or not host.emulated:
        print(f"arm-check: FAIL host {host.machine}, emulated={host.emulated}", file=sys.stderr)
        failed += 1
    for variant in (GenerativeVariant.FP32, GenerativeVariant.INT4):
        failed += bool(check_variant(variant, out))
    print(f"arm-check: tiny-llm on onnxruntime-genai: {failed} failed (timings are emulated)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
