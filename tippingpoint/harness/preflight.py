"""Checks of a run matrix before anything is measured: options, formats, shapes and feeds.

A mistake in the invocation (a bad backend option, a ``--shape`` that does not fit, ``--inputs``
arrays of the wrong shape or dtype, a file the backend cannot load) is found here once, as a
:class:`~tippingpoint.core.errors.UsageError`, instead of as a failed report per cell. Each model is
loaded once per backend and its options (a network backend only validates its options, without
connecting); every cell's inputs are built and bound on that
session, as the run will do. A cell whose batch the model cannot run (a fixed batch of 1 the
runtime cannot resize) is returned as skipped, with the reason. Anything else that goes wrong
here (a runtime rejecting the file, a crash) is left to the run, which records it in a FAILED
report and lets the rest of the matrix go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tippingpoint.backends.base import Backend
from tippingpoint.backends.registry import get_backend
from tippingpoint.core.errors import FixedBatchError, ModelFileError, ModelLoadError, UsageError
from tippingpoint.harness.generative import is_generative
from tippingpoint.harness.inputs import check_unknown_overrides, query_feeds
from tippingpoint.harness.runner import RunSpec
from tippingpoint.models.registry import is_remote


@dataclass(frozen=True)
class Preflight:
    """What the checks found: cells that cannot run (by index), and why; and, for the first
    cell of each model/backend/options group, how long the process's first load took."""

    skipped: Mapping[int, FixedBatchError]
    first_load_s: Mapping[int, float] = field(default_factory=dict)


def _format_hint(cell: RunSpec) -> str:
    """The fix when a backend cannot load a cell's file: for a suite model, what it has."""
    from tippingpoint.core.schema import ModelSource
    from tippingpoint.models.registry import list_models

    if cell.model.source is not ModelSource.SUITE:
        return "run this file on a backend for its format (tippingpoint backends)"
    have = ", ".join(f"{r.variant}{r.format}" for r in list_models() if r.name == cell.model.name)
    return (
        f"suite model '{cell.model.name}' has no {cell.model.variant} file for this backend "
        f"(it has {have}); pick a backend or --variant that matches one"
    )


ENDPOINT_CHECKED = frozenset({"http", "grpc"})
"""Network backends whose load asks the endpoint for the model (cheap: readiness and metadata);
the preflight connects through them once."""


def _check_remote(plugin: Backend, cell: RunSpec) -> None:
    """A model behind an endpoint: connect once, so a model the endpoint does not serve, or
    whose specs cannot be found (no metadata inputs, no local file, no ``inputs`` option), is a
    usage error before anything runs; any other failure (unreachable, not ready) is left to the
    run, which records it."""
    try:
        session = plugin.load(cell.model.path, cell.backend_options)
    except UsageError:
        raise
    except Exception:
        return
    session.close()


def preflight(cells: Sequence[RunSpec]) -> Preflight:
    """Check every cell once; raises the first usage error, returns the cells to skip."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, cell in enumerate(cells):
        opts = json.dumps(dict(cell.backend_options), sort_keys=True, default=str)
        groups.setdefault((str(cell.model.path), cell.backend, opts), []).append(i)
    skipped: dict[int, FixedBatchError] = {}
    first_load_s: dict[int, float] = {}
    names: dict[str, list[str] | None] = {str(c.model.path): None for c in cells}
    for (path, backend, _), indices in groups.items():
        first = cells[indices[0]]
        cls = get_backend(backend)
        plugin = cls()
        if not cls.network and first.model.path.suffix not in cls.formats:
            raise ModelFileError(
                f"the {backend} backend loads {', '.join(cls.formats)} files, not "
                f"{first.model.path.name}",
                _format_hint(first),
            )
        plugin.validate_options(first.backend_options)
        if cls.network:  # nothing to load here: the endpoint has the model
            remote = is_remote(first.model) or backend in ENDPOINT_CHECKED
            if remote and "endpoint" in first.backend_options:
                _check_remote(plugin, first)
            continue
        try:
            t0 = time.perf_counter_ns()
            session = plugin.load(first.model.path, first.backend_options)
            first_load_s[indices[0]] = (time.perf_counter_ns() - t0) / 1e9
        except UsageError:
            raise
        except ModelLoadError as exc:  # a file the backend cannot load: exit 2 before the runs
            raise ModelFileError(
                f"the {backend} backend cannot load {first.model.path.name}: {exc.message}",
                "check the file (a truncated, empty or corrupt download?) or pass one this "
                "backend loads",
            ) from None
        except Exception:  # a crash of the runtime: the run records it
            continue
        if is_generative(session):  # prompts, not tensors: the loaded model is the check
            session.close()
            continue
        try:
            names[path] = [s.name for s in session.inputs]
            resizable = session.resizes_fixed_batch
            for i in indices:
                cell = cells[i]
                try:
                    feeds = query_feeds(
                        session.inputs,
                        cell.scenario.batch_size,
                        cell.shape_overrides,
                        cell.scenario.seed,
                        cell.feeds,
                        resizable=resizable,
                    )
                    session.bind(feeds)
                except FixedBatchError as exc:
                    skipped[i] = exc
                except UsageError:
                    raise
                except Exception:  # a runtime failure: the run records it
                    continue
        finally:
            session.close()
    overrides = cells[0].shape_overrides if cells else {}
    known = list(names.values())
    if overrides and all(n is not None for n in known):
        check_unknown_overrides(overrides, [name for n in known for name in n or ()])
    if cells and len(skipped) == len(cells):
        raise next(iter(skipped.values()))
    return Preflight(skipped=skipped, first_load_s=first_load_s)
