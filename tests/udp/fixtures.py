# -*- test-case-name: tests.udp -*-
"""
Fakes for the UDP balancer's unit tests: upstream links and a front socket that record what
was sent, a name resolver answered by hand, and a relay wired to them on a Clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from twisted.internet.task import Clock
from zope.interface import implementer

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.balancer import Balancer, Settings
from penbal.connlog import ConnectionLog
from penbal.interfaces import ClientInfo, ISelectionPolicy, PolicyContext
from penbal.policies.choice import PolicyChoice
from penbal.pool import BackendPool
from penbal.runtime import Runtime
from penbal.udp.relay import RESEND_COUNT, UDPRelay
from penbal.udp.resolve import HostResolver
from penbal.udp.sockets import Address, BackendUnreachableError, UpstreamReceiver


class FakeLink:
    """An upstream socket that records datagrams; it can refuse them like a dead port."""

    def __init__(self, host: str, port: int, receiver: UpstreamReceiver) -> None:
        self.host = host
        self.port = port
        self.receiver = receiver
        self.sent: list[bytes] = []
        self.closed = False
        self.refuse_sends = False

    def send(self, data: bytes) -> bool:
        assert not self.closed, "send on a closed upstream link"
        if self.refuse_sends:
            raise BackendUnreachableError("ICMP port unreachable")
        self.sent.append(data)
        return True

    def close(self) -> None:
        self.closed = True

    def reply(self, data: bytes) -> None:
        """The backend answers."""
        self.receiver.datagram(data)

    def refused(self) -> None:
        """An ICMP port unreachable comes back."""
        self.receiver.unreachable("ICMP port unreachable")


class FakeOpener:
    """Opens L{FakeLink}s and remembers them; C{fail} makes the next opens raise."""

    def __init__(self) -> None:
        self.links: list[FakeLink] = []
        self.fail: Exception | None = None

    def __call__(self, host: str, port: int, receiver: UpstreamReceiver) -> FakeLink:
        if self.fail is not None:
            raise self.fail
        link = FakeLink(host, port, receiver)
        self.links.append(link)
        return link

    def to(self, port: int) -> list[FakeLink]:
        """The links opened towards C{port}."""
        return [link for link in self.links if link.port == port]

    def open(self) -> list[FakeLink]:
        """The links not closed yet."""
        return [link for link in self.links if not link.closed]


class FakeFront:
    """The front socket: records replies as (data, client address, local address)."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Address, str | None]] = []

    def send(self, data: bytes, addr: Address, local: str | None) -> bool:
        self.sent.append((data, addr, local))
        return True


@implementer(IHostnameResolver)
class FakeNameResolver:
    """Name lookups that the test answers with L{answer}."""

    def __init__(self) -> None:
        self.pending: list[tuple[IResolutionReceiver, str]] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        self.pending.append((resolutionReceiver, hostName))
        return None  # type: ignore[return-value]

    def answer(self, *addresses: str) -> None:
        """Complete the oldest lookup with C{addresses} (none: the name does not exist)."""
        receiver, _ = self.pending.pop(0)
        for address in addresses:
            kind = IPv6Address if ":" in address else IPv4Address
            receiver.addressResolved(kind("UDP", address, 0))
        receiver.resolutionComplete()


@implementer(ISelectionPolicy)
class TableOrderPolicy:
    """Every client to the first candidate in table order: predictable for tests."""

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        return [b for b in candidates if b.below_soft_limit()]

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass


class UDPHarness:
    """A L{UDPRelay} over backends on ports 5001.. of 127.0.0.1 (or named hosts), on a Clock.

    The default policy sends every new client to the first usable backend in table order.
    """

    def __init__(
        self,
        backends: int = 3,
        hosts: list[str] | None = None,
        capacity: int = 2048,
        idle: float = 30.0,
        policy: ISelectionPolicy | None = None,
        admit: Callable[[ClientInfo], bool] | None = None,
        resend: int = RESEND_COUNT,
        **settings: Any,
    ) -> None:
        self.clock = Clock()
        hosts = hosts or ["127.0.0.1"] * backends
        specs = [BackendSpec(host, 5001 + i) for i, host in enumerate(hosts)]
        self.pool = BackendPool(self.clock, specs)
        self.settings = Settings(**settings)
        self.balancer = Balancer(self.pool, policy or TableOrderPolicy(), self.settings)
        self.opener = FakeOpener()
        self.names = FakeNameResolver()
        self.resolver = HostResolver(self.names, self.clock)
        self.connlog = ConnectionLog()
        self.relay = UDPRelay(self.clock, self.balancer, self.opener, self.resolver,
                              capacity=capacity, idle=idle, connlog=self.connlog,
                              admit=admit, resend=resend)
        self.front = FakeFront()
        self.relay.attach(self.front)

    def backend(self, port: int) -> Backend:
        """The backend on C{port}."""
        for backend in self.pool:
            if backend.spec.port == port:
                return backend
        raise KeyError(port)

    def emergency(self, port: int) -> Backend:
        """Configure an emergency server."""
        self.settings.emergency = Backend(BackendSpec("127.0.0.1", port), -1)
        return self.settings.emergency

    def send(self, data: bytes, host: str = "127.0.0.2", port: int = 40000,
             local: str | None = None) -> None:
        """A client datagram arrives at the front socket."""
        self.relay.received(data, (host, port), local)


def udp_runtime(harness: UDPHarness) -> Runtime:
    """A runtime over the harness's relay, as C{twist penbal --udp} wires it (for the status)."""
    context = PolicyContext(clock=harness.clock, random=random.Random(1))
    return Runtime(
        balancer=harness.balancer,
        clock=harness.clock,
        context=context,
        policy=PolicyChoice("roundrobin"),
        connlog=harness.connlog,
        relays=[harness.relay],
        started=harness.clock.seconds(),
        pid=4242,
    )
