# -*- test-case-name: tests.policies.test_prio -*-
"""
Priority, Pen's C{prio}: the available backend with the lowest prio number.

Ties go to the lower table position; the failover order is by prio, then table position, so
clients move to the next priority only when every backend of a better one is unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence

from zope.interface import implementer

from penbal.backend import Backend
from penbal.interfaces import ClientInfo, ISelectionPolicy


def prio_order(candidates: Sequence[Backend]) -> list[Backend]:
    """C{candidates} by rising prio number, then table position."""
    return sorted(candidates, key=lambda b: (b.spec.prio, b.index))


@implementer(ISelectionPolicy)
class PrioPolicy:
    """Lowest prio number first, among backends below MAXC."""

    def choose(self, client: ClientInfo, candidates: Sequence[Backend]) -> Sequence[Backend]:
        return [b for b in prio_order(candidates) if b.below_soft_limit()]

    def connected(self, client: ClientInfo, backend: Backend) -> None:
        pass
