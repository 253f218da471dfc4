# -*- test-case-name: tests.test_connlog -*-
"""
Tests of the per-connection record: kept for the status page, written to the access log when
there is one, never an event of the event log.
"""

from __future__ import annotations

import io

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from penbal.accesslog import AccessLog
from penbal.connlog import ConnectionLog, ConnectionRecord


def record(client: str = "127.0.0.2:5000") -> ConnectionRecord:
    return ConnectionRecord(client=client, backend="127.0.0.1:3306", bytes_in=5, bytes_out=7,
                            started=10.0, duration=0.5, ended_by="client", clean=True)


class ConnectionLogTests(SynchronousTestCase):
    def test_no_event_per_connection(self) -> None:
        """An ended connection is not an event of the event log, access log or not."""
        out = io.StringIO()
        with capturedLogs() as events:
            ConnectionLog().ended(record())
            ConnectionLog(access=AccessLog(Clock(), lambda: out)).ended(record())
        self.assertEqual(events, [])

    def test_access_log_gets_each_record(self) -> None:
        """With an access log, each ended connection is one line of it."""
        out = io.StringIO()
        clock = Clock()
        connlog = ConnectionLog(access=AccessLog(clock, lambda: out))
        connlog.ended(record())
        connlog.ended(record("127.0.0.3:6000"))
        clock.advance(1)
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].endswith("127.0.0.2:5000 -> 127.0.0.1:3306: 5 bytes in,"
                                          " 7 bytes out, 0.500s, ended by client"), lines[0])
        self.assertIn("127.0.0.3:6000 -> ", lines[1])

    def test_keeps_recent(self) -> None:
        """The status page sees the most recent records, with or without an access log."""
        connlog = ConnectionLog(keep=2)
        for i in range(3):
            connlog.ended(record(f"127.0.0.2:{i}"))
        self.assertEqual([r.client for r in connlog.recent], ["127.0.0.2:1", "127.0.0.2:2"])

    def test_since(self) -> None:
        """The records that ended after the first N, oldest first, as far as the kept ones
        reach."""
        connlog = ConnectionLog(keep=3)
        self.assertEqual(connlog.since(0), [])
        for i in range(2):
            connlog.ended(record(f"127.0.0.2:{i}"))
        self.assertEqual([r.client for r in connlog.since(0)], ["127.0.0.2:0", "127.0.0.2:1"])
        self.assertEqual([r.client for r in connlog.since(1)], ["127.0.0.2:1"])
        self.assertEqual(connlog.since(2), [])
        for i in range(2, 7):
            connlog.ended(record(f"127.0.0.2:{i}"))
        self.assertEqual([r.client for r in connlog.since(2)],
                         ["127.0.0.2:4", "127.0.0.2:5", "127.0.0.2:6"])  # three kept
        self.assertEqual([r.client for r in connlog.since(5)], ["127.0.0.2:5", "127.0.0.2:6"])

    def test_remember(self) -> None:
        """A record from elsewhere (a worker's) is kept for the views, not written to the
        access log (the worker wrote it) and not counted as ended here."""
        out = io.StringIO()
        clock = Clock()
        connlog = ConnectionLog(access=AccessLog(clock, lambda: out))
        connlog.remember(record("127.0.0.9:1"))
        clock.advance(1)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual([r.client for r in connlog.recent], ["127.0.0.9:1"])
        self.assertEqual((connlog.ended_count, connlog.since(0)), (0, []))

    def test_reopen_without_access_log(self) -> None:
        """A reopen (SIGHUP, SIGUSR1) without an access log does nothing, and does not fail."""
        ConnectionLog().reopen()

    def test_reopen_reaches_followers(self) -> None:
        """A reopen reopens the access log, then tells every follower (the workers of
        --workers N), each once per reopen; followers are told without an access log too
        (the main process of --workers relays nothing, its workers write the records)."""
        told: list[str] = []

        class Sink:
            def write(self, record: ConnectionRecord) -> None:
                pass

            def reopen(self) -> None:
                told.append("own")

        connlog = ConnectionLog(access=Sink())
        connlog.reopen_followers += [lambda: told.append("a"), lambda: told.append("b")]
        connlog.reopen()
        connlog.reopen()
        self.assertEqual(told, ["own", "a", "b"] * 2)
        bare = ConnectionLog()
        bare.reopen_followers.append(lambda: told.append("c"))
        bare.reopen()
        self.assertEqual(told[-1], "c")
