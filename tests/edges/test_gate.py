# -*- test-case-name: tests.edges.test_gate -*-
"""
Tests of the edges wired into the relay (memory transports, a fake reactor): ACL with the
abuse server, per-client cap, idle timeout, PROXY header both ways, HTTP mode, TLS failover.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from OpenSSL import SSL
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IHandshakeListener
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import BackendSpec
from penbal.backend import Backend
from penbal.edges.acl import AccessList, AclEntry, AclTable, parse_network
from penbal.edges.gate import Edges
from penbal.edges.proxyaccept import ProxyHeaderReceiver
from penbal.edges.proxyheader import proxy_header
from penbal.edges.tls import BackendTLS, BackendTLSSettings, TLSConnector
from penbal.interfaces import ClientInfo
from penbal.relay.config import RelayConfig
from penbal.relay.connect import TwistedConnector
from penbal.relay.dialer import AbuseDial, Dial
from penbal.relay.legs import BackendLeg, FrontLeg
from tests.edges.certs import Authority
from tests.relay.fixtures import HalfCloseTransport, RelayHarness


def harness(**edges: Any) -> tuple[RelayHarness, Edges]:
    h = RelayHarness()
    h.factory.edges = Edges(h.reactor, h.reactor, **edges)
    return h, h.factory.edges


class AclTests(SynchronousTestCase):
    """The client ACL, checked before any backend is dialled."""

    def test_denied_closed_at_once(self) -> None:
        """A denied client is closed at once; no backend is dialled."""
        h, _ = harness(acls=AclTable.from_texts(["0 deny 127.0.0.2"]))
        front, transport = h.client("127.0.0.2")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(h.reactor.tcpClients, [])
        front.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(h.connlog.recent[-1].ended_by, "denied by client ACL 0")

    def test_permitted_dialled(self) -> None:
        """A permitted client is dialled as usual."""
        h, _ = harness(acls=AclTable.from_texts(["0 deny 127.0.0.2"]))
        _, transport = h.client("127.0.0.3")
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(h.reactor.tcpClients), 1)

    def test_client_acl_number(self) -> None:
        """Only the list named by client_acl is checked."""
        h, _ = harness(acls=AclTable.from_texts(["1 deny 127.0.0.2"]), client_acl=0)
        _, transport = h.client("127.0.0.2")
        self.assertFalse(transport.disconnecting)

    def test_ipv6_client(self) -> None:
        """An IPv6 client is matched against IPv6 entries; an IPv4 one is not."""
        h, _ = harness(acls=AclTable.from_texts(["0 permit ::1"]))
        for address, denied in ((IPv6Address("TCP", "::1", 5), False),
                                (IPv4Address("TCP", "127.0.0.1", 5), True)):
            front = h.factory.buildProtocol(address)
            transport = HalfCloseTransport()
            front.makeConnection(transport)
            self.assertEqual(transport.disconnecting, denied)

    def test_abuse_server(self) -> None:
        """A denied client goes to the abuse server: no failover, no policy update."""
        abuse = Backend(BackendSpec("127.0.0.1", 9999), -1)
        h, _ = harness(acls=AclTable.from_texts(["0 deny 127.0.0.2"]), abuse=abuse)
        h.emergency(7777)
        front, transport = h.client("127.0.0.2")
        self.assertFalse(transport.disconnecting)
        host, port, dial, _, _ = h.reactor.tcpClients[-1]
        self.assertEqual((host, port), ("127.0.0.1", 9999))
        self.assertIsInstance(front.dial, AbuseDial)
        leg = dial.buildProtocol(None)
        assert leg is not None
        leg.makeConnection(HalfCloseTransport())
        self.assertIs(front.backend, abuse)
        self.assertEqual(abuse.counters.active, 1)

    def test_abuse_server_down(self) -> None:
        """If the abuse server fails, the client is closed; the emergency server is not tried."""
        abuse = Backend(BackendSpec("127.0.0.1", 9999), -1)
        h, _ = harness(acls=AclTable.from_texts(["0 deny 127.0.0.2"]), abuse=abuse)
        h.emergency(7777)
        _, transport = h.client("127.0.0.2")
        _, _, dial, _, _ = h.reactor.tcpClients[-1]
        dial.clientConnectionFailed(None, Failure(  # type: ignore[arg-type]
            ConnectionRefusedError("refused")))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(h.reactor.tcpClients), 1)


class HygieneTests(SynchronousTestCase):
    """Per-client cap and idle timeout in the relay."""

    def test_cap(self) -> None:
        """The connection over the cap is closed; ending one makes room."""
        h, _ = harness(max_per_client=2)
        first, _ = h.client("127.0.0.2")
        h.client("127.0.0.2")
        third, transport = h.client("127.0.0.2")
        self.assertTrue(transport.disconnecting)
        third.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(h.connlog.recent[-1].ended_by, "over --max-per-client 2")
        first.connectionLost(Failure(ConnectionDone()))
        _, again = h.client("127.0.0.2")
        self.assertFalse(again.disconnecting)
        _, other = h.client("127.0.0.3")
        self.assertFalse(other.disconnecting)

    def test_idle_timeout(self) -> None:
        """A relayed connection idle both ways is closed by the idle timeout."""
        h, _ = harness(idle_timeout=4)
        front, transport = h.client()
        h.connect_backend()
        front.dataReceived(b"x")
        h.reactor.pump([0.5] * 8)
        self.assertFalse(transport.disconnecting)
        h.reactor.pump([0.5] * 2)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(front.ended_by, "idle timeout (4s)")
        front.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(h.reactor.getDelayedCalls(), [])


class ProxyAndHttpTests(SynchronousTestCase):
    """PROXY header towards backends, accept-proxy from the front, HTTP mode."""

    def test_send_proxy_first(self) -> None:
        """The PROXY header is the first thing the backend receives, before the client's bytes."""
        h, _ = harness(send_proxy="v1")
        front, transport = h.client("127.0.0.2", 5000)
        transport.hostAddr = IPv4Address("TCP", "127.0.0.1", 3306)
        front.dataReceived(b"hello")
        _, back = h.connect_backend()
        self.assertEqual(
            back.value(), b"PROXY TCP4 127.0.0.2 127.0.0.1 5000 3306\r\nhello"
        )

    def test_accept_proxy_client(self) -> None:
        """With accept-proxy, the client of policies, ACLs and logs is the one in the header."""
        networks = AccessList([AclEntry(True, parse_network("127.0.0.0/8"))])
        h, _ = harness(proxy_networks=networks, acls=AclTable.from_texts(["0 deny 127.0.0.66"]))
        receiver = h.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4444))
        assert isinstance(receiver, ProxyHeaderReceiver)
        transport = HalfCloseTransport()
        receiver.makeConnection(transport)  # type: ignore[no-untyped-call]
        self.assertEqual(h.factory.fronts, set())
        receiver.dataReceived(proxy_header("v2", ("127.0.0.66", 7), ("127.0.0.1", 80)))
        [front] = h.factory.fronts
        self.assertEqual(front.client, ClientInfo("127.0.0.66", 7))
        self.assertTrue(transport.disconnecting)  # denied by its real address

    def test_http_forwarded(self) -> None:
        """In HTTP mode the backend receives the rewritten head."""
        h, _ = harness(forwarded=True)
        front, _ = h.client("127.0.0.2")
        front.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        _, back = h.connect_backend()
        front.dataReceived(b"GET /2 HTTP/1.1\r\n\r\n")
        self.assertEqual(back.value().count(b"X-Forwarded-For: 127.0.0.2\r\n"), 2)
        self.assertEqual(front.bytes_in, 37)

    def test_http_upgrade_declined(self) -> None:
        """
        After an Upgrade the backend declined, a forged X-Forwarded-For sent meanwhile never
        reaches the backend: the held request is rewritten once the refusal is seen.
        """
        h, _ = harness(forwarded=True)
        front, client = h.client("127.0.0.2")
        leg, back = h.connect_backend()
        front.dataReceived(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                           b"\r\nGET /2 HTTP/1.1\r\nX-Forwarded-For: 127.6.6.6\r\n\r\n")
        self.assertEqual(back.value().count(b"X-Forwarded-For"), 1)  # /2 is held
        leg.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(client.value(), b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        sent = back.value()
        self.assertNotIn(b"127.6.6.6", sent)
        self.assertEqual(sent.count(b"X-Forwarded-For: 127.0.0.2\r\n"), 2)
        self.assertTrue(sent.startswith(b"GET /ws ") and b"GET /2 " in sent)
        assert front.backend is not None
        self.assertEqual(front.backend.counters.bytes_to_backend, len(sent))
        assert front.rewriter is not None
        self.assertFalse(front.rewriter.tunnel)  # still following the responses

    def test_http_half_close_while_held(self) -> None:
        """The client ends its stream while a request waits for an upgrade's answer: the held
        request still reaches the backend, rewritten, and only then the end of stream."""
        h, _ = harness(forwarded=True)
        front, _client = h.client("127.0.0.2")
        leg, back = h.connect_backend()
        front.dataReceived(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                           b"\r\nGET /2 HTTP/1.1\r\n\r\n")
        front.readConnectionLost()
        self.assertFalse(back.write_closed)  # /2 is still held
        leg.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertIn(b"GET /2 HTTP/1.1\r\nX-Forwarded-For: 127.0.0.2\r\n", back.value())
        self.assertTrue(back.write_closed)

    def test_http_upgrade_agreed(self) -> None:
        """After a 101 the bytes pass unchanged both ways and the leg is plain again."""
        h, _ = harness(forwarded=True)
        front, client = h.client("127.0.0.2")
        leg, back = h.connect_backend()
        front.dataReceived(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                           b"\r\n\x81\x05hello")
        leg.dataReceived(b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x02hi")
        self.assertEqual(client.value(), b"HTTP/1.1 101 Switching Protocols\r\n\r\n\x81\x02hi")
        self.assertTrue(back.value().endswith(b"\r\n\r\n\x81\x05hello"))
        frame = b"GET /x HTTP/1.1\r\nX-Forwarded-For: 127.6.6.6\r\n\r\n"
        front.dataReceived(frame)
        self.assertTrue(back.value().endswith(b"\x81\x05hello" + frame))
        assert front.rewriter is not None
        self.assertTrue(front.rewriter.tunnel)  # no more rewriting, nor following

    def test_http_bad_request_closes(self) -> None:
        """A request that cannot be framed closes the client with the reason."""
        h, _ = harness(forwarded=True)
        front, transport = h.client("127.0.0.2")
        front.dataReceived(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        self.assertTrue(transport.disconnecting)
        self.assertIn("both Transfer-Encoding and Content-Length", front.ended_by)

    def test_off_means_no_edges(self) -> None:
        """Without edges the relay builds plain front legs."""
        h = RelayHarness()
        self.assertIsNone(h.factory.edges)
        self.assertIsInstance(h.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1)),
                              FrontLeg)


class TLSFailoverTests(SynchronousTestCase):
    """A failed TLS handshake is a failed connect: blacklist and fail over."""

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        ca_file = Authority().write(directory)
        self.h = RelayHarness(backends=2)
        tls = BackendTLS(BackendTLSSettings(ca_file=ca_file), self.h.reactor)
        self.h.factory.edges = Edges(self.h.reactor, self.h.reactor, backend_tls=tls)
        # As the assembly chooses it with --backend-tls (penbal.tap).
        self.h.factory.connector = TLSConnector(TwistedConnector(self.h.reactor), tls)

    def attempt(self) -> tuple[BackendLeg, Any]:
        """The backend leg of the last attempt, and the TLS protocol around it."""
        factory: Any
        _, _, factory, _, _ = self.h.reactor.tcpClients[-1]
        protocol = factory.buildProtocol(None)
        self.assertIsInstance(protocol, TLSMemoryBIOProtocol)
        leg = protocol.wrappedProtocol
        assert isinstance(leg, BackendLeg)
        self.assertTrue(IHandshakeListener.providedBy(leg))
        return leg, protocol

    @staticmethod
    def reject(leg: BackendLeg, why: str) -> None:
        """Record a certificate verdict as the verifying creator does, on the TLS protocol
        (here the leg runs on a memory transport in its place)."""
        transport: Any = leg.transport
        transport.penbal_rejected = why

    def test_handshake_failure_fails_over(self) -> None:
        """A rejected certificate blacklists the backend with the reason and tries the next."""
        front, _ = self.h.client()
        leg, _ = self.attempt()
        leg.makeConnection(
            HalfCloseTransport())
        self.reject(leg, "certificate has expired")
        leg.connectionLost(Failure(SSL.Error([("SSL routines", "", "certificate verify failed")])))
        first_port = self.h.reactor.tcpClients[0][1]
        second_port = self.h.reactor.tcpClients[1][1]
        self.assertNotEqual(first_port, second_port)
        [usable] = self.h.pool.candidates()
        self.assertEqual(usable.spec.port, second_port)
        [failed] = [b for b in self.h.pool if b.spec.port == first_port]
        self.assertEqual(failed.blacklist_reason, "TLS handshake failed: certificate has expired")
        self.assertIsNone(front.backend)

    def test_client_gone_still_blacklists(self) -> None:
        """A handshake that fails after the client left still blacklists the backend."""
        front, _ = self.h.client()
        leg, _ = self.attempt()
        leg.makeConnection(
            HalfCloseTransport())
        front.connectionLost(Failure(ConnectionDone()))
        self.reject(leg, "certificate does not match 'db.test'")
        leg.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.h.reactor.tcpClients), 1)  # no failover for nobody
        self.assertEqual(len(self.h.pool.candidates()), 1)

    def test_relayed_only_after_handshake(self) -> None:
        """The client is connected to the backend only when the handshake completes."""
        front, _ = self.h.client()
        leg, _ = self.attempt()
        leg.makeConnection(
            HalfCloseTransport())
        self.assertIsNone(front.backend)
        leg.handshakeCompleted()
        self.assertIsNotNone(front.backend)
        self.assertEqual(self.h.reactor.getDelayedCalls(), [])

    def test_http_mode_follows_tls_responses(self) -> None:
        """With -H over a TLS backend the rewriter sees the responses too: a declined
        upgrade releases the held request rewritten, once the handshake is done."""
        edges = self.h.factory.edges
        assert isinstance(edges, Edges)
        edges.forwarded = True
        front, _ = self.h.client("127.0.0.2")
        leg, _ = self.attempt()
        back = HalfCloseTransport()
        leg.makeConnection(back)
        leg.handshakeCompleted()
        front.dataReceived(b"GET /ws HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
                           b"GET /2 HTTP/1.1\r\nX-Forwarded-For: 127.6.6.6\r\n\r\n")
        leg.dataReceived(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        self.assertNotIn(b"127.6.6.6", back.value())
        self.assertEqual(back.value().count(b"X-Forwarded-For: 127.0.0.2\r\n"), 2)

    def test_handshake_timeout(self) -> None:
        """A backend that accepts TCP but never completes the handshake is given up."""
        front, _ = self.h.client()
        leg, _ = self.attempt()
        transport = HalfCloseTransport()
        transport.abortConnection = lambda: leg.connectionLost(Failure(ConnectionDone()))  # type: ignore[method-assign]
        leg.makeConnection(
            transport)
        self.h.reactor.advance(self.h.settings.timeout + 0.01)
        self.assertEqual(len(self.h.reactor.tcpClients), 2)
        [failed] = [b for b in self.h.pool if b.spec.port == self.h.reactor.tcpClients[0][1]]
        self.assertEqual(failed.blacklist_reason,
                         f"TLS handshake failed: no TLS handshake within "
                         f"{self.h.settings.timeout:g}s")
        self.assertIsNone(front.backend)

    def test_plain_leg_inside(self) -> None:
        """Inside TLS runs the dial's plain backend leg, reporting to the client's dial."""
        front, _ = self.h.client()
        leg, protocol = self.attempt()
        self.assertIs(type(leg), BackendLeg)
        self.assertIs(protocol.wrappedProtocol, leg)
        self.assertIs(leg.dial, front.dial)
        self.assertIsInstance(front.dial, Dial)


class TLSFirstByteTests(SynchronousTestCase):
    """--backend-tls with --first-byte-timeout: one readiness timer, for the handshake (-t),
    then for the first byte."""

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        directory.mkdir()
        ca_file = Authority().write(directory)
        self.h = RelayHarness(backends=2, timeout=3,
                              config=RelayConfig(first_byte_timeout=2.0))
        tls = BackendTLS(BackendTLSSettings(ca_file=ca_file), self.h.reactor)
        self.h.factory.edges = Edges(self.h.reactor, self.h.reactor, backend_tls=tls)
        self.h.factory.connector = TLSConnector(TwistedConnector(self.h.reactor), tls)

    def leg(self) -> tuple[BackendLeg, HalfCloseTransport]:
        """The backend leg of the last attempt, connected to a memory transport."""
        factory: Any
        _, _, factory, _, _ = self.h.reactor.tcpClients[-1]
        leg = factory.buildProtocol(None).wrappedProtocol
        assert isinstance(leg, BackendLeg)
        transport = HalfCloseTransport()
        transport.abortConnection = (  # type: ignore[method-assign]
            lambda: leg.connectionLost(Failure(ConnectionDone())))
        leg.makeConnection(transport)
        return leg, transport

    def test_first_byte_after_handshake(self) -> None:
        """The handshake alone does not hand the backend over; its first byte does."""
        front, client = self.h.client()
        leg, _ = self.leg()
        leg.handshakeCompleted()
        self.assertIsNone(front.backend)
        leg.dataReceived(b"greeting")
        self.assertIs(front.backend, leg.backend)
        self.assertEqual(client.value(), b"greeting")
        self.assertEqual(self.h.reactor.getDelayedCalls(), [])

    def test_silent_after_handshake_fails_over(self) -> None:
        """Handshake done, then silent past --first-byte-timeout: blacklisted, next one."""
        front, _ = self.h.client()
        leg, _ = self.leg()
        self.h.reactor.advance(2.5)  # the handshake's time is -t (3 s): not over yet
        leg.handshakeCompleted()
        self.h.reactor.advance(1.9)
        self.assertEqual(len(self.h.reactor.tcpClients), 1)
        self.h.reactor.advance(0.2)
        self.assertEqual(len(self.h.reactor.tcpClients), 2)
        [failed] = [b for b in self.h.pool if b.spec.port == self.h.reactor.tcpClients[0][1]]
        self.assertEqual(failed.blacklist_reason, "connected but sent nothing within 2s")
        self.assertTrue(leg.abandoned)
        self.assertIsNone(front.backend)
