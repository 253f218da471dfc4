# -*- test-case-name: tests.test_accesslog -*-
"""
Tests of the access log: its line formats, buffering on the injected clock, reopening for
logrotate, write failures, and the flush when penbal stops.
"""

from __future__ import annotations

import io
import json
import os
from typing import IO

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from penbal.accesslog import (
    BUFFER_LIMIT,
    FLUSH_INTERVAL,
    AccessLog,
    AccessLogService,
    open_access_log,
)
from penbal.connlog import ConnectionRecord

#: 2026-12-07T06:40:06.250Z
WHEN = 1796625606.25


def record(client: str = "127.0.0.2:5000", ended_by: str = "client") -> ConnectionRecord:
    return ConnectionRecord(client=client, backend="127.0.0.1:3306", bytes_in=5, bytes_out=7,
                            started=WHEN - 0.5, duration=0.5, ended_by=ended_by, clean=True)


class FormatTests(SynchronousTestCase):
    def test_text(self) -> None:
        """text: end time (UTC, ms), client -> backend, bytes each way, duration, why."""
        out = io.StringIO()
        access = AccessLog(Clock(), lambda: out)
        access.write(record())
        access.flush()
        self.assertEqual(out.getvalue(),
                         "2026-12-07T06:40:06.250Z 127.0.0.2:5000 -> 127.0.0.1:3306: 5 bytes in,"
                         " 7 bytes out, 0.500s, ended by client\n")

    def test_json(self) -> None:
        """json: one object per line with every field."""
        out = io.StringIO()
        access = AccessLog(Clock(), lambda: out, "json")
        access.write(record(ended_by='backend "reset"'))
        access.write(record("[::1]:7"))
        access.flush()
        first, second = (json.loads(line) for line in out.getvalue().splitlines())
        self.assertEqual(first, {
            "time": "2026-12-07T06:40:06.250Z", "client": "127.0.0.2:5000",
            "backend": "127.0.0.1:3306", "bytes_in": 5, "bytes_out": 7,
            "started": WHEN - 0.5, "duration": 0.5, "ended_by": 'backend "reset"',
            "clean": True})
        self.assertEqual(second["client"], "[::1]:7")


class BufferTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.out = io.StringIO()
        self.clock = Clock()
        self.access = AccessLog(self.clock, lambda: self.out)

    def test_flushed_within_a_second(self) -> None:
        """Lines wait in the buffer, and are written one flush interval after the first."""
        self.access.write(record())
        self.clock.advance(FLUSH_INTERVAL / 2)
        self.access.write(record("127.0.0.3:1"))
        self.assertEqual(self.out.getvalue(), "")
        self.clock.advance(FLUSH_INTERVAL / 2)
        self.assertEqual(len(self.out.getvalue().splitlines()), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])  # idle: no timer runs

    def test_large_buffer_written_at_once(self) -> None:
        """A buffer past its limit is written without waiting for the timer."""
        count = 0
        while not self.out.getvalue():
            self.access.write(record())
            count += 1
            self.assertLess(count, BUFFER_LIMIT)
        self.assertEqual(len(self.out.getvalue().splitlines()), count)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_flushes_then_writes_through(self) -> None:
        """Stopping penbal writes the buffer; connections that end later are written at once."""
        service = AccessLogService(self.access)
        service.startService()
        self.access.write(record())
        service.stopService()
        self.assertEqual(len(self.out.getvalue().splitlines()), 1)
        self.access.write(record("127.0.0.3:1"))
        self.assertEqual(len(self.out.getvalue().splitlines()), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class Broken(io.StringIO):
    """A file whose writes fail (a full disk)."""

    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


class FileTests(SynchronousTestCase):
    def test_reopen_after_rotation(self) -> None:
        """After the file is moved away, a reopen writes to a new file at the old path."""
        path = self.mktemp()
        clock = Clock()
        access = open_access_log(clock, path, "text", io.StringIO())
        access.write(record("127.0.0.2:1"))
        os.rename(path, path + ".1")
        access.write(record("127.0.0.2:2"))
        with capturedLogs() as events:
            access.reopen()  # the buffer goes to the old file first
        access.write(record("127.0.0.2:3"))
        clock.advance(FLUSH_INTERVAL)
        access.close()
        with open(path + ".1") as f:
            self.assertEqual(["127.0.0.2:1", "127.0.0.2:2"], [ln.split()[1] for ln in f])
        with open(path) as f:
            self.assertEqual(["127.0.0.2:3"], [ln.split()[1] for ln in f])
        self.assertEqual([e["penbal_event"] for e in events], ["access-log-reopened"])

    def test_appends(self) -> None:
        """An existing access log is appended to."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("before\n")
        access = open_access_log(Clock(), path, "text", io.StringIO())
        access.write(record())
        access.close()
        with open(path) as f:
            self.assertEqual(f.readline(), "before\n")
            self.assertIn("127.0.0.2:5000", f.readline())

    def test_standard_output(self) -> None:
        """- is standard output, which a reopen leaves open."""
        stdout = io.StringIO()
        access = open_access_log(Clock(), "-", "json", stdout)
        access.write(record())
        access.reopen()
        access.write(record())
        access.close()
        self.assertFalse(stdout.closed)
        self.assertEqual(len(stdout.getvalue().splitlines()), 2)

    def test_cannot_open(self) -> None:
        """A path that cannot be opened is an OSError (a start-up error)."""
        self.assertRaises(OSError, open_access_log, Clock(), "/nonexistent/dir/access.log",
                          "text", io.StringIO())

    def test_reopen_failure_keeps_old_file(self) -> None:
        """If the file cannot be reopened, penbal says so and keeps writing to the old one."""
        out = io.StringIO()
        opened: list[IO[str]] = []

        def opener() -> IO[str]:
            if opened:
                raise PermissionError(13, "Permission denied")
            opened.append(out)
            return out

        access = AccessLog(Clock(), opener)
        with capturedLogs() as events:
            access.reopen()
        access.write(record())
        access.flush()
        self.assertEqual(len(out.getvalue().splitlines()), 1)
        self.assertEqual([e["penbal_event"] for e in events], ["access-log-error"])

    def test_write_failure_said_once(self) -> None:
        """A failing write is one error event per run of failures; the relay goes on."""
        broken = Broken()
        clock = Clock()
        access = AccessLog(clock, lambda: broken)
        with capturedLogs() as events:
            for _ in range(3):
                access.write(record())
                clock.advance(FLUSH_INTERVAL)
        self.assertEqual([e["penbal_event"] for e in events], ["access-log-error"])
