"""The base of the system collectors that sample a sysfs-like tree in a thread of their own.

A subclass says what one sample reads (:meth:`PollingCollector.poll`), what a window starts
from (``_window_opened``) and what it yields (``_window_result``), and starts the thread from
its ``open`` once it has found its sources. The base holds the reader, the lock the samples
are taken under, the window's bracketing and the thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.core.schema import CollectorResult
from tippingpoint.harness.collectors.base import CollectorBase
from tippingpoint.harness.collectors.sampling import Poller
from tippingpoint.harness.collectors.sysfs import Opener, SysfsReader, read_text

if TYPE_CHECKING:
    from typing_extensions import Self

    from tippingpoint.harness.collectors.options import CollectorOptions


class PollingCollector(CollectorBase):
    """A collector sampling files under ``root`` every ``interval_s`` seconds while open."""

    interval_s = 0.5

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (tree and sampling thread)."""
        return cls(root=options.root, opener=options.opener, background=options.background)

    def __init__(
        self,
        *,
        root: Path = Path("/"),
        opener: Opener = read_text,
        background: bool = True,
        interval_s: float | None = None,
    ) -> None:
        self.reader = SysfsReader(root, opener)
        self.background = background
        if interval_s is not None:
            self.interval_s = interval_s
        self._poller: Poller | None = None
        self._lock = threading.Lock()
        self._in_window = False
        self._start_ns = 0

    def poll(self) -> None:
        """One sample (called by the thread, or by tests); only a window's samples count."""

    def begin_window(self, t_ns: int) -> None:
        """Forget the last window, read the 'before' state, then sample once."""
        with self._lock:
            self._start_ns = t_ns
            self._window_opened()
            self._in_window = True
        self.poll()

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        """Sample once more, then what was measured over the window."""
        self.poll()
        with self._lock:
            self._in_window = False
            return self._window_result(t_ns)

    def _window_opened(self) -> None:
        """Reset the window's state and read the 'before' state (called under the lock)."""

    def _window_result(self, t_ns: int) -> CollectorResult:
        """The window's result, from ``self._start_ns`` to ``t_ns`` (called under the lock)."""
        raise NotImplementedError

    def _start_thread(self) -> None:
        if self.background:
            self._poller = Poller(self.name, self.interval_s, self.poll)
            self._poller.start()

    def close(self) -> None:
        """Stop the thread."""
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
