"""The AccuracyOnly pass: run a session over a model's evaluation set and score it.

Same code path as the performance run (``Session.bind`` then the bound call), as a separate
pass. Two kinds of accuracy, and the report says which:

* ``labelled``: top-1 accuracy against real labels (breast cancer, digits); the reference is the
  fp32 torch model's accuracy on the same samples;
* ``agreement``: no real labels exist, so the figure is agreement with the fp32 torch outputs
  (top-1 agreement for classifiers, mean cosine similarity for reconstructions); the reference
  is 1.0 by definition. :func:`compare_sessions` scores one file against another the same way
  (bring-your-own pairs, ``--baseline``).

The fp32 reference is the PyTorch model, not an exported fp32 file: its outputs on every sample
are stored in the evaluation set (``EvalSet.references``) when the suite is built, so agreement
needs no second session. Every result carries agreement with those outputs (top-1, max/mean
absolute error, cosine), the accuracy delta (value - reference value) and the ratio to the
reference; a variant whose value is below ``floor`` (MLPerf's 99%) of the reference is flagged.

It sits with the models, below the harness: ``make models`` (:mod:`tippingpoint.models.build`)
scores every exported file with it, and the harness calls it for ``--accuracy`` and
``--baseline``; it needs only a session, the evaluation sets and the report contract.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np

from tippingpoint.backends.base import Session
from tippingpoint.core.errors import UnknownModelError
from tippingpoint.core.schema import (
    AccuracyGate,
    AccuracyKind,
    AccuracyResult,
    ConfidenceInterval,
)
from tippingpoint.core.stats import bootstrap_mean_ci, wilson_interval
from tippingpoint.core.types import TensorSpec
from tippingpoint.models.datasets import EvalSet, Metric, load_eval_set
from tippingpoint.models.manifest import suite_manifests, verify_file

MLPERF_FLOOR = 0.99
"""MLPerf's accuracy target: at least 99% of the fp32 reference."""

COSINE_FLOOR = 0.99
"""Reconstruction, regression and embedding outputs: lowest mean cosine similarity."""

RELATIVE_ERROR_LIMIT = 0.10
"""Highest mean absolute error as a share of the baseline's output range (max - min). A coarse
guard against gross error (cosine is the sharp check): int8 reconstructions of generated inputs
sit near 5%, of real inputs near 0.3%."""

TARGET_HALF_WIDTH = 0.01
"""Generated samples grow until every gate's 95% interval is within ±1 percentage point."""

SAMPLE_TIME_CAP_S = 20.0
"""... or until this many seconds of comparison have passed."""

START_SAMPLES = 64
MAX_SAMPLES = 16_384
WILSON = "wilson score interval"
BOOTSTRAP = "bootstrap percentile interval of the mean"
BOOTSTRAP_RESAMPLES = 2_000


class AgreementMetric(str, Enum):
    """How a file's outputs are compared with a baseline's (``--agreement-metric``)."""

    TOP1 = "top1"
    COSINE = "cosine"
    RELATIVE_ERROR = "relative-error"


_EMBEDDING_NAMES = ("embed", "feature", "hidden", "pooler", "latent", "reconstruct", "decoded")
_CLASS_NAMES = ("logit", "prob", "softmax", "score", "class", "label")


def prepare_input(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Convert one decoded input to the session's dtype, quantising floats for int8/uint8 inputs."""
    dtype = np.dtype(spec.dtype)
    if array.dtype == dtype:
        return array
    if dtype.kind in "iu" and array.dtype.kind == "f" and spec.quant is not None:
        info = np.iinfo(dtype)
        q = np.round(array / spec.quant.scale + spec.quant.zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)
    return array.astype(dtype)


def dequantize_output(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """An output as float32 real values (integer outputs mapped through scale/zero point)."""
    if spec.quant is not None and np.asarray(array).dtype.kind in "iu":
        return ((np.asarray(array, np.float32) - spec.quant.zero_point) * spec.quant.scale).astype(
            np.float32
        )
    return np.asarray(array, dtype=np.float32)


def run_samples(session: Session, samples: Iterable[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Run each sample (real-valued inputs, in model order) through ``session``.

    Inputs are converted to the session's dtypes (quantised for int8/uint8 inputs); the outputs
    come back dequantised and stacked along the first axis, one array per model output.
    """
    in_specs, out_specs = list(session.inputs), list(session.outputs)
    per_output: list[list[np.ndarray]] = [[] for _ in out_specs]
    for sample in samples:
        feeds = [prepare_input(a, s) for a, s in zip(sample, in_specs, strict=True)]
        outs = session.bind(feeds)()
        for j, (out, spec) in enumerate(zip(outs, out_specs, strict=True)):
            per_output[j].append(dequantize_output(out, spec))
    return [np.concatenate(chunks, axis=0) for chunks in per_output]


def run_eval_set(session: Session, eval_set: EvalSet) -> list[np.ndarray]:
    """Run every sample of ``eval_set``, batch 1, through ``session``."""
    return run_samples(session, (eval_set.sample(i) for i in range(eval_set.samples)))


@dataclass(frozen=True)
class Agreement:
    """How closely outputs match the fp32 reference outputs, sample by sample."""

    top1: float | None
    max_abs_error: float
    mean_abs_error: float
    cosine_similarity: float


def agreement(outputs: np.ndarray, reference: np.ndarray, classifier: bool) -> Agreement:
    """Top-1 agreement (classifiers), max/mean absolute error and mean per-sample cosine."""
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"outputs {out.shape} and references {ref.shape} differ in shape")
    err = np.abs(out - ref)
    norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
    cos = np.where(norms > 0, (out * ref).sum(axis=1) / np.maximum(norms, 1e-300), 1.0)
    top1 = float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1))) if classifier else None
    return Agreement(top1, float(err.max()), float(err.mean()), float(cos.mean()))


def score(
    outputs: Sequence[np.ndarray],
    eval_set: EvalSet,
    reference_value: float,
    floor: float = MLPERF_FLOOR,
) -> AccuracyResult:
    """Score stacked outputs (first output) against labels or the fp32 torch reference outputs.

    ``reference_value`` is the fp32 torch model's value of the metric on the same samples
    (1.0 for agreement sets, whose references are those outputs themselves).
    """
    classifier = eval_set.metric is not Metric.COSINE
    agree = agreement(outputs[0], eval_set.references[0], classifier)
    out = outputs[0].reshape(len(outputs[0]), -1).astype(np.float64)
    ref = eval_set.references[0].reshape(len(eval_set.references[0]), -1).astype(np.float64)
    if eval_set.kind is AccuracyKind.LABELLED:
        if eval_set.labels is None:
            raise ValueError(f"labelled evaluation set {eval_set.dataset} has no labels")
        per_sample = (out.argmax(axis=1) == np.asarray(eval_set.labels)).astype(np.float64)
    elif classifier:
        per_sample = (out.argmax(axis=1) == ref.argmax(axis=1)).astype(np.float64)
    else:
        norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
        per_sample = np.where(norms > 0, (out * ref).sum(axis=1) / np.maximum(norms, 1e-300), 1.0)
    # the floor is on value / reference_value: judge that ratio's interval
    scale = reference_value if reference_value > 0 else 1.0
    gate = judge(
        eval_set.metric.value if classifier else Metric.COSINE.value, per_sample, floor * scale
    )
    value = gate.value
    relative = value / reference_value if reference_value > 0 else 0.0
    if reference_value <= 0:
        below, straddles = True, False
    else:
        below, straddles = gate.verdict == "below-floor", gate.verdict == "inconclusive"
    return AccuracyResult(
        kind=eval_set.kind,
        dataset=eval_set.dataset,
        samples=eval_set.samples,
        metric=eval_set.metric.value,
        value=value,
        reference_variant="fp32",
        reference_value=reference_value,
        relative_to_reference=relative,
        delta=value - reference_value,
        agreement_top1=agree.top1,
        max_abs_error=agree.max_abs_error,
        mean_abs_error=agree.mean_abs_error,
        cosine_similarity=agree.cosine_similarity,
        floor=floor,
        below_floor=below,
        inconclusive=straddles,
        interval=gate.interval,
    )


def evaluate(
    session: Session, eval_set: EvalSet, reference_value: float, floor: float = MLPERF_FLOOR
) -> AccuracyResult:
    """The AccuracyOnly pass of ``session`` on ``eval_set``."""
    return score(run_eval_set(session, eval_set), eval_set, reference_value, floor)


def _per_sample(spec: TensorSpec) -> tuple[int | None, ...]:
    return tuple(d for d in spec.shape[1:] if d != 1)


def class_scores_rule(
    reference: np.ndarray, output: TensorSpec | None, inputs: Sequence[TensorSpec]
) -> tuple[bool, str]:
    """Whether the baseline's outputs are class scores (judged by top-1) and why.

    The rule, first match wins, on the first output of the baseline:

    1. not one vector of at least 2 values per sample (a scalar, or a map with 2+ axes):
       regression / dense output;
    2. every row non-negative and summing to 1 (±1e-3): probabilities, class scores;
    3. the same per-sample shape as one of the inputs: a reconstruction (autoencoder);
    4. an output named like logits/probabilities/scores/classes: class scores; like an
       embedding/features/hidden state/reconstruction: not;
    5. every row of unit L2 norm (±1e-3): a normalised embedding;
    6. otherwise a vector of scores per sample: logits, class scores.
    """
    flat = reference.reshape(len(reference), -1).astype(np.float64)
    per = tuple(d for d in reference.shape[1:] if d != 1)
    if len(per) != 1 or per[0] < 2:
        return False, f"per-sample output shape {reference.shape[1:]} is not a score vector"
    if (flat >= 0).all() and (flat <= 1).all() and np.allclose(flat.sum(axis=1), 1, atol=1e-3):
        return True, "rows are probabilities (non-negative, summing to 1): class scores"
    for spec in inputs:
        if _per_sample(spec) == per:
            return False, f"output mirrors input '{spec.name}' ({per[0]} values): a reconstruction"
    name = output.name.lower() if output is not None else ""
    if any(k in name for k in _CLASS_NAMES):
        return True, f"output named '{name}': class scores"
    if any(k in name for k in _EMBEDDING_NAMES):
        return False, f"output named '{name}': an embedding or reconstruction"
    if np.allclose(np.linalg.norm(flat, axis=1), 1, atol=1e-3):
        return False, "rows have unit L2 norm: an embedding"
    return True, f"one vector of {per[0]} scores per sample: logits, class scores"


def judge(
    metric: str,
    per_sample: np.ndarray,
    floor: float,
    *,
    higher_is_better: bool = True,
    seed: int = 0,
) -> AccuracyGate:
    """``metric``'s mean over samples, its 95% interval and verdict against ``floor``.

    Proportions (``per_sample`` of 0/1, top-1 agreement) get the Wilson interval, the rest a
    bootstrap percentile interval of the mean. Below the floor only when the whole interval is
    on the wrong side of it; inconclusive when the interval straddles it.
    """
    values = np.asarray(per_sample, dtype=np.float64)
    n = len(values)
    value = float(values.mean())
    if metric == Metric.TOP1_AGREEMENT.value or metric == Metric.TOP1.value:
        lo, hi = wilson_interval(int(np.rint(values.sum())), n)
        interval = ConfidenceInterval(low=lo, high=hi, method=WILSON)
    else:
        lo, hi = bootstrap_mean_ci(values, resamples=BOOTSTRAP_RESAMPLES, seed=seed)
        interval = ConfidenceInterval(
            low=lo, high=hi, method=BOOTSTRAP, resamples=BOOTSTRAP_RESAMPLES
        )
    good, bad = (lo >= floor, hi < floor) if higher_is_better else (hi <= floor, lo > floor)
    verdict: Literal["pass", "below-floor", "inconclusive"] = (
        "pass" if good else "below-floor" if bad else "inconclusive"
    )
    return AccuracyGate(
        metric=metric,
        value=value,
        interval=interval,
        floor=floor,
        higher_is_better=higher_is_better,
        verdict=verdict,
    )


def _choose(
    metric: AgreementMetric | Metric | None,
    reference: np.ndarray,
    baseline: Session,
) -> tuple[tuple[AgreementMetric, ...], str]:
    if isinstance(metric, Metric):
        metric = AgreementMetric.COSINE if metric is Metric.COSINE else AgreementMetric.TOP1
    if metric is not None:
        return (metric,), f"--agreement-metric {metric.value}"
    outputs = list(baseline.outputs)
    scores, rule = class_scores_rule(reference, outputs[0] if outputs else None, baseline.inputs)
    if scores:
        return (AgreementMetric.TOP1,), rule
    return (AgreementMetric.COSINE, AgreementMetric.RELATIVE_ERROR), rule


def _gates(
    chosen: Sequence[AgreementMetric],
    outputs: np.ndarray,
    reference: np.ndarray,
    floor: float,
    seed: int,
) -> tuple[list[AccuracyGate], float]:
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"outputs {out.shape} and references {ref.shape} differ in shape")
    span = float(ref.max() - ref.min())
    rel = np.abs(out - ref).mean(axis=1) / span if span > 0 else np.abs(out - ref).mean(axis=1)
    gates = []
    for m in chosen:
        if m is AgreementMetric.TOP1:
            hits = (out.argmax(axis=1) == ref.argmax(axis=1)).astype(np.float64)
            gates.append(judge(Metric.TOP1_AGREEMENT.value, hits, floor, seed=seed))
        elif m is AgreementMetric.COSINE:
            norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
            cos = np.where(norms > 0, (out * ref).sum(axis=1) / np.maximum(norms, 1e-300), 1.0)
            gates.append(judge(Metric.COSINE.value, cos, COSINE_FLOOR, seed=seed))
        else:
            gates.append(
                judge(
                    AgreementMetric.RELATIVE_ERROR.value,
                    rel,
                    RELATIVE_ERROR_LIMIT,
                    higher_is_better=False,
                    seed=seed,
                )
            )
    return gates, float(rel.mean())


def _result(
    gates: Sequence[AccuracyGate],
    agree: Agreement,
    relative_error: float,
    *,
    dataset: str,
    samples: int,
    rule: str,
    growth: tuple[float, float, str] | None = None,
) -> AccuracyResult:
    primary = gates[0]
    below = any(g.verdict == "below-floor" for g in gates)
    straddles = not below and any(g.verdict == "inconclusive" for g in gates)
    error = not primary.higher_is_better
    return AccuracyResult(
        kind=AccuracyKind.AGREEMENT,
        dataset=dataset,
        samples=samples,
        metric=primary.metric,
        value=primary.value,
        reference_variant="baseline",
        reference_value=0.0 if error else 1.0,
        relative_to_reference=None if error else primary.value,
        delta=primary.value - (0.0 if error else 1.0),
        agreement_top1=agree.top1,
        max_abs_error=agree.max_abs_error,
        mean_abs_error=agree.mean_abs_error,
        cosine_similarity=agree.cosine_similarity,
        floor=primary.floor,
        below_floor=below,
        inconclusive=straddles,
        interval=primary.interval,
        relative_error=relative_error,
        metric_rule=rule,
        gates=tuple(gates),
        sample_target_half_width=growth[0] if growth else None,
        sample_time_cap_s=growth[1] if growth else None,
        sample_stop=growth[2] if growth else None,
    )


def compare_sessions(
    candidate: Session,
    baseline: Session,
    samples: Sequence[Sequence[np.ndarray]],
    *,
    dataset: str,
    metric: AgreementMetric | Metric | None = None,
    floor: float = MLPERF_FLOOR,
    seed: int = 0,
) -> AccuracyResult:
    """Agreement of ``candidate`` with ``baseline`` on the same inputs (``run --baseline``).

    ``samples`` are real-valued inputs (floats, or integer ids), one list per query; each
    session gets them in its own dtype. The metric follows the baseline's first output
    (:func:`class_scores_rule`): class scores -> top-1 agreement against ``floor``; any other
    output -> mean cosine similarity (floor :data:`COSINE_FLOOR`) and mean absolute error over
    the baseline's output range (at most :data:`RELATIVE_ERROR_LIMIT`), each judged on its 95%
    interval. ``metric`` overrides the rule (one gate then).
    """
    reference = run_samples(baseline, samples)[0]
    outputs = run_samples(candidate, samples)[0]
    chosen, rule = _choose(metric, reference, baseline)
    gates, rel = _gates(chosen, outputs, reference, floor, seed)
    agree = agreement(outputs, reference, classifier=AgreementMetric.TOP1 in chosen)
    return _result(gates, agree, rel, dataset=dataset, samples=len(samples), rule=rule)


@dataclass(frozen=True)
class SampleGrowth:
    """How far generated samples grow: doubling from ``start`` until every gate's interval is
    within ±``target_half_width``, the next doubling would pass ``time_cap_s`` (predicted from
    the time so far), or ``max_samples``."""

    target_half_width: float = TARGET_HALF_WIDTH
    time_cap_s: float = SAMPLE_TIME_CAP_S
    start: int = START_SAMPLES
    max_samples: int = MAX_SAMPLES


def compare_growing(
    candidate: Session,
    baseline: Session,
    generate: Callable[[int], Sequence[Sequence[np.ndarray]]],
    *,
    dataset: str,
    metric: AgreementMetric | Metric | None = None,
    floor: float = MLPERF_FLOOR,
    growth: SampleGrowth | None = None,
    seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> AccuracyResult:
    """:func:`compare_sessions` on generated samples whose count grows (:class:`SampleGrowth`).

    ``generate(n)`` returns the first ``n`` samples (the same prefix for every ``n``); only the
    new ones run. The metric is chosen on the first batch and kept.
    """
    rule_growth = growth or SampleGrowth()
    began = clock()
    outs: list[np.ndarray] = []
    refs: list[np.ndarray] = []
    n, target = 0, max(1, rule_growth.start)
    chosen: tuple[AgreementMetric, ...] = ()
    rule = ""
    while True:
        batch = list(generate(target))[n:]
        refs.append(run_samples(baseline, batch)[0])
        outs.append(run_samples(candidate, batch)[0])
        n = target
        reference, outputs = np.concatenate(refs), np.concatenate(outs)
        if not chosen:
            chosen, rule = _choose(metric, reference, baseline)
        gates, rel = _gates(chosen, outputs, reference, floor, seed)
        widest = max((g.interval.high - g.interval.low) / 2 for g in gates)
        elapsed = clock() - began
        following = min(2 * n, rule_growth.max_samples)
        if widest <= rule_growth.target_half_width:
            stop = f"95% interval within ±{rule_growth.target_half_width:.0%}"
        elif n >= rule_growth.max_samples:
            stop = f"max count {rule_growth.max_samples}"
        elif elapsed / n * following > rule_growth.time_cap_s:
            stop = f"time cap {rule_growth.time_cap_s:g} s (interval ±{widest:.2%})"
        else:
            target = following
            continue
        break
    agree = agreement(outputs, reference, classifier=AgreementMetric.TOP1 in chosen)
    return _result(
        gates,
        agree,
        rel,
        dataset=dataset,
        samples=n,
        rule=rule,
        growth=(rule_growth.target_half_width, rule_growth.time_cap_s, stop),
    )


def suite_eval_set(model: str) -> tuple[EvalSet, float]:
    """The evaluation set of suite model ``model`` (sha256 checked) and its fp32 reference value."""
    for folder, manifest in suite_manifests():
        for entry in manifest.models:
            if entry.name == model:
                path = folder / entry.dataset.eval.file
                verify_file(path, entry.dataset.eval.sha256)
                return load_eval_set(path), entry.dataset.reference_value
    raise UnknownModelError(
        f"--accuracy needs a suite model with an evaluation set; '{model}' has none",
        "use a suite model (tippingpoint models) or drop --accuracy",
    )


def accuracy_hook(model: str, floor: float = MLPERF_FLOOR) -> Callable[[Session], AccuracyResult]:
    """A runner accuracy hook for suite model ``model``: loads its eval set once."""
    eval_set, reference_value = suite_eval_set(model)

    def hook(session: Session) -> AccuracyResult:
        return evaluate(session, eval_set, reference_value, floor)

    return hook
