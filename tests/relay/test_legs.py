# -*- test-case-name: tests.relay.test_legs -*-
"""
Tests of the relay's two legs: bytes, backpressure wiring and half-close.
"""


from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.relay.fixtures import RelayHarness


class RelayTests(SynchronousTestCase):
    """A client relayed to a backend through memory transports."""

    def setUp(self) -> None:
        self.harness = RelayHarness()

    def test_client_read_while_dialling(self) -> None:
        """The client is read while its backend is dialled (no pause and resume per client)."""
        _, client = self.harness.client()
        self.assertEqual(client.producerState, "producing")
        self.harness.connect_backend()
        self.assertEqual(client.producerState, "producing")

    def test_flooding_client_paused_until_backend_up(self) -> None:
        """Past early_limit bytes before the backend is up, the client is paused; it is
        resumed, with every byte kept, once the backend is up."""
        front, client = self.harness.client()
        chunk = b"x" * 40_000
        front.dataReceived(chunk)
        self.assertEqual(client.producerState, "producing")
        front.dataReceived(chunk)
        self.assertEqual(client.producerState, "paused")
        _, backend = self.harness.connect_backend()
        self.assertEqual(client.producerState, "producing")
        self.assertEqual(backend.value(), chunk * 2)

    def test_close_while_dialling_stops_the_dial(self) -> None:
        """Closing a client whose backend is still being dialled cancels the attempt at once."""
        front, _ = self.harness.client()
        connector = self.harness.reactor.connectors[-1]
        self.assertFalse(connector.stoppedConnecting)
        front.close()
        self.assertIsNone(front.dial)
        self.assertTrue(connector.stoppedConnecting)

    def test_early_data_kept(self) -> None:
        """Bytes that arrive before the backend is up reach it first, in order."""
        front, _ = self.harness.client()
        front.dataReceived(b"hello ")
        front.dataReceived(b"world")
        _, backend = self.harness.connect_backend()
        front.dataReceived(b"!")
        self.assertEqual(backend.value(), b"hello world!")

    def test_both_directions(self) -> None:
        """Bytes pass both ways unchanged and are counted per backend and per client."""
        front, client = self.harness.client()
        leg, backend = self.harness.connect_backend()
        front.dataReceived(b"query")
        leg.dataReceived(b"result")
        self.assertEqual((backend.value(), client.value()), (b"query", b"result"))
        counters = leg.backend.counters
        self.assertEqual((counters.bytes_to_backend, counters.bytes_from_backend), (5, 6))
        self.assertEqual((front.bytes_in, front.bytes_out), (5, 6))

    def test_producers_wired_both_ways(self) -> None:
        """Each transport is a streaming producer of the other (backpressure)."""
        _, client = self.harness.client()
        _, backend = self.harness.connect_backend()
        self.assertIs(client.producer, backend)
        self.assertIs(backend.producer, client)
        self.assertTrue(client.streaming and backend.streaming)

    def test_client_half_close_keeps_reply(self) -> None:
        """A client's EOF half-closes the backend; the reply still reaches the client."""
        front, client = self.harness.client()
        leg, backend = self.harness.connect_backend()
        front.dataReceived(b"request")
        front.readConnectionLost()
        self.assertTrue(backend.write_closed)
        self.assertFalse(client.disconnecting)
        leg.dataReceived(b"the whole reply")
        self.assertEqual(client.value(), b"the whole reply")
        leg.readConnectionLost()
        # Both streams have ended: the client is closed after its buffer, not half-closed.
        self.assertTrue(client.disconnecting)
        self.assertEqual(client.value(), b"the whole reply")

    def test_backend_half_close(self) -> None:
        """A backend's EOF half-closes the client; the client may still send."""
        front, client = self.harness.client()
        leg, backend = self.harness.connect_backend()
        leg.readConnectionLost()
        self.assertTrue(client.write_closed)
        front.dataReceived(b"more")
        self.assertEqual(backend.value(), b"more")

    def test_closed_when_both_directions_done(self) -> None:
        """A leg closes once it has read EOF and its write side is shut."""
        front, client = self.harness.client()
        leg, backend = self.harness.connect_backend()
        front.readConnectionLost()
        leg.writeConnectionLost()
        self.assertFalse(backend.disconnecting)
        leg.readConnectionLost()
        front.writeConnectionLost()
        self.assertTrue(client.disconnecting)
        self.assertTrue(backend.disconnecting)

    def test_eof_before_backend_up(self) -> None:
        """A client EOF seen before the backend is up is passed on after the early data."""
        front, _ = self.harness.client()
        front.dataReceived(b"req")
        front.readConnectionLost()
        _, backend = self.harness.connect_backend()
        self.assertEqual(backend.value(), b"req")
        self.assertTrue(backend.write_closed)

    def test_backend_lost_closes_client(self) -> None:
        """A backend that goes away closes the client after flushing."""
        front, client = self.harness.client()
        leg, _ = self.harness.connect_backend()
        leg.connectionLost(Failure(ConnectionLost()))
        self.assertTrue(client.disconnecting)
        self.assertEqual(front.ended_by, "backend")

    def test_client_lost_closes_backend(self) -> None:
        """A client that goes away closes its backend connection and is counted out."""
        front, _ = self.harness.client()
        leg, backend = self.harness.connect_backend()
        self.assertEqual(leg.backend.counters.active, 1)
        front.connectionLost(Failure(ConnectionLost()))
        self.assertTrue(backend.disconnecting)
        self.assertEqual(leg.backend.counters.active, 0)
        self.assertEqual(self.harness.factory.fronts, set())

    def test_connection_record(self) -> None:
        """One record per connection: client, backend, bytes, duration, how it ended."""
        front, _ = self.harness.client("127.0.0.9", 6000)
        leg, _ = self.harness.connect_backend()
        front.dataReceived(b"abc")
        leg.dataReceived(b"defg")
        self.harness.reactor.advance(2.5)
        front.connectionLost(Failure(ConnectionDone()))
        (record,) = self.harness.connlog.recent
        self.assertEqual(record.client, "127.0.0.9:6000")
        self.assertEqual(record.backend, leg.backend.address)
        self.assertEqual((record.bytes_in, record.bytes_out), (3, 4))
        self.assertEqual(record.duration, 2.5)
        self.assertEqual((record.ended_by, record.clean), ("client", True))
