"""
samesubnet: a penbal selection policy that prefers backends in the client's own subnet.

Clients go first to the backends in their own /24 (IPv4) or /64 (IPv6), taking turns among
them; the other backends follow as the failover order.  Useful when each site or rack has its
own database node and clients should stay local while it is up.

Install: copy this file to SOMEDIR/penbal/plugins/samesubnet.py (no __init__.py in those
folders), put SOMEDIR on PYTHONPATH, and run

    twist penbal --policy samesubnet 3306 10.0.1.5:3306 10.0.2.5:3306
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from twisted.plugin import IPlugin
from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, IPolicyPlugin, ISelectionPolicy, PolicyContext

PREFIX_LENGTH = {4: 24, 6: 64}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def subnet(host: str) -> Network | None:
    """The /24 or /64 of an IP address; None for a host name (or a unix socket client)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return ipaddress.ip_network(f"{address}/{PREFIX_LENGTH[address.version]}", strict=False)


@implementer(ISelectionPolicy)
class SameSubnetPolicy:
    """Backends of the client's subnet first, in turn; then the others, in turn."""

    def __init__(self) -> None:
        self.turn = 0

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        # New clients respect each backend's soft limit (MAXC).
        available = [b for b in candidates if b.below_soft_limit()]
        if not available:
            return []
        self.turn += 1
        start = self.turn % len(available)
        in_turn = available[start:] + available[:start]
        own = subnet(client.host)
        near = [b for b in in_turn if own is not None and subnet(b.spec.host) == own]
        far = [b for b in in_turn if b not in near]
        return near + far

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass  # nothing to remember


@implementer(IPlugin, IPolicyPlugin)
class SameSubnetPlugin:
    """The plugin object that C{twisted.plugin.getPlugins} finds in this module."""

    name = "samesubnet"
    description = "backends in the client's own /24 (or /64) first, in turn; then the others"

    def makePolicy(self, context: PolicyContext) -> ISelectionPolicy:
        return SameSubnetPolicy()


samesubnet = SameSubnetPlugin()
