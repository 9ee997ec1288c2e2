"""Check the reports of an emulated arm64 run (called by .ci/arm-check inside the guest).

Every report must be complete, from an aarch64 host marked emulated (flag and fingerprint),
and every accuracy figure must equal the one the suite manifest recorded on x86 for the same
file: within one evaluation sample for top-1 metrics, 1e-3 relative for continuous ones. A
generative run's report must have every request succeed with the tokens it asked for.
Reports under a ``tflite-runtime`` folder must have run on tflite-runtime.

    python .ci/arm_reports.py RESULTS_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from tippingpoint.core.io import read_report
from tippingpoint.core.schema import Report, RunFlag, RunStatus
from tippingpoint.models.manifest import ModelFormat, Variant, suite_manifests


def recorded_accuracy(name: str, variant: str, suffix: str) -> tuple[float, int] | None:
    """The manifest's accuracy value and sample count for one suite file, if any."""
    for _, manifest in suite_manifests():
        for entry in manifest.models:
            if entry.name != name:
                continue
            for art in entry.artifacts:
                if (
                    art.variant is Variant(variant)
                    and ModelFormat(suffix.lstrip(".")) is art.format
                ):
                    return art.accuracy.value, art.accuracy.samples
    return None


def problems(report: Report, expected_runtime: str | None = None) -> list[str]:
    """What is wrong with one report of the emulated run."""
    out = []
    runtime = report.backend.runtime if report.backend else None
    if expected_runtime is not None and runtime != expected_runtime:
        out.append(f"ran on {runtime}, expected {expected_runtime}")
    if report.status is not RunStatus.COMPLETE:
        out.append(f"status {report.status.value}")
    if report.host.machine != "aarch64":
        out.append(f"machine {report.host.machine}")
    if not report.host.emulated or RunFlag.EMULATED not in report.flags:
        out.append("not marked emulated")
    gen = report.generation
    if gen is not None:  # a generative run: every request complete, with the tokens asked for
        tm = gen.metrics
        if tm.failed or tm.succeeded != tm.requests or tm.succeeded == 0:
            out.append(f"{tm.succeeded}/{tm.requests} requests succeeded {tm.failed or ''}")
        elif gen.ignore_eos and tm.output_tokens != round(gen.max_tokens_mean * tm.succeeded):
            out.append(f"{tm.output_tokens} output tokens, {gen.max_tokens_mean:g} a request asked")
        if tm.token_counts.differing:
            out.append(f"{tm.token_counts.differing} requests' token counts differ")
    acc = report.accuracy
    if acc is not None:
        m = report.model
        want = recorded_accuracy(m.name, m.variant, m.format)
        if want is None:
            out.append("no manifest accuracy to compare with")
        else:
            value, samples = want
            is_top1 = acc.metric.startswith("top1")
            tol = 1.0 / samples + 1e-9 if is_top1 else 1e-3 * max(abs(value), 1e-12)
            if abs(acc.value - value) > tol:
                out.append(f"{acc.metric} {acc.value:.6f} on arm64, {value:.6f} in the manifest")
    return out


def main(argv: list[str]) -> int:
    """Check every report under argv[0]; print one line per report; non-zero on any problem."""
    root = Path(argv[0])
    paths = sorted(p for p in root.rglob("*.json") if p.is_file())
    if not paths:
        print(f"arm-check: no reports under {root}", file=sys.stderr)
        return 1
    failed = 0
    accuracy_checked = 0
    for path in paths:
        report = read_report(path)
        # reports under a folder named for a runtime must come from that runtime
        expected = path.parent.name if path.parent.name == "tflite-runtime" else None
        found = problems(report, expected)
        m = report.model
        b = report.backend
        where = f"{b.name} ({b.runtime} {b.runtime_version})" if b else "?"
        label = f"{m.name} {m.variant}{m.format} on {where}"
        if report.accuracy is not None:
            accuracy_checked += 1
            label += f" {report.accuracy.metric}={report.accuracy.value:.4f}"
        print(f"arm-check: {'FAIL' if found else 'ok  '} {label} {'; '.join(found)}")
        failed += bool(found)
    print(
        f"arm-check: {len(paths)} reports, {accuracy_checked} accuracy checks against the x86 "
        f"manifest, {failed} failed (timings are emulated and are not Arm performance)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
