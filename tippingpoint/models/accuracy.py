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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tippingpoint.backends.base import Session
from tippingpoint.core.errors import UnknownModelError
from tippingpoint.core.schema import AccuracyKind, AccuracyResult
from tippingpoint.core.types import TensorSpec
from tippingpoint.models.datasets import EvalSet, Metric, load_eval_set
from tippingpoint.models.manifest import suite_manifests, verify_file

MLPERF_FLOOR = 0.99
"""MLPerf's accuracy target: at least 99% of the fp32 reference."""


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
    if eval_set.kind is AccuracyKind.LABELLED:
        if eval_set.labels is None:
            raise ValueError(f"labelled evaluation set {eval_set.dataset} has no labels")
        pred = outputs[0].reshape(len(outputs[0]), -1).argmax(axis=1)
        value = float(np.mean(pred == eval_set.labels))
    elif classifier:
        value = agree.top1 if agree.top1 is not None else 0.0
    else:
        value = agree.cosine_similarity
    relative = value / reference_value if reference_value > 0 else 0.0
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
        below_floor=relative < floor,
    )


def evaluate(
    session: Session, eval_set: EvalSet, reference_value: float, floor: float = MLPERF_FLOOR
) -> AccuracyResult:
    """The AccuracyOnly pass of ``session`` on ``eval_set``."""
    return score(run_eval_set(session, eval_set), eval_set, reference_value, floor)


def compare_sessions(
    candidate: Session,
    baseline: Session,
    samples: Sequence[Sequence[np.ndarray]],
    *,
    dataset: str,
    metric: Metric | None = None,
    floor: float = MLPERF_FLOOR,
) -> AccuracyResult:
    """Agreement of ``candidate`` with ``baseline`` on the same inputs (``run --baseline``).

    ``samples`` are real-valued inputs (floats, or integer ids), one list per query; each
    session gets them in its own dtype. The metric defaults to top-1 agreement when the first
    output has more than one column, cosine similarity otherwise.
    """
    reference = run_samples(baseline, samples)[0]
    outputs = run_samples(candidate, samples)[0]
    if metric is None:
        wide = reference.ndim == 2 and reference.shape[1] > 1
        metric = Metric.TOP1_AGREEMENT if wide else Metric.COSINE
    agree = agreement(outputs, reference, classifier=metric is not Metric.COSINE)
    value = agree.top1 if agree.top1 is not None else agree.cosine_similarity
    return AccuracyResult(
        kind=AccuracyKind.AGREEMENT,
        dataset=dataset,
        samples=len(samples),
        metric=metric.value,
        value=value,
        reference_variant="baseline",
        reference_value=1.0,
        relative_to_reference=value,
        delta=value - 1.0,
        agreement_top1=agree.top1,
        max_abs_error=agree.max_abs_error,
        mean_abs_error=agree.mean_abs_error,
        cosine_similarity=agree.cosine_similarity,
        floor=floor,
        below_floor=value < floor,
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
