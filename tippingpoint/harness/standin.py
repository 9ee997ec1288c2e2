"""A local stand-in endpoint (``--endpoint local``): the reference server in a child process.

``tippingpoint serve`` runs as a subprocess on loopback (the harness does not import the
server), so the HTTP path (serialisation, the network stack, the server's queue) is measured
end to end on one machine. Runs against it are flagged ``local-standin`` in their reports:
they are not cloud figures.
"""

from __future__ import annotations

import re
import selectors
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tippingpoint.core.errors import RuntimeFailure

READY_TIMEOUT_S = 60.0
_SERVING = re.compile(r"serving .* on (https?://\S+)")


class LocalStandIn:
    """``tippingpoint serve`` on 127.0.0.1 with a free port, for the lifetime of a ``with``.

    Usage::

        with LocalStandIn([Path("digits-cnn.fp32.onnx")]) as url:
            ...  # run the http backend against url
    """

    def __init__(
        self,
        models: Sequence[Path],
        backend: str = "onnxruntime",
        threads: int = 1,
        *,
        host: str = "127.0.0.1",
        token_env: str | None = None,
    ) -> None:
        self.models = tuple(dict.fromkeys(models))
        self.backend = backend
        self.threads = threads
        self.host = host
        """The address to bind: loopback here; a campaign binds its node's address."""
        self.token_env = token_env
        """Require the bearer token held in this environment variable (passed to the child)."""
        self.proc: subprocess.Popen[str] | None = None
        self.url: str | None = None

    def __enter__(self) -> str:
        cmd = [sys.executable, "-m", "tippingpoint", "serve", "--host", self.host, "--port", "0"]
        cmd += ["--backend", self.backend, "--threads", str(self.threads)]
        if self.token_env is not None:
            cmd += ["--token-env", self.token_env]
        for m in self.models:
            cmd += ["-m", str(m)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        try:
            self.url = self._wait_for_url()
            self._wait_ready(self.url)
        except BaseException:
            self.__exit__()
            raise
        return self.url

    def _wait_for_url(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.2):
                if self.proc.poll() is not None:
                    break
                continue
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            match = _SERVING.search(line)
            if match:
                return match.group(1)
        err = ""
        if self.proc.poll() is not None and self.proc.stderr is not None:
            lines = self.proc.stderr.read().strip().splitlines()
            err = lines[-1] if lines else ""
        raise RuntimeFailure(
            "the local stand-in server did not start" + (f": {err}" if err else ""),
            "run 'tippingpoint serve -m MODEL' by hand to see why",
        )

    @staticmethod
    def _wait_ready(url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeFailure(
            f"the local stand-in server at {url} never became ready",
            "run 'tippingpoint serve -m MODEL' by hand to see why",
        )

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.proc = None
