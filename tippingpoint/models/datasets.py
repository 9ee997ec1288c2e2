"""Evaluation and calibration data of the suite.

Two halves:

* the evaluation-set file format (``.npz``, read with numpy alone, no pickle), which the harness
  uses at run time: :class:`EvalSet`, :func:`load_eval_set`, :func:`save_eval_set`;
* the data builders used by ``make models`` (:func:`build_data`): real data where scikit-learn
  bundles it (breast cancer, digits, two sample photographs), seeded synthetic data elsewhere.
  They import scikit-learn lazily; nothing is downloaded.

File layout: ``meta`` (a JSON string: dataset, kind, metric), ``input_<i>`` stored arrays with
optional ``input_<i>_scale``/``input_<i>_offset`` (decoded = stored * scale + offset) and
``input_<i>_dtype``, optional ``labels``, and ``reference_<j>`` (the fp32 torch outputs). The
first axis of every array is the sample; one sample sliced as ``a[i:i+1]`` is a batch of one.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

import numpy as np

from tippingpoint.core.errors import ModelFileError
from tippingpoint.core.schema import AccuracyKind

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class Metric(str, Enum):
    """The headline figure of an evaluation set."""

    TOP1 = "top1"
    """top-1 accuracy against real labels"""
    TOP1_AGREEMENT = "top1-agreement"
    """share of samples whose top-1 class equals the fp32 model's"""
    COSINE = "cosine"
    """mean per-sample cosine similarity with the fp32 outputs (non-classifiers)"""


@dataclass(frozen=True)
class Encoded:
    """An array as stored, and how to decode it: ``stored * scale + offset`` cast to ``dtype``."""

    stored: np.ndarray
    dtype: str = "float32"
    scale: float | None = None
    offset: float | None = None

    def decode(self) -> np.ndarray:
        """The array the model consumes."""
        if self.scale is None:
            return self.stored.astype(self.dtype)
        real = self.stored.astype(np.float64) * self.scale + (self.offset or 0.0)
        return real.astype(self.dtype)


@dataclass(frozen=True)
class EvalSet:
    """Decoded evaluation inputs (one array per model input), labels if real, fp32 references."""

    dataset: str
    kind: AccuracyKind
    metric: Metric
    inputs: tuple[np.ndarray, ...]
    references: tuple[np.ndarray, ...]
    labels: np.ndarray | None = None

    @property
    def samples(self) -> int:
        """Number of samples (the first axis of every array)."""
        return int(self.inputs[0].shape[0])

    def sample(self, index: int) -> list[np.ndarray]:
        """The inputs of one sample as a batch of one, in model input order."""
        return [a[index : index + 1] for a in self.inputs]


def save_eval_set(
    path: Path,
    *,
    dataset: str,
    kind: AccuracyKind,
    metric: Metric,
    inputs: tuple[Encoded, ...],
    references: tuple[np.ndarray, ...],
    labels: np.ndarray | None = None,
) -> None:
    """Write an evaluation set; the bytes depend only on the arrays (fixed zip timestamps)."""
    arrays: dict[str, np.ndarray] = {
        "meta": np.array(
            json.dumps({"dataset": dataset, "kind": kind.value, "metric": metric.value})
        )
    }
    for i, enc in enumerate(inputs):
        arrays[f"input_{i}"] = enc.stored
        arrays[f"input_{i}_dtype"] = np.array(enc.dtype)
        if enc.scale is not None:
            arrays[f"input_{i}_scale"] = np.array(enc.scale, dtype=np.float64)
            arrays[f"input_{i}_offset"] = np.array(enc.offset or 0.0, dtype=np.float64)
    for j, ref in enumerate(references):
        arrays[f"reference_{j}"] = np.ascontiguousarray(ref, dtype=np.float32)
    if labels is not None:
        arrays["labels"] = labels.astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            array = arrays[key] if arrays[key].flags.c_contiguous else arrays[key].copy(order="C")
            np.lib.format.write_array(buf, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def load_eval_set(path: Path) -> EvalSet:
    """Read an evaluation set written by :func:`save_eval_set` (numpy only, no pickle)."""
    try:
        with path.open("rb") as f, np.load(f, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
        meta = json.loads(str(data["meta"].item()))
        inputs: list[np.ndarray] = []
        i = 0
        while f"input_{i}" in data:
            scale = data.get(f"input_{i}_scale")
            offset = data.get(f"input_{i}_offset")
            enc = Encoded(
                stored=data[f"input_{i}"],
                dtype=str(data[f"input_{i}_dtype"].item()),
                scale=None if scale is None else float(scale.item()),
                offset=None if offset is None else float(offset.item()),
            )
            inputs.append(enc.decode())
            i += 1
        refs: list[np.ndarray] = []
        while f"reference_{len(refs)}" in data:
            refs.append(data[f"reference_{len(refs)}"])
        labels = data.get("labels")
        kind = AccuracyKind(meta["kind"])
        dataset, metric = str(meta["dataset"]), Metric(meta["metric"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ModelFileError(
            f"evaluation set {path} is unreadable: {type(exc).__name__}: {exc}",
            "regenerate it with 'make models' or restore it from git",
        ) from exc
    if not inputs or not refs:
        raise ModelFileError(
            f"evaluation set {path} has no inputs or no references",
            "regenerate it with 'make models'",
        )
    return EvalSet(dataset, kind, metric, tuple(inputs), tuple(refs), labels)


# --------------------------------------------------------------------------------------------
# Builders (make models only)


@dataclass(frozen=True)
class DataBundle:
    """Everything one model's build needs: training, calibration and evaluation data."""

    name: str
    description: str
    kind: AccuracyKind
    eval_inputs: tuple[Encoded, ...]
    calibration: tuple[np.ndarray, ...]
    calibration_description: str
    eval_labels: np.ndarray | None = None
    train_inputs: tuple[np.ndarray, ...] = ()
    train_labels: np.ndarray | None = None
    train_description: str = ""

    @property
    def eval_decoded(self) -> tuple[np.ndarray, ...]:
        """The evaluation inputs as the model consumes them."""
        return tuple(e.decode() for e in self.eval_inputs)


def _split(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import train_test_split

    return tuple(train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y))


def breast_cancer(seed: int) -> DataBundle:
    """scikit-learn's breast-cancer data (569 rows, 30 features): 80/20 stratified split."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, y_test = _split(x, y, seed)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    z_train = ((x_train - mean) / std).astype(np.float32)
    z_test = ((x_test - mean) / std).astype(np.float32)
    return DataBundle(
        name="breast-cancer",
        description="scikit-learn load_breast_cancer (Wisconsin diagnostic, 569 rows); 80/20 "
        f"stratified split (random_state={seed}); features z-scored with the training split's "
        "mean and std; the evaluation set is the 20% test split",
        kind=AccuracyKind.LABELLED,
        eval_inputs=(Encoded(z_test),),
        eval_labels=y_test,
        calibration=(z_train[:128],),
        calibration_description="the first 128 rows of the training split",
        train_inputs=(z_train,),
        train_labels=y_train,
        train_description=f"the {len(z_train)}-row training split",
    )


def digits(seed: int) -> DataBundle:
    """scikit-learn's 8x8 digits (1797 images, pixels 0..16): 80/20 stratified split."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = _split(x.reshape(-1, 1, 8, 8), y, seed)
    return DataBundle(
        name="digits",
        description="scikit-learn load_digits (1797 8x8 images, UCI optical digits); 80/20 "
        f"stratified split (random_state={seed}); input = pixel / 16; the evaluation set is "
        "the 20% test split",
        kind=AccuracyKind.LABELLED,
        eval_inputs=(Encoded(x_test.astype(np.uint8), scale=1 / 16, offset=0.0),),
        eval_labels=y_test,
        calibration=((x_train[:128] / 16).astype(np.float32),),
        calibration_description="the first 128 images of the training split",
        train_inputs=((x_train / 16).astype(np.float32),),
        train_labels=y_train,
        train_description=f"the {len(x_train)}-image training split",
    )


def photo_patches(size: int, count: int, seed: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 NCHW patches of ``size`` px from scikit-learn's two sample photos, and a
    proxy label per patch.

    Each patch is a random square crop of ``size * k`` pixels (k a random integer that fits),
    block-averaged down by k, and flipped left-right with probability 1/2. The label is the
    source photograph, combined with a zoom bucket of k when ``classes`` > 2 (2 photos x
    ``classes // 2`` buckets).
    """
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = np.empty((count, 3, size, size), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    buckets = max(1, classes // len(photos))
    for n in range(count):
        which = int(rng.integers(0, len(photos)))
        img = photos[which]
        h, w, _ = img.shape
        k_max = min(h, w) // size
        k = int(rng.integers(1, k_max + 1))
        side = size * k
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[top : top + side, left : left + side].astype(np.float64)
        small = crop.reshape(size, k, size, k, 3).mean(axis=(1, 3))
        if rng.random() < 0.5:
            small = small[:, ::-1]
        out[n] = np.round(small).astype(np.uint8).transpose(2, 0, 1)
        labels[n] = which * buckets + min(buckets - 1, (k - 1) * buckets // k_max)
    return out, labels


def photos(size: int, eval_count: int, classes: int, seed: int) -> DataBundle:
    """Real photo patches; the proxy labels train the model, accuracy is agreement with fp32."""
    scale, offset = 1 / 127.5, -1.0
    eval_raw, _ = photo_patches(size, eval_count, seed, classes)
    calib_count = 64 if size <= 96 else 32
    calib_raw, _ = photo_patches(size, calib_count, seed + 1, classes)
    train_count = 512 if size <= 96 else 0
    train_raw, train_labels = photo_patches(size, train_count, seed + 2, classes)
    task = "source photograph" + (" x zoom bucket" if classes > 2 else "")
    return DataBundle(
        name=f"photo-patches-{size}",
        description=f"{eval_count} {size}x{size} RGB patches cropped at random scales from "
        "scikit-learn's two bundled sample photographs (china.jpg, flower.jpg), block-averaged, "
        f"random flips (seed {seed}); input = pixel / 127.5 - 1; no real class labels, so "
        "accuracy is agreement with the fp32 torch model"
        + (
            f"; the model is trained on a proxy task ({task}, {classes} classes)"
            if train_count
            else ""
        ),
        kind=AccuracyKind.AGREEMENT,
        eval_inputs=(Encoded(eval_raw, scale=scale, offset=offset),),
        calibration=((calib_raw * scale + offset).astype(np.float32),),
        calibration_description=f"{calib_count} further patches from the same photographs "
        f"(seed {seed + 1})",
        train_inputs=((train_raw * scale + offset).astype(np.float32),) if train_count else (),
        train_labels=train_labels if train_count else None,
        train_description=f"{train_count} further patches (seed {seed + 2}) labelled by {task}",
    )


KEYWORDS = 12


def synthetic_mfcc(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MFCC-like maps [count, 1, 49, 10] and a keyword id (0..11) per map.

    Each keyword has a fixed cepstral trajectory (drawn from seed 0); an utterance is its
    keyword's trajectory, time-shifted and scaled, plus a per-utterance offset and AR(1) noise.
    """
    rng = np.random.default_rng(seed)
    coeff_scale = np.array([8.0, 4.0, 3.0, 2.0, 1.5, 1.2, 1.0, 0.8, 0.7, 0.6])
    templates = np.random.default_rng(0).standard_normal((KEYWORDS, 49, 10)) * coeff_scale
    templates = np.cumsum(templates, axis=1) / np.sqrt(np.arange(1, 50))[:, None]
    words = rng.integers(0, KEYWORDS, size=count)
    shifts = rng.integers(-4, 5, size=count)
    gains = rng.uniform(0.7, 1.3, size=count)
    offset = rng.standard_normal((count, 1, 10)) * coeff_scale * 0.3
    noise = rng.standard_normal((count, 49, 10)) * coeff_scale * 0.4
    frames = np.empty_like(noise)
    frames[:, 0] = noise[:, 0]
    for t in range(1, 49):
        frames[:, t] = 0.7 * frames[:, t - 1] + 0.7 * noise[:, t]
    signal = np.stack(
        [np.roll(templates[w], s, axis=0) for w, s in zip(words, shifts, strict=True)]
    )
    out = signal * gains[:, None, None] + offset + frames
    return out[:, None].astype(np.float32), words


def synthetic_machine_sound(count: int, seed: int) -> np.ndarray:
    """Log-mel-like frames [count, 640] (5 frames x 128 bins): tilt, harmonics and noise."""
    rng = np.random.default_rng(seed)
    bins = np.arange(128)
    out = np.empty((count, 5, 128))
    for n in range(count):
        f0 = rng.uniform(4, 20)
        tilt = -bins * rng.uniform(0.02, 0.06)
        harmonics = sum(
            rng.uniform(2, 8) / h * np.exp(-0.5 * ((bins - f0 * h) / 1.5) ** 2) for h in range(1, 6)
        )
        out[n] = tilt + harmonics + rng.standard_normal((5, 128)) * 0.5
    return out.reshape(count, 640).astype(np.float32)


TOPICS = 4


def synthetic_tokens(
    count: int, seed: int, vocab: int = 1024, seq: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Token ids [count, seq] and a topic per sequence (0..3).

    Id 2 ([CLS]-like) first; each later token is, with probability 1/2, a Zipf-distributed
    common word from the whole vocabulary, otherwise a Zipf-distributed word from the topic's
    quarter of the vocabulary.
    """
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, TOPICS, size=count)
    span = (vocab - 5) // TOPICS
    common = 5 + (rng.zipf(1.3, size=(count, seq)) - 1) % (vocab - 5)
    topical = 5 + topics[:, None] * span + (rng.zipf(1.3, size=(count, seq)) - 1) % span
    ids = np.where(rng.random((count, seq)) < 0.5, common, topical)
    ids[:, 0] = 2
    return ids.astype(np.int16), topics


def _synthetic(
    name: str, description: str, eval_arr: np.ndarray, calib_arr: np.ndarray, dtype: str, seed: int
) -> DataBundle:
    """A synthetic bundle; ``eval_arr`` is stored as given (float16 halves it), decoded to dtype."""
    return DataBundle(
        name=name,
        description=f"{description} (seed {seed}); no real data is bundled for this task, so "
        "accuracy is agreement with the fp32 torch model",
        kind=AccuracyKind.AGREEMENT,
        eval_inputs=(Encoded(eval_arr, dtype=dtype),),
        calibration=(calib_arr.astype(dtype),),
        calibration_description=f"{len(calib_arr)} further samples of the same generator "
        f"(seed {seed + 1})",
    )


def build_data(dataset: str, seed: int) -> DataBundle:
    """The :class:`DataBundle` called ``dataset`` (a :class:`SuiteModel`'s ``dataset``)."""
    if dataset == "breast-cancer":
        return breast_cancer(seed)
    if dataset == "digits":
        return digits(seed)
    if dataset.startswith("photo-patches-"):
        size = int(dataset.rsplit("-", 1)[1])
        count, classes = {32: (200, 10), 96: (48, 2)}.get(size, (32, 1000))
        return photos(size, count, classes, seed)
    if dataset == "synthetic-mfcc":
        bundle = _synthetic(
            dataset,
            "200 MFCC-like 49x10 maps of 12 synthetic keywords: a fixed cepstral trajectory per "
            "keyword, time-shifted and scaled, plus offset and AR(1) noise; stored as float16",
            synthetic_mfcc(200, seed)[0].astype(np.float16),
            synthetic_mfcc(128, seed + 1)[0],
            "float32",
            seed,
        )
        train, words = synthetic_mfcc(1024, seed + 2)
        return replace(
            bundle,
            train_inputs=(train,),
            train_labels=words,
            train_description=f"1024 further maps (seed {seed + 2}) labelled by keyword",
        )
    if dataset == "synthetic-machine-sound":
        bundle = _synthetic(
            dataset,
            "128 log-mel-like 5x128 frames of a rotating machine: spectral tilt, 5 harmonics "
            "of a random fundamental, Gaussian noise; stored as float16",
            synthetic_machine_sound(128, seed).astype(np.float16),
            synthetic_machine_sound(128, seed + 1),
            "float32",
            seed,
        )
        return replace(
            bundle,
            train_inputs=(synthetic_machine_sound(1024, seed + 2),),
            train_description=f"1024 further frames (seed {seed + 2})",
        )
    if dataset == "synthetic-tokens":
        bundle = _synthetic(
            dataset,
            "128 sequences of 128 token ids (vocabulary 1024), id 2 first, each later token a "
            "common Zipf word or a word of the sequence's topic (4 topics)",
            synthetic_tokens(128, seed)[0],
            synthetic_tokens(64, seed + 1)[0],
            "int64",
            seed,
        )
        train_ids, train_topics = synthetic_tokens(512, seed + 2)
        return replace(
            bundle,
            train_inputs=(train_ids.astype(np.int64),),
            train_labels=train_topics,
            train_description=f"512 further sequences (seed {seed + 2}) labelled by topic",
        )
    raise ValueError(f"unknown dataset {dataset!r}")
