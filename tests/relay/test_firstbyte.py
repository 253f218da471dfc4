# -*- test-case-name: tests.relay.test_firstbyte -*-
"""
Tests of C{--first-byte-timeout}: a connected backend that never speaks (a frozen MySQL node
accepts TCP and never greets) is a failed attempt, and the client fails over without loss.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.relay.config import RelayConfig
from tests.relay.fixtures import RelayHarness


def harness(seconds: float = 2.0, **settings: Any) -> RelayHarness:
    """A relay harness with the first-byte wait on."""
    return RelayHarness(config=RelayConfig(first_byte_timeout=seconds), **settings)


class FirstByteTests(SynchronousTestCase):
    """The client gets a backend only once the backend has spoken."""

    def test_silent_backend_fails_over(self) -> None:
        """Connected but silent past the timeout: blacklisted, aborted, the next one dialled;
        what the client sent meanwhile reaches the next backend."""
        h = harness(2.0, blacklist=30)
        front, client = h.client()
        first = h.last_dial()[1]
        silent, silent_transport = h.connect_backend()
        front.dataReceived(b"early")
        h.reactor.advance(1.9)
        self.assertIsNone(front.peer)
        self.assertEqual(len(h.reactor.tcpClients), 1)
        h.reactor.advance(0.2)
        self.assertTrue(silent_transport.disconnecting)
        self.assertTrue(silent.abandoned)
        self.assertNotEqual(h.last_dial()[1], first)
        failed = h.pool[first - 4000]
        self.assertTrue(failed.is_blacklisted(h.reactor.seconds()))
        self.assertIn("sent nothing within 2s", failed.blacklist_reason)
        self.assertEqual(failed.counters.active, 0)
        # The abandoned leg's end does not touch the client.
        silent.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(client.disconnecting)
        leg, transport = h.connect_backend()
        leg.dataReceived(b"greeting")
        self.assertEqual(client.value(), b"greeting")
        self.assertEqual(transport.value(), b"early")
        self.assertIs(front.peer, leg)
        self.assertEqual(h.pool[h.last_dial()[1] - 4000].counters.active, 1)

    def test_greeting_hands_backend_to_client(self) -> None:
        """The first byte in time: no failover, the bytes relayed both ways, no timer left."""
        h = harness(2.0)
        front, client = h.client()
        leg, transport = h.connect_backend()
        self.assertIsNone(front.peer)
        leg.dataReceived(b"hello")
        self.assertEqual(client.value(), b"hello")
        front.dataReceived(b"query")
        self.assertEqual(transport.value(), b"query")
        self.assertEqual(h.reactor.getDelayedCalls(), [])
        h.reactor.advance(10)
        self.assertEqual(len(h.reactor.tcpClients), 1)

    def test_backend_closing_before_speaking_fails_over(self) -> None:
        """A backend that accepts and closes at once is a failed attempt, not a client error."""
        h = harness(2.0)
        _front, client = h.client()
        first = h.last_dial()[1]
        leg, _ = h.connect_backend()
        leg.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(client.disconnecting)
        self.assertNotEqual(h.last_dial()[1], first)
        self.assertIn("closed before sending anything", h.pool[first - 4000].blacklist_reason)
        self.assertEqual(h.reactor.getDelayedCalls(), [])

    def test_all_silent_closes_client(self) -> None:
        """Every backend silent: the client is closed as when every backend refuses."""
        h = harness(1.0)
        front, client = h.client()
        for _ in range(2):
            h.connect_backend()
            h.reactor.advance(1.0)
        self.assertTrue(client.disconnecting)
        self.assertEqual(front.ended_by, "no backend available")

    def test_client_leaving_abandons_waiting_backend(self) -> None:
        """The client goes while its backend has not spoken: the backend is aborted, its
        timer cancelled, nothing blacklisted."""
        h = harness(2.0)
        front, _ = h.client()
        first = h.last_dial()[1]
        _leg, transport = h.connect_backend()
        front.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(h.reactor.getDelayedCalls(), [])
        self.assertFalse(h.pool[first - 4000].is_blacklisted(h.reactor.seconds()))
        self.assertEqual(h.factory.fronts, set())

    def test_half_close_before_greeting(self) -> None:
        """A client that sends and half-closes before the backend spoke: the request and the
        end of stream both reach the backend once it speaks."""
        h = harness(2.0)
        front, _ = h.client()
        leg, transport = h.connect_backend()
        front.dataReceived(b"request")
        front.readConnectionLost()
        leg.dataReceived(b"hi")
        self.assertEqual(transport.value(), b"request")
        self.assertTrue(transport.write_closed)

    def test_off_by_default(self) -> None:
        """Without the option the backend is the client's as soon as it is connected."""
        h = RelayHarness()
        front, _ = h.client()
        leg, _ = h.connect_backend()
        self.assertIs(front.peer, leg)
