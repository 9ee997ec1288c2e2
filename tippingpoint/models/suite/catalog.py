"""The suite's catalogue: names, shapes, tasks and data, as plain values (no torch import)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from tippingpoint.core.errors import UnknownModelError

if TYPE_CHECKING:
    from torch import nn


class Tier(str, Enum):
    """``core`` models are committed; ``full`` models are generated on demand only."""

    CORE = "core"
    FULL = "full"


class Task(str, Enum):
    """What a model's output means, which decides how its accuracy is scored."""

    CLASSIFICATION = "classification"
    RECONSTRUCTION = "reconstruction"


@dataclass(frozen=True)
class InputDef:
    """One model input: name, shape with batch 1, numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class Recipe:
    """How ``make models`` trains a model: Adam, this many epochs, learning rate, batch."""

    epochs: int
    lr: float
    batch: int


@dataclass(frozen=True)
class SuiteModel:
    """A suite entry: what to build (``factory`` as 'module:Class' plus kwargs) and on what data."""

    name: str
    description: str
    tier: Tier
    task: Task
    factory: str
    inputs: tuple[InputDef, ...]
    output_name: str
    dataset: str
    kwargs: dict[str, float | int] = field(default_factory=dict)
    recipe: Recipe | None = None
    """None: not trained (BatchNorm statistics and the last layer fitted to data instead)."""
    pt2: bool = False
    """Commit an fp32 ``.pt2`` (torch backend) too. Only the small models have one: the larger
    ones' ``.pt2`` would push the committed suite past its 25 MiB budget (``build --all-pt2``
    still writes them on demand)."""

    def build(self) -> nn.Module:
        """Instantiate the torch module (imports torch)."""
        module_name, _, attr = self.factory.partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        module: nn.Module = cls(**self.kwargs)
        return module


_P = "tippingpoint.models.suite."

SUITE: tuple[SuiteModel, ...] = (
    SuiteModel(
        name="tabular-mlp",
        description="Scoring MLP (fraud/risk style): 30 standardised features -> 64 -> 32 -> 2.",
        tier=Tier.CORE,
        task=Task.CLASSIFICATION,
        factory=_P + "tabular:TabularMLP",
        inputs=(InputDef("features", (1, 30)),),
        output_name="logits",
        dataset="breast-cancer",
        recipe=Recipe(epochs=300, lr=1e-2, batch=512),
        pt2=True,
    ),
    SuiteModel(
        name="digits-cnn",
        description="Small CNN on scikit-learn's 8x8 digits: two 3x3 convs, pool, 64, 10 logits.",
        tier=Tier.CORE,
        task=Task.CLASSIFICATION,
        factory=_P + "digits:DigitsCNN",
        inputs=(InputDef("image", (1, 1, 8, 8)),),
        output_name="logits",
        dataset="digits",
        recipe=Recipe(epochs=20, lr=3e-3, batch=64),
        pt2=True,
    ),
    SuiteModel(
        name="resnet8",
        description="MLPerf Tiny IC ResNet-8 shape: 3x32x32 image -> 10 logits.",
        tier=Tier.CORE,
        task=Task.CLASSIFICATION,
        factory=_P + "resnet:ResNet8",
        inputs=(InputDef("image", (1, 3, 32, 32)),),
        output_name="logits",
        dataset="photo-patches-32",
        recipe=Recipe(epochs=4, lr=3e-3, batch=32),
        pt2=True,
    ),
    SuiteModel(
        name="mobilenetv2-035-96",
        description="MobileNetV2 width 0.35 at 3x96x96 (visual-wake-words shape) -> 2 logits.",
        tier=Tier.CORE,
        task=Task.CLASSIFICATION,
        factory=_P + "mobilenet:MobileNetV2",
        inputs=(InputDef("image", (1, 3, 96, 96)),),
        output_name="logits",
        dataset="photo-patches-96",
        kwargs={"alpha": 0.35, "classes": 2},
        recipe=Recipe(epochs=3, lr=3e-3, batch=32),
    ),
    SuiteModel(
        name="ds-cnn-kws",
        description="MLPerf Tiny DS-CNN keyword spotting: 1x49x10 MFCC -> 12 logits.",
        tier=Tier.CORE,
        task=Task.CLASSIFICATION,
        factory=_P + "kws:DSCNN",
        inputs=(InputDef("mfcc", (1, 1, 49, 10)),),
        output_name="logits",
        dataset="synthetic-mfcc",
        recipe=Recipe(epochs=6, lr=3e-3, batch=64),
        pt2=True,
    ),
    SuiteModel(
        name="ae-anomaly",
        description="MLPerf Tiny dense autoencoder: 640 log-mel values -> 8 -> 640 reconstruction.",
        tier=Tier.CORE,
        task=Task.RECONSTRUCTION,
        factory=_P + "autoencoder:DenseAutoencoder",
        inputs=(InputDef("frames", (1, 640)),),
        output_name="reconstruction",
        dataset="synthetic-machine-sound",
        recipe=Recipe(epochs=10, lr=1e-3, batch=64),
    ),
    SuiteModel(
        name="text-encoder-tiny",
        description="BERT-tiny shaped encoder (2 layers, hidden 128, 2 heads), 128 int64 token "
        "ids -> 4 logits; vocabulary 1024, trained briefly on a synthetic topic task.",
        tier=Tier.CORE,
        task=Task.CLASSIFICATION,
        factory=_P + "text:TinyTextEncoder",
        inputs=(InputDef("input_ids", (1, 128), "int64"),),
        output_name="logits",
        dataset="synthetic-tokens",
        recipe=Recipe(epochs=2, lr=1e-3, batch=32),
    ),
    SuiteModel(
        name="resnet50",
        description="ResNet-50 v1.5, 3x224x224 -> 1000 logits (cloud scale; on demand only).",
        tier=Tier.FULL,
        task=Task.CLASSIFICATION,
        factory=_P + "resnet:ResNet50",
        inputs=(InputDef("image", (1, 3, 224, 224)),),
        output_name="logits",
        dataset="photo-patches-224",
    ),
    SuiteModel(
        name="mobilenetv2-100-224",
        description="MobileNetV2 width 1.0, 3x224x224 -> 1000 logits (on demand only).",
        tier=Tier.FULL,
        task=Task.CLASSIFICATION,
        factory=_P + "mobilenet:MobileNetV2",
        inputs=(InputDef("image", (1, 3, 224, 224)),),
        output_name="logits",
        dataset="photo-patches-224",
        kwargs={"alpha": 1.0, "classes": 1000},
    ),
)


def suite_model(name: str) -> SuiteModel:
    """The catalogue entry called ``name``."""
    for entry in SUITE:
        if entry.name == name:
            return entry
    raise UnknownModelError(
        f"no suite model named '{name}'", "known: " + ", ".join(m.name for m in SUITE)
    )


def suite_models(tier: Tier) -> tuple[SuiteModel, ...]:
    """The models to build for a tier: ``core`` alone, or ``full`` (core plus on-demand)."""
    return tuple(m for m in SUITE if tier is Tier.FULL or m.tier is Tier.CORE)
