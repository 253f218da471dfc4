# -*- test-case-name: tests.policies.test_roundrobin -*-
"""
Round-robin: each new client goes to the next backend after the last one used (Pen's C{-r}).
"""

from __future__ import annotations

from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy


def rotate_after(candidates: Sequence[Backend], last: int) -> list[Backend]:
    """The candidates in table order, starting after table position C{last}, wrapping around."""
    later = [b for b in candidates if b.index > last]
    earlier = [b for b in candidates if b.index <= last]
    return later + earlier


@implementer(ISelectionPolicy)
class RoundRobinPolicy:
    """Cycle through the backends that are below their soft limit."""

    def __init__(self) -> None:
        self._last = -1

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        order = [b for b in rotate_after(candidates, self._last) if b.below_soft_limit()]
        if order:
            self._last = order[0].index
        return order

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass
