"""A pytest plugin for ``make probe``: counts the tests of each probe category (the
``probe(CATEGORY)`` mark) tried and passed, and prints one line per category and a total.

The probe of 220 bad inputs and faults found its failures in six categories: CLI misuse,
reports, interrupts, server abuse, endpoint faults, secrets. Each test that replays one carries
the mark of its category; tests without one are not counted (they run all the same)."""

from __future__ import annotations

from collections import Counter

import pytest

CATEGORIES = (
    "cli-misuse",
    "reports",
    "interrupts",
    "server-abuse",
    "endpoint-faults",
    "secrets",
)
_tried: Counter[str] = Counter()
_passed: Counter[str] = Counter()


def _category(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("probe")
    return str(mark.args[0]) if mark is not None and mark.args else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Count each probe test once: tried when it ran, passed when setup, call and teardown
    all passed."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    category = _category(item)
    if category is None:
        return
    if report.when == "call":
        _tried[category] += 1
        if report.passed:
            _passed[category] += 1
    elif report.when == "setup" and not report.passed:
        _tried[category] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per category, then the total."""
    write = terminalreporter.write_line
    for category in CATEGORIES:
        write(f"probe: {category:<16} {_tried[category]:>4} tried {_passed[category]:>4} passed")
    unknown = sorted(set(_tried) - set(CATEGORIES))
    for category in unknown:
        write(f"probe: {category:<16} {_tried[category]:>4} tried (unknown category)")
    total, ok = sum(_tried.values()), sum(_passed.values())
    write(f"probe: total {total} tried, {ok} passed")
