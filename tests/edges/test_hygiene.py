# -*- test-case-name: tests.edges.test_hygiene -*-
"""
Tests of connection hygiene: the idle timeout (with a Clock) and the per-client cap.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from penbal.edges.hygiene import ClientCap, IdleWatch


class Connection:
    """The counters and close() of a relayed connection."""

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.closed = False
        self.ended_by = ""
        #: Bytes relayed but not yet counted (a lean pipe's, see FrontLeg.settle).
        self.unsettled = 0

    def close(self) -> None:
        self.closed = True

    def settle(self) -> None:
        self.bytes_in += self.unsettled
        self.unsettled = 0


class IdleWatchTests(SynchronousTestCase):
    """A connection silent both ways is closed after between SEC and 1.25 * SEC."""

    def test_closed_after_timeout(self) -> None:
        """Silence for the whole timeout closes the connection, naming why."""
        clock, connection = Clock(), Connection()
        IdleWatch(clock, 10, connection)
        clock.pump([0.5] * 19)
        self.assertFalse(connection.closed)
        clock.pump([0.5])
        self.assertTrue(connection.closed)
        self.assertEqual(connection.ended_by, "idle timeout (10s)")

    def test_piped_traffic_keeps_it_open(self) -> None:
        """Bytes that only the transports counted (relayed through a pipe) are settled by
        the watch before it samples: they keep the connection open too."""
        clock, connection = Clock(), Connection()
        IdleWatch(clock, 10, connection)
        for _ in range(8):
            clock.advance(2.5)
            connection.unsettled += 1
        self.assertFalse(connection.closed)
        self.assertEqual(connection.bytes_in, 8 - 1)  # the last step's byte awaits a sample

    def test_traffic_keeps_it_open(self) -> None:
        """Bytes in either direction restart the count."""
        clock, connection = Clock(), Connection()
        IdleWatch(clock, 10, connection)
        for step in range(20):
            clock.advance(2.5)
            if step % 2:
                connection.bytes_in += 1
            else:
                connection.bytes_out += 1
        self.assertFalse(connection.closed)

    def test_bound_after_last_byte(self) -> None:
        """After the last byte, closing comes no sooner than SEC and about 1.25 SEC at most."""
        clock, connection = Clock(), Connection()
        IdleWatch(clock, 8, connection)
        clock.advance(3.1)
        connection.bytes_out += 1  # last activity at t=3.1
        while not connection.closed:
            clock.advance(0.1)
        idle = clock.seconds() - 3.1
        # Each of the five samples may run up to one 0.1 s step late on this Clock.
        self.assertTrue(8 <= idle <= 10 + 0.6, idle)

    def test_stop(self) -> None:
        """A stopped watch never closes and leaves nothing scheduled."""
        clock, connection = Clock(), Connection()
        IdleWatch(clock, 1, connection).stop()
        clock.advance(5)
        self.assertFalse(connection.closed)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_already_closed(self) -> None:
        """A watch on a connection that closed by itself stops sampling."""
        clock, connection = Clock(), Connection()
        IdleWatch(clock, 1, connection)
        connection.closed = True
        clock.advance(0.25)
        self.assertEqual(clock.getDelayedCalls(), [])


class ClientCapTests(SynchronousTestCase):
    """Connections per client address."""

    def test_cap(self) -> None:
        """The connection over the limit is refused; another address is not affected."""
        cap = ClientCap(2)
        self.assertTrue(cap.admit("127.0.0.2"))
        self.assertTrue(cap.admit("127.0.0.2"))
        self.assertFalse(cap.admit("127.0.0.2"))
        self.assertTrue(cap.admit("127.0.0.3"))

    def test_release(self) -> None:
        """An ended connection makes room, and a client with none is forgotten."""
        cap = ClientCap(1)
        cap.admit("::1")
        cap.release("::1")
        self.assertEqual(cap.live, {})
        self.assertTrue(cap.admit("::1"))
