"""The sampling thread shared by collectors: calls a function at a fixed rate until stopped.

Collectors sample in a daemon thread (never a spawned process, which would re-import
``__main__``), and never inside the timed call. Tests drive collectors without the thread
(``background=False``) by calling their ``poll()`` after advancing a fake clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Poller:
    """Runs ``fn`` every ``interval_s`` seconds in a daemon thread until :meth:`stop`."""

    def __init__(self, name: str, interval_s: float, fn: Callable[[], None]) -> None:
        self.interval_s = interval_s
        self._fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tp-{name}", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._fn()
            except Exception as exc:  # recorded; the collector marks its window invalid
                self.error = exc

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(1.0, 5 * self.interval_s))
