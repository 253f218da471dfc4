# -*- test-case-name: tests.control.test_executor -*-
"""
The running balancer as its operators see it: what the control commands, the status views and
a reload read and change.

It holds the live objects (the balancer with its pool, policy and settings; the relays with
their connections; the access lists) and the settings that have no other home (the policy's
name, the client table's size and tracking time, which access list guards what).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime

from penbal import __version__
from penbal.backend import Backend
from penbal.balancer import Balancer
from penbal.config.model import Configuration
from penbal.connlog import ConnectionLog
from penbal.edges.acl import AclTable
from penbal.interfaces import ClientInfo, IPolicyPlugin, PolicyContext
from penbal.policies.choice import PolicyChoice
from penbal.policies.registry import find_policies


class ConnectionSource(Protocol):
    """A relay whose live connections the status views list (a L{RelayFactory})."""

    @property
    def fronts(self) -> Any: ...

    @property
    def accepted(self) -> int: ...


class QueueFiguresSource(Protocol):
    """What the wait queue has done (L{penbal.relay.waitqueue.QueueFigures})."""

    held: int
    served: int
    expired: int
    refused: int


class WaitQueue(Protocol):
    """The clients held while no backend is usable (a L{penbal.relay.waitqueue.ClientQueue})."""

    timeout: float
    limit: int

    @property
    def figures(self) -> QueueFiguresSource: ...

    def __len__(self) -> int: ...


@dataclass
class Runtime:
    """Everything an operator can see or change on a running penbal."""

    balancer: Balancer
    clock: IReactorTime
    context: PolicyContext
    policy: PolicyChoice
    connlog: ConnectionLog = field(default_factory=ConnectionLog)
    acls: AclTable = field(default_factory=AclTable)
    client_acl: int = 0
    control_acl: int = 0
    server_acls: dict[Backend, int] = field(default_factory=dict)
    relays: list[ConnectionSource] = field(default_factory=list)
    #: The TCP relay's wait queue (C{--queue-timeout}), or None when it is off.
    queue: WaitQueue | None = None
    policies: Callable[[], Mapping[str, IPolicyPlugin]] = find_policies
    #: The command line's configuration: a config file's commands apply on top of it.
    base: Configuration = field(default_factory=Configuration)
    config_path: str | None = None
    #: Where penbal listens: "listen", "control", "http" -> endpoint description.
    endpoints: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    pid: int = field(default_factory=os.getpid)
    version: str = __version__
    #: Graceful stop (the C{exit} command); None when not wired.
    stop: Callable[[], object] | None = None
    #: Re-read the config file (the C{reload} command): returns the one-line outcome.
    reload: Callable[[], str] | None = None
    #: Told of every backend taken out with its connections closed (C{remove N now}), with
    #: its number before and its address: the workers of C{--workers N} close theirs.
    removed_now: list[Callable[[int, str], object]] = field(default_factory=list)

    def now(self) -> float:
        """The injected clock's time."""
        return self.clock.seconds()

    def server_acl(self, backend: Backend) -> int:
        """The access list a backend's clients must pass (0, empty, by default)."""
        return self.server_acls.get(backend, 0)

    def admits_client(self, host: str) -> bool:
        """Whether the client ACL lets C{host} in."""
        return self.acls[self.client_acl].permits(host)

    def admits_control(self, host: str) -> bool:
        """Whether the control ACL lets C{host} use the control port (unix peers always may)."""
        if host == "unix":
            return True
        return self.acls[self.control_acl].permits(host)

    def admits_to(self, client: ClientInfo, backend: Backend) -> bool:
        """Whether C{client} may be sent to C{backend} (Pen's C{server N acl A})."""
        number = self.server_acls.get(backend, 0)
        return number == 0 or self.acls[number].permits(client.host)

    def set_client_acl(self, number: int) -> None:
        """Check clients against access list C{number}, in every relay that checks them."""
        self.client_acl = number
        for relay in self.relays:
            edges = getattr(relay, "edges", None)
            if edges is not None:
                edges.client_acl = number

    @property
    def http(self) -> bool:
        """Whether HTTP mode (C{-H}, Pen's C{http}) is on: any relay adds X-Forwarded-For."""
        return any(getattr(getattr(relay, "edges", None), "forwarded", False)
                   for relay in self.relays)

    def set_http(self, on: bool) -> None:
        """Turn HTTP mode on or off for the clients that connect from now on."""
        for relay in self.relays:
            edges = getattr(relay, "edges", None)
            if edges is not None:
                edges.forwarded = on

    def set_server_acl(self, backend: Backend, number: int) -> None:
        """Send to C{backend} only clients that access list C{number} permits (0: everyone)."""
        if number:
            self.server_acls[backend] = number
        else:
            self.server_acls.pop(backend, None)
        self.balancer.admits = self.admits_to if self.server_acls else None
