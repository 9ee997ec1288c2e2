"""The common model suite, defined once in PyTorch; the catalogue imports no torch."""

from tippingpoint.models.suite.catalog import (
    SUITE,
    InputDef,
    Recipe,
    SuiteModel,
    Task,
    Tier,
    suite_model,
    suite_models,
)

__all__ = [
    "SUITE",
    "InputDef",
    "Recipe",
    "SuiteModel",
    "Task",
    "Tier",
    "suite_model",
    "suite_models",
]
