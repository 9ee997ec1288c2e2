"""Run configuration: frozen, validated values built from CLI flags or a suite TOML file."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tippingpoint.core.errors import SuiteFileError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import ScenarioSettings, StopMode, StopRule, WarmupRule
from tippingpoint.core.types import OptionValue

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as a package
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # tomli is not installed on 3.11+

DEFAULT_WARMUP = WarmupRule(min_queries=10, min_duration_s=2.0)
DEFAULT_STOP = StopRule(min_queries=662, min_duration_s=10.0, max_duration_s=120.0)
QUICK_WARMUP = WarmupRule(min_queries=5, min_duration_s=0.2)
QUICK_STOP = StopRule(min_queries=64, min_duration_s=1.0, max_duration_s=10.0)
DEFAULT_WINDOWS = 5
STABILITY_THRESHOLD = 0.10
DEFAULT_STOP_MODE = StopMode.CONVERGE
"""What ends a run's measured part after its minimums (see the README's stop rule section)."""
DEFAULT_WARMUP_UNTIL_STEADY = False
"""Whether the warm-up goes on until the window rate stops moving."""
DEFAULT_BATCH_SIZES = (1, 8, 32)


def scenario_settings(
    kind: ScenarioKind,
    batch_size: int,
    *,
    quick: bool = False,
    warmup: WarmupRule | None = None,
    stop: StopRule | None = None,
    seed: int = 0,
    input_source: str = "random",
) -> ScenarioSettings:
    """Scenario settings with the LoadGen-style defaults, or the quick ones for smoke tests."""
    return ScenarioSettings(
        kind=kind,
        batch_size=batch_size,
        warmup=warmup or (QUICK_WARMUP if quick else DEFAULT_WARMUP),
        stop=stop or (QUICK_STOP if quick else DEFAULT_STOP),
        windows=DEFAULT_WINDOWS,
        stability_threshold=STABILITY_THRESHOLD,
        quick=quick,
        seed=seed,
        input_source=input_source,
    )


class SuiteRun(BaseModel):
    """The ``[run]`` table of a suite file: a models x backends x scenarios matrix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = Field(min_length=1)
    backends: tuple[str, ...] = ("onnxruntime",)
    scenarios: tuple[ScenarioKind, ...] = (ScenarioKind.SINGLE_STREAM, ScenarioKind.OFFLINE)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    variant: str | None = None
    quick: bool = False
    min_queries: int | None = Field(default=None, ge=1)
    min_duration_s: float | None = Field(default=None, ge=0)
    max_duration_s: float | None = Field(default=None, gt=0)
    warmup_queries: int | None = Field(default=None, ge=0)
    warmup_s: float | None = Field(default=None, ge=0)
    seed: int = 0
    stop: StopMode | None = None
    """What ends the measured part (``--stop``): ``fixed`` or ``converge``."""
    converge_windows: int | None = None
    converge_threshold: float | None = None
    window_s: float | None = None
    warmup_until_steady: bool | None = None
    accuracy: bool = False
    collectors: tuple[str, ...] = ()
    network: str | None = None
    """A network profile shaped in front of ``--endpoint`` (``--network`` overrides it)."""
    shaper: str | None = None
    """How ``network`` is applied (``--shaper`` overrides it)."""

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(b < 1 for b in v):
            raise ValueError("batch sizes must be positive integers")
        return v


class SuiteFile(BaseModel):
    """A suite TOML file: ``[run]`` plus ``[backend_options.<backend>]`` tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: SuiteRun
    backend_options: dict[str, dict[str, OptionValue]] = Field(default_factory=dict)


def load_suite_file(path: Path) -> SuiteFile:
    """Parse and validate a suite TOML file; any problem is one SuiteFileError line."""
    if path.is_dir():
        raise SuiteFileError(
            f"--suite {path} is a directory, not a suite file", "pass the .toml file inside it"
        )
    if not path.is_file():
        raise SuiteFileError(f"suite file not found: {path}", "check the path passed to --suite")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteFileError(f"{path} is not valid TOML: {exc}", "fix the syntax") from None
    try:
        return SuiteFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SuiteFileError(
            f"{path}: '{where}': {err['msg']}",
            "see 'tippingpoint run --help' and the suite example in the README",
        ) from None
