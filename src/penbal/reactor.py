# -*- test-case-name: tests.test_reactor -*-
"""
A lean epoll reactor: Twisted's, without the per-event log context.

Twisted's poll loop wraps every I/O event in C{log.callWithLogger}, which copies a context
dict per event; for a relay that is a tenth of its time on new connections.  This reactor
calls the event handler directly (still logging any exception).  C{twist penbal} and
C{twistd penbal} run on it unless a reactor is named (see L{penbal.launcher}).  Checked
against Twisted 24.7 to 26.10.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.epollreactor import EPollReactor
from twisted.internet.main import installReactor
from twisted.logger import Logger

log = Logger()


class LeanEPollReactor(EPollReactor):
    """C{EPollReactor} whose C{doPoll} dispatches events without a log context per event."""

    def doPoll(self, timeout: float | None) -> None:
        if timeout is None:
            timeout = -1
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        for fd, event in events:
            selectable: Any = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)  # type: ignore[no-untyped-call]
            except BaseException:
                log.failure("unhandled error handling an event of {selectable!r}",
                            selectable=selectable)

    doIteration = doPoll


def install() -> None:
    """Install the lean epoll reactor as the global reactor."""
    installReactor(LeanEPollReactor())  # type: ignore[no-untyped-call]
