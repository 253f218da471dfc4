# -*- test-case-name: tests.test_reactor -*-
"""
A lean epoll reactor: Twisted's, without the per-event log context or the general dispatch
for the events that are a read (alone or with a hang-up) or only a write.

Twisted's poll loop wraps every I/O event in C{log.callWithLogger}, which copies a context
dict per event; for a relay that is a tenth of its time on new connections.  This reactor
calls the event handler directly (still logging any exception).  C{twist penbal} and
C{twistd penbal} run on it unless a reactor is named (see L{penbal.launcher}).

It also offers the lean transports shortcuts (L{DescriptorShortcuts}).  Two save an
C{epoll_ctl} each: L{LeanEPollReactor.forget}, for a descriptor about to be closed (the
kernel drops a closed socket from the epoll set itself), and L{LeanEPollReactor.hand_over},
which moves a descriptor registered for writing (a connect in progress) to its transport,
registered for reading, with one C{EPOLL_CTL_MOD} instead of a delete and an add.  Two per
relayed connection, of about 23 system calls.  The others (L{LeanEPollReactor.start_reading}
and its kin) are C{addReader} and its kin given the descriptor: one call instead of the
three or four Python calls of Twisted's (C{addReader}, C{_add}, C{fileno}; C{removeReader}
also asks its continuous poller), and each falls back to the public call for anything but
the plain case.  And a class that keeps its descriptor while registered says so
(L{keeps_descriptor}): its events are dispatched without asking C{fileno()} first.  About
twenty Python calls per relayed connection in all.

It also drops an event polled for a socket that an earlier handler of the same batch closed,
when a socket registered since then reuses its number (Twisted gives it to the newcomer: a
stale hang-up would close a client just accepted or fail a healthy backend's connect).

Its main loop skips Twisted's timed-call bookkeeping before a poll when no timed call needs
it (L{LeanEPollReactor.mainLoop}).

This module reads and sets C{EPollReactor}'s private C{_poller}, C{_reads}, C{_writes} and
C{_selectables} (checked against Twisted 24.7 to 26.10); L{LeanEPollReactor.__init__} checks
they exist, and without them the shortcuts fall back to the public C{IReactorFDSet} calls.
The main loop reads C{ReactorBase}'s private C{_pendingTimedCalls}, C{_newTimedCalls},
C{threadCallQueue}, C{_justStopped} and C{_started} (checked against Twisted 26.10; without
them it is Twisted's own loop).
"""

from __future__ import annotations

import errno
from typing import Any, Protocol, TypeVar

from twisted.internet.epollreactor import EPOLLIN, EPOLLOUT, EPollReactor
from twisted.internet.error import ConnectionFdescWentAway
from twisted.internet.main import installReactor
from twisted.logger import Logger

log = Logger()
_IN, _OUT = EPOLLIN, EPOLLOUT
_IN_OUT = _IN | _OUT
_NO_FILEDESC = ConnectionFdescWentAway("File descriptor lost")
#: The longest epoll_wait timeout (2 ** 31 ms), as Twisted's C{timeout()} caps it.
_LONGEST_POLL = 2147483.0
_Class = TypeVar("_Class", bound=type)

#: The selectable classes whose C{fileno()} answers the descriptor they were registered with
#: for as long as they are registered (see L{keeps_descriptor}).
_KEEP_DESCRIPTOR: set[type] = set()


def keeps_descriptor(cls: _Class) -> _Class:
    """Class decorator: instances of C{cls} keep their descriptor while they are registered
    (their C{fileno()} never turns -1 before they leave the poll set), so the lean poll loop
    dispatches their events without first asking C{fileno()} whether the descriptor went away
    (Twisted's check before each event; a call per event).  Exact classes only: a subclass
    is asked again, unless it is decorated too."""
    _KEEP_DESCRIPTOR.add(cls)
    return cls


class DescriptorShortcuts(Protocol):
    """What a reactor offers lean transports beyond C{IReactorFDSet} (see the module
    docstring); L{shortcuts} gives the public-API equivalent for any other reactor.  C{fd} is
    always C{selectable.fileno()}, which the caller knows."""

    def forget(self, selectable: Any, fd: int) -> None:
        """Drop C{selectable} from the poll set; its descriptor is closed right after."""

    def hand_over(self, old: Any, new: Any, fd: int) -> None:
        """C{old} was registered for writing only, C{new} (the same descriptor) reads."""

    def start_reading(self, selectable: Any, fd: int) -> None:
        """C{addReader(selectable)}."""

    def stop_reading(self, selectable: Any, fd: int) -> None:
        """C{removeReader(selectable)}."""

    def start_writing(self, selectable: Any, fd: int) -> None:
        """C{addWriter(selectable)}."""

    def stop_writing(self, selectable: Any, fd: int) -> None:
        """C{removeWriter(selectable)}."""


class PublicShortcuts:
    """L{DescriptorShortcuts} through the public C{IReactorFDSet} (no saving)."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def forget(self, selectable: Any, fd: int) -> None:
        self._reactor.removeReader(selectable)
        self._reactor.removeWriter(selectable)

    def hand_over(self, old: Any, new: Any, fd: int) -> None:
        self._reactor.removeWriter(old)
        self._reactor.addReader(new)

    def start_reading(self, selectable: Any, fd: int) -> None:
        self._reactor.addReader(selectable)

    def stop_reading(self, selectable: Any, fd: int) -> None:
        self._reactor.removeReader(selectable)

    def start_writing(self, selectable: Any, fd: int) -> None:
        self._reactor.addWriter(selectable)

    def stop_writing(self, selectable: Any, fd: int) -> None:
        self._reactor.removeWriter(selectable)


def shortcuts(reactor: Any) -> DescriptorShortcuts:
    """The reactor itself when it is a L{LeanEPollReactor} whose internals checked out, else
    the public equivalent."""
    if isinstance(reactor, LeanEPollReactor) and reactor.internals_ok:
        return reactor
    return PublicShortcuts(reactor)


class LeanEPollReactor(EPollReactor):
    """C{EPollReactor} whose C{doPoll} dispatches events without a log context per event, and
    calls C{doRead} (or C{doWrite}) itself for the common events: input (with or without a
    hang-up or error) and a lone write event."""

    def __init__(self) -> None:
        #: Descriptors registered since the last poll returned (see L{doPoll}); first, as
        #: Twisted's constructor registers its waker.
        self._fresh: set[int] = set()
        super().__init__()  # type: ignore[no-untyped-call]
        #: The private attributes the shortcuts use are there (see the module docstring).
        self.internals_ok = self.check_internals()
        #: The private attributes of Twisted's timed-call bookkeeping L{mainLoop} reads are
        #: there (else it is Twisted's own loop).
        self.timing_ok = self.check_timing()

    def check_internals(self) -> bool:
        """Whether C{EPollReactor}'s private attributes that the shortcuts use are there."""
        return all(
            isinstance(getattr(self, name, None), kind)
            for name, kind in (("_reads", set), ("_writes", set), ("_selectables", dict))
        ) and all(
            callable(getattr(getattr(self, "_poller", None), name, None))
            for name in ("modify", "register", "unregister")
        )

    def check_timing(self) -> bool:
        """Whether C{ReactorBase}'s private timed-call attributes L{mainLoop} reads are there."""
        return all(isinstance(getattr(self, name, None), list) for name in (
            "_pendingTimedCalls", "_newTimedCalls", "threadCallQueue",
        )) and all(isinstance(getattr(self, name, None), bool) for name in (
            "_justStopped", "_started",
        ))

    def mainLoop(self) -> None:
        """Twisted's main loop, but a poll whose timed calls need no work (none due, none
        added, no call from a thread waiting, no stop) skips C{runUntilCurrent} and
        C{timeout}, about 2 us of bookkeeping that Twisted does before every poll: a poll per
        event or two when traffic is light, as through a database's few busy connections.
        Otherwise both run as in Twisted's loop."""
        if not self.timing_ok:
            super().mainLoop()
            return
        seconds, poll = self.seconds, self.doIteration  # as Twisted's loop calls them
        while self._started:
            try:
                while self._started:
                    pending = self._pendingTimedCalls
                    timeout: float | None = None
                    if pending:
                        timeout = pending[0].time - seconds()  # Twisted's timeout(), in line
                        if not timeout <= _LONGEST_POLL:  # too far for epoll, or not a number
                            timeout = _LONGEST_POLL
                    if ((timeout is not None and timeout <= 0) or self.threadCallQueue
                            or self._newTimedCalls or self._justStopped):
                        self.runUntilCurrent()
                        timeout = self.timeout()
                    poll(timeout if self.running else 0)
            except BaseException:
                log.failure("Unexpected error in main loop.")
        log.info("Main loop terminated.")

    def forget(self, selectable: Any, fd: int) -> None:
        """Stop watching C{selectable}, whose descriptor its owner closes right after, without
        an C{EPOLL_CTL_DEL}: closing a socket that no other descriptor refers to removes it
        from the epoll set (a socket penbal accepted or created itself)."""
        if self._selectables.get(fd) is selectable:
            del self._selectables[fd]
            self._reads.discard(fd)
            self._writes.discard(fd)

    def hand_over(self, old: Any, new: Any, fd: int) -> None:
        """C{old} (a connect in progress) is registered for writing only; register C{new}, the
        transport of the same descriptor, for reading instead, with one C{EPOLL_CTL_MOD}."""
        if self._selectables.get(fd) is not old or fd in self._reads or fd not in self._writes:
            self.removeWriter(old)  # type: ignore[no-untyped-call]
            self.addReader(new)
            return
        self._poller.modify(fd, _IN)
        self._writes.discard(fd)
        self._reads.add(fd)
        self._selectables[fd] = new

    # addReader, removeReader, addWriter and removeWriter given the descriptor: what
    # EPollReactor's _add and _remove do (as read in Twisted 26.10, the installed version;
    # the start-up check guards the attributes), in one frame.  A descriptor
    # epoll refuses (EPERM: Twisted polls those continuously) or one not registered here takes
    # the public call, which deals with it as Twisted does.

    def start_reading(self, selectable: Any, fd: int) -> None:
        """C{addReader(selectable)}, whose descriptor is C{fd}."""
        if fd in self._reads:
            return
        try:
            if fd in self._writes:
                self._poller.modify(fd, _IN | _OUT)
            else:
                self._poller.register(fd, _IN)
                self._fresh.add(fd)
        except OSError:
            self.addReader(selectable)
            return
        self._reads.add(fd)
        self._selectables[fd] = selectable

    def stop_reading(self, selectable: Any, fd: int) -> None:
        """C{removeReader(selectable)}, whose descriptor is C{fd}."""
        if fd not in self._reads:
            self.removeReader(selectable)  # type: ignore[no-untyped-call]
            return
        if fd in self._writes:
            self._poller.modify(fd, _OUT)
        else:
            del self._selectables[fd]
            self._poller.unregister(fd)
        self._reads.remove(fd)

    def start_writing(self, selectable: Any, fd: int) -> None:
        """C{addWriter(selectable)}, whose descriptor is C{fd}."""
        if fd in self._writes:
            return
        try:
            if fd in self._reads:
                self._poller.modify(fd, _IN | _OUT)
            else:
                self._poller.register(fd, _OUT)
                self._fresh.add(fd)
        except OSError:
            self.addWriter(selectable)
            return
        self._writes.add(fd)
        self._selectables[fd] = selectable

    def stop_writing(self, selectable: Any, fd: int) -> None:
        """C{removeWriter(selectable)}, whose descriptor is C{fd}."""
        if fd not in self._writes:
            self.removeWriter(selectable)  # type: ignore[no-untyped-call]
            return
        if fd in self._reads:
            self._poller.modify(fd, _IN)
        else:
            del self._selectables[fd]
            self._poller.unregister(fd)
        self._writes.remove(fd)

    def addReader(self, reader: Any) -> None:
        self._registering(reader)
        super().addReader(reader)  # type: ignore[no-untyped-call]

    def addWriter(self, writer: Any) -> None:
        self._registering(writer)
        super().addWriter(writer)  # type: ignore[no-untyped-call]

    def _registering(self, selectable: Any) -> None:
        """Note a descriptor about to be registered anew (see L{doPoll})."""
        fd = selectable.fileno()
        if fd not in self._selectables:
            self._fresh.add(fd)

    def doPoll(self, timeout: float | None) -> None:
        if timeout is None:
            timeout = -1
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        # A descriptor registered while this batch is handled (in L{_fresh}) has no event in
        # it: an event for its number belongs to the socket an earlier handler of the batch
        # closed, whose number the new socket reuses (a hang-up there would fail a connect
        # under way, or close a client just accepted).  Such events are skipped; epoll is
        # level-triggered, so anything real on the new socket is reported by the next poll.
        fresh = self._fresh
        if fresh:
            fresh.clear()
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        kept = _KEEP_DESCRIPTOR
        for fd, event in events:
            try:
                selectable: Any = selectables[fd]
            except KeyError:  # an earlier handler of this batch unregistered it (as Twisted's)
                continue
            if fresh and fd in fresh:
                continue
            # Input (alone, or with a hang-up or error: Twisted reads it first then too) and a
            # lone write event go straight to the handler; anything else (a hang-up or error
            # without input, input and output at once) takes Twisted's dispatch.
            if (event & _IN_OUT) == _IN:
                reading = True
            elif event == _OUT:
                reading = False
            else:
                try:
                    dispatch(selectable, fd, event)  # type: ignore[no-untyped-call]
                except BaseException:
                    log.failure("unhandled error handling an event of {selectable!r}",
                                selectable=selectable)
                continue
            # What _doReadOrWrite does for these events, without its tests.
            why: object
            try:
                if type(selectable) not in kept and selectable.fileno() == -1:
                    why, reading = _NO_FILEDESC, False
                else:
                    why = selectable.doRead() if reading else selectable.doWrite()
            except BaseException as e:
                log.failure("unhandled error handling an event of {selectable!r}",
                            selectable=selectable)
                # Not "in a read" (Twisted's inRead is set only once doRead returned): a
                # half-closeable descriptor loses its whole connection, not its read side.
                why, reading = e, False
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
