# -*- test-case-name: tests.policies.test_registry,tests.policies.test_example_plugin -*-
"""
The public extension points of penbal.

A selection policy is given the client's address and the backends that may take it, and
returns them in the order to try: the first is the choice, the rest are the failover order.
A policy never blocks and never does I/O; it may keep state (a client table, a counter).
Policies are found as Twisted plugins providing L{IPolicyPlugin} in the C{penbal.plugins}
package, so a third party adds one by dropping a module there.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IReactorTime
from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from penbal.backend import Backend
    from penbal.health.result import CheckResult


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who is connecting: the address policies and ACLs use."""

    host: str
    port: int = 0


@dataclass
class PolicyContext:
    """What a policy may be built with: injected time and randomness, and Pen's settings."""

    clock: IReactorTime
    random: random.Random
    clients: int = 2048
    tracking: float = 0.0
    settings: dict[str, object] = field(default_factory=dict)


class ISelectionPolicy(Interface):
    """Orders the candidate backends for one client."""

    def choose(client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        """
        Return the backends to try for C{client}, best first.

        C{candidates} are the backends that may take a new connection now (up, not drained,
        not blacklisted, fit, below their HARD limit), in table order.  Each has C{index},
        C{spec} (host, port, maxc, hard, weight, prio), C{counters.active} and the methods
        C{below_soft_limit()} and C{below_hard_limit()}.  Return a subset in the order to try;
        an empty result means "no backend" (the emergency server, if any, is then used).
        """

    def connected(client: ClientInfo, backend: Backend) -> None:
        """Told when C{client} was connected to C{backend} (a sticky policy remembers it)."""


class IPolicyPlugin(Interface):
    """A named factory of selection policies, found with C{twisted.plugin.getPlugins}."""

    name = Attribute("The policy's name, as given to --policy (str).")
    description = Attribute("One line saying what the policy does (str).")

    def makePolicy(context: PolicyContext) -> ISelectionPolicy:
        """Build a fresh policy for one balancer."""


class IHealthCheck(Interface):
    """An active check of one backend (TCP connect, Galera status, ...); never blocks."""

    name = Attribute("The check's name, as given to --check (str).")

    def check(backend: Backend) -> Deferred[CheckResult]:
        """
        Check C{backend} once and fire with a L{CheckResult}; never errback.  The caller
        cancels the Deferred when its timeout passes; the check then stops what it can.
        """
