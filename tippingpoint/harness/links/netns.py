"""A network namespace tippingpoint creates and owns, and what ``tc`` can do inside one.

:class:`Namespace` is one worker thread that called ``unshare(CLONE_NEWNET)``: the namespace
belongs to that thread alone (the rest of the process stays in its own), sockets it creates live
in the namespace and can be used from any thread, and commands it starts (``ip``, ``tc``) run
inside it. Nothing is mounted or named, so nothing outlives the process: the namespace goes
when the thread ends and its sockets are closed. Inside, only ``lo`` exists: no traffic can
leave the machine from it.

:func:`probe_tc` finds, in a scratch namespace, which queueing disciplines and filters the
kernel has (netem, tbf, htb, u32) and never raises: what is missing is reported as one line
naming it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import functools
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


class NamespaceError(OSError):
    """A namespace could not be created or a command in it failed."""


def find_tool(name: str) -> str | None:
    """Path of ``ip`` or ``tc``: on PATH, else in the sbin folders root's PATH may lack."""
    found = shutil.which(name)
    if found:
        return found
    for folder in SBIN:
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK):
            return path
    return None


def _unshare_net() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(err, os.strerror(err))


class Namespace:
    """A fresh network namespace held by one worker thread; see the module docstring."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="tp-netns", initializer=_unshare_net
        )
        self.closed = False
        try:
            self.call(lambda: None)  # runs the initializer: raises if unshare failed
        except concurrent.futures.BrokenExecutor as exc:
            self._pool.shutdown(wait=False)
            raise NamespaceError(
                "cannot create a network namespace (unshare(CLONE_NEWNET) failed: needs root or "
                "CAP_SYS_ADMIN)"
            ) from exc

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the namespace's thread and return its result."""
        return self._pool.submit(fn).result()

    async def acall(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the namespace's thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace; with ``check`` a failure raises NamespaceError
        carrying the command's own message."""
        cmd = list(argv)
        done = self.call(
            functools.partial(subprocess.run, cmd, capture_output=True, text=True, timeout=10)
        )
        if check and done.returncode != 0:
            msg = (done.stderr or done.stdout).strip().splitlines()
            raise NamespaceError(f"{' '.join(cmd)}: {msg[0] if msg else f'exit {done.returncode}'}")
        return done

    def listener(self, host: str = "127.0.0.1") -> socket.socket:
        """A TCP socket listening inside the namespace on a free port."""

        def make() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            s.listen(1024)
            s.setblocking(False)
            return s

        return self.call(make)

    async def socket(self) -> socket.socket:
        """An unconnected TCP socket inside the namespace."""
        return await self.acall(functools.partial(socket.socket, socket.AF_INET))

    def tcp_counters(self) -> dict[str, int]:
        """The ``Tcp:`` counters of ``/proc/net/snmp`` as seen inside the namespace (call it
        from outside the namespace's thread, like every method here)."""
        return self.call(_read_tcp_counters)

    def qdisc_stats(self, dev: str = "lo") -> list[dict[str, object]]:
        """``tc -s -j qdisc show dev DEV``: one dict per queueing discipline."""
        tc = find_tool("tc") or "tc"
        out = self.run([tc, "-s", "-j", "qdisc", "show", "dev", dev], check=False)
        try:
            data = json.loads(out.stdout or "[]")
        except json.JSONDecodeError:
            return []
        return [d for d in data if isinstance(d, dict)]

    def close(self) -> None:
        """End the thread; the namespace goes once its sockets are closed too."""
        if not self.closed:
            self.closed = True
            self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class TcCapabilities:
    """What ``tc`` can do on this machine, found by trying it in a scratch namespace."""

    namespace: bool
    qdiscs: frozenset[str] = frozenset()
    filters: frozenset[str] = frozenset()
    netem_seed: bool = False
    missing: tuple[str, ...] = field(default=())
    """One line per thing missing, naming it (``sch_netem: ...``)."""
    netem_distributions: bool = False
    """Whether netem finds its jitter distribution tables (iproute2's ``normal.dist`` ...)."""

    @property
    def per_direction(self) -> bool:
        """Whether up and down can get their own qdisc (htb classes picked by a u32 filter)."""
        return "htb" in self.qdiscs and "u32" in self.filters

    def has(self, qdisc: str) -> bool:
        """Whether the kernel has the queueing discipline ``qdisc``."""
        return qdisc in self.qdiscs


_TRIALS = {
    "netem": ["netem", "delay", "1ms"],
    "tbf": ["tbf", "rate", "10mbit", "burst", "32kbit", "latency", "50ms"],
    "htb": ["htb", "default", "30"],
}


_U32_TRIAL: tuple[str, ...] = ("parent", "1:", "protocol", "ip", "prio", "1", "u32", "match")
_U32_TRIAL += ("ip", "dport", "9", "0xffff", "flowid", "1:10")


@functools.lru_cache(maxsize=1)
def probe_tc() -> TcCapabilities:
    """Which qdiscs and filters work here (cached); never raises."""
    ip, tc = find_tool("ip"), find_tool("tc")
    if ip is None or tc is None:
        tools = " and ".join(t for t, p in (("ip", ip), ("tc", tc)) if p is None)
        return TcCapabilities(False, missing=(f"{tools}: not installed (iproute2)",))
    try:
        ns = Namespace()
    except NamespaceError as exc:
        return TcCapabilities(False, missing=(f"network namespace: {exc.strerror or exc}",))
    except Exception as exc:  # never a crash: capability detection reports, it does not fail
        return TcCapabilities(False, missing=(f"network namespace: {exc}",))
    qdiscs: set[str] = set()
    filters: set[str] = set()
    missing: list[str] = []
    seed = tables = False
    try:
        ns.run([ip, "link", "set", "dev", "lo", "mtu", "1500", "up"])
        for name, args in _TRIALS.items():
            done = ns.run([tc, "qdisc", "add", "dev", "lo", "root", "handle", "1:", *args], False)
            if done.returncode == 0:
                qdiscs.add(name)
                if name == "htb":
                    flt = ns.run([tc, "filter", "add", "dev", "lo", *_U32_TRIAL], False)
                    if flt.returncode == 0:
                        filters.add("u32")
                    else:
                        missing.append(f"cls_u32: {_first_line(flt)}")
                ns.run([tc, "qdisc", "del", "dev", "lo", "root"], False)
            else:
                missing.append(f"sch_{name}: {_first_line(done)}")
        if "netem" in qdiscs:
            args = [tc, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", "seed", "7"]
            seed = ns.run(args, False).returncode == 0
            ns.run([tc, "qdisc", "del", "dev", "lo", "root"], False)
            args = [tc, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "10ms", "1ms"]
            done = ns.run([*args, "distribution", "normal"], False)
            tables = done.returncode == 0
            if not tables:
                missing.append(f"netem distribution tables: {_first_line(done)}")
            ns.run([tc, "qdisc", "del", "dev", "lo", "root"], False)
    except Exception as exc:  # never a crash
        missing.append(f"tc probe: {exc}")
    finally:
        ns.close()
    return TcCapabilities(True, frozenset(qdiscs), frozenset(filters), seed, tuple(missing), tables)


def _read_tcp_counters() -> dict[str, int]:
    with open("/proc/thread-self/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    names, values = rows[0][1:], rows[1][1:]
    return {k: int(v) for k, v in zip(names, values, strict=True)}


def _first_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[0] if lines else f"exit {done.returncode}"
