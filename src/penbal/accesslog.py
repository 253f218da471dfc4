# -*- test-case-name: tests.test_accesslog -*-
"""
The access log (Pen's C{-l}): one line per ended connection in a file of its own, apart from
the event log (health changes, errors and control actions).

Lines are buffered and written at least once a second (on the injected clock), when the
buffer grows large, and when penbal stops; SIGHUP and SIGUSR1 reopen the file, so that
logrotate can move it away.  A write that fails is said once in the event log and never
stops the relay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from penbal.connlog import ConnectionRecord

log = Logger(namespace="penbal.accesslog")

#: The formats of C{--access-log-format}.
FORMATS = ("text", "json")
#: Buffered lines are written at the latest this many seconds after the first of them.
FLUSH_INTERVAL = 1.0
#: ... or as soon as they hold this many characters.
BUFFER_LIMIT = 64 * 1024


class _Stamp:
    """ISO 8601 UTC times with milliseconds; the part up to the second is built once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, when: float) -> str:
        second = int(when)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((when - second) * 1000):03d}Z"


def text_line(record: ConnectionRecord, stamp: Callable[[float], str]) -> str:
    """One connection as a line of text: when it ended, client, backend, bytes, duration, why."""
    return (
        f"{stamp(record.started + record.duration)} {record.client} -> {record.backend}: "
        f"{record.bytes_in} bytes in, {record.bytes_out} bytes out, {record.duration:.3f}s, "
        f"ended by {record.ended_by}\n"
    )


#: A string as a JSON string, quotes included (the C encoder json.dumps uses).
_quote: Callable[[str], str] = json.encoder.encode_basestring


def json_line(record: ConnectionRecord, stamp: Callable[[float], str]) -> str:
    """One connection as a JSON object on one line (built directly: a third of the time
    C{json.dumps} of a dict takes; the numbers are finite, so their repr is JSON)."""
    return (
        f'{{"time": "{stamp(record.started + record.duration)}", '
        f'"client": {_quote(record.client)}, "backend": {_quote(record.backend)}, '
        f'"bytes_in": {record.bytes_in}, "bytes_out": {record.bytes_out}, '
        f'"started": {record.started!r}, "duration": {round(record.duration, 6)!r}, '
        f'"ended_by": {_quote(record.ended_by)}, "clean": {"true" if record.clean else "false"}}}\n'
    )


class AccessLog:
    """Writes connection records to a file, buffered; reopens it on request.

    @param clock: schedules the flush a second after the first buffered line.
    @param opener: opens (or reopens) the file, for appending text.
    @param form: C{"text"} or C{"json"}.
    @param reopenable: False for standard output, which a reopen leaves as it is.
    """

    def __init__(self, clock: IReactorTime, opener: Callable[[], IO[str]], form: str = "text",
                 reopenable: bool = True) -> None:
        self._clock = clock
        self._opener = opener
        self._format = json_line if form == "json" else text_line
        self._stamp = _Stamp()
        self._reopenable = reopenable
        self._file = opener()
        self._lines: list[str] = []
        self._size = 0
        self._timer: IDelayedCall | None = None
        self._failing = False
        #: Once penbal stops, each line is written at once (no timer may run any more).
        self.write_through = False

    def write(self, record: ConnectionRecord) -> None:
        """Buffer one ended connection's line."""
        line = self._format(record, self._stamp)
        self._lines.append(line)
        self._size += len(line)
        if self.write_through or self._size >= BUFFER_LIMIT:
            self.flush()
        elif self._timer is None:
            self._timer = self._clock.callLater(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """Write what is buffered."""
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text, self._lines, self._size = "".join(self._lines), [], 0
        try:
            self._file.write(text)
            self._file.flush()
        except (OSError, ValueError) as e:
            if not self._failing:  # once per run of failures, not once per second
                log.error("access log: cannot write ({error}); lines are lost until it can",
                          error=e, penbal_event="access-log-error")
            self._failing = True
        else:
            self._failing = False

    def reopen(self) -> None:
        """Write what is buffered, then open the file again (after logrotate moved it)."""
        self.flush()
        if not self._reopenable:
            return
        try:
            fresh = self._opener()
        except OSError as e:
            log.error("access log: cannot reopen ({error}); still writing to the old file",
                      error=e, penbal_event="access-log-error")
            return
        old, self._file = self._file, fresh
        old.close()
        log.info("access log reopened", penbal_event="access-log-reopened")

    def close(self) -> None:
        """Write what is buffered and close the file (not standard output)."""
        self.flush()
        if self._reopenable:
            self._file.close()


def open_access_log(clock: IReactorTime, path: str, form: str, stdout: IO[str]) -> AccessLog:
    """The access log for C{--access-log PATH} (C{-} for C{stdout}); C{OSError} if it cannot
    be opened."""
    if path == "-":
        return AccessLog(clock, lambda: stdout, form, reopenable=False)
    return AccessLog(clock, lambda: open(path, "a", encoding="utf-8"), form)


class AccessLogService(Service):
    """Flushes the access log when penbal stops; connections that end later (a graceful stop
    lets them finish) are written at once."""

    def __init__(self, access: AccessLog) -> None:
        self.access = access

    def stopService(self) -> None:
        super().stopService()
        self.access.flush()
        self.access.write_through = True
