# -*- test-case-name: tests.relay.test_dialer -*-
"""
Tests of dialling: connect timeout, blacklist, failover, emergency server, stubborn.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.relay import directconnect
from penbal.relay.config import RelayConfig
from penbal.relay.connect import DirectConnector, TwistedConnector
from tests.relay.fixtures import RelayHarness


class DialTests(SynchronousTestCase):
    """A client's search for a backend."""

    def fail_last(self, harness: RelayHarness, error: Exception) -> None:
        _, _, dial, _ = harness.last_dial()
        connector = harness.reactor.connectors[-1]
        dial.clientConnectionFailed(connector, Failure(error))

    def test_connect_timeout_is_used(self) -> None:
        """Each attempt uses --timeout as its connect timeout."""
        harness = RelayHarness(timeout=1.5)
        harness.client()
        self.assertEqual(harness.last_dial()[3], 1.5)

    def test_refused_backend_blacklisted_and_failed_over(self) -> None:
        """A refusal blacklists the backend for --blacklist seconds; the next one is tried."""
        harness = RelayHarness(blacklist=30)
        harness.client()
        first = harness.last_dial()[1]
        self.fail_last(harness, ConnectionRefusedError())
        second = harness.last_dial()[1]
        self.assertNotEqual(first, second)
        failed = harness.pool[first - 4000]
        self.assertTrue(failed.is_blacklisted(harness.reactor.seconds()))
        self.assertEqual(failed.counters.failures, 1)
        harness.connect_backend()
        self.assertEqual(harness.pool[second - 4000].counters.active, 1)

    def test_timeout_fails_over(self) -> None:
        """A backend that does not answer in time is treated like a refusal."""
        harness = RelayHarness()
        harness.client()
        self.fail_last(harness, TimeoutError())
        self.assertEqual(len(harness.reactor.tcpClients), 2)

    def test_blacklist_expires(self) -> None:
        """After --blacklist seconds the backend takes clients again."""
        harness = RelayHarness(blacklist=10)
        harness.client()
        self.fail_last(harness, ConnectionRefusedError())
        self.assertEqual(len(harness.pool.candidates()), 1)
        harness.reactor.advance(10)
        self.assertEqual(len(harness.pool.candidates()), 2)

    def test_blacklisted_backend_skipped(self) -> None:
        """New clients are not sent to a blacklisted backend."""
        harness = RelayHarness(backends=2)
        harness.client()
        refused = harness.last_dial()[1]
        self.fail_last(harness, ConnectionRefusedError())
        harness.connect_backend()
        for _ in range(3):
            harness.client()
            self.assertNotEqual(harness.last_dial()[1], refused)

    def test_emergency_after_all_failed(self) -> None:
        """When every backend failed, the emergency server is tried, then the client closed."""
        harness = RelayHarness(backends=2)
        harness.emergency(4999)
        front, client = harness.client()
        self.fail_last(harness, ConnectionRefusedError())
        self.fail_last(harness, ConnectionRefusedError())
        self.assertEqual(harness.last_dial()[1], 4999)
        self.fail_last(harness, ConnectionRefusedError())
        self.assertTrue(client.disconnecting)
        self.assertEqual(front.ended_by, "no backend available")

    def test_emergency_when_none_available(self) -> None:
        """With every backend out, a new client goes straight to the emergency server."""
        harness = RelayHarness(backends=1)
        harness.emergency(4999)
        harness.client()
        self.fail_last(harness, ConnectionRefusedError())
        self.assertEqual(harness.last_dial()[1], 4999)
        harness.connect_backend()
        harness.client()
        self.assertEqual(harness.last_dial()[1], 4999)

    def test_no_backend_closes_client(self) -> None:
        """Without any backend or emergency server the client is closed at once."""
        harness = RelayHarness(backends=1)
        harness.client()
        self.fail_last(harness, ConnectionRefusedError())
        _, client = harness.client()
        self.assertTrue(client.disconnecting)
        self.assertEqual(len(harness.reactor.tcpClients), 1)

    def test_stubborn_does_not_fail_over(self) -> None:
        """-s: when the first choice fails, the client is closed."""
        harness = RelayHarness(backends=2, stubborn=True)
        harness.emergency(4999)
        _, client = harness.client()
        self.fail_last(harness, ConnectionRefusedError())
        self.assertTrue(client.disconnecting)
        self.assertEqual(len(harness.reactor.tcpClients), 1)

    def test_client_gone_while_dialling(self) -> None:
        """A client that leaves while its backend is dialled stops the attempt."""
        harness = RelayHarness()
        front, _ = harness.client()
        front.connectionLost(Failure(ConnectionRefusedError()))
        self.assertTrue(harness.reactor.connectors[-1].stoppedConnecting)
        self.assertEqual(harness.factory.fronts, set())


class FakeSocket:
    """A non-blocking socket whose connect fails at once for port 4001, else is pending."""

    opened: list[FakeSocket] = []

    def __init__(self, family: int, kind: int) -> None:
        self.closed = False
        FakeSocket.opened.append(self)

    def setblocking(self, flag: bool) -> None:
        pass

    def connect_ex(self, address: tuple[str, int]) -> int:
        return errno.ECONNREFUSED if address[1] == 4001 else errno.EINPROGRESS

    def fileno(self) -> int:
        return -1 if self.closed else 99

    def close(self) -> None:
        self.closed = True


class FDReactor:
    """Records the attempts waiting for writability."""

    def __init__(self) -> None:
        self.writers: list[object] = []

    def addWriter(self, writer: object) -> None:
        self.writers.append(writer)

    def removeWriter(self, writer: object) -> None:
        self.writers.remove(writer)


class DirectDialTests(SynchronousTestCase):
    """Dialling with direct connect (IP-literal backends)."""

    def test_immediate_failure_then_cancel(self) -> None:
        """A connect that fails inside the attempt's constructor fails over at once, and the
        attempt it started is the one a leaving client stops."""
        self.patch(directconnect._socket, "socket", FakeSocket)  # type: ignore[attr-defined]
        FakeSocket.opened = []
        fds: Any = FDReactor()
        harness = RelayHarness(backends=2, config=RelayConfig(lean=True))
        harness.factory.connector = DirectConnector(
            fds, harness.reactor, TwistedConnector(harness.reactor)
        )
        front, _ = harness.client()
        first, second = FakeSocket.opened
        self.assertTrue(first.closed)
        self.assertTrue(harness.pool[1].is_blacklisted(harness.reactor.seconds()))
        self.assertEqual(len(fds.writers), 1)
        front.connectionLost(Failure(ConnectionRefusedError()))
        self.assertTrue(second.closed)
        self.assertEqual(fds.writers, [])
