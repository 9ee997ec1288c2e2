"""One matrix cell run through a shaped link (``run --network``): the shaper is started in
front of the cell's endpoint, the cell's client is pointed at the shaper's loopback entry, and
the link's record goes into the report's ``http`` section with the endpoint as given.

A plain ``http://`` or ``grpc://`` endpoint is rewritten to the entry. An ``https://`` or
``grpcs://`` one keeps its URL and gets the backend's ``connect_to`` option (curl's
``--connect-to``): the client opens its TCP connections to the entry while TLS keeps the URL's
host name for SNI and the certificate check (gRPC: ``grpc.ssl_target_name_override`` and the
calls' ``:authority``), so the shaper relays the encrypted bytes untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from tippingpoint.backends.http.auth import public_url
from tippingpoint.core.errors import InvalidOptionError
from tippingpoint.harness.links.host import LinkThread
from tippingpoint.harness.links.select import ShaperSelection
from tippingpoint.harness.runner import RunOutcome, RunSpec

DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 8001, "grpcs": 443}
"""The port an endpoint without one is reached on, as its backend does (gRPC: KServe's 8001)."""
TLS_SCHEMES = ("https", "grpcs")
HOSTED_ON = "the shaper's relay ran on its own event loop in a thread of the measuring process"
"""Where the relay ran; not on the client's loop, which the backend owns from load to close
(README, design notes: the shaper's thread)."""


def run_shaped(
    cell: RunSpec, selection: ShaperSelection, run: Callable[[RunSpec], RunOutcome]
) -> RunOutcome:
    """``run(cell)`` with ``selection``'s link between the client and the cell's endpoint; a
    cell without an endpoint runs as is."""
    endpoint = cell.backend_options.get("endpoint")
    if not isinstance(endpoint, str):
        return run(cell)
    parts = urlsplit(endpoint)
    if parts.scheme not in DEFAULT_PORTS or parts.hostname is None:
        raise InvalidOptionError(
            f"--network shapes http(s):// and grpc(s):// endpoints, not {parts.scheme}://",
            "run the shaped measurement over HTTP(S) or gRPC",
        )
    if parts.scheme in TLS_SCHEMES and "connect_to" in cell.backend_options:
        raise InvalidOptionError(
            f"--network sets connect_to for a {parts.scheme}:// endpoint; it is given already",
            "drop --opt connect_to (the shaper's entry takes its place)",
        )
    upstream = (parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme])
    link = LinkThread(selection, upstream)
    host, port = link.start()  # a free loopback port
    if parts.scheme in TLS_SCHEMES:
        options = {**cell.backend_options, "connect_to": f"{host}:{port}"}
    else:
        netloc = f"{host}:{port}"
        if parts.username is not None:  # user info stays with the URL
            netloc = parts.netloc.rsplit("@", 1)[0] + "@" + netloc
        shaped = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        options = {**cell.backend_options, "endpoint": shaped}
    try:
        outcome = run(dataclasses.replace(cell, backend_options=options))
    finally:
        record = link.stop()
    record = record.model_copy(update={"notes": (*record.notes, HOSTED_ON)})
    report = outcome.report
    if report.http is None:
        return outcome
    http = report.http.model_copy(update={"link": record, "endpoint": public_url(endpoint)})
    return dataclasses.replace(outcome, report=report.model_copy(update={"http": http}))
