"""
Tests for L{penbal.relay.waitqueue}: clients held while no backend is usable, dialled as soon as
one is, closed (or sent to the emergency server) at their deadline.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from penbal.backend import Fitness, Health
from penbal.relay.dialer import Dial
from penbal.relay.legs import FrontLeg
from penbal.relay.waitqueue import POLL, WaitingClient
from tests.relay.fixtures import RelayHarness


def queued(timeout: float = 2.0, limit: int = 10, **settings: object) -> RelayHarness:
    """A relay over two unfit backends, with the wait queue on."""
    h = RelayHarness(**settings)  # type: ignore[arg-type]
    h.factory.enable_queue(timeout, limit)
    for backend in h.pool:
        backend.health = Health(Fitness.UNFIT, "non-Primary")
    return h


def make_fit(h: RelayHarness, index: int) -> None:
    h.pool[index].health = Health(Fitness.FIT)


class HoldTests(SynchronousTestCase):
    """A client waits while no backend is usable."""

    def test_held_then_dialled_with_its_bytes(self) -> None:
        """Nothing is dialled while every backend is unfit; once one is fit the client is
        dialled within one poll, and what it sent meanwhile reaches the backend."""
        h = queued()
        front, client = h.client()
        front.dataReceived(b"early")
        h.reactor.advance(1.0)
        self.assertEqual(h.reactor.tcpClients, [])
        self.assertIsInstance(front.dial, WaitingClient)
        self.assertFalse(client.disconnecting)
        self.assertEqual(len(h.factory.queue or ()), 1)
        make_fit(h, 1)
        h.reactor.advance(POLL)
        self.assertEqual(h.last_dial()[1], 4001)
        _, transport = h.connect_backend()
        self.assertEqual(transport.value(), b"early")
        queue = h.factory.queue
        assert queue is not None
        self.assertEqual((queue.figures.held, queue.figures.served, len(queue)), (1, 1, 0))

    def test_deadline_closes(self) -> None:
        """Still no usable backend at the deadline: closed, saying why; no timer left."""
        h = queued(timeout=2.0)
        front, client = h.client()
        h.reactor.advance(1.95)
        self.assertFalse(client.disconnecting)
        h.reactor.advance(0.1)
        self.assertTrue(client.disconnecting)
        self.assertEqual(front.ended_by, "no backend available within --queue-timeout 2s")
        self.assertEqual(h.reactor.tcpClients, [])
        self.assertEqual(h.reactor.getDelayedCalls(), [])
        assert h.factory.queue is not None
        self.assertEqual(h.factory.queue.figures.expired, 1)

    def test_deadline_emergency(self) -> None:
        """With an emergency server, a client whose deadline came is sent there."""
        h = queued(timeout=1.0)
        h.emergency(4999)
        h.client()
        h.reactor.advance(1.05)
        self.assertEqual(h.last_dial()[1], 4999)

    def test_queue_max(self) -> None:
        """Past --queue-max waiting clients, a new one is closed at once."""
        h = queued(limit=1)
        _, first = h.client(port=5001)
        _, second = h.client(port=5002)
        self.assertFalse(first.disconnecting)
        self.assertTrue(second.disconnecting)
        assert h.factory.queue is not None
        self.assertEqual(h.factory.queue.figures.refused, 1)

    def test_client_leaves_while_held(self) -> None:
        """A held client that closes leaves the queue: nothing is dialled for it later, and
        the queue stops looking."""
        h = queued()
        front, _ = h.client()
        front.connectionLost(Failure(ConnectionDone()))
        make_fit(h, 0)
        h.reactor.advance(3.0)
        self.assertEqual(h.reactor.tcpClients, [])
        self.assertEqual(h.reactor.getDelayedCalls(), [])
        self.assertEqual(len(h.factory.fronts), 0)

    def test_first_come_first_dialled(self) -> None:
        """Waiting clients are dialled in the order they came."""
        h = queued()
        first, _ = h.client(host="127.0.0.2")
        second, _ = h.client(host="127.0.0.3")
        make_fit(h, 0)
        h.reactor.advance(POLL)
        legs = [factory.buildProtocol(None) for _, _, factory, _, _ in h.reactor.tcpClients]
        self.assertEqual([getattr(leg, "front", None) for leg in legs], [first, second])

    def test_no_queue_closes_at_once(self) -> None:
        """Without --queue-timeout a client with no usable backend is closed at once."""
        h = RelayHarness()
        for backend in h.pool:
            backend.health = Health(Fitness.UNFIT, "non-Primary")
        front, client = h.client()
        self.assertTrue(client.disconnecting)
        self.assertEqual(front.ended_by, "no backend available")

    def test_failed_dials_wait_until_the_first_deadline(self) -> None:
        """Every backend refuses: the client waits, and backends that then fail too do not
        give it a second full wait: it is closed at the deadline of its first wait."""
        h = queued(timeout=2.0, blacklist=0.5)
        for backend in h.pool:
            backend.health = Health(Fitness.FIT)
        front, client = h.client()
        self.refuse_all(h, front)
        self.assertIsInstance(front.dial, WaitingClient)
        h.reactor.advance(0.6)  # the blacklist is over: dialled again, and refused again
        self.assertEqual(len(h.reactor.tcpClients), 3)
        self.refuse_all(h, front)
        self.assertEqual(len(h.reactor.tcpClients), 4)
        self.assertIsInstance(front.dial, WaitingClient)
        self.assertFalse(client.disconnecting)
        h.reactor.advance(1.0)  # t = 1.6: dialled once more at 1.1, left connecting
        self.refuse_all(h, front)
        h.reactor.advance(0.45)
        self.assertTrue(client.disconnecting)
        self.assertLess(h.reactor.seconds(), 2.1)
        self.assertIn("--queue-timeout 2s", front.ended_by)

    @staticmethod
    def refuse_all(h: RelayHarness, front: FrontLeg) -> None:
        """Refuse the client's connect attempts until it is no longer dialling."""
        while isinstance(front.dial, Dial):
            _, _, dial, _ = h.last_dial()
            dial.clientConnectionFailed(None, Failure(ConnectionRefusedError()))  # type: ignore[arg-type]
