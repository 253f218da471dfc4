# -*- test-case-name: tests.policies -*-
"""
A balancer over in-memory backends and a fake clock, to drive policies the way the relay does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from twisted.internet.task import Clock

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.balancer import Balancer, Settings
from penbal.interfaces import ClientInfo, ISelectionPolicy, PolicyContext
from penbal.pool import BackendPool
from tests.occupancy import StandIn


def spec(port: int, maxc: int = 0, hard: int = 0, weight: int = 0, prio: int = 0) -> BackendSpec:
    """A loopback backend spec."""
    return BackendSpec("127.0.0.1", port, maxc, hard, weight, prio)


def context(
    clock: Clock | None = None,
    seed: int = 1,
    clients: int = 2048,
    tracking: float = 0.0,
    settings: dict[str, object] | None = None,
) -> PolicyContext:
    """A policy context with a fake clock and seeded randomness."""
    return PolicyContext(
        clock=clock or Clock(), random=random.Random(seed), clients=clients, tracking=tracking,
        settings=settings or {},
    )


class Driver:
    """Clients connect (and disconnect) through a policy as the relay would make them."""

    def __init__(self, policy: ISelectionPolicy, specs: Sequence[BackendSpec],
                 clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.pool = BackendPool(self.clock, list(specs))
        self.policy = policy
        self.balancer = Balancer(self.pool, policy, Settings())

    def order(self, host: str) -> list[int]:
        """Table positions the balancer would try for C{host}, best first (takes a turn)."""
        return [b.index for b in self.balancer.order(ClientInfo(host))]

    def connect(self, host: str) -> Backend | None:
        """Connect C{host} to its first choice and keep the connection open; None if none."""
        order = self.balancer.order(ClientInfo(host))
        if not order:
            return None
        backend = order[0]
        backend.live.add(StandIn())  # one more active connection
        self.balancer.connected(ClientInfo(host), backend)
        return backend

    def connect_index(self, host: str) -> int | None:
        """As L{connect}, giving the backend's table position."""
        backend = self.connect(host)
        return None if backend is None else backend.index

    def disconnect(self, backend: Backend) -> None:
        """One connection to C{backend} ends."""
        backend.live.pop()

    def blacklist(self, index: int, seconds: float = 30) -> None:
        """Backend C{index} failed a connect."""
        self.pool[index].blacklist(self.clock.seconds(), seconds, "refused")

    def active(self) -> list[int]:
        """Active connections per backend, in table order."""
        return [b.counters.active for b in self.pool]
