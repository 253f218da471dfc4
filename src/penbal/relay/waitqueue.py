# -*- test-case-name: tests.relay.test_waitqueue -*-
"""
Clients held while no backend is usable (C{--queue-timeout}, C{--queue-max}).

A Galera view change can leave every node non-Primary for about a second; a client that
connects then would be refused by penbal, or by the node with MySQL error 1047.  Instead the
client is held: accepted, what it sends kept (the front leg's early bytes), nothing dialled.
The queue looks again every L{POLL} seconds; as soon as the policy has a backend for a held
client, that client is dialled, in the order the clients came.  A client still waiting at its
deadline (C{--queue-timeout} after it was first held) goes to the emergency server if there is
one, else is closed.  At most C{--queue-max} clients wait at once; past that a client is closed
at once, as without a queue.

A client is held at most until one deadline: if the backend found for it then fails too, it
may wait again, but never past the deadline set when it was first held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from penbal.backend import Backend
from penbal.balancer import Balancer
from penbal.relay.legs import FrontLeg

#: Seconds between two looks for a usable backend while clients wait.
POLL = 0.1

#: Starts a client's dial over C{order} (empty: the emergency server, or no backend).
StartDial = Callable[[FrontLeg, Sequence[Backend]], None]


@dataclass
class QueueFigures:
    """What the queue did since start-up (the status views show them with the waiting now)."""

    held: int = 0  # clients that had to wait
    served: int = 0  # ... and were dialled to a backend that became usable
    expired: int = 0  # ... and reached their deadline
    refused: int = 0  # clients closed at once because C{--queue-max} clients were waiting


class WaitingClient:
    """One held client: its front leg and its deadline; C{cancel} takes it out."""

    __slots__ = ("deadline", "front", "queue")

    def __init__(self, queue: ClientQueue, front: FrontLeg, deadline: float) -> None:
        self.queue = queue
        self.front = front
        self.deadline = deadline

    def cancel(self) -> None:
        """The client went away (or penbal closes it): it waits no more."""
        self.queue.forget(self)


class ClientQueue:
    """The clients held until a backend is usable, first come first served."""

    def __init__(
        self,
        clock: IReactorTime,
        balancer: Balancer,
        start_dial: StartDial,
        timeout: float,
        limit: int,
    ) -> None:
        self._clock = clock
        self._balancer = balancer
        self._start_dial = start_dial
        #: Seconds a client may wait (0: nobody is held) and how many may wait at once.
        self.timeout = timeout
        self.limit = limit
        self.figures = QueueFigures()
        self._waiting: list[WaitingClient] = []
        self._deadlines: dict[FrontLeg, float] = {}
        self._timer: IDelayedCall | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def hold(self, front: FrontLeg) -> bool:
        """Hold C{front} until a backend is usable; False if it may not wait (no queue, its
        deadline is past, or the queue is full): the caller then closes it."""
        if self.timeout <= 0 or front.closed:
            return False
        now = self._clock.seconds()
        deadline = self._deadlines.get(front)
        if deadline is None:
            if len(self._waiting) >= self.limit:
                self.figures.refused += 1
                self._deadlines[front] = now  # refused once: never held later either
                return False
            deadline = now + self.timeout
            self._deadlines[front] = deadline
            self.figures.held += 1
        elif now >= deadline or len(self._waiting) >= self.limit:
            return False
        entry = WaitingClient(self, front, deadline)
        front.dial = entry
        self._waiting.append(entry)
        self._schedule()
        return True

    def forget(self, entry: WaitingClient) -> None:
        """Take C{entry} out of the queue (its client closed)."""
        if entry in self._waiting:
            self._waiting.remove(entry)
        if entry.front.dial is entry:
            entry.front.dial = None
        if entry.front.closed:
            self._deadlines.pop(entry.front, None)
        if not self._waiting:
            self._stop_timer()

    def ended(self, front: FrontLeg) -> None:
        """C{front}'s connection is over: drop its deadline."""
        self._deadlines.pop(front, None)

    def clear(self) -> None:
        """Stop looking (the service stops; its clients are closed by the relay)."""
        self._stop_timer()

    def _schedule(self) -> None:
        if self._timer is not None or not self._waiting:
            return
        now = self._clock.seconds()
        first = min(entry.deadline for entry in self._waiting)
        self._timer = self._clock.callLater(max(0.0, min(POLL, first - now)), self._look)

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _look(self) -> None:
        """Dial every waiting client the policy now has a backend for; let go of those whose
        deadline has come."""
        self._timer = None
        now = self._clock.seconds()
        usable = bool(self._balancer.pool.candidates())
        for entry in list(self._waiting):
            if entry not in self._waiting:
                continue  # a dial started for an earlier client closed this one
            order = self._balancer.order(entry.front.client) if usable else ()
            if order:
                self.figures.served += 1
                self._release(entry, order)
            elif now >= entry.deadline:
                self.figures.expired += 1
                self._release(entry, ())
        self._schedule()

    def _release(self, entry: WaitingClient, order: Sequence[Backend]) -> None:
        self._waiting.remove(entry)
        front = entry.front
        front.dial = None
        if order or self._balancer.settings.emergency is not None:
            self._start_dial(front, order)
        else:
            front.no_backend(f"no backend available within --queue-timeout {self.timeout:g}s")
