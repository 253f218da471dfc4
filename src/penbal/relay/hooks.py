# -*- test-case-name: tests.relay.test_hooks -*-
"""
What the relay asks of the edge features (client ACLs, the abuse server, PROXY protocol,
HTTP mode, idle timeouts, per-client caps), declared here, on the relay's side, so that the
relay depends on these small interfaces and nothing in C{penbal.relay} imports
C{penbal.edges}: C{penbal.edges.gate.Edges} implements L{EdgeHooks} and
C{penbal.edges.forwarded.ForwardedRewriter} implements L{RequestRewriter} (declared with
the legs that call it, and named here too).

The relay consults them at a few fixed points of a connection's life: when a client arrives,
when a backend is reached, and when the connection ends.  TLS towards backends is not a hook
but a connector (C{penbal.edges.tls.TLSConnector}, see L{penbal.relay.connect}), chosen at
assembly.  A balancer without any edge feature has no hooks at all (C{RelayFactory.edges is
None}), and pays nothing for them.
"""

from __future__ import annotations

import enum
from typing import Protocol

from twisted.internet.protocol import Protocol as TwistedProtocol

from penbal.backend import Backend
from penbal.interfaces import ClientInfo
from penbal.relay.legs import BackendLeg, FrontLeg, Relay
from penbal.relay.waiting import RequestRewriter

__all__ = ["Admission", "EdgeHooks", "RequestRewriter"]


class Admission(enum.Enum):
    """What becomes of a new client, as the edge features decide."""

    #: Dial its backend as usual.
    DIAL = "dial"
    #: Dealt with (denied and closed, or over its cap): nothing more to do.
    DEALT = "dealt"
    #: Denied, and sent to the abuse server (L{EdgeHooks.abuse}) instead.
    ABUSE = "abuse"


class EdgeHooks(Protocol):
    """The edge features that are on, as the relay sees them."""

    #: The abuse server denied clients are sent to (never a policy's choice), or None.
    abuse: Backend | None
    #: Whether every client is a plain front leg from its first byte (no PROXY header to read
    #: first), so that the relay builds its leg itself (without L{build_front}).
    plain_fronts: bool
    #: Whether L{backend_leg_made} has anything to do (else the relay does not call it).
    sends_first: bool

    def build_front(self, factory: Relay, peer: ClientInfo) -> TwistedProtocol:
        """The protocol for a new client connection."""

    def admit(self, front: FrontLeg) -> Admission:
        """Apply the client-side features to a new connection: dial it, or it was dealt
        with (denied, over its cap), or it goes to the abuse server."""

    def ended(self, front: FrontLeg) -> None:
        """A connection is over: release what the features held for it."""

    def backend_leg_made(self, leg: BackendLeg) -> None:
        """A backend connection is up (send a PROXY header, if asked to: in the clear, before
        any TLS handshake)."""
