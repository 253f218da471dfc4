# -*- test-case-name: tests.policies.test_roundrobin -*-
"""
Round-robin: each new client goes to the next backend after the last one used (Pen's C{-r}).

As in Pen, the turn starts after backend 0 (the first client goes to backend 1), the turn moves
on even when the backend whose turn it is is full, and the failover order is the table order
after the first choice.
"""

from __future__ import annotations

from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy


def rotate_after(candidates: Sequence[Backend], last: int) -> list[Backend]:
    """The candidates in table order, starting after table position C{last}, wrapping around.

    One pass, no comprehension: on Python 3.11 each comprehension is a call of its own, and
    this runs for every new client."""
    later: list[Backend] = []
    earlier: list[Backend] = []
    for backend in candidates:
        if backend.index > last:
            later.append(backend)
        else:
            earlier.append(backend)
    if earlier:
        later += earlier
    return later


@implementer(ISelectionPolicy)
class RoundRobinPolicy:
    """Cycle through the backends; those at their soft limit (MAXC) are passed over."""

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def peek(self, candidates: Sequence[Backend]) -> list[Backend]:
        """The order the next new client would get, without taking a turn."""
        return [b for b in rotate_after(candidates, self.last) if b.below_soft_limit()]

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        turn = rotate_after(candidates, self.last)
        if not turn:
            return turn
        self.last = turn[0].index
        for backend in turn:
            if not backend.below_soft_limit():  # one is full: leave out those that are
                return [b for b in turn if b.below_soft_limit()]
        return turn

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass
