"""``run --baseline``: agreement of a model file with another (fp32 vs quantised) on one input set.

The comparison runs as the accuracy pass of each run: the baseline file is loaded on the same
backend, both sessions see the same real-valued samples (each converted to its own dtype,
quantised for int8/uint8 inputs), and :func:`tippingpoint.models.accuracy.compare_sessions`
scores them: top-1 agreement for class scores, cosine similarity and error relative to the
baseline's output range otherwise (the rule: :func:`tippingpoint.models.accuracy.class_scores_rule`;
``--agreement-metric`` overrides), each with a 95% interval judged against its floor.

Samples are the rows of ``--inputs`` arrays when given, otherwise generated: token ids for
integer inputs without quantisation, values spread over the representable range for inputs that
either file quantises, standard normal floats for the rest. Generated samples grow from 64,
doubling, until every interval is within ±1 percentage point or a time cap
(:class:`tippingpoint.models.accuracy.SampleGrowth`); the report carries the count, the cap and
why it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from tippingpoint.backends.base import Backend, Session
from tippingpoint.core.errors import InvalidShapeError
from tippingpoint.core.schema import AccuracyResult
from tippingpoint.core.types import OptionValue, TensorSpec
from tippingpoint.harness.inputs import check_input_array, generate_input, resolve_shape
from tippingpoint.models.accuracy import (
    MLPERF_FLOOR,
    AgreementMetric,
    SampleGrowth,
    compare_growing,
    compare_sessions,
)


def _quant_range(spec: TensorSpec) -> tuple[float, float] | None:
    if spec.quant is None:
        return None
    info = np.iinfo(np.dtype(spec.dtype))
    lo = (info.min - spec.quant.zero_point) * spec.quant.scale
    hi = (info.max - spec.quant.zero_point) * spec.quant.scale
    return float(lo), float(hi)


def generate_samples(
    candidate: Sequence[TensorSpec],
    baseline: Sequence[TensorSpec],
    count: int,
    seed: int,
    overrides: Mapping[str, tuple[int, ...]],
) -> list[list[np.ndarray]]:
    """``count`` real-valued samples (batch 1) valid for both files' inputs, seeded."""
    if len(candidate) != len(baseline):
        raise InvalidShapeError(
            f"the model has {len(candidate)} inputs, the baseline {len(baseline)}",
            "compare two exports of the same model",
        )
    rng = np.random.default_rng(seed)
    samples: list[list[np.ndarray]] = []
    for _ in range(count):
        sample = []
        for cand, base in zip(candidate, baseline, strict=True):
            shape = resolve_shape(base, 1, overrides)
            span = _quant_range(cand) or _quant_range(base)
            if span is not None:
                sample.append(rng.uniform(*span, size=shape).astype(np.float32))
            elif np.dtype(base.dtype).kind in "iu":
                sample.append(generate_input(base, shape, rng))
            else:
                sample.append(rng.standard_normal(shape).astype(np.float32))
        samples.append(sample)
    return samples


def file_samples(
    feeds: Mapping[str, np.ndarray], specs: Sequence[TensorSpec]
) -> list[list[np.ndarray]]:
    """Samples from ``--inputs`` arrays: row i of every input's array is sample i (checked as the
    performance run checks them, :func:`tippingpoint.harness.inputs.check_input_array`)."""
    missing = [s.name for s in specs if s.name not in feeds]
    if missing:
        raise InvalidShapeError(
            f"--inputs has no array for input '{missing[0]}'",
            "save one array per model input, named as the input",
        )
    counts = {len(feeds[s.name]) for s in specs}
    if len(counts) != 1:
        raise InvalidShapeError(
            "--inputs arrays have different numbers of rows", "give every input the same rows"
        )
    for s in specs:
        check_input_array(np.asarray(feeds[s.name]), s)
    rows = counts.pop()
    return [[feeds[s.name][i : i + 1] for s in specs] for i in range(rows)]


def baseline_hook(
    baseline: Path,
    backend: Backend,
    options: Mapping[str, OptionValue],
    *,
    seed: int = 0,
    overrides: Mapping[str, tuple[int, ...]] | None = None,
    feeds: Mapping[str, np.ndarray] | None = None,
    growth: SampleGrowth | None = None,
    metric: AgreementMetric | None = None,
    floor: float = MLPERF_FLOOR,
) -> Callable[[Session], AccuracyResult]:
    """An accuracy hook scoring the run's session against ``baseline`` on ``backend``."""

    def hook(session: Session) -> AccuracyResult:
        with backend.load(baseline, options) as base:
            if feeds is not None:
                samples = file_samples(feeds, base.inputs)
                dataset = f"--inputs ({len(samples)} rows) vs baseline {baseline.name}"
                return compare_sessions(
                    session, base, samples, dataset=dataset, metric=metric, floor=floor, seed=seed
                )

            def generate(count: int) -> list[list[np.ndarray]]:
                return generate_samples(session.inputs, base.inputs, count, seed, overrides or {})

            result = compare_growing(
                session, base, generate, dataset="generated", metric=metric, floor=floor,
                growth=growth, seed=seed,
            )  # fmt: skip
            dataset = (
                f"generated (seed {seed}, {result.samples} samples) vs baseline {baseline.name}"
            )
            return result.model_copy(update={"dataset": dataset})

    return hook
