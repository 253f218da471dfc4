# -*- test-case-name: tests.relay.test_hooks -*-
"""
What the relay asks of the edge features (client ACLs, PROXY protocol, TLS towards backends,
HTTP mode, idle timeouts, per-client caps), declared here, on the relay's side, so that the
relay depends on these small interfaces and nothing in C{penbal.relay} imports
C{penbal.edges}: C{penbal.edges.gate.Edges} implements L{EdgeHooks} and
C{penbal.edges.forwarded.ForwardedRewriter} implements L{RequestRewriter}.

The relay consults them at a few fixed points of a connection's life: when a client arrives,
when a backend is dialled and reached, and when the connection ends.  A balancer without any
edge feature has no hooks at all (C{RelayFactory.edges is None}), and pays nothing for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted.internet.protocol import ClientFactory
from twisted.internet.protocol import Protocol as TwistedProtocol

from penbal.backend import Backend
from penbal.interfaces import ClientInfo

if TYPE_CHECKING:
    from penbal.relay.dialer import Dial
    from penbal.relay.legs import BackendLeg, FrontLeg
    from penbal.relay.listener import RelayFactory


class RequestRewriter(Protocol):
    """HTTP mode (C{-H}): rewrites what a client sends, and follows the answers."""

    @property
    def tunnel(self) -> bool:
        """An Upgrade or CONNECT was agreed to: bytes now pass untouched both ways."""

    @property
    def holding(self) -> bool:
        """Bytes are held until an answer says whether an upgrade was agreed to."""

    def feed(self, data: bytes) -> bytes:
        """What the client sent; returns what goes to the backend now."""

    def response(self, data: bytes) -> None:
        """What the backend answered (already relayed to the client)."""


class EdgeHooks(Protocol):
    """The edge features that are on, as the relay sees them."""

    #: The abuse server denied clients are sent to (never a policy's choice), or None.
    abuse: Backend | None

    @property
    def plain_fronts(self) -> bool:
        """Whether every client is a plain front leg from its first byte (no PROXY header
        to read first), so that it may run on the lean transport."""

    def build_front(self, factory: RelayFactory, peer: ClientInfo) -> TwistedProtocol:
        """The protocol for a new client connection."""

    def admit(self, front: FrontLeg) -> bool:
        """Apply the client-side features to a new connection; False if it was dealt with
        (denied, sent to the abuse server, over its cap) and must not be dialled."""

    def ended(self, front: FrontLeg) -> None:
        """A connection is over: release what the features held for it."""

    def backend_factory(self, dial: Dial, front: FrontLeg, backend: Backend) -> ClientFactory:
        """The factory to connect to C{backend} with (the dial itself, or TLS around it)."""

    def backend_leg_made(self, leg: BackendLeg) -> None:
        """A plain TCP backend connection is up (send a PROXY header, if asked to)."""
