"""Run the reference server on a background thread (tests, benchmarks, local stand-ins)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from tippingpoint.server.app import ServerConfig, create_app
from tippingpoint.server.repository import ModelRepository

if TYPE_CHECKING:
    from aiohttp import web

    from tippingpoint.server.openai import OpenAiService

START_TIMEOUT_S = 30.0


class BackgroundServer:
    """The server on its own event loop and thread; ``url`` once started. A context manager.

    Usage::

        with BackgroundServer(load_repository(["mlp-tiny"])) as server:
            print(server.url)   # http://127.0.0.1:PORT (port 0 picks a free one)
    """

    def __init__(
        self,
        repo: ModelRepository,
        config: ServerConfig | None = None,
        llm: OpenAiService | None = None,
    ) -> None:
        self.repo = repo
        self.llm = llm
        self.config = config or ServerConfig(port=0)
        self.port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self.port is None:
            raise RuntimeError("server not started")
        host = self.config.host
        return f"{self.config.scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def _start(self) -> int:
        from aiohttp import web

        from tippingpoint.server.protocol import make_runner

        app = create_app(self.repo, self.config, self.llm)
        runner = make_runner(app, self.config)
        await runner.setup()
        site = web.TCPSite(
            runner, self.config.host, self.config.port, ssl_context=self.config.ssl_context()
        )
        await site.start()
        self._runner = runner
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    def start(self) -> BackgroundServer:
        """Start listening; returns self."""
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = fut.result(START_TIMEOUT_S)
        return self

    def stop(self) -> None:
        """Stop listening, close the models, and join the thread."""
        if self._runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            fut.result(START_TIMEOUT_S)
            self._runner = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)
            self._loop.close()
        self.repo.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
