# -*- test-case-name: tests.test_reactor -*-
"""
A lean epoll reactor: Twisted's, without the per-event log context or the general dispatch
for the events that are only a read or only a write.

Twisted's poll loop wraps every I/O event in C{log.callWithLogger}, which copies a context
dict per event; for a relay that is a tenth of its time on new connections.  This reactor
calls the event handler directly (still logging any exception).  C{twist penbal} and
C{twistd penbal} run on it unless a reactor is named (see L{penbal.launcher}).  Checked
against Twisted 24.7 to 26.10.
"""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.epollreactor import EPOLLIN, EPOLLOUT, EPollReactor
from twisted.internet.error import ConnectionFdescWentAway
from twisted.internet.main import installReactor
from twisted.logger import Logger

log = Logger()
_IN, _OUT = EPOLLIN, EPOLLOUT
_NO_FILEDESC = ConnectionFdescWentAway("File descriptor lost")


class LeanEPollReactor(EPollReactor):
    """C{EPollReactor} whose C{doPoll} dispatches events without a log context per event, and
    calls C{doRead} (or C{doWrite}) itself for the common event that is only that."""

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
            if event != _IN and event != _OUT:
                try:
                    dispatch(selectable, fd, event)  # type: ignore[no-untyped-call]
                except BaseException:
                    log.failure("unhandled error handling an event of {selectable!r}",
                                selectable=selectable)
                continue
            # What _doReadOrWrite does for a lone read or write event, without its tests.
            reading = event == _IN
            why: object
            try:
                if selectable.fileno() == -1:
                    why = _NO_FILEDESC
                else:
                    why = selectable.doRead() if reading else selectable.doWrite()
            except BaseException as e:
                log.failure("unhandled error handling an event of {selectable!r}",
                            selectable=selectable)
                why = e
            if why:
                self._lose(selectable, why, reading)

    doIteration = doPoll

    def _lose(self, selectable: Any, why: object, reading: bool) -> None:
        """The handler reported a loss (or raised): disconnect it as Twisted's dispatch does."""
        try:
            self._disconnectSelectable(selectable, why, reading)  # type: ignore[no-untyped-call]
        except BaseException:
            log.failure("unhandled error disconnecting {selectable!r}", selectable=selectable)


def install() -> None:
    """Install the lean epoll reactor as the global reactor."""
    installReactor(LeanEPollReactor())  # type: ignore[no-untyped-call]
