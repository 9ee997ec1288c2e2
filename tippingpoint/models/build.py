"""``make models``: train the suite, export every variant, measure it, write the manifest.

Usage::

    python -m tippingpoint.models.build                 # core suite -> models/artifacts/
    python -m tippingpoint.models.build --suite full    # also resnet50, mobilenetv2-100-224
    python -m tippingpoint.models.build --only digits-cnn,resnet8
    python -m tippingpoint.models.build --all-pt2       # a .pt2 for every model (not committed)

Needs the ``export`` extra (torch, onnx, onnxruntime, scikit-learn, litert-torch,
ai-edge-quantizer). Each model is built under a fixed seed, single-threaded, with torch's
deterministic algorithms, so the same commit and package versions reproduce the same files.

Every model gets six files (fp32/fp16/int8 x ONNX/LiteRT). The models whose catalogue entry
has ``pt2=True`` (the small ones) also get an fp32 ``.pt2`` for the torch backend; the larger
ones have none committed because their ``.pt2`` would push the committed suite past its 25 MiB
budget, and ``--all-pt2`` writes them on demand.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tippingpoint.backends.base import Session
from tippingpoint.core.schema import AccuracyKind
from tippingpoint.models.accuracy import evaluate
from tippingpoint.models.datasets import DataBundle, EvalSet, Metric, build_data, save_eval_set
from tippingpoint.models.manifest import (
    ARTIFACTS_DIR,
    MANIFEST_NAME,
    Artifact,
    DatasetInfo,
    EvalFile,
    Manifest,
    ModelFormat,
    SuiteEntry,
    Variant,
    VariantAccuracy,
    load_manifest,
    package_versions,
    sha256_file,
)
from tippingpoint.models.suite.catalog import SuiteModel, Task, Tier, suite_model, suite_models

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tippingpoint.models.suite.catalog import Recipe

DEFAULT_SEED = 20240601
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 25 * 1024 * 1024
REPRODUCIBILITY = (
    "Regenerating with the same commit, seed and package versions (generated_by) on x86-64 "
    "gives byte-identical files, so identical accuracy figures (checked by building three "
    "times). Other package versions or CPUs may round differently in training and conversion; "
    "not bit-exact then. The tests bound what matters: every fp32 file within 1e-4 of the torch "
    "outputs stored in its eval set, and a rebuilt tabular-mlp within 1e-4 of the committed "
    "outputs with identical predictions. The .pt2 files (torch.export) are byte-identical "
    "across exports of the same weights under the same file name (fixed zip timestamps, "
    "content-derived serialization id; checked by exporting twice in separate processes)."
)
_PACKAGES = (
    "torch",
    "onnx",
    "onnxruntime",
    "litert-torch",
    "ai-edge-quantizer",
    "ai-edge-litert",
    "scikit-learn",
    "numpy",
)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed torch, use one thread and deterministic kernels; restore the settings afterwards."""
    import torch

    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)


def _adam(
    model: nn.Module,
    samples: int,
    minibatch_loss: Callable[[torch.Tensor], torch.Tensor],
    recipe: Recipe,
    seed: int,
) -> str:
    """Adam over shuffled minibatches of ``samples`` indices, ``minibatch_loss(idx)`` being the
    loss of the samples at ``idx``; leaves the model in eval mode and returns the recipe's
    first words."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    model.train()
    for _ in range(recipe.epochs):
        order = torch.randperm(samples, generator=gen)
        for start in range(0, samples, recipe.batch):
            idx = order[start : start + recipe.batch]
            opt.zero_grad()
            torch.autograd.backward(minibatch_loss(idx))
            opt.step()
    model.eval()
    return (
        f"trained from seeded init: Adam lr={recipe.lr}, {recipe.epochs} epochs, "
        f"batch {recipe.batch}"
    )


def train_classifier(
    model: nn.Module, x: np.ndarray, y: np.ndarray, recipe: Recipe, seed: int, about: str = ""
) -> str:
    """Adam on cross-entropy over shuffled minibatches; returns a one-line description."""
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()
    trained = _adam(model, len(xt), lambda idx: loss_fn(model(xt[idx]), yt[idx]), recipe, seed)
    return f"{trained}, cross-entropy, on {about or f'{len(x)} samples'}"


def train_autoencoder(
    model: nn.Module, x: np.ndarray, recipe: Recipe, seed: int, about: str = ""
) -> str:
    """Adam on reconstruction MSE over shuffled minibatches; returns a one-line description."""
    import torch
    from torch.nn.functional import mse_loss

    xt = torch.from_numpy(x)
    trained = _adam(model, len(xt), lambda idx: mse_loss(model(xt[idx]), xt[idx]), recipe, seed)
    return f"{trained}, reconstruction MSE, on {about or f'{len(x)} samples'}"


def recalibrate_batchnorm(model: nn.Module, data: Sequence[np.ndarray]) -> str:
    """Seeded random weights; BatchNorm statistics re-estimated on calibration data."""
    import torch

    kinds = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    norms = [m for m in model.modules() if isinstance(m, kinds)]
    if not norms:
        model.eval()
        return "seeded random initialisation (torch defaults), not trained"
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    model.train()
    with torch.no_grad():
        n = len(data[0])
        for start in range(0, n, 16):
            model(*(torch.from_numpy(a[start : start + 16]) for a in data))
    model.eval()
    return (
        "seeded random initialisation (torch defaults), not trained; BatchNorm running "
        f"statistics re-estimated on the {n} calibration samples so activations are normalised"
    )


def standardise_logits(model: nn.Module, data: Sequence[np.ndarray]) -> str:
    """Rescale the last linear layer so each logit has zero mean and unit std on ``data``.

    A data-dependent initialisation (as LSUV): without it an untrained classifier's logits
    share one large common component and nearly every input gets the same class, which would
    make top-1 agreement meaningless.
    """
    import torch

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    handle = last.register_forward_hook(lambda _m, _a, out: seen.append(out.detach()))
    try:
        with torch.no_grad():
            model.eval()(*(torch.from_numpy(a) for a in data))
    finally:
        handle.remove()
    logits = torch.cat(seen)
    mean, std = logits.mean(dim=0), logits.std(dim=0).clamp_min(1e-6)
    with torch.no_grad():
        last.weight.div_(std[:, None])
        last.bias.sub_(mean).div_(std)
    return (
        "; last linear layer rescaled so each logit has zero mean and unit std on them. "
        "Untrained, so its logits have small margins: fp16/int8 agreement here reflects "
        "rounding noise and overstates what a trained model would lose"
    )


def torch_outputs(model: nn.Module, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """fp32 torch outputs of ``model`` on stacked inputs, computed one sample at a time."""
    import torch

    outs = []
    with torch.no_grad():
        for i in range(len(inputs[0])):
            outs.append(model(*(torch.from_numpy(a[i : i + 1]) for a in inputs)).numpy())
    return np.concatenate(outs, axis=0)


def _prepare_model(entry: SuiteModel, data: DataBundle, seed: int) -> tuple[nn.Module, str]:
    model = entry.build()
    recipe = entry.recipe
    if data.train_inputs and recipe is not None:
        x, about = data.train_inputs[0], data.train_description
        if data.train_labels is None:
            return model, train_autoencoder(model, x, recipe, seed, about)
        return model, train_classifier(model, x, data.train_labels, recipe, seed, about)
    training = recalibrate_batchnorm(model, data.calibration)
    if entry.task is Task.CLASSIFICATION:
        training += standardise_logits(model, data.calibration)
    return model, training


def open_session(path: Path) -> Session:
    """A one-thread session on ``path`` from the harness's own backend for its format."""
    if path.suffix == ".onnx":
        from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend

        return OnnxRuntimeCpuBackend().load(path, {"intra_op_threads": 1})
    if path.suffix == ".pt2":
        from tippingpoint.backends.torch_backend import TorchBackend

        return TorchBackend().load(path, {"threads": 1})
    from tippingpoint.backends.litert import LiteRtBackend

    return LiteRtBackend().load(path, {"threads": 1})


def _runtime(fmt: ModelFormat) -> str:
    pkg = {ModelFormat.ONNX: "onnxruntime", ModelFormat.PT2: "torch"}.get(fmt, "ai-edge-litert")
    return f"{pkg} {version(pkg)}"


@dataclass(frozen=True)
class _Exported:
    variant: Variant
    format: ModelFormat
    path: Path


def export_all(
    model: nn.Module, entry: SuiteModel, data: DataBundle, out_dir: Path, *, pt2: bool = False
) -> list[_Exported]:
    """Write the six files (fp32/fp16/int8 x ONNX/LiteRT) of one model into ``out_dir``,
    and its fp32 ``.pt2`` when ``pt2``."""
    import torch

    from tippingpoint.models import quantization
    from tippingpoint.models.exporters import litert, onnx, torch_export

    names = [i.name for i in entry.inputs]
    example = [torch.from_numpy(a[:1]) for a in data.eval_decoded]

    def p(variant: Variant, fmt: ModelFormat) -> Path:
        return out_dir / f"{entry.name}.{variant.value}{fmt.suffix}"

    onnx_fp32 = p(Variant.FP32, ModelFormat.ONNX)
    onnx.export_fp32(model, example, onnx_fp32, names, [entry.output_name])
    onnx.convert_fp16(onnx_fp32, p(Variant.FP16, ModelFormat.ONNX))
    quantization.onnx_int8_static(
        onnx_fp32, p(Variant.INT8, ModelFormat.ONNX), names, data.calibration
    )
    tfl_fp32 = p(Variant.FP32, ModelFormat.TFLITE)
    litert.export_fp32(model, example, names, tfl_fp32)
    quantization.tflite_fp16_weights(tfl_fp32, p(Variant.FP16, ModelFormat.TFLITE))
    quantization.tflite_int8_static(tfl_fp32, p(Variant.INT8, ModelFormat.TFLITE), data.calibration)
    exported = [
        _Exported(v, f, p(v, f)) for f in (ModelFormat.ONNX, ModelFormat.TFLITE) for v in Variant
    ]
    if pt2:
        pt2_fp32 = p(Variant.FP32, ModelFormat.PT2)
        # a batch of two, so the batch dimension is exported as dynamic (not specialised to 1)
        torch_export.export_fp32(
            model, [torch.from_numpy(a[:2]) for a in data.eval_decoded], pt2_fp32
        )
        exported.append(_Exported(Variant.FP32, ModelFormat.PT2, pt2_fp32))
    for e in exported:
        e.path.chmod(0o644)  # the LiteRT writer creates executable files
    return exported


def _measure(exp: _Exported, eval_set: EvalSet, reference_value: float, folder: Path) -> Artifact:
    with open_session(exp.path) as session:
        result = evaluate(session, eval_set, reference_value)
        inputs, outputs = tuple(session.inputs), tuple(session.outputs)
    from tippingpoint.models.quantization import QUANT_DESCRIPTIONS

    return Artifact(
        variant=exp.variant,
        format=exp.format,
        file=exp.path.relative_to(folder).as_posix(),
        sha256=sha256_file(exp.path),
        size_bytes=exp.path.stat().st_size,
        inputs=inputs,
        outputs=outputs,
        quantization=QUANT_DESCRIPTIONS.get((exp.format, exp.variant)),
        accuracy=VariantAccuracy(
            kind=result.kind,
            metric=Metric(result.metric),
            value=result.value,
            samples=result.samples,
            runtime=_runtime(exp.format),
            relative_to_fp32=result.relative_to_reference or 0.0,
            agreement_top1=result.agreement_top1,
            max_abs_error=result.max_abs_error,
            mean_abs_error=result.mean_abs_error,
            cosine_similarity=result.cosine_similarity,
            below_floor=result.below_floor,
        ),
    )


def build_model(entry: SuiteModel, folder: Path, seed: int, *, all_pt2: bool = False) -> SuiteEntry:
    """Build, export and measure one suite model into ``folder``; return its manifest entry.

    The ``.pt2`` is written when the catalogue says so (``entry.pt2``) or ``all_pt2``.
    """
    import torch

    from tippingpoint.models.suite.profile import count_macs, count_parameters

    data = build_data(entry.dataset, seed)
    with deterministic(seed):
        model, training = _prepare_model(entry, data, seed)
        decoded = data.eval_decoded
        reference = torch_outputs(model, decoded)
        example = [torch.from_numpy(a[:1]) for a in decoded]
        params, macs = count_parameters(model), count_macs(model, example)
        metric = Metric.TOP1 if data.kind is AccuracyKind.LABELLED else Metric.TOP1_AGREEMENT
        if entry.task is Task.RECONSTRUCTION:
            metric = Metric.COSINE
        eval_path = folder / f"{entry.name}.eval.npz"
        save_eval_set(
            eval_path,
            dataset=data.name,
            kind=data.kind,
            metric=metric,
            inputs=data.eval_inputs,
            references=(reference,),
            labels=data.eval_labels,
        )
        eval_set = EvalSet(data.name, data.kind, metric, decoded, (reference,), data.eval_labels)
        ref_value = 1.0
        if data.kind is AccuracyKind.LABELLED and data.eval_labels is not None:
            ref_value = float(np.mean(reference.argmax(axis=1) == data.eval_labels))
        exported = export_all(model, entry, data, folder, pt2=entry.pt2 or all_pt2)
    artifacts = tuple(_measure(e, eval_set, ref_value, folder) for e in exported)
    return SuiteEntry(
        name=entry.name,
        description=entry.description,
        tier=entry.tier,
        task=entry.task,
        parameters=params,
        macs=macs,
        seed=seed,
        training=training,
        dataset=DatasetInfo(
            name=data.name,
            description=data.description,
            kind=data.kind,
            metric=metric,
            eval=EvalFile(
                file=eval_path.name,
                sha256=sha256_file(eval_path),
                size_bytes=eval_path.stat().st_size,
                samples=eval_set.samples,
            ),
            calibration=data.calibration_description,
            calibration_samples=len(data.calibration[0]),
            reference_value=ref_value,
        ),
        artifacts=artifacts,
    )


def write_manifest(folder: Path, entries: Sequence[SuiteEntry], seed: int) -> Manifest:
    """Merge ``entries`` into ``folder``'s manifest (replacing same-named models) and write it."""
    path = folder / MANIFEST_NAME
    keep: list[SuiteEntry] = []
    if path.is_file():
        built = {e.name for e in entries}
        keep = [m for m in load_manifest(path).models if m.name not in built]
    order = {m.name: i for i, m in enumerate(suite_models(Tier.FULL))}
    models = sorted([*keep, *entries], key=lambda m: order.get(m.name, len(order)))
    manifest = Manifest(
        generated_by=package_versions(_PACKAGES),
        seed=seed,
        reproducibility=REPRODUCIBILITY,
        models=tuple(models),
    )
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def check_sizes(folder: Path, manifest: Manifest) -> list[str]:
    """Problems with the committed-size budget (each file <= 5 MB, all <= 25 MB)."""
    problems = []
    total = 0
    for entry in manifest.models:
        files = [(a.file, a.size_bytes) for a in entry.artifacts]
        files.append((entry.dataset.eval.file, entry.dataset.eval.size_bytes))
        for name, size in files:
            total += size
            if size > MAX_FILE_BYTES:
                problems.append(f"{name} is {size / 2**20:.1f} MiB (limit 5 MiB)")
    if total > MAX_TOTAL_BYTES:
        problems.append(f"{folder} holds {total / 2**20:.1f} MiB (limit 25 MiB)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry of ``make models``."""
    parser = argparse.ArgumentParser(prog="python -m tippingpoint.models.build")
    parser.add_argument("--suite", choices=[t.value for t in Tier], default=Tier.CORE.value)
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=ARTIFACTS_DIR)
    parser.add_argument(
        "--all-pt2",
        action="store_true",
        help="write a .pt2 for every built model, not only the catalogue's small ones "
        "(the larger ones exceed the committed size budget: do not commit them)",
    )
    args = parser.parse_args(argv)
    tier = Tier(args.suite)
    chosen = (
        [suite_model(n.strip()) for n in args.only.split(",") if n.strip()]
        if args.only
        else list(suite_models(tier))
    )
    status = 0
    for folder_tier, folder in ((Tier.CORE, args.out), (Tier.FULL, args.out / "full")):
        todo = [m for m in chosen if m.tier is folder_tier]
        if not todo:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for m in todo:
            start = time.perf_counter()
            entry = build_model(m, folder, args.seed, all_pt2=args.all_pt2)
            entries.append(entry)
            figures = ", ".join(
                f"{a.variant.value}{a.format.suffix}={a.accuracy.value:.4f}"
                for a in entry.artifacts
            )
            took = time.perf_counter() - start
            print(f"{m.name}: {took:.1f}s {entry.dataset.metric.value} {figures}")
        manifest = write_manifest(folder, entries, args.seed)
        if folder_tier is Tier.CORE:
            for problem in check_sizes(folder, manifest):
                print(f"size budget: {problem}", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
