"""Credentials of the HTTP backend: read from an environment variable or a file, sent as a
bearer token or a custom header, and never written to a report, a log line or an error.

The secret lives in a :class:`Secret`, whose ``str`` and ``repr`` are redacted; only
:meth:`AuthConfig.headers` reveals it, to the HTTP client. :meth:`Secret.scrub` removes it from
any text (an exception message from a library) before that text goes anywhere.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from tippingpoint.core.errors import InvalidOptionError

REDACTED = "***"
MIN_PREFIX = 8
"""A prefix of a secret this long is removed wherever it appears (a token cut in two)."""
MIN_TAIL_PREFIX = 4
"""A prefix this long is removed where a text ends (where a truncation cut it)."""
EXCERPT_CHARS = 200
"""How much of a failed response's body an error message quotes."""


class AuthKind(str, Enum):
    """How the credential is sent."""

    NONE = "none"
    BEARER = "bearer"
    HEADER = "header"
    BASIC = "basic"
    """HTTP Basic, from the user info of the endpoint URL (``http://user:password@host/``)."""


class Secret:
    """A credential whose text shows only through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the Authorization header only."""
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``***``, and of a part of
        it that a truncation may have left: any prefix of :data:`MIN_PREFIX` characters or
        more anywhere, and one of :data:`MIN_TAIL_PREFIX` or more at the end of ``text``."""
        value = self._value
        if not value:
            return text
        text = text.replace(value, REDACTED)
        for k in range(len(value) - 1, 0, -1):
            part = value[:k]
            if k >= MIN_PREFIX and part in text:
                text = text.replace(part, REDACTED)
            elif k >= MIN_TAIL_PREFIX and text.endswith(part):
                text = text[:-k] + REDACTED
        return text

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
    also_hidden: tuple[Secret, ...] = field(default=(), repr=False, compare=False)
    """Other credentials of the endpoint (a URL's password, its query values): never sent
    by this config, but scrubbed from every text like the secret."""

    def headers(self) -> dict[str, str]:
        """Request headers carrying the credential (empty when there is none)."""
        if self.kind is AuthKind.NONE or self.secret is None:
            return {}
        if self.kind is AuthKind.BEARER:
            return {"Authorization": f"Bearer {self.secret.reveal()}"}
        if self.kind is AuthKind.BASIC:
            return {"Authorization": f"Basic {self.secret.reveal()}"}
        return {self.header: self.secret.reveal()}

    def scrub(self, text: str) -> str:
        """``text`` without the secret or any other credential of the endpoint."""
        for secret in (self.secret, *self.also_hidden):
            if secret is not None:
                text = secret.scrub(text)
        return text

    def excerpt(self, body: bytes, limit: int = EXCERPT_CHARS) -> str:
        """The start of a response body for an error message: scrubbed whole *before* it is
        cut to ``limit`` characters, then again (a secret cut at the end goes too)."""
        text = self.scrub(body.decode("utf-8", "replace").strip())
        return self.scrub(text[:limit])

    def describe(self) -> str | None:
        """What the report records: the kind and header name, never the secret."""
        if self.kind is AuthKind.NONE:
            return None
        if self.kind is AuthKind.BEARER:
            return "bearer"
        if self.kind is AuthKind.BASIC:
            return "basic"
        return f"header:{self.header}"


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Endpoint:
    """An endpoint URL as users write it, split into what may be printed (:attr:`base_url`)
    and what may not: the user info and the query, each held as a :class:`Secret`."""

    scheme: str
    host: str
    port: int | None
    path: str
    """The path prefix of every request, without a trailing slash (often empty)."""
    userinfo: Secret | None = field(default=None, repr=False, compare=False)
    """``user:password`` as given (percent-decoded), for HTTP Basic."""
    query: Secret | None = field(default=None, repr=False, compare=False)
    """The query string, sent with every request (API gateways key on it)."""
    hidden: tuple[Secret, ...] = field(default=(), repr=False, compare=False)
    """Every credential part, for scrubbing: the password, the user info, its Basic form,
    the query and each query value."""

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]/path``: no user info, no query."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port else "") + self.path

    def basic(self) -> Secret | None:
        """The user info as an HTTP Basic credential (base64 of ``user:password``)."""
        if self.userinfo is None:
            return None
        return Secret(base64.b64encode(self.userinfo.reveal().encode()).decode())

    def with_query(self, path: str) -> str:
        """``path`` with the endpoint's query appended (after a query of its own, if any)."""
        if self.query is None:
            return path
        return path + ("&" if "?" in path else "?") + self.query.reveal()


def parse_endpoint(url: str, schemes: tuple[str, ...] = ("http", "https")) -> Endpoint:
    """Split an endpoint URL; a malformed one is a usage error that prints it without its
    user info and query (never the credentials)."""
    shown = public_url(url) if "://" in url else url.split("@")[-1].split("?")[0]
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidOptionError(
            f"endpoint '{shown}' is not a valid URL", "write SCHEME://HOST:PORT[/PATH]"
        ) from None
    if parts.scheme not in schemes:
        raise InvalidOptionError(
            f"endpoint '{shown}' must start with " + " or ".join(f"{s}://" for s in schemes),
            "e.g. " + schemes[0] + "://127.0.0.1:8000",
        )
    if not parts.hostname:
        raise InvalidOptionError(f"endpoint '{shown}' names no host", "write SCHEME://HOST:PORT")
    hidden: list[Secret] = []
    userinfo = None
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        userinfo = Secret(f"{user}:{password}")
        basic = base64.b64encode(userinfo.reveal().encode()).decode()
        hidden += [Secret(v) for v in (password, userinfo.reveal(), basic) if v]
    query = None
    if parts.query:
        query = Secret(parts.query)
        hidden.append(query)
        # each value and pair too (a value under 4 characters would scrub common words)
        values = [v for _, v in parse_qsl(parts.query, keep_blank_values=True) if len(v) >= 4]
        hidden += [Secret(v) for v in values] + [Secret(p) for p in parts.query.split("&") if p]
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        path=parts.path.rstrip("/"),
        userinfo=userinfo,
        query=query,
        hidden=tuple(hidden),
    )
