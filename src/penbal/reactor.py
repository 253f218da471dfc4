# -*- test-case-name: tests.test_reactor -*-
"""
A lean epoll reactor: Twisted's, without the per-event log context or the general dispatch
for the events that are only a read or only a write.

Twisted's poll loop wraps every I/O event in C{log.callWithLogger}, which copies a context
dict per event; for a relay that is a tenth of its time on new connections.  This reactor
calls the event handler directly (still logging any exception).  C{twist penbal} and
C{twistd penbal} run on it unless a reactor is named (see L{penbal.launcher}).

It also offers the lean transports two shortcuts (L{DescriptorShortcuts}) that save an
C{epoll_ctl} each: L{LeanEPollReactor.forget}, for a descriptor about to be closed (the
kernel drops a closed socket from the epoll set itself), and L{LeanEPollReactor.hand_over},
which moves a descriptor registered for writing (a connect in progress) to its transport,
registered for reading, with one C{EPOLL_CTL_MOD} instead of a delete and an add.  Two per
relayed connection, of about 23 system calls.

This module reads and sets C{EPollReactor}'s private C{_poller}, C{_reads}, C{_writes} and
C{_selectables} (checked against Twisted 24.7 to 26.10); L{LeanEPollReactor.__init__} checks
they exist, and without them the shortcuts fall back to the public C{IReactorFDSet} calls.
"""

from __future__ import annotations

import errno
from typing import Any, Protocol

from twisted.internet.epollreactor import EPOLLIN, EPOLLOUT, EPollReactor
from twisted.internet.error import ConnectionFdescWentAway
from twisted.internet.main import installReactor
from twisted.logger import Logger

log = Logger()
_IN, _OUT = EPOLLIN, EPOLLOUT
_NO_FILEDESC = ConnectionFdescWentAway("File descriptor lost")


class DescriptorShortcuts(Protocol):
    """What a reactor offers lean transports beyond C{IReactorFDSet} (see the module
    docstring); L{shortcuts} gives the public-API equivalent for any other reactor."""

    def forget(self, selectable: Any) -> None:
        """Drop C{selectable} from the poll set; its descriptor is closed right after."""

    def hand_over(self, old: Any, new: Any) -> None:
        """C{old} was registered for writing only, C{new} (the same descriptor) reads."""


class PublicShortcuts:
    """L{DescriptorShortcuts} through the public C{IReactorFDSet} (two calls, no saving)."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def forget(self, selectable: Any) -> None:
        self._reactor.removeReader(selectable)
        self._reactor.removeWriter(selectable)

    def hand_over(self, old: Any, new: Any) -> None:
        self._reactor.removeWriter(old)
        self._reactor.addReader(new)


def shortcuts(reactor: Any) -> DescriptorShortcuts:
    """The reactor itself when it is a L{LeanEPollReactor} whose internals checked out, else
    the public equivalent."""
    if isinstance(reactor, LeanEPollReactor) and reactor.internals_ok:
        return reactor
    return PublicShortcuts(reactor)


class LeanEPollReactor(EPollReactor):
    """C{EPollReactor} whose C{doPoll} dispatches events without a log context per event, and
    calls C{doRead} (or C{doWrite}) itself for the common event that is only that."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        #: The private attributes the shortcuts use are there (see the module docstring).
        self.internals_ok = all(
            isinstance(getattr(self, name, None), kind)
            for name, kind in (("_reads", set), ("_writes", set), ("_selectables", dict))
        ) and callable(getattr(getattr(self, "_poller", None), "modify", None))

    def forget(self, selectable: Any) -> None:
        """Stop watching C{selectable}, whose descriptor its owner closes right after, without
        an C{EPOLL_CTL_DEL}: closing a socket that no other descriptor refers to removes it
        from the epoll set (a socket penbal accepted or created itself)."""
        fd = selectable.fileno()
        if self._selectables.get(fd) is selectable:
            del self._selectables[fd]
            self._reads.discard(fd)
            self._writes.discard(fd)

    def hand_over(self, old: Any, new: Any) -> None:
        """C{old} (a connect in progress) is registered for writing only; register C{new}, the
        transport of the same descriptor, for reading instead, with one C{EPOLL_CTL_MOD}."""
        fd = new.fileno()
        if self._selectables.get(fd) is not old or fd in self._reads or fd not in self._writes:
            self.removeWriter(old)  # type: ignore[no-untyped-call]
            self.addReader(new)  # type: ignore[no-untyped-call]
            return
        self._poller.modify(fd, _IN)
        self._writes.discard(fd)
        self._reads.add(fd)
        self._selectables[fd] = new

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
    installReactor(LeanEPollReactor())
