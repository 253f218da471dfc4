# -*- test-case-name: tests.edges.test_proxyaccept -*-
"""
Tests of --accept-proxy: parsing PROXY headers (v1, v2, split across reads) and handing the
connection over to a protocol built for the client named in the header.
"""

from __future__ import annotations

from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.acl import AccessList, AclEntry, parse_network
from penbal.edges.proxyaccept import (
    ProxyHeaderError,
    ProxyHeaderReceiver,
    parse_proxy_header,
)
from penbal.edges.proxyheader import V2_SIGNATURE, proxy_header
from penbal.interfaces import ClientInfo

LOOPBACK = AccessList([AclEntry(True, parse_network("127.0.0.0/8"))])


class ParseTests(SynchronousTestCase):
    """The header parser."""

    def test_v1(self) -> None:
        """A v1 header gives the client and leaves the bytes after it."""
        parsed = parse_proxy_header(b"PROXY TCP4 127.0.0.9 127.0.0.1 4000 80\r\nhello")
        assert parsed is not None
        self.assertEqual(parsed.client, ClientInfo("127.0.0.9", 4000))
        self.assertEqual(parsed.rest, b"hello")

    def test_v2_round_trip(self) -> None:
        """What the builder writes, v1 and v2, IPv4 and IPv6, parses back."""
        for version in ("v1", "v2"):
            for host, dest in (("127.0.0.9", "127.0.0.1"), ("2001:db8::5", "::1")):
                parsed = parse_proxy_header(proxy_header(version, (host, 7), (dest, 8)) + b"x")
                assert parsed is not None
                self.assertEqual(parsed.client, ClientInfo(host, 7))
                self.assertEqual(parsed.rest, b"x")

    def test_incomplete(self) -> None:
        """Every strict prefix of a header asks for more bytes."""
        for version in ("v1", "v2"):
            header = proxy_header(version, ("127.0.0.9", 7), ("127.0.0.1", 8))
            for end in range(len(header)):
                self.assertIsNone(parse_proxy_header(header[:end]), (version, end))

    def test_unknown_and_local(self) -> None:
        """PROXY UNKNOWN and v2 LOCAL name no client (the sender's own address is used)."""
        unknown = parse_proxy_header(b"PROXY UNKNOWN\r\n")
        local = parse_proxy_header(V2_SIGNATURE + b"\x20\x00\x00\x00")
        assert unknown is not None and local is not None
        self.assertIsNone(unknown.client)
        self.assertIsNone(local.client)

    def test_not_a_header(self) -> None:
        """A client that speaks directly (no header) is refused."""
        self.assertRaises(ProxyHeaderError, parse_proxy_header, b"GET / HTTP/1.1\r\n")

    def test_bad_v1(self) -> None:
        """A malformed v1 line is refused."""
        for line in (
            b"PROXY TCP4 127.0.0.300 127.0.0.1 1 2\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 127.0.0.1 127.0.0.1 70000 2\r\n",
            b"PROXY TCP5 127.0.0.1 127.0.0.1 1 2\r\n",
        ):
            self.assertRaises(ProxyHeaderError, parse_proxy_header, line)

    def test_v1_too_long(self) -> None:
        """A v1 line without CRLF within 107 bytes is refused."""
        self.assertRaises(ProxyHeaderError, parse_proxy_header, b"PROXY TCP4 " + b"1" * 200)

    def test_bad_v2_command(self) -> None:
        """A v2 header with an unknown command is refused."""
        self.assertRaises(
            ProxyHeaderError, parse_proxy_header, V2_SIGNATURE + b"\x22\x11\x00\x0c" + b"\0" * 12
        )


class Inner(Protocol):
    """Records what it was given."""

    def __init__(self, client: ClientInfo) -> None:
        self.client = client
        self.received: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class ReceiverTests(SynchronousTestCase):
    """The receiving protocol."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.built: list[Inner] = []
        self.transport = StringTransport()
        #: What the receiver told the relay of its count (see RelayFactory.arriving).
        self.arrivals: list[int] = []

    def receiver(self, peer: str = "127.0.0.1") -> ProxyHeaderReceiver:
        def build(client: ClientInfo) -> Protocol:
            inner = Inner(client)
            self.built.append(inner)
            return inner

        receiver = ProxyHeaderReceiver(build, ClientInfo(peer, 999), LOOPBACK, self.clock, 5,
                                       self.arrivals.append)
        receiver.makeConnection(self.transport)  # type: ignore[no-untyped-call]
        return receiver

    def test_hand_over(self) -> None:
        """After a header split across reads, the inner protocol gets the client and the rest."""
        receiver = self.receiver()
        header = proxy_header("v2", ("127.0.0.77", 1234), ("127.0.0.1", 80))
        for i in range(len(header) - 1):
            receiver.dataReceived(header[i : i + 1])
        self.assertEqual(self.built, [])
        receiver.dataReceived(header[-1:] + b"first")
        receiver.dataReceived(b"second")
        [inner] = self.built
        self.assertEqual(inner.client, ClientInfo("127.0.0.77", 1234))
        self.assertEqual(inner.received, [b"first", b"second"])
        self.assertIs(inner.transport, self.transport)

    def test_local_uses_peer(self) -> None:
        """PROXY UNKNOWN keeps the sender's own address."""
        receiver = self.receiver()
        receiver.dataReceived(b"PROXY UNKNOWN\r\n")
        self.assertEqual(self.built[0].client, ClientInfo("127.0.0.1", 999))

    def test_untrusted_sender(self) -> None:
        """A sender outside --proxy-networks is cut off before it can send anything."""
        self.receiver(peer="::1")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bad_header_closes(self) -> None:
        """A connection without a valid header is closed; nothing is built."""
        receiver = self.receiver()
        receiver.dataReceived(b"SELECT 1;\r\n")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.built, [])

    def test_header_timeout(self) -> None:
        """A sender that never completes its header is closed after the timeout."""
        receiver = self.receiver()
        receiver.dataReceived(b"PROXY TCP4 ")
        self.clock.advance(4.9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(self.transport.disconnecting)

    def test_lost_before_header(self) -> None:
        """A connection lost before its header builds nothing and leaves no timer."""
        receiver = self.receiver()
        receiver.connectionLost()
        self.assertEqual(self.built, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_counted_until_its_leg_starts(self) -> None:
        """The client counts (toward -x) from its accept until its leg is built, once: the
        end of the connection after that is the leg's to count."""
        receiver = self.receiver()
        self.assertEqual(self.arrivals, [1])
        receiver.dataReceived(b"PROXY TCP4 127.0.0.9 127.0.0.1 5 6")
        self.assertEqual(self.arrivals, [1])
        receiver.dataReceived(b"\r\n")
        self.assertEqual(self.arrivals, [1, -1])
        receiver.connectionLost()
        self.assertEqual(self.arrivals, [1, -1])

    def test_counted_until_it_closes(self) -> None:
        """A client that closes (or is refused) before its header is in stops counting then,
        once."""
        for refuse in (lambda r: r.dataReceived(b"nonsense\r\n"),
                       lambda r: self.clock.advance(5)):
            self.arrivals.clear()
            receiver = self.receiver()
            refuse(receiver)
            receiver.connectionLost()
            receiver.connectionLost()
            self.assertEqual(self.arrivals, [1, -1])
        self.arrivals.clear()
        self.receiver(peer="::1").connectionLost()  # untrusted: refused at once
        self.assertEqual(self.arrivals, [1, -1])
