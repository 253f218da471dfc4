# -*- test-case-name: tests.test_pool -*-
"""
The backend table (Pen's server table): which backends exist and which may take a client.
"""

from __future__ import annotations

from collections.abc import Iterator

from twisted.internet.interfaces import IReactorTime

from penbal.address import BackendSpec
from penbal.backend import AdminState, Backend, Fitness


class BackendPool:
    """An ordered, changeable table of backends, numbered from 0 as in Pen."""

    def __init__(self, clock: IReactorTime, specs: list[BackendSpec] | None = None) -> None:
        self._clock = clock
        self._backends: list[Backend] = []
        #: Backends draining out of the table: removed when their last connection ends.
        self.retiring: set[Backend] = set()
        for spec in specs or []:
            self.add(spec)

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._backends)

    def __len__(self) -> int:
        return len(self._backends)

    def __getitem__(self, index: int) -> Backend:
        return self._backends[index]

    def now(self) -> float:
        """The pool's clock, for blacklist and health timing."""
        return self._clock.seconds()

    def add(self, spec: BackendSpec) -> Backend:
        """Append a backend; it takes the next number."""
        backend = Backend(spec, len(self._backends))
        self._backends.append(backend)
        return backend

    def remove(self, backend: Backend) -> None:
        """Take a backend out of the table; the ones after it are renumbered."""
        self._backends.remove(backend)
        self.retiring.discard(backend)
        for index, each in enumerate(self._backends):
            each.index = index

    def reorder(self, backends: list[Backend]) -> None:
        """Renumber the table: C{backends} (the same backends, in a new order) from 0."""
        if sorted(map(id, backends)) != sorted(map(id, self._backends)):
            raise ValueError("reorder needs exactly the backends of the table")
        self._backends = list(backends)
        for index, each in enumerate(self._backends):
            each.index = index

    def retire(self, backend: Backend) -> None:
        """Drain a backend, then remove it once no connection uses it (at once if none does)."""
        backend.admin = AdminState.DRAIN
        self.retiring.add(backend)
        self.released(backend)

    def released(self, backend: Backend) -> None:
        """A connection to C{backend} ended: a retiring backend with none left is removed."""
        if backend in self.retiring and backend.counters.active <= 0:  # live here or elsewhere
            self.remove(backend)

    def find(self, address: str) -> Backend | None:
        """The backend with this ``HOST:PORT``, if any."""
        for backend in self._backends:
            if backend.address == address:
                return backend
        return None

    def candidates(self) -> list[Backend]:
        """Backends that may take a new client, in table order.

        Fit backends first; a backend that its health check marks as a last resort (a Galera
        donor, say) is offered only when no fit one is usable.  Limits are left to the policy,
        which knows whether the client is returning (HARD) or new (MAXC); backends at their
        hard limit are left out here.
        """
        now = self._clock.seconds()
        fit: list[Backend] = []
        last_resort: list[Backend] = []
        for backend in self._backends:
            if backend.usable(now) and backend.below_hard_limit():
                if backend.health.fitness is Fitness.FIT:
                    fit.append(backend)
                else:
                    last_resort.append(backend)
        return fit or last_resort
