"""The suite LLM's quality on onnxruntime-genai in the emulated arm64 guest (called by
.ci/arm-check after its short single-stream run of tiny-llm, whose report arm_reports.py checks).

For each variant of tiny-llm (fp32, int4): verify its files against the manifest, load it on the
``onnxruntime-genai`` backend and measure it as the manifest's build did (perplexity on the
held-out windows, greedy continuations of the probe prompts), then compare with the figures the
manifest recorded on x86-64:

* the host is aarch64 and the fingerprint says emulated;
* fp32: perplexity within 1e-3 (relative) of the manifest's and the same probe agreement;
* int4: perplexity within 1e-2 (its int8-activation kernels differ by CPU; its greedy
  continuations may then part from x86's, so their agreement is printed, not compared).

    python .ci/arm_genai.py
"""

from __future__ import annotations

import sys

from tippingpoint.backends.genai import GenAiBackend
from tippingpoint.harness.fingerprint import host_fingerprint
from tippingpoint.models.generative import LLM_DIR, GenerativeVariant, resolve_generative
from tippingpoint.models.llm_build import EvalSet, measure_variant

PPL_TOLERANCE = {GenerativeVariant.FP32: 1e-3, GenerativeVariant.INT4: 1e-2}


def check_variant(variant: GenerativeVariant) -> list[str]:
    """Measure one variant; the problems found (empty: it passed)."""
    entry, art, config = resolve_generative("tiny-llm", variant)  # sha256 of every file
    evals = EvalSet.load(LLM_DIR / entry.eval.file)
    with GenAiBackend().load(config, {"intra_op_threads": 1}) as session:
        desc = session.describe()
        quality = measure_variant(session, evals, entry.reference_perplexity)
    want = art.quality
    problems: list[str] = []
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
    print(
        f"arm-check: {'FAIL' if problems else 'ok  '} tiny-llm {variant.value} on "
        f"{desc.name} ({desc.runtime} {desc.runtime_version}): perplexity "
        f"{quality.perplexity:.6f} (x86 manifest {want.perplexity:.6f}), probe agreement "
        f"{quality.probe_token_agreement:.3f} (x86 {want.probe_token_agreement:.3f}) "
        f"{'; '.join(problems)}"
    )
    return problems


def main() -> int:
    """Check both variants; non-zero on any problem."""
    host = host_fingerprint()
    failed = 0
    if host.machine != "aarch64" or not host.emulated:
        print(f"arm-check: FAIL host {host.machine}, emulated={host.emulated}", file=sys.stderr)
        failed += 1
    for variant in (GenerativeVariant.FP32, GenerativeVariant.INT4):
        failed += bool(check_variant(variant))
    print(f"arm-check: tiny-llm quality on onnxruntime-genai: {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
