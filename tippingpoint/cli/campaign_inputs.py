"""Campaign folders as inputs of ``cost`` and ``report``.

A campaign folder (``tippingpoint campaign run``/``merge``) files each device's runs under its
device id. ``cost`` costs one device at a time from reports measured on that device and the
cloud paths measured from it (the provenance rule); ``report`` takes every verified report.
"""

from __future__ import annotations

from pathlib import Path

from tippingpoint.campaign.tree import is_campaign, report_paths, reports_by_device
from tippingpoint.core.errors import UsageError


class CampaignInputError(UsageError):
    """A campaign folder given where its device must be chosen, or an unknown device id."""


def device_report_paths(inputs: list[Path], device_id: str | None) -> list[Path]:
    """``inputs`` with each campaign folder replaced by one device's verified reports: its own
    runs and the runs it sent to each endpoint. Other paths pass through unchanged."""
    out: list[Path] = []
    for path in inputs:
        if not (path.is_dir() and is_campaign(path)):
            out.append(path)
            continue
        devices = reports_by_device(path)
        chosen = device_id
        if chosen is None:
            if len(devices) != 1:
                raise CampaignInputError(
                    f"{path} is a campaign of devices {', '.join(sorted(devices))}",
                    "choose the device to cost with --campaign-device ID",
                )
            chosen = next(iter(devices))
        dev = devices.get(chosen)
        if dev is None:
            raise CampaignInputError(
                f"{path} has no device {chosen!r}",
                f"pick one of {', '.join(sorted(devices))} with --campaign-device",
            )
        out += [p for p, _ in dev.local]
        out += [p for runs in dev.by_endpoint.values() for p, _ in runs]
    return out


def all_report_paths(inputs: list[Path]) -> list[Path]:
    """``inputs`` with each campaign folder replaced by its verified reports, in plan order."""
    out: list[Path] = []
    for path in inputs:
        out += report_paths(path) if path.is_dir() and is_campaign(path) else [path]
    return out
