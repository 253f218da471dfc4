# -*- test-case-name: tests.relay.test_directconnect -*-
"""
Tests of direct connect: one non-blocking socket, adopted as a Twisted TCP transport.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from typing import Any

from twisted.internet import error, reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from penbal.relay.directconnect import (
    ConnectDeadlines,
    DirectAttempt,
    deadlines_for,
    ip_family,
)
from penbal.relay.leantransport import LeanTCPTransport


class Recorder:
    """An attempt (L{penbal.relay.attempt.Attempt}) that fires C{done} with the connected
    protocol or why it failed."""

    def __init__(self) -> None:
        self.done: Deferred[object] = Deferred()

    def made(self) -> Protocol:
        protocol = Protocol()
        reactor.callLater(0, self.done.callback, protocol)
        return protocol

    def failed(self, why: str) -> None:
        self.done.callback(Failed(why))


class Failed:
    """A failure, carried as a result."""

    def __init__(self, why: str) -> None:
        self.why = why


class IPFamilyTests(TestCase):
    """Only IP literals take the direct path."""

    def test_families(self) -> None:
        """IPv4 and IPv6 literals have a family; host names have none."""
        self.assertEqual(ip_family("127.0.0.1"), socket.AF_INET)
        self.assertEqual(ip_family("::1"), socket.AF_INET6)
        self.assertIsNone(ip_family("localhost"))


class DirectAttemptTests(TestCase):
    """Real loopback sockets on the real reactor."""

    async def connected(self, **options: Any) -> tuple[Any, int]:
        """A direct attempt to a listening backend: the transport it built, and the port."""
        server: Any = Factory.forProtocol(Protocol)
        port: Any = reactor.listenTCP(0, server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        factory = Recorder()
        DirectAttempt(reactor, reactor, socket.AF_INET, "127.0.0.1", port.getHost().port,
                      factory, 5, **options)
        protocol = await factory.done
        assert isinstance(protocol, Protocol)
        transport: Any = protocol.transport
        assert transport is not None
        self.addCleanup(transport.loseConnection)
        return transport, int(port.getHost().port)

    async def test_lean_adoption(self) -> None:
        """With a lean read size the connected socket becomes a lean transport."""
        transport, port = await self.connected(lean_read=1 << 20)
        assert isinstance(transport, LeanTCPTransport)
        self.assertEqual((transport.getPeer().port, transport.max_read), (port, 1 << 20))
        # A backend's socket options, set as the transport was made (not by its leg).
        self.assertTrue(transport.getTcpNoDelay() and transport.getTcpKeepAlive())

    async def test_refused(self) -> None:
        """A port nobody listens on fails the attempt with Twisted's refusal error."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        factory = Recorder()
        DirectAttempt(reactor, reactor, socket.AF_INET, "127.0.0.1", closed, factory, 5)
        failed = await factory.done
        assert isinstance(failed, Failed)
        refused = error.getConnectError((errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED)))
        self.assertIsInstance(refused, ConnectionRefusedError)
        self.assertEqual(failed.why, str(refused))

    def test_timeout(self) -> None:
        """No answer within the timeout fails the attempt and closes its socket."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            clock = Clock()
            factory = Recorder()
            attempt = DirectAttempt(reactor, clock, socket.AF_INET, "127.0.0.1",
                                    listener.getsockname()[1], factory, 2)
            clock.advance(2)
            failed = self.successResultOf(factory.done)
            assert isinstance(failed, Failed)
            self.assertEqual(failed.why, str(TimeoutError()))
            self.assertEqual(attempt.fileno(), -1)

    def test_stop_connecting(self) -> None:
        """A cancelled attempt reports nothing and leaves no descriptor behind."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            factory = Recorder()
            attempt = DirectAttempt(reactor, Clock(), socket.AF_INET, "127.0.0.1",
                                    listener.getsockname()[1], factory, 2)
            attempt.stopConnecting()
            self.assertEqual(attempt.fileno(), -1)
            self.assertNoResult(factory.done)
            self.assertNotIn(attempt, reactor.getWriters())

    def test_stale_event_while_connecting(self) -> None:
        """An event that reaches an attempt whose handshake is still under way (a stale one:
        its descriptor number was another socket's earlier in the same poll batch) leaves it
        waiting: it is not taken for connected."""
        with socket.socket() as listener, socket.socket() as filler:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            # One connection fills the accept queue; further handshakes wait in SYN_SENT.
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            deadline = time.monotonic() + 5
            while filler.connect_ex(listener.getsockname()) not in (0, errno.EISCONN):
                self.assertLess(time.monotonic(), deadline, "the filler never connected")
                select.select([], [filler], [], 0.1)
            factory = Recorder()
            attempt = DirectAttempt(reactor, Clock(), socket.AF_INET, "127.0.0.1",
                                    listener.getsockname()[1], factory, 2)
            self.addCleanup(attempt.stopConnecting)
            attempt.doRead()
            attempt.doWrite()
            self.assertNoResult(factory.done)
            self.assertNotEqual(attempt.fileno(), -1)
            self.assertIn(attempt, reactor.getWriters())


class Due:
    """Stands for an attempt in the deadline table, recording its timeout."""

    def __init__(self) -> None:
        self.timed_out_at: float | None = None
        self.clock: Clock | None = None

    def timed_out(self) -> None:
        assert self.clock is not None
        self.timed_out_at = self.clock.seconds()


class ConnectDeadlinesTests(TestCase):
    """One timer for every connect timeout in progress."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.table = ConnectDeadlines(self.clock)

    def due(self, seconds: float) -> Due:
        attempt = Due()
        attempt.clock = self.clock
        self.table.add(attempt, seconds)  # type: ignore[arg-type]
        return attempt

    def test_times_out_on_time(self) -> None:
        """Each attempt times out at its own deadline, on one timer."""
        first = self.due(2)
        self.clock.advance(0.5)
        second = self.due(2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(1.5)
        self.assertEqual((first.timed_out_at, second.timed_out_at), (2.0, None))
        self.clock.advance(0.5)
        self.assertEqual(second.timed_out_at, 2.5)
        self.assertEqual((len(self.table), self.clock.getDelayedCalls()), (0, []))

    def test_discarded_never_times_out(self) -> None:
        """An attempt that connected leaves the table; the last one out stops the timer."""
        first, second = self.due(2), self.due(2)
        self.table.discard(first)  # type: ignore[arg-type]
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.table.discard(second)  # type: ignore[arg-type]
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(5)
        self.assertEqual((first.timed_out_at, second.timed_out_at), (None, None))

    def test_shortened_timeout(self) -> None:
        """A timeout shortened at run time (control port) is honoured to the moment."""
        slow = self.due(10)
        fast = self.due(1)
        self.clock.advance(1)
        self.assertEqual((fast.timed_out_at, slow.timed_out_at), (1.0, None))
        self.clock.advance(9)
        self.assertEqual(slow.timed_out_at, 10.0)

    def test_failover_while_expiring(self) -> None:
        """An attempt whose timeout starts the next attempt (a dial failing over does, from
        inside the expiry) leaves the attempts still waiting on time, not on the new one's
        later deadline."""
        first = self.due(2)
        self.clock.advance(1)
        second = self.due(2)  # due at 3
        started: list[Due] = []

        def fail_over() -> None:
            Due.timed_out(first)
            started.append(self.due(2))  # the next backend, due at 4

        first.timed_out = fail_over  # type: ignore[method-assign]
        self.clock.advance(1)
        self.assertEqual((first.timed_out_at, len(started)), (2.0, 1))
        self.clock.advance(1)
        self.assertEqual(second.timed_out_at, 3.0)
        self.clock.advance(1)
        self.assertEqual(started[0].timed_out_at, 4.0)
        self.assertEqual((len(self.table), self.clock.getDelayedCalls()), (0, []))

    def test_one_failing_timeout_holds_up_none_other(self) -> None:
        """An attempt whose timeout raises (the dial's next attempt found no descriptor to
        open its socket with: EMFILE) is logged; the others due with it still time out, and
        those due later on time, as they did with a timer each."""
        first = self.due(2)
        second = self.due(2)
        self.clock.advance(1)
        third = self.due(2)  # due at 3

        def fail_over() -> None:
            raise OSError(24, "Too many open files")

        first.timed_out = fail_over  # type: ignore[method-assign]
        self.clock.advance(1)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(second.timed_out_at, 2.0)
        self.clock.advance(1)
        self.assertEqual(third.timed_out_at, 3.0)
        self.assertEqual((len(self.table), self.clock.getDelayedCalls()), (0, []))

    def test_one_table_per_clock(self) -> None:
        """Attempts on the same clock share a table; another clock has its own."""
        self.assertIs(deadlines_for(self.clock), deadlines_for(self.clock))
        self.assertIsNot(deadlines_for(self.clock), deadlines_for(Clock()))
