"""The sampling thread shared by collectors: calls a function at a fixed rate until stopped.

Collectors sample in a daemon thread (never a spawned process, which would re-import
``__main__``), and never inside the timed call. Polls are scheduled on fixed deadlines
(``start + k * interval``), so the time a read takes does not stretch the interval; a read
that overruns one or more deadlines skips them rather than polling in a burst. Tests drive
collectors without the thread (``background=False``) by calling their ``poll()`` after
advancing a fake clock, or drive :meth:`Poller.run_until_stopped` with a fake clock and wait.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class Poller:
    """Runs ``fn`` every ``interval_s`` seconds in a daemon thread until :meth:`stop`.

    ``clock`` (seconds) and ``wait`` (sleeps up to its argument, True when stopped) are
    injectable for tests; by default they are ``time.perf_counter`` and the stop event.
    """

    def __init__(
        self,
        name: str,
        interval_s: float,
        fn: Callable[[], None],
        *,
        clock: Callable[[], float] = time.perf_counter,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._fn = fn
        self._clock = clock
        self._stop = threading.Event()
        self._wait = wait if wait is not None else self._stop.wait
        self._thread = threading.Thread(
            target=self.run_until_stopped, name=f"tp-{name}", daemon=True
        )
        self.error: BaseException | None = None
        self.polls = 0
        """Calls of ``fn`` so far."""
        self.skipped = 0
        """Deadlines missed because a call overran them."""
        self.started_s: float | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def run_until_stopped(self) -> None:
        """The thread's loop: wait for the next deadline, call ``fn``, schedule the next."""
        interval = self.interval_s
        self.started_s = self._clock()
        deadline = self.started_s + interval
        while not self._wait(max(0.0, deadline - self._clock())):
            try:
                self._fn()
            except Exception as exc:  # recorded; the collector marks its window invalid
                self.error = exc
            self.polls += 1
            deadline += interval
            now = self._clock()
            if interval > 0 and deadline <= now:  # overran: skip the missed deadlines
                missed = math.floor((now - deadline) / interval) + 1
                self.skipped += missed
                deadline += missed * interval

    def achieved_hz(self) -> float | None:
        """Polls per second since the thread started (None before the first poll)."""
        if self.started_s is None or self.polls == 0:
            return None
        elapsed = self._clock() - self.started_s
        return self.polls / elapsed if elapsed > 0 else None

    def stop(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(1.0, 5 * self.interval_s))
