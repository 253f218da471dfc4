# -*- test-case-name: tests.control.test_protocol -*-
"""
Tests of the control protocol on memory transports: answers, closing, prompt mode, the ACL.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import AdminState
from penbal.control.executor import Executor
from penbal.control.protocol import IDLE_TIMEOUT, ControlFactory, ControlProtocol
from tests.control.fixtures import make_runtime


class ProtocolCase(SynchronousTestCase):
    """A control factory over a runtime with two backends."""

    def setUp(self) -> None:
        self.runtime, self.harness = make_runtime()
        self.factory = ControlFactory(Executor(self.runtime), self.harness.reactor)

    def connect(self, host: str = "127.0.0.1") -> tuple[ControlProtocol, StringTransport]:
        peer = IPv4Address("TCP", host, 40000)
        protocol = self.factory.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport


class AnswerTests(ProtocolCase):
    """One command, its answer, then the connection closes (as Pen does)."""

    def test_answer_then_close(self) -> None:
        """A command line is answered and the connection closed, as penctl expects."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"blacklist\n")
        self.assertEqual(transport.value(), b"30\n")
        self.assertTrue(transport.disconnecting)

    def test_crlf(self) -> None:
        """A line ending in CRLF is the same command."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"timeout\r\n")
        self.assertEqual(transport.value(), b"3\n")

    def test_partial_line_waits(self) -> None:
        """Half a line is kept until its end arrives."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"time")
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(b"out\n")
        self.assertEqual(transport.value(), b"3\n")

    def test_pipelined_lines(self) -> None:
        """Several lines sent at once are all answered before the close."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"server 1 drain\nconn_max\n")
        self.assertEqual(
            transport.value(), b"server 1 127.0.0.1:4001 is now draining\n500\n"
        )
        self.assertEqual(self.runtime.balancer.pool[1].admin, AdminState.DRAIN)
        self.assertTrue(transport.disconnecting)

    def test_error_line(self) -> None:
        """An unknown command gets one error line."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"frobnicate\n")
        self.assertEqual(transport.value(), b"error: unknown command 'frobnicate' (try 'help')\n")

    def test_last_line_without_newline(self) -> None:
        """A client that half-closes after a line without a newline still gets its answer."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"conn_max")
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), b"500\n")
        self.assertTrue(transport.disconnecting)

    def test_line_too_long(self) -> None:
        """An endless line is refused with one error line and the connection closed."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"x" * 5000)
        self.assertTrue(transport.value().startswith(b"error: line too long"))
        self.assertTrue(transport.disconnecting)

    def test_idle_timeout(self) -> None:
        """A client that sends nothing is disconnected after the idle timeout."""
        _, transport = self.connect()
        self.harness.reactor.advance(IDLE_TIMEOUT + 1)
        self.assertTrue(transport.disconnecting)


class PromptTests(ProtocolCase):
    """prompt keeps the connection open for more commands."""

    def test_prompt_session(self) -> None:
        """After prompt each answer ends with a prompt; quit closes."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"prompt\n")
        self.assertEqual(transport.value(), b"> ")
        protocol.dataReceived(b"timeout\n")
        self.assertEqual(transport.value(), b"> 3\n> ")
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(b"quit\n")
        self.assertTrue(transport.disconnecting)

    def test_lines_after_quit_are_ignored(self) -> None:
        """Nothing after quit runs."""
        protocol, _ = self.connect()
        protocol.dataReceived(b"prompt\nquit\nserver 0 down\n")
        self.assertEqual(self.runtime.balancer.pool[0].admin, AdminState.UP)


class AclTests(ProtocolCase):
    """The control ACL is checked when a client connects."""

    def setUp(self) -> None:
        super().setUp()
        self.connect()[0].dataReceived(b"acl 9 permit 127.0.0.1\n")
        self.connect()[0].dataReceived(b"control_acl 9\n")

    def test_refused(self) -> None:
        """A client the ACL does not permit gets one error line and is disconnected."""
        protocol, transport = self.connect("127.0.0.2")
        self.assertEqual(transport.value(),
                         b"error: 127.0.0.2 is not permitted by the control ACL\n")
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(b"server 0 down\n")
        self.assertEqual(self.runtime.balancer.pool[0].admin, AdminState.UP)

    def test_permitted(self) -> None:
        """A permitted client is served."""
        protocol, transport = self.connect("127.0.0.1")
        protocol.dataReceived(b"control_acl\n")
        self.assertEqual(transport.value(), b"9\n")

    def test_unix_clients(self) -> None:
        """Unix-socket clients are guarded by the socket's file mode, not by the ACL."""
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=UNIXAddress(None))
        protocol.makeConnection(transport)
        protocol.dataReceived(b"control_acl\n")
        self.assertEqual(transport.value(), b"9\n")

    def test_close_all(self) -> None:
        """At shutdown every control client is disconnected."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"prompt\n")
        self.factory.close_all()
        self.assertTrue(transport.disconnecting)


class GarbageTests(ProtocolCase):
    """Whatever a client sends, the protocol answers or closes; it never raises."""

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.binary(max_size=300), max_size=6), st.booleans())
    def test_random_chunks(self, chunks: list[bytes], prompt: bool) -> None:
        """Random byte chunks never raise out of the protocol."""
        protocol, transport = self.connect()
        if prompt:
            protocol.dataReceived(b"prompt\n")
        for chunk in chunks:
            protocol.dataReceived(chunk)
        protocol.readConnectionLost()
        protocol.connectionLost(None)
        for line in transport.value().split(b"\n")[:-1]:
            self.assertFalse(line.startswith(b"error: internal error"), line)
