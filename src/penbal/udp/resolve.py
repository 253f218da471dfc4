# -*- test-case-name: tests.udp.test_resolve -*-
"""
Backend host names to IP addresses without blocking, for connected UDP sockets (which take
IP literals only).  Answers are cached for a while so a flood of new clients does not become a
flood of lookups; an IP literal is its own answer, at once.
"""

from __future__ import annotations

import ipaddress

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IReactorTime,
    IResolutionReceiver,
)
from zope.interface import implementer


def ip_literal(host: str) -> str | None:
    """C{host} normalised if it is an IP address, else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


@implementer(IResolutionReceiver)
class _Collect:
    """Gathers one name's addresses; IPv4 first, as Pen (gethostbyname) would pick."""

    def __init__(self, done: Deferred[list[str]]) -> None:
        self._done = done
        self._v4: list[str] = []
        self._v6: list[str] = []

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        if isinstance(address, IPv4Address):
            self._v4.append(address.host)
        elif isinstance(address, IPv6Address):
            self._v6.append(address.host)

    def resolutionComplete(self) -> None:
        self._done.callback(self._v4 + self._v6)


class HostResolver:
    """Resolves backend host names through the reactor's name resolver, with a small cache."""

    def __init__(
        self, resolver: IHostnameResolver, clock: IReactorTime, ttl: float = 30.0
    ) -> None:
        self._resolver = resolver
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[str, float]] = {}
        self._waiting: dict[str, list[Deferred[str]]] = {}

    def known(self, host: str) -> str | None:
        """The address of C{host} if it is a literal or freshly resolved, else None."""
        literal = ip_literal(host)
        if literal is not None:
            return literal
        cached = self._cache.get(host)
        if cached is not None and cached[1] > self._clock.seconds():
            return cached[0]
        return None

    def resolve(self, host: str) -> Deferred[str]:
        """The address of C{host}; fails with L{DNSLookupError} if it has none."""
        address = self.known(host)
        if address is not None:
            return succeed(address)
        result: Deferred[str] = Deferred()
        waiting = self._waiting.get(host)
        if waiting is not None:
            waiting.append(result)
            return result
        self._waiting[host] = [result]
        done: Deferred[list[str]] = Deferred()
        done.addBoth(self._answered, host)
        try:
            self._resolver.resolveHostName(_Collect(done), host, 0, None, "UDP")
        except Exception as e:  # a resolver that fails at once instead of later
            if not done.called:
                done.errback(e)
        return result

    def _answered(self, addresses: object, host: str) -> None:
        waiting = self._waiting.pop(host, [])
        if isinstance(addresses, list) and addresses:
            self._cache[host] = (addresses[0], self._clock.seconds() + self._ttl)
            for each in waiting:
                each.callback(addresses[0])
            return
        for each in waiting:
            each.errback(DNSLookupError(f"{host} has no address"))

