# -*- test-case-name: tests.test_service_shutdown -*-
"""
Tests of the graceful stop: stop accepting, let live connections end, then close the rest.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.address import ListenSpec
from penbal.service import CLOSE_BOUND, TCPBalancerService
from tests.relay.fixtures import RelayHarness


class FakeListeningPort:
    """A listening port that records being closed."""

    listening = True

    def stopListening(self) -> Deferred[None]:
        self.listening = False
        return succeed(None)


class GracefulStopTests(SynchronousTestCase):
    """TCPBalancerService.stopService with live connections, on a memory reactor."""

    def setUp(self) -> None:
        self.harness = RelayHarness()
        self.service = TCPBalancerService(
            self.harness.reactor, ListenSpec("tcp:0", 0), self.harness.factory, stop_timeout=30
        )
        self.port = FakeListeningPort()
        self.service.port = self.port  # type: ignore[assignment]
        self.service.running = True
        self.fronts: list[Any] = []
        for port in (5000, 5001):
            front, _ = self.harness.client(port=port)
            self.harness.connect_backend()
            self.fronts.append(front)

    def stop(self) -> list[object]:
        fired: list[object] = []
        self.service.stopService().addBoth(fired.append)
        return fired

    def end(self, front: Any) -> None:
        front.connectionLost(Failure(ConnectionDone()))

    def test_stops_accepting_and_waits(self) -> None:
        """Listening stops at once; live connections are left alone until they end."""
        fired = self.stop()
        self.assertFalse(self.port.listening)
        self.harness.reactor.advance(29)
        self.assertEqual(fired, [])
        self.assertFalse(any(front.transport.disconnecting for front in self.fronts))
        for front in self.fronts:
            self.end(front)
        self.assertEqual(fired, [None])

    def test_closes_the_rest_after_the_timeout(self) -> None:
        """After the shutdown timeout the remaining connections are closed (flushed)."""
        fired = self.stop()
        self.end(self.fronts[0])
        self.harness.reactor.advance(30.1)
        self.assertTrue(self.fronts[1].transport.disconnecting)
        self.assertEqual(fired, [])
        self.end(self.fronts[1])
        self.assertEqual(fired, [None])

    def test_aborts_what_does_not_close(self) -> None:
        """A connection that does not close within the extra bound is aborted."""
        aborted: list[Any] = []
        for front in self.fronts:
            front.transport.abortConnection = lambda front=front: aborted.append(front)
        fired = self.stop()
        self.harness.reactor.advance(30.1)
        self.harness.reactor.advance(CLOSE_BOUND + 0.1)
        self.assertCountEqual(aborted, self.fronts)
        self.assertEqual(fired, [None])

    def test_hurry(self) -> None:
        """A second SIGTERM (hurry) closes the live connections at once."""
        self.stop()
        self.harness.reactor.advance(1)
        self.service.hurry()
        self.assertTrue(all(front.transport.disconnecting for front in self.fronts))

    def test_no_connections(self) -> None:
        """With nothing live, the stop completes at once."""
        for front in self.fronts:
            self.end(front)
        self.assertEqual(self.stop(), [None])
