# -*- test-case-name: tests.relay.test_directconnect -*-
"""
Direct connect: reach a backend at an IP literal with one non-blocking socket, then wrap it in
penbal's lean transport, skipping C{connectTCP}'s per-connection connector, address
"resolution" Deferreds, timers and second C{connect()} (new connections: +30 % in the notes).
It registers through L{penbal.reactor}'s shortcuts (the reactor's public C{IReactorFDSet}
calls, given the descriptor), among them the one that hands the descriptor to its transport
with one C{epoll_ctl}.  Host names, TLS to backends, the stock
path (C{--relay-path twisted}) and test reactors use C{connectTCP}.

Connect timeouts share one timer per clock (L{ConnectDeadlines}) instead of a C{callLater}
(a DelayedCall, a heap push and a cancel) per attempt.
"""

from __future__ import annotations

import _socket
import errno
import os
import socket
import weakref
from typing import Any

from twisted.internet import error
from twisted.internet.interfaces import IDelayedCall, IReactorFDSet, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from penbal.reactor import DescriptorShortcuts, keeps_descriptor, shortcuts
from penbal.relay.attempt import Attempt
from penbal.relay.leantransport import LeanTCPTransport

log = Logger()
_PENDING = (0, errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK)
#: What a second connect() answers while the first one's handshake is still under way.
_UNDER_WAY = _PENDING[1:]


class ConnectDeadlines:
    """The connect timeouts of the attempts in progress, on one timer.

    The timer is set for the earliest deadline; when it fires it times out every attempt due
    and sets itself for the earliest one left.  An attempt that connects (or fails) leaves
    the table, which costs a dict deletion; the timer is cancelled only when the table empties
    (so that nothing is left scheduled when no connect is in progress), which under load is
    about once per reactor turn, not once per connection.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._due: dict[DirectAttempt, float] = {}
        self._timer: IDelayedCall | None = None
        self._timer_at = 0.0

    def add(self, attempt: DirectAttempt, seconds: float) -> None:
        """Time C{attempt} out after C{seconds}, unless it leaves first (L{discard})."""
        at = self._clock.seconds() + seconds
        self._due[attempt] = at
        timer = self._timer
        if timer is None:
            self._timer = self._clock.callLater(seconds, self._expire)
            self._timer_at = at
        elif at < self._timer_at:  # the timeout was shortened at run time
            timer.reset(seconds)
            self._timer_at = at

    def discard(self, attempt: DirectAttempt) -> None:
        """C{attempt} connected, failed or was stopped."""
        due = self._due
        due.pop(attempt, None)
        if not due and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __len__(self) -> int:
        return len(self._due)

    def _expire(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        due = [attempt for attempt, at in self._due.items() if at <= now]
        for attempt in due:
            self._due.pop(attempt, None)
            try:
                attempt.timed_out()
            except Exception:  # as a timer of its own would: the others still time out
                log.failure("timing out a connect attempt")
        if not self._due:
            return
        earliest = min(self._due.values())
        if self._timer is None:
            self._timer = self._clock.callLater(max(0.0, earliest - now), self._expire)
            self._timer_at = earliest
        elif earliest < self._timer_at:
            # A timeout above started the next attempt (a dial failing over), which set the
            # timer for its own, later deadline: bring it back to the earliest one left.
            self._timer.reset(max(0.0, earliest - self._clock.seconds()))
            self._timer_at = earliest


_deadlines: weakref.WeakKeyDictionary[IReactorTime, ConnectDeadlines] = (
    weakref.WeakKeyDictionary()
)


_last: list[Any] = [None, None]  # the clock asked for last, and its table (the common case)


def deadlines_for(clock: IReactorTime) -> ConnectDeadlines:
    """The one L{ConnectDeadlines} of C{clock}."""
    if _last[0] is clock:
        table: ConnectDeadlines = _last[1]
        return table
    found = _deadlines.get(clock)
    if found is None:
        found = _deadlines[clock] = ConnectDeadlines(clock)
    _last[:] = [clock, found]
    return found
_families: dict[str, int | None] = {}


def ip_family(host: str) -> int | None:
    """AF_INET or AF_INET6 for an IP literal, None for a host name (cached)."""
    family = _families.get(host, -1)
    if family != -1:
        return family
    found: int | None = None
    for candidate in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(candidate, host)
        except OSError:
            continue
        found = candidate
        break
    if len(_families) < 4096:
        _families[host] = found
    return found


@keeps_descriptor  # fileno() is the socket's descriptor while registered (-1 once it leaves)
class DirectAttempt:
    """One connect attempt; tells C{attempt} how it went (made, or failed).

    C{fds} and C{deadlines} are the reactor's shortcuts and the clock's connect deadlines,
    which a connector asks for once for all its attempts (by default, this attempt asks)."""

    def __init__(
        self,
        reactor: IReactorFDSet,
        clock: IReactorTime,
        family: int,
        host: str,
        port: int,
        attempt: Attempt,
        timeout: float,
        lean_read: int = 1 << 20,
        fds: DescriptorShortcuts | None = None,
        deadlines: ConnectDeadlines | None = None,
    ) -> None:
        self._reactor = reactor
        self._fds = fds if fds is not None else shortcuts(reactor)
        #: Wrap the connected socket in a L{LeanTCPTransport} reading up to this.
        self._lean_read = lean_read
        self._attempt = attempt
        self._address = (host, port)
        self._family = family
        # Non-blocking from its creation: no ioctl of its own.  The C socket type that
        # socket.socket extends: the relay needs none of what the subclass adds (makefile,
        # enum-typed family), and skips its Python __init__ and close (see leantransport).
        self._sock: _socket.socket | None = _socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
        )
        self._fd = self._sock.fileno()
        self._deadlines: ConnectDeadlines | None = None
        err = self._sock.connect_ex(self._address)
        if err not in _PENDING:
            self._fail(error.getConnectError((err, os.strerror(err))))
            return
        self._deadlines = deadlines if deadlines is not None else deadlines_for(clock)
        self._deadlines.add(self, timeout)
        self._fds.start_writing(self, self._fd)

    def fileno(self) -> int:
        return self._fd if self._sock is not None else -1

    def logPrefix(self) -> str:
        return "penbal.relay.directconnect"

    def doWrite(self) -> None:
        """Writable: the connect finished, one way or the other, unless the event was stale.

        A second C{connect} says which (as Twisted's client does after C{SO_ERROR}, in one
        system call here): 0 or C{EISCONN} once connected, C{EALREADY} while the handshake is
        still under way, or the error that ended it.  An event can be stale: when one poll
        batch holds an event for a descriptor that an earlier handler of the batch closed,
        and a new connect was given the same number in between, the old event reaches this
        attempt (and C{SO_ERROR} is 0 while a connect is under way too)."""
        sock = self._sock
        if sock is None:
            return
        err = sock.connect_ex(self._address)
        if err in _UNDER_WAY:
            return  # a stale event
        if err and err != errno.EISCONN:
            self._stop_waiting()
            self._fail(error.getConnectError((err, os.strerror(err))))
            return
        if self._deadlines is not None:
            self._deadlines.discard(self)
            self._deadlines = None
        self._sock = None
        # The backend leg, on a lean transport that takes over the registration (see
        # penbal.reactor).
        leg: Any = self._attempt.made()
        leg.makeConnection(
            LeanTCPTransport(sock, leg, self._reactor, self._address, self._lean_read,
                             handed_over_from=self, fds=self._fds, keepalive=True)
        )

    doRead = doWrite

    def connectionLost(self, reason: Failure) -> None:
        """The reactor saw an error or hang-up while connecting (a refusal, on epoll)."""
        sock = self._sock
        if sock is not None:
            self._stop_waiting()
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._fail(error.getConnectError((err, os.strerror(err))))
            else:
                self._fail(error.ConnectError(string=reason.getErrorMessage()))

    def stopConnecting(self) -> None:
        """The client went away: drop the attempt quietly."""
        if self._sock is not None:
            self._stop_waiting()
            self._sock.close()
            self._sock = None

    def timed_out(self) -> None:
        """The connect timeout passed (see L{ConnectDeadlines})."""
        self._deadlines = None
        if self._sock is not None:
            self._stop_waiting()
            self._fail(error.TimeoutError())

    def _stop_waiting(self) -> None:
        if self._deadlines is not None:
            self._deadlines.discard(self)
            self._deadlines = None
        if self._sock is not None:
            self._fds.stop_writing(self, self._fd)

    def _fail(self, reason: Exception) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._attempt.failed(str(reason))
