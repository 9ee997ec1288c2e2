"""Credentials of the HTTP backend: read from an environment variable or a file, sent as a
bearer token or a custom header, and never written to a report, a log line or an error.

The secret lives in a :class:`Secret`, whose ``str`` and ``repr`` are redacted; only
:meth:`AuthConfig.headers` reveals it, to the HTTP client. :meth:`Secret.scrub` removes it from
any text (an exception message from a library) before that text goes anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

from tippingpoint.core.errors import InvalidOptionError

REDACTED = "***"


class AuthKind(str, Enum):
    """How the credential is sent."""

    NONE = "none"
    BEARER = "bearer"
    HEADER = "header"


class Secret:
    """A credential whose text shows only through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the Authorization header only."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``***``."""
        return text.replace(self._value, REDACTED) if self._value else text

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")


def load_secret(env: str | None = None, file: Path | str | None = None) -> Secret:
    """Read a secret from environment variable ``env`` or from ``file`` (first line, stripped).

    Errors name the variable or the file, never the content.
    """
    if (env is None) == (file is None):
        raise InvalidOptionError(
            "give exactly one source for the credential",
            "use token_env=VARIABLE or token_file=PATH",
        )
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise InvalidOptionError(
                f"environment variable {env} is not set or empty",
                f"export {env} with the token before running",
            )
        return Secret(value.strip())
    path = Path(str(file)).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidOptionError(
            f"cannot read the token file {path}: {exc.__class__.__name__}",
            "check the path and its permissions",
        ) from None
    value = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not value:
        raise InvalidOptionError(f"the token file {path} is empty", "write the token into it")
    return Secret(value)


@dataclass(frozen=True)
class AuthConfig:
    """The kind of auth and, when any, its secret and header name."""

    kind: AuthKind = AuthKind.NONE
    secret: Secret | None = field(default=None, repr=False, compare=False)
    header: str = "Authorization"

    def headers(self) -> dict[str, str]:
        """Request headers carrying the credential (empty when there is none)."""
        if self.kind is AuthKind.NONE or self.secret is None:
            return {}
        if self.kind is AuthKind.BEARER:
            return {"Authorization": f"Bearer {self.secret.reveal()}"}
        return {self.header: self.secret.reveal()}

    def scrub(self, text: str) -> str:
        """``text`` without the secret."""
        return self.secret.scrub(text) if self.secret is not None else text

    def describe(self) -> str | None:
        """What the report records: the kind and header name, never the secret."""
        if self.kind is AuthKind.NONE:
            return None
        if self.kind is AuthKind.BEARER:
            return "bearer"
        return f"header:{self.header}"


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
