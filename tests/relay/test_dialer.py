# -*- test-case-name: tests.relay.test_dialer -*-
"""
Tests of dialling: connect timeout, blacklist, failover, emergency server, stubborn.
"""

from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

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
