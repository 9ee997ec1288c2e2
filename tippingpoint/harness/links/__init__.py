"""Network links as a measured input: a shaper between the client and the endpoint that applies
a network profile (:class:`~tippingpoint.core.links.LinkSpec`) and records what the link did.

- :func:`select_shaper`: the shaper for a profile (``auto`` = the proxy, ``tc`` = the best the
  kernel allows, ``proxy``, ``netem``, ``tbf``) and the one line that says why; a shaper the
  machine lacks is a usage error with its fix.
- :class:`LinkProxy`: the user-space asyncio TCP proxy on loopback (any machine, CI).
- :class:`TcLink`: ``tc`` netem or tbf on the loopback of a namespace tippingpoint creates.
- :class:`LinkThread` / :class:`LinkProcess`: a chosen link on its own event loop in a thread,
  or in its own process, for synchronous callers.
- :class:`LinkRecord`: what the report will carry (profile, shaper and reason, handshake RTT,
  goodput each way, stalls, resets, outages seen, the kernel's retransmissions).

Usage::

    spec = catalog.network("lighthouse-mobile-slow-4g").link()
    selection = select_shaper(spec, "auto")   # or "tc"
    print(selection.reason)
    link = LinkThread(selection, (endpoint_host, endpoint_port))
    host, port = link.start()          # point the client at http://127.0.0.1:port
    ...
    record = link.stop()
"""

from tippingpoint.harness.links.host import Link, LinkThread, open_link
from tippingpoint.harness.links.netns import TcCapabilities, probe_tc
from tippingpoint.harness.links.process import LinkProcess
from tippingpoint.harness.links.proxy import LinkProxy
from tippingpoint.harness.links.record import LinkRecord, ShaperKind
from tippingpoint.harness.links.select import (
    SHAPER_CHOICES,
    ShaperSelection,
    link_spec,
    select_shaper,
)
from tippingpoint.harness.links.tc import TcLink

__all__ = [
    "SHAPER_CHOICES",
    "Link",
    "LinkProcess",
    "LinkProxy",
    "LinkRecord",
    "LinkThread",
    "ShaperKind",
    "ShaperSelection",
    "TcCapabilities",
    "TcLink",
    "link_spec",
    "open_link",
    "probe_tc",
    "select_shaper",
]
