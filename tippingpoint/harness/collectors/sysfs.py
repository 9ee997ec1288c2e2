"""Reading sysfs-like trees through an injectable opener, so tests can stand a fake tree behind it.

Collectors never call ``open()`` on a sysfs path directly: they go through :class:`SysfsReader`,
which resolves kernel paths under a ``root`` (``/`` in production, a temporary directory in
tests) and reads them with an ``opener``. A test opener can make a counter advance with a fake
clock, or raise ``PermissionError`` the way a root-only ``energy_uj`` does for a normal user
(``chmod 0`` does nothing under root, so permission tests must inject the error).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Opener = Callable[[Path], str]
"""Reads one file and returns its text; raises OSError (e.g. PermissionError) like open()."""

Clock = Callable[[], int]
"""A monotonic clock in nanoseconds: ``time.perf_counter_ns`` or a fake."""


def read_text(path: Path) -> str:
    """The default opener: the file's text, read in one go."""
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


class SysfsReader:
    """Resolves absolute kernel paths under ``root`` and reads them with ``opener``."""

    def __init__(self, root: Path = Path("/"), opener: Opener = read_text) -> None:
        self.root = Path(root)
        self.opener = opener

    def path(self, kernel_path: str | Path) -> Path:
        """The real location of a kernel path such as ``/sys/class/powercap``."""
        rel = str(kernel_path).lstrip("/")
        return self.root / rel if rel else self.root

    def kernel_path(self, path: Path) -> str:
        """The kernel path of a resolved location, for messages and the report."""
        try:
            return "/" + str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def read(self, path: Path) -> str:
        """The stripped text of a resolved file; OSError propagates."""
        return self.opener(path).strip()

    def read_int(self, path: Path) -> int:
        """An integer file (sysfs counters and micro-units); ValueError on garbage."""
        return int(self.read(path))

    def try_read(self, path: Path) -> str | None:
        """The text of a file, or None when it is missing or unreadable."""
        try:
            return self.read(path)
        except OSError:
            return None

    def try_int(self, path: Path) -> int | None:
        """An integer file, or None when it is missing, unreadable or not an integer."""
        text = self.try_read(path)
        if text is None:
            return None
        try:
            return int(text)
        except ValueError:
            return None

    def children(self, kernel_dir: str | Path, prefix: str = "") -> list[Path]:
        """Entries of a directory whose names start with ``prefix``, sorted; [] if absent."""
        base = self.path(kernel_dir) if not isinstance(kernel_dir, Path) else kernel_dir
        try:
            return sorted(p for p in base.iterdir() if p.name.startswith(prefix))
        except OSError:
            return []
