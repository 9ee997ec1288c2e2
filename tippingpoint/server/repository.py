"""The models a server holds: each loaded once through a registered tippingpoint backend."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.backends.base import Session
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.core.types import OptionValue, TensorSpec

if TYPE_CHECKING:
    import numpy as np

PLATFORMS = {
    "onnxruntime": "onnxruntime_onnx",
    "onnxruntime-cuda": "onnxruntime_onnx",
    "onnxruntime-tensorrt": "onnxruntime_onnx",
    "litert": "tensorflow_lite",
    "torch": "pytorch",
}
"""Backend name -> the platform string Triton uses for the same runtime."""
SERVING_DEFAULTS: dict[str, dict[str, OptionValue]] = {
    "onnxruntime": {"intra_op_threads": 1, "allow_spinning": False},
}
"""Backend options a server uses unless told otherwise: one thread per inference, no spinning
(requests run in parallel on the server's pool; spinning threads would starve the network)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


THREAD_SAFE = frozenset({"onnxruntime", "onnxruntime-cuda", "onnxruntime-tensorrt"})
"""Backends whose sessions may run several inferences at once (ONNX Runtime's ``run`` is
thread-safe); others (a LiteRT interpreter, a torch module on one stream) run one at a time."""


@dataclass(frozen=True)
class ServedModel:
    """A loaded model: its served name, version, platform and session."""

    name: str
    version: str
    platform: str
    session: Session
    lock: threading.Lock | None = None
    """Held around bind-and-run for sessions that are not safe to share between threads."""

    def runner(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """A call that binds ``feeds`` and runs one inference (on a pool thread)."""
        session, lock = self.session, self.lock

        def run() -> Sequence[np.ndarray]:
            if lock is None:
                return session.bind(feeds)()
            with lock:
                return session.bind(feeds)()

        return run

    @property
    def inputs(self) -> Sequence[TensorSpec]:
        """The model's inputs."""
        return self.session.inputs

    @property
    def outputs(self) -> Sequence[TensorSpec]:
        """The model's outputs."""
        return self.session.outputs


class ModelRepository:
    """Served models by name; closes their sessions on :meth:`close`."""

    def __init__(self, models: Sequence[ServedModel] = ()) -> None:
        self._models: dict[str, ServedModel] = {}
        for m in models:
            self.add(m)

    def add(self, model: ServedModel) -> None:
        """Serve ``model`` under its name; a duplicate name is a usage error."""
        if model.name in self._models:
            raise InvalidOptionError(
                f"two models are served as '{model.name}'", "rename one with --model NAME=PATH"
            )
        self._models[model.name] = model

    def get(self, name: str) -> ServedModel | None:
        """The model served as ``name``, if any."""
        return self._models.get(name)

    def __iter__(self) -> Iterator[ServedModel]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def close(self) -> None:
        """Close every session."""
        for m in self._models.values():
            m.session.close()


def parse_model_arg(spec: str) -> tuple[str | None, str]:
    """``NAME=MODEL`` or ``MODEL`` (a suite name or a file path) into (name or None, model)."""
    name, sep, model = spec.partition("=")
    if sep and name and not Path(spec).exists():
        if not _NAME.match(name):
            raise InvalidOptionError(
                f"'{name}' is not a valid model name",
                "use letters, digits, '_', '.' and '-' (at most 128 characters)",
            )
        return name, model
    return None, spec


def load_repository(
    specs: Sequence[str],
    backend: str = "onnxruntime",
    options: Mapping[str, OptionValue] | None = None,
) -> ModelRepository:
    """Load suite models or files (``NAME=MODEL`` renames) on ``backend``."""
    from tippingpoint.backends.registry import get_backend
    from tippingpoint.models.registry import for_backend, resolve_model, verify

    if not specs:
        raise InvalidOptionError("no model to serve", "pass --model NAME or --model PATH")
    impl = get_backend(backend)()
    options = {**SERVING_DEFAULTS.get(backend, {}), **(options or {})}
    repo = ModelRepository()
    try:
        for spec in specs:
            name, model = parse_model_arg(spec)
            ref = for_backend(resolve_model(model), impl.formats)
            verify(ref)
            served = name or ref.path.stem  # the http backend defaults to the same name
            if not _NAME.match(served):
                raise InvalidOptionError(
                    f"cannot serve '{served}': not a valid model name", "use --model NAME=PATH"
                )
            session = impl.load(ref.path, options)
            lock = None if backend in THREAD_SAFE else threading.Lock()
            repo.add(ServedModel(served, "1", PLATFORMS.get(backend, backend), session, lock))
    except BaseException:
        repo.close()
        raise
    return repo
