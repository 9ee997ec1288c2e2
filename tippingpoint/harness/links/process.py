"""A link in its own process: the shaper gets a core of its own (no GIL shared with the load
generator), and the namespace of a tc shaper dies with the process whatever happens.

The child (``python -m tippingpoint.harness.links.process``) reads one JSON line on stdin (the
selection and the upstream), starts the link, prints ``ready PORT``, shapes until stdin
reaches its end (or closes: the parent died), then prints the :class:`LinkRecord` as JSON.

Usage::

    with LinkProcess(selection, ("10.0.0.5", 8000)) as entry:   # (host, port) on 127.0.0.1
        ...
    record = link.record
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
from types import TracebackType

from tippingpoint.core.errors import RuntimeFailure
from tippingpoint.core.links import LinkSpec
from tippingpoint.harness.links.netns import TcCapabilities
from tippingpoint.harness.links.record import LinkRecord, ShaperKind
from tippingpoint.harness.links.select import ShaperSelection


class LinkProcess:
    """A link in a child process; a context manager yielding the entry (host, port)."""

    def __init__(
        self, selection: ShaperSelection, upstream: tuple[str, int], rto_min_ms: float = 200.0
    ) -> None:
        self.selection = selection
        self.upstream = upstream
        self.rto_min_ms = rto_min_ms
        self.record: LinkRecord | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._err = tempfile.TemporaryFile("w+")
        """The child's stderr: a file, so that a chatty child never blocks on a full pipe."""

    def start(self) -> tuple[str, int]:
        """Start the child and its link; the entry (host, port)."""
        sel = self.selection
        caps = sel.caps
        msg = {
            "kind": sel.kind.value,
            "reason": sel.reason,
            "spec": sel.spec.model_dump(mode="json"),
            "caps": None
            if caps is None
            else {
                "namespace": caps.namespace,
                "qdiscs": sorted(caps.qdiscs),
                "filters": sorted(caps.filters),
                "netem_seed": caps.netem_seed,
                "missing": list(caps.missing),
                "netem_distributions": caps.netem_distributions,
            },
            "upstream": list(self.upstream),
            "rto_min_ms": self.rto_min_ms,
        }
        proc = self._proc = subprocess.Popen(
            [sys.executable, "-m", "tippingpoint.harness.links.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(msg) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            err = self._stderr()
            proc.kill()
            proc.wait(10)
            _close_pipes(proc)
            last = err.strip().splitlines()[-1] if err.strip() else "no output"
            raise RuntimeFailure(f"the network shaper did not start: {last}", "see --debug")
        return "127.0.0.1", int(line[1])

    def stop(self) -> LinkRecord:
        """End the link; the record (also kept in :attr:`record`)."""
        if self.record is None:
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            out = proc.stdout.read()
            proc.wait(60)
            err = self._stderr()
            _close_pipes(proc)
            if proc.returncode != 0 or not out.strip():
                last = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
                raise RuntimeFailure(f"the network shaper failed: {last}", "see --debug")
            self.record = LinkRecord.model_validate_json(out)
        return self.record

    def _stderr(self) -> str:
        self._err.seek(0)
        text = self._err.read()
        self._err.close()
        return text

    def __enter__(self) -> tuple[str, int]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.stop()
        elif self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            _close_pipes(self._proc)
            self._err.close()


def _close_pipes(proc: subprocess.Popen[str]) -> None:
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()


async def _child() -> None:
    from tippingpoint.harness.links.host import open_link

    # Ctrl-C reaches the whole process group: the parent decides when the link ends (it
    # closes stdin), so that an interrupted run still gets its link's record
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = asyncio.get_running_loop()
    msg = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    c = msg["caps"]
    caps = (
        None
        if c is None
        else TcCapabilities(
            c["namespace"],
            frozenset(c["qdiscs"]),
            frozenset(c["filters"]),
            c["netem_seed"],
            tuple(c["missing"]),
            c["netem_distributions"],
        )
    )
    sel = ShaperSelection(
        ShaperKind(msg["kind"]), msg["reason"], LinkSpec.model_validate(msg["spec"]), caps
    )
    link = open_link(
        sel, (msg["upstream"][0], int(msg["upstream"][1])), rto_min_ms=msg["rto_min_ms"]
    )
    _, port = await link.start()
    print(f"ready {port}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    record = await link.stop()
    print(record.model_dump_json(), flush=True)


if __name__ == "__main__":
    asyncio.run(_child())
