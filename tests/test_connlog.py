# -*- test-case-name: tests.test_connlog -*-
"""
Tests of the per-connection record: logged as one event, kept for the status page, skipped
when the log level hides it.
"""

from __future__ import annotations

from twisted.application.twist._options import TwistOptions
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from penbal.connlog import ConnectionLog, ConnectionRecord, events_shown


def record(client: str = "127.0.0.2:5000") -> ConnectionRecord:
    return ConnectionRecord(client=client, backend="127.0.0.1:3306", bytes_in=5, bytes_out=7,
                            started=10.0, duration=0.5, ended_by="client", clean=True)


class ConnectionLogTests(SynchronousTestCase):
    def test_one_event_per_connection(self) -> None:
        """An ended connection is one info event carrying every field."""
        with capturedLogs() as events:
            ConnectionLog().ended(record())
        [event] = [e for e in events if e.get("penbal_event") == "connection"]
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual((event["client"], event["bytes_in"], event["bytes_out"]),
                         ("127.0.0.2:5000", 5, 7))
        self.assertEqual(formatEvent(event), "127.0.0.2:5000 -> 127.0.0.1:3306: 5 bytes in,"
                         " 7 bytes out, 0.500s, ended by client")

    def test_braces_are_text(self) -> None:
        """The line is the event's format: braces in a field are shown as they are."""
        with capturedLogs() as events:
            ConnectionLog().ended(record("{odd}:1"))
        [event] = [e for e in events if e.get("penbal_event") == "connection"]
        self.assertTrue(formatEvent(event).startswith("{odd}:1 -> 127.0.0.1:3306"))
        self.assertEqual(event["log_time"], 10.5)  # the injected clock's end time

    def test_quiet_still_keeps_recent(self) -> None:
        """With events off nothing is logged, and the status page still sees the record."""
        connlog = ConnectionLog(keep=2, emit=False)
        with capturedLogs() as events:
            for i in range(3):
                connlog.ended(record(f"127.0.0.2:{i}"))
        self.assertEqual([e for e in events if e.get("penbal_event") == "connection"], [])
        self.assertEqual([r.client for r in connlog.recent], ["127.0.0.2:1", "127.0.0.2:2"])


class EventsShownTests(SynchronousTestCase):
    def test_twist_levels(self) -> None:
        """twist's default (info) and debug show them; warn and above do not."""
        launcher = TwistOptions()
        self.assertTrue(events_shown(launcher))
        for name, shown in (("debug", True), ("info", True), ("warn", False), ("error", False)):
            launcher.opt_log_level(name)
            self.assertEqual(events_shown(launcher), shown, name)

    def test_no_level_known(self) -> None:
        """twistd (no level filter) or no launcher: shown."""
        self.assertTrue(events_shown(None))
        self.assertTrue(events_shown({}))
