"""The ``split`` backend: the head of a model on this machine (ONNX Runtime CPU), its tail behind
an endpoint (KServe v2, binary tensors), one inference through both.

The harness cuts the model and hands this backend the two files (``head`` and ``tail``); the
tail is served under its file's stem (``tippingpoint serve -m TAIL``) unless ``tail_model``
names it. One request runs the head, encodes the cut tensor (compressed when the head ends in a
Cast or QuantizeLinear, see :func:`tippingpoint.models.split.compress_pair`), sends it and reads
the tail's outputs; its latency runs from the head's start to the tail's reply. The session is a
:class:`~tippingpoint.backends.network.NetworkSession`, so the harness's network scenarios (and
the network shaper) apply to it as to the ``http`` backend.

Usage::

    backend = SplitBackend()
    opts = {"endpoint": "http://127.0.0.1:8000", "head": "m.c3.head.onnx", "tail": "m.c3.tail.onnx"}
    with backend.load(Path("m.onnx"), opts) as session:
        outputs = session.bind(feeds)()
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tippingpoint.backends.base import Session, SessionBase
from tippingpoint.backends.http.auth import public_url
from tippingpoint.backends.http.backend import HttpBackend, HttpSession
from tippingpoint.backends.http.client import ErrorKind
from tippingpoint.backends.http.kserve import CodecError
from tippingpoint.backends.network import Completion, NetworkInfo, NetworkLimits, RequestFn
from tippingpoint.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend
from tippingpoint.backends.options import parse_options
from tippingpoint.core.errors import InvalidOptionError, ModelFileError
from tippingpoint.core.kinds import ScenarioKind
from tippingpoint.core.types import Availability, BackendDescription, Device, OptionValue

T = TypeVar("T")
INSTALL_HINT = "pip install 'tippingpoint[onnx,http]'"
PLACEHOLDER = "http://127.0.0.1:1"


class SplitOptions(BaseModel):
    """Options of the split backend; all are recorded in the report (the endpoint without
    credentials)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str = Field(description="base URL of the server holding the tail", repr=False)
    head: str = Field(description="the head model file (inputs -> cut tensor)")
    tail: str = Field(description="the tail model file (cut tensor -> outputs), as served")
    tail_model: str | None = Field(default=None, description="served name; default: tail stem")
    cut: str = Field(default="", description="the cut tensor's name, for the report")
    compression: str = Field(default="none", description="none, fp16 or int8, for the report")
    intra_op_threads: int = Field(default=1, ge=0, description="head threads (0: ORT chooses)")
    timeout_s: float = Field(default=10.0, gt=0, le=600)
    retries: int = Field(default=0, ge=0, le=10)
    client: str = Field(default="auto", description="HTTP client: auto, aiohttp or raw")
    server_timing_metric: str = Field(
        default="total", description="the Server-Timing entry taken as the tail's server time"
    )


class SplitSession(SessionBase):
    """Head on ONNX Runtime CPU, tail through an :class:`HttpSession`; the outputs are the
    tail's. Each request's head time is kept (:attr:`head_ns`) beside the request's own."""

    def __init__(self, head: Session, tail: HttpSession, description: BackendDescription) -> None:
        super().__init__(head.inputs, tail.outputs, description)
        self.head = head
        self.tail = tail
        self.head_ns: list[int] = []
        """Head time of every request sent through :meth:`request_fn`, in order."""

    def bind(self, feeds: Sequence[np.ndarray]) -> Callable[[], Sequence[np.ndarray]]:
        """A blocking call: run the head, send the cut tensor, return the tail's outputs."""
        head = self.head.bind(feeds)
        tail = self.tail

        def call() -> Sequence[np.ndarray]:
            return tail.bind(list(head()))()

        return call

    def request_fn(self, kind: ScenarioKind, feeds: Sequence[np.ndarray]) -> RequestFn:
        """One request as the harness times it: the head runs (on the session's loop, as an
        edge device runs it in line), its output is encoded and sent, the reply decoded after
        it was timed. The completion starts when the head starts."""
        head = self.head.bind(feeds)
        tail = self.tail
        client = tail.client_for(kind)
        decode = tail.codec.decode
        outputs = tail.outputs
        head_ns = self.head_ns

        async def fn() -> Completion:
            start = time.perf_counter_ns()
            activation = list(head())
            head_ns.append(time.perf_counter_ns() - start)
            req = tail.prepare(activation, client)
            c, body, headers = await client.send(req)
            if c.error is None:
                try:
                    decode(body, headers, outputs)
                except CodecError:
                    return c._replace(start_ns=start, error=ErrorKind.UNDECODABLE.value)
            return c._replace(start_ns=start)

        return fn

    def run_async(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the tail client's loop (see :meth:`HttpSession.run_async`)."""
        return self.tail.run_async(coro, timeout)

    @property
    def limits(self) -> NetworkLimits:
        """The tail requests' limits."""
        return self.tail.limits

    def network_info(self) -> NetworkInfo:
        """The tail endpoint's protocol, address, TLS and auth."""
        return self.tail.network_info()

    def close(self) -> None:
        """Close the tail's client and the head's session."""
        try:
            self.tail.close()
        finally:
            self.head.close()


class SplitBackend:
    """A model cut in two: head here on ONNX Runtime CPU, tail on a KServe v2 endpoint."""

    name = "split"
    formats: tuple[str, ...] = (".onnx",)
    runtime = "onnxruntime"
    network = True
    """Its sessions are network sessions (the tail is remote): the harness's network scenarios
    and the shaper apply; the pre-run check validates options without loading."""

    def availability(self) -> Availability:
        """Installed when onnxruntime and aiohttp are both importable (not imported here)."""
        head = OnnxRuntimeCpuBackend().availability()
        http = importlib.util.find_spec("aiohttp") is not None
        return Availability(
            installed=head.installed and http,
            runtime="onnxruntime + aiohttp",
            version=head.version,
            install_hint=INSTALL_HINT,
        )

    def validate_options(self, options: Mapping[str, OptionValue]) -> None:
        """Parse ``options`` without loading (the endpoint may come later, from the stand-in)."""
        parse_options(
            SplitOptions,
            {"endpoint": PLACEHOLDER, "head": "", "tail": "", **options},
            self.name,
        )

    def load(self, model: Path, options: Mapping[str, OptionValue]) -> SplitSession:
        """Load the head locally and connect to the tail's endpoint (readiness, metadata)."""
        for key in ("endpoint", "head", "tail"):
            if key not in options:
                raise InvalidOptionError(
                    f"the split backend needs the option '{key}'",
                    "run it with 'tippingpoint run -m MODEL --split auto|TENSOR'",
                )
        opts: SplitOptions = parse_options(SplitOptions, options, self.name)
        head_path, tail_path = Path(opts.head), Path(opts.tail)
        for path in (head_path, tail_path):
            if not path.is_file():
                raise ModelFileError(f"split model file not found: {path}", "check head/tail")
        tail_name = opts.tail_model or tail_path.stem
        head = OnnxRuntimeCpuBackend().load(head_path, {"intra_op_threads": opts.intra_op_threads})
        try:
            tail = HttpBackend().load(
                tail_path,
                {
                    "endpoint": opts.endpoint,
                    "model_name": tail_name,
                    "timeout_s": opts.timeout_s,
                    "retries": opts.retries,
                    "client": opts.client,
                    "server_timing_metric": opts.server_timing_metric,
                },
            )
        except BaseException:
            head.close()
            raise
        head_desc = head.describe()
        tail_desc = tail.describe()
        description = BackendDescription(
            name=self.name,
            runtime=f"{head_desc.runtime} + {tail_desc.runtime}",
            runtime_version=head_desc.runtime_version,
            device=Device.CPU,
            device_name=f"head: CPU; tail: {public_url(opts.endpoint)}",
            threads=head_desc.threads,
            providers=head_desc.providers,
            options={
                "endpoint": public_url(opts.endpoint),
                "cut": opts.cut,
                "compression": opts.compression,
                "head": head_path.name,
                "tail_model": tail_name,
                "intra_op_threads": opts.intra_op_threads,
                "timeout_s": opts.timeout_s,
                "retries": opts.retries,
                "client": str(tail_desc.options.get("client", opts.client)),
                "server_timing_metric": opts.server_timing_metric,
            },
        )
        return SplitSession(head, tail, description)
