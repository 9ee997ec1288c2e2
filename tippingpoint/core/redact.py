"""Redaction of what a command line or a URL may carry besides its address: user info
(``user:password@``) and query values (``?api_key=...``). Pure text functions; the report's
``tool.argv`` goes through :func:`redact_argv`, so neither reaches a report or a printout.

Usage::

    redact_url("https://u:pw@host:8443/v2?api_key=abc")  # 'https://***@host:8443/v2?api_key=***'
    redact_argv(["tippingpoint", "run", "--endpoint", "http://u:pw@h/"])
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"
"""What stands in for a removed credential."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """``url`` with its user info replaced by ``***`` and every query value by ``***`` (the
    names stay, so a reader sees that a key was given); a fragment goes."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    rest = rest.split("#", 1)[0]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        authority = REDACTED + "@" + authority.rsplit("@", 1)[1]
    path, q, query = tail.partition("?")
    if q:
        pairs = (p.partition("=") for p in query.split("&") if p)
        query = "&".join(name + (f"={REDACTED}" if eq else "") for name, eq, _ in pairs)
        tail = f"{path}?{query}"
    return f"{scheme}://{authority}{tail}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted by :func:`redact_url`."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact_argv(argv: Iterable[str]) -> tuple[str, ...]:
    """A command line as a report may record it: URLs redacted wherever they appear (``--endpoint
    URL``, ``--endpoint=URL``, ``--opt endpoint=URL``)."""
    return tuple(redact_text(arg) for arg in argv)
