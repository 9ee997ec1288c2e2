"""The campaign plan: devices by kind, endpoints, and each device's runs, validated up front.

A plan is a TOML file (the README's campaign section has a sample)::

    [campaign]
    name = "edge-vs-cloud"

    [defaults]                  # settings of every run; a run's own keys win
    quick = true

    [endpoints.cloud]
    serve = "cloud:gpu"         # `tippingpoint serve` on a node offering this kind
    # url = "https://..."       # or an endpoint that already runs

    [devices.pi]
    kind = "device:rpi5"        # the Ray resource its node(s) offer

    [[devices.pi.runs]]
    models = ["digits-cnn"]
    backends = ["litert", "onnxruntime"]

    [[devices.pi.runs]]
    models = ["digits-cnn"]
    endpoint = "cloud"          # the http backend, from the Pi, against the endpoint

Every mistake found here (an unknown key, an endpoint nobody defined, a scenario without the
settings it needs, a cell planned twice) is one :class:`PlanError` line with the fix, before
anything runs. :func:`planned_cells` expands the plan into the cells the campaign must file;
:func:`run_request` turns one cell into the :class:`~tippingpoint.harness.matrix.RunRequest`
the node expands and executes, so a campaign's cell runs exactly as ``tippingpoint run`` would.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tippingpoint.core.errors import TippingPointError, UsageError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.schema import ArrivalProcess
from tippingpoint.core.types import OptionValue
from tippingpoint.harness.config import DEFAULT_BATCH_SIZES
from tippingpoint.harness.energy import DEFAULT_IDLE_S
from tippingpoint.harness.matrix import (
    DEFAULT_BACKEND,
    ENDPOINT_BACKEND,
    NetworkRequest,
    RunRequest,
)
from tippingpoint.models.registry import looks_like_path, resolve_model

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser as a package
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # tomli is not installed on 3.11+

PLAN_HINT = "see the sample plan in the README's campaign section"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")


class PlanError(UsageError):
    """A campaign plan cannot be parsed, or asks for something that cannot run."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunSettings(_Strict):
    """How a run measures; ``[defaults]`` holds these for every run, a run may override them."""

    quick: bool | None = None
    min_queries: int | None = Field(default=None, ge=1)
    min_duration_s: float | None = Field(default=None, ge=0)
    max_duration_s: float | None = Field(default=None, gt=0)
    warmup_queries: int | None = Field(default=None, ge=0)
    warmup_s: float | None = Field(default=None, ge=0)
    seed: int | None = None
    accuracy: bool | None = None
    collectors: tuple[str, ...] | None = None
    idle_s: float | None = Field(default=None, ge=0)
    rate_qps: float | None = Field(default=None, gt=0)
    """Server scenario: the open loop's target rate."""
    arrival: ArrivalProcess | None = None
    latency_bound_ms: float | None = Field(default=None, gt=0)
    backend_options: dict[str, dict[str, OptionValue]] | None = None


class RunPlan(RunSettings):
    """One ``[[devices.ID.runs]]`` table: a models x backends x scenarios matrix."""

    models: tuple[str, ...] = Field(min_length=1)
    backends: tuple[str, ...] = ()
    """Empty: onnxruntime, or the http backend when ``endpoint`` is set."""
    scenarios: tuple[ScenarioKind, ...] = (ScenarioKind.SINGLE_STREAM, ScenarioKind.OFFLINE)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    variants: tuple[str, ...] = ()
    """Suite variants, one cell each; empty: the model's default variant."""
    concurrency: tuple[int, ...] = (1,)
    endpoint: str | None = None
    """An ``[endpoints.NAME]`` to run the http backend against, from this device."""
    network: str | None = None
    """Reserved for network profiles; refused until the link shaper is part of a run."""

    @field_validator("batch_sizes", "concurrency")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(b < 1 for b in v):
            raise ValueError("give positive integers")
        return v


class Expect(_Strict):
    """What a node of a device's kind must show in its fingerprint (checked before it runs)."""

    machine: str | None = None
    """platform.machine(), e.g. aarch64."""
    board: str | None = None
    """A part of the device-tree model, e.g. 'Raspberry Pi 5'."""
    cpu_model: str | None = None
    """A part of the CPU model name."""


class DevicePlan(_Strict):
    """One device: the kind its node(s) offer, and its runs."""

    kind: str
    expect: Expect | None = None
    runs: tuple[RunPlan, ...] = Field(min_length=1)


class EndpointPlan(_Strict):
    """An endpoint: an existing URL, or ``tippingpoint serve`` on a node of a kind."""

    serve: str | None = None
    """The kind of the node that serves (``tippingpoint serve`` is started there)."""
    url: str | None = None
    backend: str = "onnxruntime"
    """The backend the server runs the models with (``serve`` only)."""
    threads: int = Field(default=1, ge=1)
    models: tuple[str, ...] = ()
    """Models to serve; empty: every model a run sends to this endpoint."""


class CampaignSection(_Strict):
    """The ``[campaign]`` table."""

    name: str = "campaign"
    address: str | None = None
    """The Ray cluster's address (``--address`` wins); None: the running local head."""


class Plan(_Strict):
    """A whole campaign plan."""

    campaign: CampaignSection = Field(default_factory=CampaignSection)
    defaults: RunSettings = Field(default_factory=RunSettings)
    endpoints: dict[str, EndpointPlan] = Field(default_factory=dict)
    devices: dict[str, DevicePlan] = Field(min_length=1)

    def digest(self) -> str:
        """sha256 of the plan's canonical JSON: the identity ``--resume`` and ``merge`` check."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PlannedCell:
    """One cell the campaign must file: where it runs and what it measures."""

    device: str
    kind: str
    run_index: int
    model: str
    """The model as the plan names it (a suite name or a node's file path)."""
    model_name: str
    variant: str
    backend: str
    endpoint: str | None
    scenario: ScenarioKind
    batch_size: int
    concurrency: int | None = None
    rate_qps: float | None = None

    @property
    def cell_id(self) -> str:
        """``DEVICE/MODEL/SCENARIO/BACKEND-VARIANT``: the cell's folder in the campaign tree."""
        backend = f"{self.backend}@{self.endpoint}" if self.endpoint else self.backend
        return "/".join(
            _safe(p)
            for p in (
                self.device,
                self.model_name,
                self.scenario_label,
                f"{backend}-{self.variant}",
            )
        )

    @property
    def scenario_label(self) -> str:
        """single-stream, offline-b8, server-50qps or concurrency-c4."""
        kind = self.scenario
        if kind is ScenarioKind.OFFLINE:
            return f"offline-b{self.batch_size}"
        if kind is ScenarioKind.SERVER:
            return f"server-{self.rate_qps:g}qps"
        if kind is ScenarioKind.CONCURRENCY:
            return f"concurrency-c{self.concurrency}"
        return str(kind.value)


def _safe(part: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in part)


def load_plan(path: Path) -> Plan:
    """Parse and validate a plan file; every problem is one :class:`PlanError` line."""
    if not path.is_file():
        raise PlanError(f"plan file not found: {path}", "check the path")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path} is not valid TOML: {exc}", "fix the syntax") from None
    return parse_plan(data, str(path))


def parse_plan(data: dict[str, object], source: str = "<plan>") -> Plan:
    """Validate plan data (a parsed TOML document) and check what it refers to."""
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()  # an unknown key first: a misspelt key also leaves one missing
        err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise PlanError(f"{source}: unknown key '{where}'", PLAN_HINT) from None
        if err["type"] == "missing":
            raise PlanError(f"{source}: '{where}' is required", PLAN_HINT) from None
        raise PlanError(f"{source}: '{where}': {err['msg']}", PLAN_HINT) from None
    _check(plan, source)
    planned_cells(plan, source)  # unknown models, missing settings, cells planned twice
    return plan


def _check(plan: Plan, source: str) -> None:
    for name, ep in plan.endpoints.items():
        if not _ID.match(name):
            raise PlanError(
                f"{source}: endpoint name '{name}' is not a plain name", "use [A-Za-z0-9._-]"
            )
        if (ep.serve is None) == (ep.url is None):
            raise PlanError(
                f"{source}: endpoint '{name}' needs exactly one of 'serve' and 'url'",
                "serve = 'cloud:gpu' starts a server on a node of that kind; url = 'https://...' "
                "uses a running one",
            )
        if ep.url is not None and not ep.url.startswith(("http://", "https://")):
            raise PlanError(
                f"{source}: endpoint '{name}' url must start with http:// or https://",
                "e.g. https://host:8000",
            )
        if ep.serve is not None and not _KIND.match(ep.serve):
            raise PlanError(
                f"{source}: endpoint '{name}' serve kind '{ep.serve}' is not a resource name",
                "e.g. serve = 'cloud:gpu'",
            )
    for dev_id, dev in plan.devices.items():
        if not _ID.match(dev_id):
            raise PlanError(
                f"{source}: device id '{dev_id}' is not a plain name (it names a folder)",
                "use letters, digits, '.', '_' and '-'",
            )
        if not _KIND.match(dev.kind):
            raise PlanError(
                f"{source}: device '{dev_id}' kind '{dev.kind}' is not a resource name",
                "e.g. kind = 'device:rpi5'",
            )
        for i, run in enumerate(dev.runs):
            where = f"{source}: devices.{dev_id}.runs.{i}"
            if run.network is not None:
                raise PlanError(
                    f"{where}: network profiles are not part of a campaign run yet",
                    "remove 'network' (the link shaper is not wired into runs in this version)",
                )
            if run.endpoint is not None:
                if run.endpoint not in plan.endpoints:
                    known = ", ".join(sorted(plan.endpoints)) or "none"
                    raise PlanError(
                        f"{where}: endpoint '{run.endpoint}' is not defined",
                        f"add [endpoints.{run.endpoint}] (defined: {known})",
                    )
                if run.backends not in ((), (ENDPOINT_BACKEND,)):
                    raise PlanError(
                        f"{where}: a run with an endpoint uses the http backend",
                        "remove 'backends' from it, or put local backends in a run of their own",
                    )


def settings(plan: Plan, run: RunPlan) -> RunPlan:
    """``run`` with the ``[defaults]`` it leaves unsaid."""
    inherited = {k: getattr(plan.defaults, k) for k in plan.defaults.model_fields_set}
    own = {k: getattr(run, k) for k in run.model_fields_set}
    return RunPlan.model_validate({**run.model_dump(), **inherited, **own})


def planned_cells(plan: Plan, source: str = "<plan>") -> list[PlannedCell]:
    """Every cell of the plan, device by device in plan order; raises PlanError when one
    cannot be planned (an unknown model, a server run without a rate, a cell planned twice)."""
    cells: list[PlannedCell] = []
    seen: dict[str, str] = {}
    for dev_id, dev in plan.devices.items():
        for i, raw in enumerate(dev.runs):
            run = settings(plan, raw)
            where = f"devices.{dev_id}.runs.{i}"
            for cell in _run_cells(dev_id, dev.kind, i, run, f"{source}: {where}"):
                if cell.cell_id in seen:
                    raise PlanError(
                        f"{source}: cell {cell.cell_id} is planned twice ({seen[cell.cell_id]} "
                        f"and {where})",
                        "remove it from one of the runs",
                    )
                seen[cell.cell_id] = where
                cells.append(cell)
    return cells


def _run_cells(dev_id: str, kind: str, index: int, run: RunPlan, where: str) -> list[PlannedCell]:
    backends = (
        (ENDPOINT_BACKEND,) if run.endpoint is not None else run.backends or (DEFAULT_BACKEND,)
    )
    network = (ScenarioKind.SERVER, ScenarioKind.CONCURRENCY)
    if run.endpoint is None and any(s in network for s in run.scenarios):
        raise PlanError(
            f"{where}: scenarios server and concurrency need a network backend",
            "add endpoint = NAME to the run, or use single-stream and offline",
        )
    if ScenarioKind.SERVER in run.scenarios and run.rate_qps is None:
        raise PlanError(f"{where}: the server scenario needs a target rate", "add rate_qps = 50")
    out: list[PlannedCell] = []
    for spec in run.models:
        for variant in run.variants or (None,):
            name, resolved = _model_identity(spec, variant, where)
            for backend in backends:
                for kind_ in run.scenarios:
                    sizes = run.batch_sizes if kind_ is ScenarioKind.OFFLINE else (1,)
                    levels: tuple[int | None, ...] = (
                        run.concurrency if kind_ is ScenarioKind.CONCURRENCY else (None,)
                    )
                    for bs in sizes:
                        for level in levels:
                            out.append(
                                PlannedCell(
                                    device=dev_id,
                                    kind=kind,
                                    run_index=index,
                                    model=spec,
                                    model_name=name,
                                    variant=resolved,
                                    backend=backend,
                                    endpoint=run.endpoint,
                                    scenario=kind_,
                                    batch_size=bs,
                                    concurrency=level,
                                    rate_qps=run.rate_qps if kind_ is ScenarioKind.SERVER else None,
                                )
                            )
    return out


def _model_identity(spec: str, variant: str | None, where: str) -> tuple[str, str]:
    """(name, variant) as the report will record them; a file path is the node's, unchecked."""
    if looks_like_path(spec):
        return Path(spec).stem, variant or "user"
    try:
        ref = resolve_model(spec, variant)
    except TippingPointError as exc:
        raise PlanError(f"{where}: {exc.message}", exc.hint) from None
    return ref.name, ref.variant


def run_request(plan: Plan, cell: PlannedCell, endpoint_url: str | None) -> RunRequest:
    """The one-cell :class:`RunRequest` the node expands and executes for ``cell``."""
    run = settings(plan, plan.devices[cell.device].runs[cell.run_index])
    return RunRequest(
        models=(cell.model,),
        backends=() if cell.endpoint is not None else (cell.backend,),
        scenarios=(cell.scenario,),
        batch_sizes=(cell.batch_size,),
        variant=None if cell.variant == "user" and looks_like_path(cell.model) else cell.variant,
        quick=bool(run.quick),
        min_queries=run.min_queries,
        min_duration_s=run.min_duration_s,
        max_duration_s=run.max_duration_s,
        warmup_queries=run.warmup_queries,
        warmup_s=run.warmup_s,
        seed=run.seed,
        accuracy=bool(run.accuracy),
        endpoint=endpoint_url,
        network=NetworkRequest(
            rate_qps=cell.rate_qps,
            arrival=run.arrival or ArrivalProcess.POISSON,
            concurrency=(cell.concurrency,) if cell.concurrency is not None else (1,),
            latency_bound_ms=run.latency_bound_ms,
        ),
        backend_options=run.backend_options or {},
        collectors=run.collectors or (),
        idle_s=run.idle_s if run.idle_s is not None else DEFAULT_IDLE_S,
    )


def kinds_needed(plan: Plan) -> dict[str, list[str]]:
    """Each Ray resource kind the plan needs, with who needs it ('device pi', 'endpoint t4')."""
    out: dict[str, list[str]] = {}
    for dev_id, dev in plan.devices.items():
        out.setdefault(dev.kind, []).append(f"device {dev_id}")
    for name, ep in plan.endpoints.items():
        if ep.serve is not None and any(
            r.endpoint == name for d in plan.devices.values() for r in d.runs
        ):
            out.setdefault(ep.serve, []).append(f"endpoint {name}")
    return out


def served_models(plan: Plan, endpoint: str) -> list[tuple[str, str | None]]:
    """(model, variant) pairs ``tippingpoint serve`` must serve for ``endpoint``."""
    ep = plan.endpoints[endpoint]
    if ep.models:
        return [(m, None) for m in ep.models]
    pairs: dict[tuple[str, str | None], None] = {}
    for cell in planned_cells(plan):
        if cell.endpoint == endpoint:
            variant = (
                None if cell.variant == "user" and looks_like_path(cell.model) else cell.variant
            )
            pairs[(cell.model, variant)] = None
    return list(pairs)
