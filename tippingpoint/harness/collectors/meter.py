"""External meters: a command that prints watts (polled), or a meter's timestamped CSV.

This is how a wall meter, a smart plug or a USB power meter gets into a report. The command is
run at a fixed rate in the sampling thread and the first number it prints is taken as watts.
The CSV is read when the window ends (after ``settle_s`` for the logger to flush) and aligned to
the window through the wall clock: the collector records the offset between ``time.time_ns``
and ``perf_counter_ns`` at both edges of the window.
"""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from tippingpoint.core.schema import CollectorResult, Measurement
from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.options import DEFAULT_WINDOWS
from tippingpoint.harness.collectors.sysfs import Clock
from tippingpoint.harness.collectors.trace import Trace
from tippingpoint.harness.collectors.windowed import (
    Channel,
    ChannelKind,
    EnergyCollector,
    EnergyScope,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from tippingpoint.harness.collectors.options import CollectorOptions

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
TIME_COLUMNS = ("timestamp", "time", "unix", "epoch", "t")
WATT_COLUMNS = ("watts", "power_w", "power", "w", "p")
VOLT_COLUMNS = ("volts", "voltage", "v", "u")
AMP_COLUMNS = ("amps", "current", "a", "i")

Runner = Callable[[Sequence[str]], str]


def run_command(argv: Sequence[str]) -> str:
    """Run a meter command and return its standard output."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise OSError(f"meter command failed: {exc}") from None
    return out.stdout


def parse_watts(text: str) -> float:
    """The first number in a meter command's output; ValueError when there is none."""
    m = _NUMBER.search(text)
    if not m:
        raise ValueError(f"meter command printed no number: {text.strip()[:60]!r}")
    return float(m.group(0))


class MeterCommandCollector(EnergyCollector):
    """Power from a user command printing watts, polled at ``rate_hz`` and integrated."""

    name = "meter-command"
    scope = EnergyScope.EXTERNAL_METER
    interval_s = 0.2
    min_samples = 10

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (the meter command)."""
        if not options.meter_command:
            raise CollectorUnavailable(
                "meter-command: no command given; pass one that prints the meter's watts"
            )
        return cls(
            options.meter_command,
            rate_hz=options.meter_rate_hz,
            background=options.background,
            windows=options.windows,
        )

    def __init__(
        self,
        command: Sequence[str] | str,
        *,
        rate_hz: float = 5.0,
        runner: Runner = run_command,
        clock: Clock = time.perf_counter_ns,
        background: bool = True,
        windows: int = DEFAULT_WINDOWS,
    ) -> None:
        super().__init__(
            clock=clock, background=background, windows=windows, interval_s=1.0 / rate_hz
        )
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        self.runner = runner
        self.resolution = f"watts printed by `{shlex.join(self.argv)}`, polled at {rate_hz:g} Hz"

    def _discover(self) -> tuple[Channel, ...]:
        if not self.argv:
            raise CollectorUnavailable("meter-command: no command given; pass one that prints W")
        try:
            parse_watts(self.runner(self.argv))
        except (OSError, ValueError) as exc:
            raise CollectorUnavailable(
                f"meter-command: {exc}; the command must print the meter's watts"
            ) from None
        return (Channel("meter", ChannelKind.POWER, True, f"command: {shlex.join(self.argv)}"),)

    def _read(self) -> tuple[float, ...]:
        return (parse_watts(self.runner(self.argv)),)


def _parse_time(text: str) -> int:
    """Unix nanoseconds of a CSV time cell: epoch seconds, or ISO 8601 (naive = local)."""
    text = text.strip()
    try:
        return round(float(text) * 1e9)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return round(dt.astimezone(timezone.utc).timestamp() * 1e9)


def _column(header: Sequence[str], names: Sequence[str]) -> str | None:
    lowered = {h.strip().lower(): h for h in header}
    for n in names:
        if n in lowered:
            return lowered[n]
    return None


def read_meter_csv(path: Path) -> list[tuple[int, float]]:
    """(unix ns, watts) rows of a meter CSV with a time column and watts (or volts and amps)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            t_col = _column(header, TIME_COLUMNS)
            w_col = _column(header, WATT_COLUMNS)
            v_col, a_col = _column(header, VOLT_COLUMNS), _column(header, AMP_COLUMNS)
            if t_col is None or (w_col is None and (v_col is None or a_col is None)):
                raise ValueError(
                    f"{path}: needs a time column ({'/'.join(TIME_COLUMNS)}) and watts "
                    f"({'/'.join(WATT_COLUMNS)}) or volts and amps; found {', '.join(header)}"
                )
            rows = []
            for i, row in enumerate(reader, start=2):
                try:
                    t = _parse_time(row[t_col])
                    if w_col is not None:
                        w = float(row[w_col])
                    else:
                        assert v_col is not None and a_col is not None
                        w = float(row[v_col]) * float(row[a_col])
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{path}:{i}: {exc}") from None
                rows.append((t, w))
    except OSError as exc:
        raise ValueError(f"cannot read meter CSV {path}: {exc.strerror or exc}") from None
    rows.sort()
    return rows


class MeterCsvCollector(EnergyCollector):
    """Power from a meter's CSV log, read after the window and aligned by wall clock."""

    name = "meter-csv"
    scope = EnergyScope.EXTERNAL_METER
    min_samples = 2
    interval_s = 0.0

    @classmethod
    def from_options(cls, options: CollectorOptions) -> Self:
        """Built from the run's collector options (the meter's CSV path)."""
        if options.meter_csv is None:
            raise CollectorUnavailable("meter-csv: no CSV path given; pass the meter's log file")
        return cls(options.meter_csv, settle_s=options.meter_settle_s, windows=options.windows)

    def __init__(
        self,
        path: Path,
        *,
        settle_s: float = 0.0,
        wall_clock: Clock = time.time_ns,
        clock: Clock = time.perf_counter_ns,
        sleep: Callable[[float], None] = time.sleep,
        windows: int = DEFAULT_WINDOWS,
    ) -> None:
        super().__init__(clock=clock, background=False, windows=windows)
        self.path = Path(path)
        self.settle_s = settle_s
        self.wall_clock = wall_clock
        self.sleep = sleep
        self._offset_begin = 0
        self.resolution = f"meter CSV {self.path}, aligned by wall clock"

    def _discover(self) -> tuple[Channel, ...]:
        if not self.path.parent.is_dir():
            raise CollectorUnavailable(
                f"meter-csv: directory {self.path.parent} does not exist; point at the meter's log"
            )
        return (Channel("meter", ChannelKind.POWER, True, f"csv: {self.path}"),)

    def open(self) -> None:
        """Check the path; the file itself may appear only during the run."""
        self.channels = self._discover()
        self._traces = [Trace.empty()]

    def poll(self) -> None:
        """Nothing to poll: the file is read when the window ends."""

    def _offset(self) -> int:
        return self.wall_clock() - self.clock()

    def begin_window(self, t_ns: int) -> None:
        """Record the wall-clock offset at the start."""
        self._failure = None
        self._offset_begin = self._offset()
        self._start_ns = t_ns

    def end_window(self, t_ns: int, *, queries: int, samples: int) -> CollectorResult:
        """Read the CSV and integrate the rows that fall in the window."""
        offset = (self._offset_begin + self._offset()) // 2
        if self.settle_s > 0:
            self.sleep(self.settle_s)
        trace = Trace.empty()
        try:
            for unix_ns, watts in read_meter_csv(self.path):
                trace.add_power(unix_ns - offset, watts)
        except ValueError as exc:
            self._failure = f"meter-csv: {exc}"
        self._traces = [trace]
        if not self._failure and trace.t_ns:
            first, last = trace.t_ns[0], trace.t_ns[-1]
            if first > self._start_ns or last < t_ns:
                self._failure = (
                    "meter-csv: the log does not cover the whole window "
                    f"({(first - self._start_ns) / 1e9:+.2f} s at the start, "
                    f"{(last - t_ns) / 1e9:+.2f} s at the end); check the meter's clock"
                )
        result = self._result(self._start_ns, t_ns)
        wall = Measurement(
            quantity="window_start_unix",
            value=(self._start_ns + offset) / 1e9,
            unit="s",
            note="wall-clock start of the window, to re-align the log later",
        )
        return result.model_copy(update={"measurements": (*result.measurements, wall)})

    def close(self) -> None:
        """Nothing to release."""
