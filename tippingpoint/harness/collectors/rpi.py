"""Raspberry Pi 5 PMIC rails and firmware throttle bits, through the VideoCore mailbox.

The firmware answers ``pmic_read_adc`` with one line per rail (``VDD_CORE_A current(7)=...A``,
``VDD_CORE_V volt(15)=...V``); power is the sum of volts x amps over the rails that have both.
The command goes straight to ``/dev/vcio`` (the mailbox property interface ``vcgencmd`` itself
uses, tag ``0x00030080``), falling back to running ``vcgencmd``. About 10 Hz is the practical
sampling rate. The rail sum excludes the PMIC's conversion losses and whatever the 5 V input
feeds directly (USB devices, fan, HATs), so it is reported as ``board-rails``, below the
power drawn at the wall.
"""

from __future__ import annotations

import array
import os
import re
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tippingpoint.harness.collectors.base import CollectorUnavailable
from tippingpoint.harness.collectors.windowed import (
    Channel,
    ChannelKind,
    EnergyCollector,
    EnergyScope,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from tippingpoint.harness.collectors.options import EnergySettings

VCIO = "/dev/vcio"
GENCMD_TAG = 0x00030080
MAX_STRING = 1024
IOCTL_MBOX_PROPERTY = (3 << 30) | (struct.calcsize("P") << 16) | (100 << 8) | 0
"""_IOWR(100, 0, char *), as in the firmware's mailbox driver."""

RAIL_SUM_NOTE = (
    "sum of the PMIC rails: excludes conversion losses and loads fed straight from the 5 V "
    "input (USB, fan, HATs)"
)

_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([0-9.eE+-]+)[AV]\s*$")
_THROTTLED = re.compile(r"throttled=(0x[0-9a-fA-F]+)")


class Gencmd(Protocol):
    """Sends one firmware command and returns its text answer."""

    def __call__(self, command: str) -> str:
        """The firmware's answer; OSError when the transport fails."""
        ...


Ioctl = Callable[[int, int, "array.array[int]"], int]


class VcioGencmd:
    """Firmware commands through the ``/dev/vcio`` mailbox (no process spawned per sample)."""

    def __init__(
        self,
        path: str = VCIO,
        *,
        opener: Callable[[str, int], int] = os.open,
        ioctl: Ioctl | None = None,
    ) -> None:
        self.path = path
        self._opener = opener
        self._ioctl = ioctl
        self.fd: int | None = None

    def open(self) -> None:
        """Open the mailbox device."""
        if self._ioctl is None:
            import fcntl

            self._ioctl = lambda fd, req, buf: fcntl.ioctl(fd, req, buf, True)
        self.fd = self._opener(self.path, os.O_RDWR)

    def __call__(self, command: str) -> str:
        """Send ``command`` as a GET_GENCMD_RESULT property request."""
        if self.fd is None:
            self.open()
        assert self.fd is not None and self._ioctl is not None
        buf = gencmd_request(command)
        self._ioctl(self.fd, IOCTL_MBOX_PROPERTY, buf)
        return gencmd_response(buf)

    def close(self) -> None:
        """Close the device."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def gencmd_request(command: str) -> array.array[int]:
    """The mailbox property buffer for one gencmd, laid out as ``vcgencmd`` lays it out."""
    data = command.encode() + b"\0"
    if len(data) >= MAX_STRING:
        raise ValueError("gencmd command too long")
    words = 6 + MAX_STRING // 4 + 1
    buf = array.array("I", [0] * words)
    buf[0] = words * 4  # buffer size in bytes
    buf[1] = 0  # process request
    buf[2] = GENCMD_TAG
    buf[3] = MAX_STRING  # value buffer size
    buf[4] = 0  # request length
    buf[5] = 0  # error code of the response
    raw = memoryview(buf).cast("B")
    raw[24 : 24 + len(data)] = data
    return buf


def gencmd_response(buf: array.array[int]) -> str:
    """The text answer in a returned buffer; OSError when the firmware reports an error."""
    if buf[5] != 0:
        raise OSError(f"firmware gencmd error {buf[5]}")
    raw = bytes(memoryview(buf).cast("B")[24 : 24 + MAX_STRING])
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


class VcgencmdCli:
    """Firmware commands by running ``vcgencmd`` (the fallback: one process per call)."""

    def __init__(self, exe: str = "vcgencmd") -> None:
        self.exe = exe

    def __call__(self, command: str) -> str:
        """Run ``vcgencmd <command>`` and return its output."""
        try:
            out = subprocess.run(
                [self.exe, *command.split()], capture_output=True, text=True, timeout=2, check=True
            )
        except (FileNotFoundError, subprocess.SubprocessError) as exc:
            raise OSError(f"{self.exe} {command}: {exc}") from None
        return out.stdout


def open_gencmd(vcio: VcioGencmd | None = None, cli: Gencmd | None = None) -> Gencmd:
    """The mailbox where it can be opened, else ``vcgencmd``; CollectorUnavailable if neither.

    ``vcio`` and ``cli`` default to ``/dev/vcio`` and the ``vcgencmd`` on PATH (tests pass
    others).
    """
    vcio = vcio if vcio is not None else VcioGencmd()
    try:
        vcio.open()
        return vcio
    except OSError as vcio_err:
        cli = cli if cli is not None else VcgencmdCli()
        try:
            cli("version")
            return cli
        except OSError:
            raise CollectorUnavailable(
                f"cannot open {vcio.path} ({vcio_err.strerror or vcio_err}) and no vcgencmd; "
                "not a Raspberry Pi, or add the user to the 'video' group"
            ) from None


@dataclass(frozen=True)
class PmicRail:
    """One PMIC rail: volts, amps, and their product."""

    name: str
    volts: float
    amps: float

    @property
    def watts(self) -> float:
        """Power of the rail."""
        return self.volts * self.amps


def parse_pmic(text: str) -> list[PmicRail]:
    """Rails with both a current and a voltage line, in the firmware's order of currents."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            (amps if m.group(2) == "A" else volts)[m.group(1)] = float(m.group(3))
    return [PmicRail(n, volts[n], a) for n, a in amps.items() if n in volts]


def parse_throttled(text: str) -> int:
    """The bitmask of ``get_throttled`` (``throttled=0x50005``); ValueError on anything else."""
    m = _THROTTLED.search(text)
    if not m:
        raise ValueError(f"unexpected get_throttled answer: {text.strip()[:60]!r}")
    return int(m.group(1), 16)


class RpiPmicCollector(EnergyCollector):
    """Raspberry Pi 5 board-rail power from the PMIC ADCs, sampled at about 10 Hz."""

    name = "rpi5"
    scope = EnergyScope.BOARD_RAILS
    interval_s = 0.1
    min_samples = 50
    resolution = "PMIC ADC volts x amps per rail, via pmic_read_adc"
    energy_note = RAIL_SUM_NOTE

    def __init__(self, *, gencmd: Gencmd | None = None, **settings: Unpack[EnergySettings]) -> None:
        super().__init__(**settings)
        self.gencmd = gencmd
        self.rail_names: list[str] = []
        self.transport = ""

    def _discover(self) -> tuple[Channel, ...]:
        if self.gencmd is None:
            try:
                self.gencmd = open_gencmd()
            except CollectorUnavailable as exc:
                raise CollectorUnavailable(f"rpi5: {exc}") from None
        self.transport = VCIO if isinstance(self.gencmd, VcioGencmd) else "vcgencmd"
        try:
            rails = parse_pmic(self.gencmd("pmic_read_adc"))
        except OSError as exc:
            raise CollectorUnavailable(f"rpi5: pmic_read_adc failed: {exc}") from None
        if not rails:
            raise CollectorUnavailable(
                "rpi5: the firmware has no pmic_read_adc rails (a Pi 5 is needed, with "
                "current firmware)"
            )
        self.rail_names = [r.name for r in rails]
        return tuple(
            Channel(n, ChannelKind.POWER, True, f"pmic_read_adc {n}") for n in self.rail_names
        )

    def _read(self) -> tuple[float, ...]:
        assert self.gencmd is not None
        by_name = {r.name: r.watts for r in parse_pmic(self.gencmd("pmic_read_adc"))}
        missing = [n for n in self.rail_names if n not in by_name]
        if missing:
            raise ValueError(f"pmic_read_adc lost rails {', '.join(missing)}")
        return tuple(by_name[n] for n in self.rail_names)

    def source(self) -> str:
        """The transport and the number of rails."""
        return f"pmic_read_adc via {self.transport} ({len(self.rail_names)} rails)"

    def close(self) -> None:
        """Stop sampling and close the mailbox."""
        super().close()
        if isinstance(self.gencmd, VcioGencmd):
            self.gencmd.close()
