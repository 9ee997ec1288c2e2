"""Minimal far ends on loopback for the link tests and benchmark: a TCP echo server, a bulk
sender, and an HTTP/1.1 keep-alive server that answers every request ``200`` with an empty
KServe-style JSON body (``{"outputs":[]}``).

Each runs on the caller's event loop (``await start_*()``) or, for the benchmark, in its own
process (``python -m tippingpoint.harness.links.farend http``, which prints its port and serves
until stdin closes), so that the server does not share a core's event loop with the client.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"outputs":[]}'
"""An empty KServe-style answer, which the HTTP backend's template protocol decodes."""
HTTP_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False


class _Http(asyncio.Protocol):
    """Answers each complete request head (bodies are read by Content-Length)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""
        self.body_left = 0

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            if self.body_left:
                take = min(self.body_left, len(buf))
                buf = buf[take:]
                self.body_left -= take
                if self.body_left:
                    break
                out.append(HTTP_OK)
                continue
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head, buf = buf[:end].lower(), buf[end + 4 :]
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                self.body_left = length
                continue
            out.append(HTTP_OK)
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))


async def start_echo() -> tuple[asyncio.base_events.Server, int]:
    """An echo server on 127.0.0.1: (server, port)."""
    srv = await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", 0)
    return srv, int(srv.sockets[0].getsockname()[1])


async def start_http() -> tuple[asyncio.base_events.Server, int]:
    """An HTTP/1.1 server on 127.0.0.1 answering ``200`` (:data:`HTTP_OK`): (server, port)."""
    srv = await asyncio.get_running_loop().create_server(_Http, "127.0.0.1", 0, backlog=1024)
    return srv, int(srv.sockets[0].getsockname()[1])


async def start_bulk(nbytes: int) -> tuple[asyncio.base_events.Server, int]:
    """A server that, for each byte a client sends, sends ``nbytes`` back and closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(1)
            writer.write(b"x" * nbytes)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, int(srv.sockets[0].getsockname()[1])


async def _serve(kind: str) -> None:
    srv, port = await (start_http() if kind == "http" else start_echo())
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    srv.close()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1] if len(sys.argv) > 1 else "http"))
