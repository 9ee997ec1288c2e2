"""``tippingpoint serve``: the reference KServe v2 inference server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from tippingpoint.core.errors import InvalidOptionError


def serve(
    model: list[str] = typer.Option(
        [],
        "--model",
        "-m",
        help="Suite model or model file, served under its file stem (e.g. ae-anomaly.fp32); "
        "NAME=MODEL renames (repeatable).",
    ),
    host: str = typer.Option("127.0.0.1", help="Address to bind; loopback unless you expose it."),
    port: int = typer.Option(8000, help="Port to listen on (0 picks a free one)."),
    grpc_port: int | None = typer.Option(
        None,
        "--grpc-port",
        help="Also serve KServe v2 over gRPC on this port (0 picks a free one; TLS and the "
        "token as for HTTP). Needs grpcio: pip install 'tippingpoint[grpc]'.",
    ),
    backend: str = typer.Option("onnxruntime", help="Backend that runs the models."),
    opt: list[str] = typer.Option([], "--opt", help="Backend option KEY=VALUE."),
    token_env: str | None = typer.Option(
        None, help="Require this environment variable's value as a bearer token."
    ),
    token_file: Path | None = typer.Option(
        None, help="Require the first line of this file as a bearer token."
    ),
    max_body_mb: float = typer.Option(64.0, help="Largest request body accepted (413 above)."),
    timeout: float = typer.Option(
        30.0, help="Seconds to receive a body (408) and to run an inference (503)."
    ),
    header_timeout: float = typer.Option(
        30.0,
        "--header-timeout",
        help="Seconds for a request's line and headers to arrive from their first byte; past "
        "it the server answers 408 and closes the connection (slow-headers guard).",
    ),
    threads: int = typer.Option(1, help="Inference threads (requests run on this pool)."),
    access_log: bool = typer.Option(False, help="Log every request (never its headers)."),
    tls_cert: Path | None = typer.Option(None, help="Serve HTTPS with this PEM certificate."),
    tls_key: Path | None = typer.Option(None, help="Private key of --tls-cert (PEM)."),
    llm: list[str] = typer.Option(
        [],
        "--llm",
        help="Serve a language model on the OpenAI-compatible /v1 routes: a generative suite "
        "model (tiny-llm, tiny-llm.int4), an onnxruntime-genai folder, NAME=MODEL (repeatable).",
    ),
    llm_stub: str | None = typer.Option(
        None,
        "--llm-stub",
        help="Also serve 'stub' on /v1: no model, deterministic timing "
        "ttft=MS,itl=MS,chunk=TOKENS,error=FRACTION,slots=N (e.g. ttft=50,itl=10); slots=N "
        "answers N requests at once and queues the rest (FIFO, the wait is in their TTFT).",
    ),
) -> int:
    """Serve models over the KServe v2 protocol (JSON and binary tensors) with Server-Timing,
    and language models over the OpenAI-compatible streaming API (--llm, --llm-stub)."""
    import asyncio
    import logging
    import ssl

    from tippingpoint.backends.http.auth import load_secret
    from tippingpoint.cli.flags import parse_backend_options
    from tippingpoint.core.errors import InvalidOptionError
    from tippingpoint.server.app import ServerConfig, create_app
    from tippingpoint.server.repository import load_repository

    limits = (max_body_mb, timeout, header_timeout)
    if not all(0 < v < float("inf") for v in limits) or threads < 1 or not 0 <= port <= 65535:
        raise InvalidOptionError(
            "invalid server limits",
            "--max-body-mb, --timeout and --header-timeout must be positive and finite, "
            "--threads >= 1, --port 0-65535",
        )
    if grpc_port is not None:
        if not 0 <= grpc_port <= 65535 or (grpc_port == port and port != 0):
            raise InvalidOptionError(
                f"invalid --grpc-port {grpc_port}", "give 0-65535, not the HTTP --port"
            )
        import importlib.util

        if importlib.util.find_spec("grpc") is None:
            raise InvalidOptionError(
                "--grpc-port needs grpcio, which is not installed",
                "pip install 'tippingpoint[grpc]'",
            )
    if tls_key is not None and tls_cert is None:
        raise InvalidOptionError("--tls-key needs --tls-cert", "pass both, or neither")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise InvalidOptionError(f"TLS file not found: {path}", "check the path")
    secret = None
    if token_env is not None or token_file is not None:
        secret = load_secret(token_env, token_file)
    options = parse_backend_options(list(opt), [backend])[backend]
    from tippingpoint.server.openai import OpenAiService, load_sources
    from tippingpoint.server.repository import ModelRepository

    generative = bool(llm) or llm_stub is not None
    repo = load_repository(list(model), backend, options) if model or not generative else None
    repo = repo or ModelRepository()
    try:
        sources = load_sources(list(llm), llm_stub, threads=threads) if generative else []
    except BaseException:
        repo.close()
        raise
    service = OpenAiService(sources) if sources else None
    config = ServerConfig(
        host=host,
        port=port,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        request_timeout_s=timeout,
        header_timeout_s=header_timeout,
        threads=threads,
        token=secret,
        access_log=access_log,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    try:
        ssl_context = config.ssl_context()
    except (OSError, ssl.SSLError) as exc:
        repo.close()
        raise InvalidOptionError(
            f"cannot load the TLS certificate or key: {exc}", "check --tls-cert and --tls-key"
        ) from None
    if access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if host not in ("127.0.0.1", "::1", "localhost") and secret is None:
        print(
            f"warning: serving on {host} without a token: anyone who can reach it can use it "
            "(add --token-env or --token-file)",
            file=sys.stderr,
        )

    async def main() -> None:
        from aiohttp import web

        from tippingpoint.server.protocol import make_runner

        app = create_app(repo, config, service)
        runner = make_runner(app, config)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise _cannot_listen(host, port, exc) from None
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        names = ", ".join([m.name for m in repo] + [f"{s.name} (/v1)" for s in sources])
        also = ""
        grpc_server = grpc_service = None
        if grpc_port is not None:
            from tippingpoint.server.app import InferenceService
            from tippingpoint.server.grpc_service import start_grpc

            grpc_service = InferenceService(repo, config)  # its own inference pool
            try:
                grpc_server, grpc_bound = await start_grpc(grpc_service, config, host, grpc_port)
            except OSError as exc:
                grpc_service.close()
                await runner.cleanup()
                raise _cannot_listen(host, grpc_port, exc) from None
            scheme = "grpcs" if config.tls_cert is not None else "grpc"
            also = f" and {scheme}://{shown}:{grpc_bound}"
        print(
            f"serving {names} on {config.scheme}://{shown}:{bound}{also} (Ctrl-C stops)",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            if grpc_server is not None:
                await grpc_server.stop(1.0)
            if grpc_service is not None:
                grpc_service.close()
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        repo.close()
    return 0


def _cannot_listen(host: str, port: int, exc: OSError) -> InvalidOptionError:
    """The one-line error of a port that cannot be bound (in use, not permitted)."""
    from tippingpoint.core.errors import InvalidOptionError

    reason = exc.strerror or type(exc).__name__
    return InvalidOptionError(
        f"cannot listen on {host}:{port}: {reason}",
        "pick another --port (0 picks a free one), or stop what holds it",
    )
