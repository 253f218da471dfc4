# -*- test-case-name: tests.relay.test_dialer,tests.relay.test_firstbyte -*-
"""
Dialling a backend for one client: fail over until one is ready.

The dial tries the policy's choices in order, then the emergency server.  It does nothing but
fail over, driven by two kinds of news: a backend leg became I{ready} (connected; and, when
asked, its TLS handshake completed and its first byte arrived), or the attempt I{failed}
(refused, no answer within the connect timeout, closed or silent before it was ready, a
failed handshake).  How a connection is made is the L{Connector}'s business, chosen once at
assembly; what a failure does to the backend (blacklisting) is the balancer's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from penbal.backend import Backend
from penbal.balancer import Balancer
from penbal.relay.attempt import Connecting
from penbal.relay.connect import Connector
from penbal.relay.hooks import EdgeHooks
from penbal.relay.legs import BackendLeg, FrontLeg

#: The dial's states (see L{Dial}).
CONNECTING = "connecting"
WAITING = "waiting"
ORPHANED = "orphaned"
DONE = "done"


class DialSite(Protocol):
    """What a dial needs of the relay that started it (the listener implements it)."""

    #: The edge features, told when a backend connection is up (the PROXY header).
    edges: EdgeHooks | None

    def hold(self, front: FrontLeg) -> bool:
        """No backend is left for C{front}: hold it until one is (C{--queue-timeout}), or
        return False (the dial closes it)."""


class Dial:
    """
    One client's search for a backend.

    It is one small state machine; each input is a method, each row one transition::

        state       input             next        what it does
        ----------  ----------------  ----------  -------------------------------------------
        connecting  made              connecting  count the attempt, build the backend leg
        connecting  connected         done        nothing to wait for: hand the leg to the client
        connecting  connected         waiting     start the readiness timer: the handshake
                                                  (TLS, C{-t}), else the first byte
                                                  (C{--first-byte-timeout})
        connecting  failed            connecting  the balancer blacklists; dial the next backend
        waiting     handshake         waiting     first byte asked for: the timer starts again
        waiting     handshake, spoke  done        stop the timer, hand the leg to the client
        waiting     lost, timer       connecting  (the timer aborts the leg) as C{failed}
        connecting  cancel            done        stop connecting
        waiting     cancel            done        first byte awaited: stop the timer, abort
        waiting     cancel            orphaned    handshake awaited: let it finish
        orphaned    handshake, spoke  done        close the leg (nobody to relay for)
        orphaned    lost, timer       done        the balancer blacklists (the backend did
                                                  fail); no failover, nobody waits

    C{failed} with no backend left (the emergency server included) ends in C{done}: the
    client is held (C{--queue-timeout}) or closed; with C{stubborn}, the first failure does.
    """

    __slots__ = (
        "_backend",
        "_balancer",
        "_clock",
        "_connecting",
        "_connector",
        "_first_byte",
        "_front",
        "_leg",
        "_next_choice",
        "_order",
        "_site",
        "_state",
        "_timer",
        "_tried_emergency",
        "_words",
    )

    def __init__(
        self,
        site: DialSite,
        clock: IReactorTime,
        balancer: Balancer,
        connector: Connector,
        first_byte: float,
        front: FrontLeg,
        order: Sequence[Backend],
    ) -> None:
        self._site = site
        self._clock = clock
        self._balancer = balancer
        self._connector = connector
        #: Seconds a connected backend has to speak first (0: it need not).
        self._first_byte = first_byte
        self._front = front
        self._order = order
        self._next_choice = 0
        self._tried_emergency = False
        self._state = CONNECTING
        self._backend: Backend | None = None
        self._connecting: Connecting | None = None
        #: The connected leg not yet ready, and its readiness timer (state C{waiting}).
        self._leg: BackendLeg | None = None
        self._timer: IDelayedCall | None = None
        #: What the timer's expiry is called: the handshake's words, or L{_silent}.
        self._words: Callable[[float], str] = _silent

    # -- inputs from the connector (L{penbal.relay.attempt.Attempt}) ----------------------

    def made(self) -> BackendLeg:
        """The connection is up: the leg to run on it."""
        backend = self._backend
        assert backend is not None
        self._connecting = None
        backend.counters.total += 1
        return BackendLeg(self._front, backend, self)

    def failed(self, why: str) -> None:
        """The attempt failed: refused, timed out, or not ready (see the table)."""
        state = self._state
        if state is DONE:
            return
        self._connecting = None
        backend = self._backend
        assert backend is not None
        settings = self._balancer.settings
        self._balancer.attempt_failed(backend, why)
        if state is ORPHANED:
            self._state = DONE
            return
        self._state = CONNECTING
        if settings.stubborn:
            self._state = DONE
            self._front.no_backend("first choice failed (stubborn)")
            return
        self._next()

    # -- inputs from the backend leg -------------------------------------------------------

    def connected(self, leg: BackendLeg) -> None:
        """C{leg} is connected: hand it over, or wait until it is ready."""
        edges = self._site.edges
        if edges is not None and edges.sends_first:
            edges.backend_leg_made(leg)  # the PROXY header, first: before a TLS handshake
        handshake = self._connector.handshake
        if handshake is not None:
            self._wait(leg, self._balancer.settings.timeout, handshake.too_slow)
            return
        if self._first_byte > 0:
            self._wait(leg, self._first_byte, _silent)
            return
        self._state = DONE
        leg.dial = None
        self._front.backend_connected(leg)

    def handshake(self, leg: BackendLeg) -> None:
        """C{leg}'s handshake completed: ready, unless its first byte is awaited too."""
        if self._first_byte > 0 and self._state is WAITING:
            self._stop_timer()
            self._wait(leg, self._first_byte, _silent)
            return
        self.spoke(leg)

    def spoke(self, leg: BackendLeg) -> None:
        """C{leg}'s backend sent its first byte: it is ready."""
        self._stop_timer()
        self._leg = None
        leg.dial = None
        if self._state is ORPHANED:
            self._state = DONE
            leg.close()
            return
        self._state = DONE
        self._front.backend_connected(leg)

    def lost(self, leg: BackendLeg, reason: Failure) -> None:
        """C{leg} closed before it was ready: the client has seen nothing, try the next."""
        self._stop_timer()
        self._leg = None
        handshake = self._connector.handshake
        if handshake is not None and self._words is not _silent:
            self.failed(handshake.failed(leg.transport, reason))
        else:
            self.failed(f"closed before sending anything ({reason.getErrorMessage()})")

    # -- the client ----------------------------------------------------------------------

    def cancel(self) -> None:
        """The client went away: stop connecting, or let go of the leg not yet ready."""
        state, self._state = self._state, DONE
        if state is CONNECTING and self._connecting is not None:
            connecting, self._connecting = self._connecting, None
            connecting.stopConnecting()
        elif state is WAITING and self._words is not _silent:
            self._state = ORPHANED  # a failed handshake still blacklists its backend
        elif state is WAITING:
            self._stop_timer()
            leg, self._leg = self._leg, None
            if leg is not None:
                _abandon(leg)

    # -- the machine's insides -------------------------------------------------------------

    def _wait(self, leg: BackendLeg, seconds: float, words: Callable[[float], str]) -> None:
        self._state = WAITING
        self._leg = leg
        self._words = words
        self._timer = self._clock.callLater(seconds, self._too_slow, leg, seconds)

    def _too_slow(self, leg: BackendLeg, seconds: float) -> None:
        self._timer = None
        self._leg = None
        _abandon(leg)
        self.failed(self._words(seconds))

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _next(self) -> None:
        """Dial the next choice, else the emergency server, else give up."""
        order = self._order
        index = self._next_choice
        if index < len(order):
            self._next_choice = index + 1
            backend = order[index]
        else:
            emergency = self._balancer.settings.emergency
            if emergency is None or self._tried_emergency:
                self._exhausted()
                return
            self._tried_emergency = True
            backend = emergency
        self._backend = backend
        connecting = self._connector.connect(backend, self, self._balancer.settings.timeout)
        # An attempt that failed at once has already started the next one, or given up:
        # only a pending one is what cancel() must stop.
        if self._backend is backend and self._state is CONNECTING:
            self._connecting = connecting

    #: Try the first choice (the same step as after a failure: one call less per client).
    start = _next

    def _exhausted(self) -> None:
        """No backend is left: hold the client (C{--queue-timeout}) or close it."""
        self._state = DONE
        front = self._front
        if not self._site.hold(front):
            front.no_backend("no backend available")


class AbuseDial(Dial):
    """A client the ACL denied, dialled to the abuse server: no failover, no blacklist.

    The order is the abuse server alone, on a plain connector, with no first byte awaited;
    a failure counts against the abuse server and closes the client.
    """

    __slots__ = ()

    def failed(self, why: str) -> None:
        if self._state is DONE:
            return
        self._state = DONE
        self._connecting = None
        backend = self._backend
        assert backend is not None
        backend.counters.failures += 1
        if not self._front.closed:
            self._front.no_backend(f"denied by client ACL; abuse server: {why}")

    def _exhausted(self) -> None:
        self._state = DONE


def _silent(seconds: float) -> str:
    return f"connected but sent nothing within {seconds:g}s"


def _abandon(leg: BackendLeg) -> None:
    """Let go of a leg not yet ready: its end concerns nobody."""
    leg.abandoned = True
    leg.dial = None
    transport: Any = leg.transport
    transport.abortConnection()
