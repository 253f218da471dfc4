# -*- test-case-name: tests.policies.test_leastconn -*-
"""
Least connections: the backend with the fewest active connections, ignoring weights.

Ties are broken round-robin (starting after the last choice), so short connections that
always find every backend idle still spread over all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy
from penbal.policies.roundrobin import rotate_after


@implementer(ISelectionPolicy)
class LeastConnPolicy:
    """Fewest active connections first, among backends below MAXC."""

    def __init__(self) -> None:
        self.last = -1

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        turn = [b for b in rotate_after(candidates, self.last) if b.below_soft_limit()]
        order = sorted(turn, key=lambda b: b.counters.active)  # stable: ties keep the turn
        if order:
            self.last = order[0].index
        return order

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass
