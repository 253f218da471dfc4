# -*- test-case-name: tests.edges.test_gate -*-
"""
The edges of relayed TCP connections, in one object the relay consults at a few fixed points:
when a client arrives (PROXY header, client ACL, abuse server, per-client cap, idle timeout,
HTTP rewriting), when a backend is reached (PROXY header), and when the connection ends.
TLS towards backends is a connector the assembly chooses (L{penbal.edges.tls.TLSConnector}).

A balancer without any edge feature has no L{Edges} at all (C{RelayFactory.edges is None}), so
the relay's hot path pays nothing for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import INegotiated, IReactorTCP, IReactorTime
from twisted.internet.protocol import Protocol

from penbal.backend import Backend
from penbal.edges.acl import AccessList, AclTable
from penbal.edges.forwarded import ForwardedRewriter
from penbal.edges.hygiene import ClientCap, IdleWatch
from penbal.edges.proxyaccept import ProxyHeaderReceiver
from penbal.edges.proxyheader import proxy_header
from penbal.interfaces import ClientInfo
from penbal.relay.hooks import Admission
from penbal.relay.legs import BackendLeg, FrontLeg, Relay

if TYPE_CHECKING:
    from penbal.edges.tls import BackendTLS


class Edges:
    """The edge features that are on, and the per-connection state they keep."""

    def __init__(
        self,
        reactor: IReactorTCP,
        clock: IReactorTime,
        *,
        acls: AclTable | None = None,
        client_acl: int = 0,
        abuse: Backend | None = None,
        send_proxy: str | None = None,
        backend_tls: BackendTLS | None = None,
        forwarded: bool = False,
        idle_timeout: float = 0.0,
        max_per_client: int = 0,
        proxy_networks: AccessList | None = None,
        proxy_header_timeout: float = 5.0,
    ) -> None:
        self._reactor = reactor
        self.clock = clock
        self.acls = acls if acls is not None else AclTable()
        self.client_acl = client_acl
        self.abuse = abuse
        self.send_proxy = send_proxy
        self.backend_tls = backend_tls
        self.forwarded = forwarded
        self.idle_timeout = idle_timeout
        self.cap = ClientCap(max_per_client) if max_per_client > 0 else None
        self.proxy_networks = proxy_networks
        self.proxy_header_timeout = proxy_header_timeout
        self._idle: dict[FrontLeg, IdleWatch] = {}
        self._capped: set[FrontLeg] = set()
        #: Whether every client is served by a plain L{FrontLeg} from its first byte (no
        #: PROXY header to read first): such clients run on any transport, the lean one too,
        #: and the relay builds their legs itself.
        self.plain_fronts = proxy_networks is None
        #: Whether a backend connection gets bytes of ours first (a PROXY header): else the
        #: relay need not call L{backend_leg_made}.
        self.sends_first = send_proxy is not None

    # -- a client arrives ----------------------------------------------------------------

    def build_front(self, factory: Relay, peer: ClientInfo) -> Protocol:
        """The protocol for a new connection: a front leg, or a PROXY header reader first."""
        if self.proxy_networks is None:
            return FrontLeg(factory, peer)
        return ProxyHeaderReceiver(
            lambda client: FrontLeg(factory, client),
            peer,
            self.proxy_networks,
            self.clock,
            self.proxy_header_timeout,
            factory.arriving,
        )

    def permits(self, client: ClientInfo) -> bool:
        """Whether the client ACL in force lets C{client} in."""
        return self.acls[self.client_acl].permits(client.host)

    def admit(self, front: FrontLeg) -> Admission:
        """
        Apply the client-side features to a new connection: L{Admission.DIAL} unless it was
        dealt with here (denied, or over its cap), or goes to the abuse server (the relay
        dials it there).
        """
        if self.idle_timeout > 0:
            self._idle[front] = IdleWatch(self.clock, self.idle_timeout, front)
        if self.forwarded:
            proto = "https" if INegotiated.providedBy(front.transport) else "http"
            front.rewriter = ForwardedRewriter(
                front.client.host,
                proto,
                lambda why: self._refuse(front, why),
                send=lambda data: self._send_held(front, data),
            )
        if not self.acls.lists[self.client_acl].permits(front.client.host):  # permits()
            if self.abuse is None:
                self._refuse(front, f"denied by client ACL {self.client_acl}")
                return Admission.DEALT
            front.ended_by = f"denied by client ACL {self.client_acl}: abuse server"
            return Admission.ABUSE
        if self.cap is not None:
            if not self.cap.admit(front.client.host):
                self._refuse(front, f"over --max-per-client {self.cap.limit}")
                return Admission.DEALT
            self._capped.add(front)
        return Admission.DIAL

    def _send_held(self, front: FrontLeg, data: bytes) -> None:
        """HTTP mode: bytes held while an upgrade awaited its answer go to the backend now."""
        backend = front.backend
        if front.closed or front.peer is None or backend is None:
            return
        backend.counters.bytes_to_backend += len(data)
        front.forward(data)

    def _refuse(self, front: FrontLeg, why: str) -> None:
        front.ended_by = why
        front.close()

    def ended(self, front: FrontLeg) -> None:
        """A connection is over: release what it held."""
        watch = self._idle.pop(front, None)
        if watch is not None:
            watch.stop()
        if front in self._capped:
            self._capped.discard(front)
            assert self.cap is not None
            self.cap.release(front.client.host)

    # -- towards the backend ---------------------------------------------------------------

    def header_for(self, front: FrontLeg) -> bytes:
        """The PROXY header for C{front}'s backend connection (empty when not sending one)."""
        if self.send_proxy is None:
            return b""
        local: Any = front.transport.getHost()
        destination = (str(getattr(local, "host", "")), int(getattr(local, "port", 0) or 0))
        return proxy_header(self.send_proxy, (front.client.host, front.client.port), destination)

    def backend_leg_made(self, leg: BackendLeg) -> None:
        """A backend connection is up: send the PROXY header first, if asked to; under TLS,
        in the clear before the handshake (as HAProxy does)."""
        if self.send_proxy is None:
            return
        transport: Any = leg.transport
        if INegotiated.providedBy(leg.transport):
            transport = transport.transport  # the TCP connection under the TLS one
        transport.write(self.header_for(leg.front))
